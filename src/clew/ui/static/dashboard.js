// The dashboard: requests, errors, latency, tokens and cost over a chosen time range, and
// the same by model, provider and project.

import { getJSON, isAbort } from "./api.js";
import { card, el, errorBox, fill, link, loading, pageHeader, table } from "./dom.js";
import { barChart, lineChart } from "./charts.js";
import * as format from "./format.js";
import { hashOf } from "./router.js";

// [since, label, buckets]
const RANGES = [
  ["1h", "Last hour", 12],
  ["24h", "Last 24 hours", 24],
  ["7d", "Last 7 days", 28],
  ["30d", "Last 30 days", 30],
];
const DEFAULT_SINCE = "24h";

function rangePicker(since) {
  return el(
    "div",
    { class: "segmented", attrs: { role: "group", "aria-label": "Time range" }, testid: "dashboard-range" },
    RANGES.map(([value, label]) =>
      el(
        "a",
        {
          href: hashOf(["dashboard"], { since: value }),
          class: value === since ? "active" : "",
          attrs: { "aria-current": value === since ? "true" : null },
        },
        label,
      ),
    ),
  );
}

function bucketLabel(seconds) {
  const pad = (n) => String(n).padStart(2, "0");
  return (point) => {
    const date = new Date(point.start);
    const day = `${date.getMonth() + 1}/${date.getDate()}`;
    const time = `${pad(date.getHours())}:${pad(date.getMinutes())}`;
    if (seconds >= 86400) return day;
    return seconds >= 3600 * 6 ? `${day} ${time}` : time;
  };
}

function totals(series) {
  const add = (key) => series.reduce((sum, point) => sum + (point[key] ?? 0), 0);
  return {
    requests: add("requests"),
    errors: add("errors"),
    input: add("input_tokens"),
    output: add("output_tokens"),
    cost: add("cost"),
  };
}

function cards(sums) {
  const rate = sums.requests ? ` · ${((sums.errors / sums.requests) * 100).toFixed(1)}%` : "";
  return el(
    "div",
    { class: "cards", testid: "dashboard-totals" },
    card("requests", format.compact(sums.requests)),
    card(`errors${rate}`, format.compact(sums.errors)),
    card("input tokens", format.compact(sums.input)),
    card("output tokens", format.compact(sums.output)),
    card("cost", format.cost(sums.cost)),
  );
}

const USAGE_FIELDS = ["requests", "input_tokens", "output_tokens", "cost"];

function byProvider(models) {
  const providers = new Map();
  for (const row of models) {
    const key = row.provider ?? "unknown";
    const entry = providers.get(key) ?? { provider: key };
    for (const field of USAGE_FIELDS) entry[field] = (entry[field] ?? 0) + (row[field] ?? 0);
    providers.set(key, entry);
  }
  return [...providers.values()].sort((a, b) => b.requests - a.requests);
}

function breakdowns(data) {
  const models = data.by_model ?? [];
  const usage = (row) => [
    format.tokens(row.requests),
    format.tokens(row.input_tokens),
    format.tokens(row.output_tokens),
    format.cost(row.cost),
  ];
  const modelRows = models.map((row) => [
    row.model ? link(hashOf(["traces"], { model: row.model }), row.model) : "—",
    row.provider ?? "—",
    ...usage(row),
  ]);
  const providerRows = byProvider(models).map((row) => [row.provider, ...usage(row)]);
  const projectRows = (data.by_project ?? []).map((row) => [
    row.project ? link(hashOf(["traces"], { project: row.project }), row.project) : "—",
    format.tokens(row.requests),
    format.tokens(row.errors),
    format.cost(row.cost),
  ]);
  const block = (title, headings, rows, testid, wide = false) =>
    el(
      "section",
      { class: wide ? "breakdown wide" : "breakdown" },
      el("h2", title),
      rows.length
        ? el("div", { class: "table-wrap" }, table(headings, rows, { testid }))
        : el("p", { class: "muted" }, "Nothing in this range."),
    );
  return el(
    "div",
    { class: "breakdowns" },
    block(
      "By model",
      ["model", "provider", "LLM calls", "input tokens", "output tokens", "cost"],
      modelRows,
      "by-model",
      true,
    ),
    block(
      "By provider",
      ["provider", "LLM calls", "input tokens", "output tokens", "cost"],
      providerRows,
      "by-provider",
    ),
    block("By project", ["project", "requests", "errors", "cost"], projectRows, "by-project"),
  );
}

function charts(data) {
  const points = data.series ?? [];
  const labelOf = bucketLabel(data.bucket_seconds ?? 3600);
  const chart = (draw, title, show, series) => draw({ title, points, labelOf, format: show, series });
  const count = (value) => format.compact(value ?? 0);
  return el(
    "div",
    { class: "charts" },
    chart(barChart, "Requests", count, [{ key: "requests", label: "requests" }]),
    chart(barChart, "Errors", count, [{ key: "errors", label: "errors" }]),
    chart(lineChart, "Latency", format.duration, [
      { key: "latency_p50", label: "p50" },
      { key: "latency_p95", label: "p95" },
    ]),
    chart(barChart, "Tokens", count, [
      { key: "input_tokens", label: "input" },
      { key: "output_tokens", label: "output" },
    ]),
    chart(barChart, "Cost", (value) => format.cost(value ?? 0), [{ key: "cost", label: "cost (USD)" }]),
  );
}

export function mountDashboard(root, route, { signal }) {
  const since = route.params.get("since") || DEFAULT_SINCE;
  const range = RANGES.find(([value]) => value === since);
  const body = el("div", loading("Loading the dashboard…"));
  root.append(pageHeader("Dashboard", rangePicker(since)), body);
  getJSON("dashboard", { since, buckets: range?.[2] ?? 24 }, signal)
    .then((data) => {
      const span = el(
        "p",
        { class: "muted" },
        `${format.dateTime(data.since)} – ${format.dateTime(data.until)}`,
      );
      fill(body, span, cards(totals(data.series ?? [])), charts(data), breakdowns(data));
    })
    .catch((error) => isAbort(error) || fill(body, errorBox(error)));
}
