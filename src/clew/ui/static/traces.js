// The traces view: filters, the table (sortable), "Load more", and new traces arriving while it
// is open. A search the server cut short (a `partial` page) goes on from where it stopped until
// the page is full or the store searched through.

import { getJSON, isAbort } from "./api.js";
import { el, errorBox, fill, link, pageHeader, scoreChips, statusBadge } from "./dom.js";
import * as format from "./format.js";
import { hashOf, navigate } from "./router.js";

const POLL_MS = 3000;
const PAGE_SIZE = 50;

const TEXT_FILTERS = [
  ["tag", "Tag", "support"],
  ["user", "User", "end user id"],
  ["session", "Session", "session id"],
  ["model", "Model", "gpt-4o-mini"],
  ["project", "Project", "project name"],
  ["score", "Score", "accuracy<0.5"],
];
const SINCE = [
  ["", "Any time"],
  ["1h", "Last hour"],
  ["24h", "Last 24 hours"],
  ["7d", "Last 7 days"],
  ["30d", "Last 30 days"],
];
const FILTER_KEYS = ["q", "status", "since", ...TEXT_FILTERS.map(([key]) => key)];
// [heading, the trace's field its sort reads (none: not sortable)]
const COLUMNS = [
  ["Time", "start_ns"],
  ["Name", "name"],
  ["Status", "status"],
  ["Latency", "latency"],
  ["Spans", "span_count"],
  ["Tokens", "total_tokens"],
  ["Cost", "cost"],
  ["User", "end_user_identifier"],
  ["Session", "session_id"],
  ["Tags", null],
  ["Model", "model"],
  ["Scores", null],
];
const SORTS = new Map(COLUMNS.filter(([, key]) => key).map(([label, key]) => [label.toLowerCase(), key]));

/** The sort of the URL's `sort` (`latency`, or `-latency` for the largest first), if any. */
function sortOf(params) {
  const text = params.get("sort") ?? "";
  const name = text.replace(/^-/, "");
  return SORTS.has(name) ? { name, key: SORTS.get(name), descending: text.startsWith("-") } : null;
}

/** Orders traces by a sort; a trace without the value goes last either way. */
function comparator({ key, descending }) {
  return (a, b) => {
    const x = a[key];
    const y = b[key];
    if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1;
    if (y === null || y === undefined) return -1;
    const order = typeof x === "string" ? x.localeCompare(y) : x - y;
    return descending ? -order : order;
  };
}

function filtersOf(params) {
  return Object.fromEntries(FILTER_KEYS.map((key) => [key, params.get(key) ?? ""]));
}

const STATUS = [
  ["", "Any"],
  ["error", "Error"],
  ["success", "Success"],
];

function field(label, control, wide = false) {
  return el("label", { class: wide ? "field field-wide" : "field" }, el("span", label), control);
}

function textInput(name, value, placeholder) {
  const attrs = { name, type: "search", placeholder, value, autocomplete: "off" };
  return el("input", { attrs, testid: `filter-${name}` });
}

function select(name, options, value) {
  const known = options.some(([option]) => option === value);
  const all = known ? options : [...options, [value, value]]; // a value typed into the URL
  return el(
    "select",
    { attrs: { name, "aria-label": name }, testid: `filter-${name}` },
    all.map(([option, label]) =>
      el("option", { attrs: { value: option, selected: option === value } }, label),
    ),
  );
}

// `limit` is the URL's `limit` parameter: empty for the usual page size.
function filterForm(filters, limit) {
  const form = el(
    "form",
    { class: "filters", testid: "filters", attrs: { role: "search" } },
    field("Search", textInput("q", filters.q, "Text in names, inputs and outputs"), true),
    field("Status", select("status", STATUS, filters.status)),
    field("Time", select("since", SINCE, filters.since)),
    TEXT_FILTERS.map(([name, label, placeholder]) =>
      field(label, textInput(name, filters[name], placeholder)),
    ),
    el(
      "div",
      { class: "filter-actions" },
      el("button", { class: "button primary", attrs: { type: "submit" } }, "Apply"),
      link(hashOf(["traces"]), "Clear"),
    ),
  );
  const apply = (event) => {
    event?.preventDefault();
    const values = Object.fromEntries(new FormData(form));
    navigate(hashOf(["traces"], { ...values, limit }));
  };
  form.addEventListener("submit", apply);
  form.addEventListener("change", (event) => event.target.tagName === "SELECT" && apply());
  return form;
}

function chips(values, key) {
  return (values ?? []).map((value) =>
    link(hashOf(["traces"], { [key]: value }), el("span", { class: "chip" }, value)),
  );
}

function filterLink(key, value) {
  if (!value) return el("span", { class: "muted" }, "—");
  return link(hashOf(["traces"], { [key]: value }), value);
}

function traceRow(trace) {
  const input = format.tokens(trace.input_tokens);
  const tokensTitle = `input ${input} · output ${format.tokens(trace.output_tokens)}`;
  const cells = [
    el(
      "span",
      { class: "ago", title: format.dateTime(trace.start_timestamp) },
      format.ago(trace.start_timestamp),
    ),
    link(hashOf(["trace", trace.root_trace_id]), trace.name ?? "(unnamed)"),
    statusBadge(trace.status),
    format.duration(trace.latency),
    String(trace.span_count ?? "—"),
    el("span", { title: tokensTitle }, format.tokens(trace.total_tokens)),
    format.cost(trace.cost),
    filterLink("user", trace.end_user_identifier),
    trace.session_id
      ? link(hashOf(["sessions", trace.session_id]), trace.session_id)
      : el("span", { class: "muted" }, "—"),
    el("div", { class: "chips" }, chips(trace.tags, "tag")),
    filterLink("model", trace.model),
    scoreChips(trace.scores),
  ];
  const classes = ["nowrap", "name", "", "num", "num", "num", "num", "", "", "", "", ""];
  return el(
    "tr",
    {
      testid: "trace-row",
      data: { root: trace.root_trace_id },
      class: trace.status === "error" ? "row-error" : "",
    },
    cells.map((cell, i) => el("td", { class: classes[i] }, cell)),
  );
}

function heading([label, key], filters, limit, sort) {
  if (!key) return el("th", label);
  const name = label.toLowerCase();
  const active = sort?.name === name;
  // A first click sorts numbers largest first and text A to Z; a second click turns it.
  const numeric = !["name", "status", "user", "session", "model"].includes(name);
  const descending = active ? !sort.descending : numeric;
  const sortParam = name === "time" && descending ? "" : `${descending ? "-" : ""}${name}`;
  const params = { ...filters, limit, sort: sortParam };
  const arrow = active ? (sort.descending ? " ↓" : " ↑") : "";
  return el(
    "th",
    { attrs: { "aria-sort": active ? (sort.descending ? "descending" : "ascending") : "none" } },
    link(hashOf(["traces"], params), label + arrow),
  );
}

export function mountTraces(root, route, { signal }) {
  const filters = filtersOf(route.params);
  const limit = Number(route.params.get("limit")) || PAGE_SIZE;
  const sort = sortOf(route.params);
  const compare = sort && comparator(sort);
  const query = { ...filters, limit };
  const limitParam = limit === PAGE_SIZE ? "" : limit;
  const shown = new Map(); // root id → {row, json, trace}: what the table shows now
  let next = null;
  let searching = false;

  const body = el("tbody");
  const empty = el(
    "div",
    { class: "empty", hidden: true },
    anyFilter(filters)
      ? "No traces match these filters."
      : "No traces yet. Run a program traced with clew, and its traces appear here.",
  );
  const problem = el("div");
  const more = el(
    "button",
    { class: "button", testid: "load-more", hidden: true, on: { click: () => loadMore() } },
    "Load more",
  );
  const live = el("span", { class: "live", title: "New traces appear here as they are stored" }, "Live");
  const progress = el("div", { class: "searching muted", testid: "searching", hidden: true });
  const sortNote = el("div", { class: "muted sort-note", testid: "sort-note", hidden: !sort });
  const tableEl = el(
    "table",
    { class: "table traces", testid: "traces-table" },
    el(
      "thead",
      el(
        "tr",
        COLUMNS.map((column) => heading(column, filters, limitParam, sort)),
      ),
    ),
    body,
  );
  body.addEventListener("click", (event) => {
    if (event.target.closest("a")) return;
    const row = event.target.closest("tr[data-root]");
    if (row) navigate(hashOf(["trace", row.dataset.root]));
  });
  root.append(
    pageHeader("Traces", live),
    filterForm(filters, limitParam),
    problem,
    sortNote,
    el("div", { class: "table-wrap" }, tableEl),
    progress,
    empty,
    el("div", { class: "more" }, more),
  );

  const add = (traces, where) => {
    body.querySelector("td.loading")?.parentElement.remove();
    const fragment = document.createDocumentFragment();
    for (const trace of traces) {
      if (shown.has(trace.root_trace_id)) continue;
      const row = traceRow(trace);
      shown.set(trace.root_trace_id, { row, json: JSON.stringify(trace), trace });
      fragment.append(row);
      if (where === "top") row.classList.add("fresh");
    }
    if (where === "top") body.prepend(fragment);
    else body.append(fragment);
    if (sort) {
      const order = [...shown.values()].sort((a, b) => compare(a.trace, b.trace));
      body.append(...order.map(({ row }) => row));
      sortNote.textContent = `Sorted by ${sort.name}${sort.descending ? ", largest first" : ""}, among the ${shown.size} traces loaded (the newest that match).`;
    }
    empty.hidden = shown.size > 0 || searching;
  };

  // One page of `limit` traces from `cursor` on: a partial answer (the server's time ran out)
  // is followed by the next, as long as this view is open.
  const fetchPage = async (cursor) => {
    const traces = [];
    let after = cursor;
    searching = true;
    try {
      for (;;) {
        const page = await getJSON("traces", { ...query, cursor: after, limit: limit - traces.length }, signal);
        traces.push(...page.traces);
        after = page.next;
        if (!page.partial || traces.length >= limit) break;
        progress.hidden = false;
        progress.textContent = `Searching older traces… back to ${format.dateTime(page.searched_to)}`;
        add(page.traces, "bottom");
      }
    } finally {
      searching = false;
      progress.hidden = true;
    }
    return { traces, next: after };
  };

  const fail = (error) => {
    if (!isAbort(error)) fill(problem, errorBox(error));
  };

  const loadMore = async () => {
    more.disabled = true;
    try {
      const page = await fetchPage(next);
      add(page.traces, "bottom");
      next = page.next;
      more.hidden = !next;
    } catch (error) {
      fail(error);
    } finally {
      more.disabled = false;
    }
  };

  // Newer traces go on top; a trace still running (its spans arrive as they end) is redrawn.
  let polling = false;
  const poll = async () => {
    if (polling || document.hidden) return;
    polling = true;
    try {
      const page = await getJSON("traces", query, signal);
      const fresh = page.traces.filter((trace) => !shown.has(trace.root_trace_id));
      for (const trace of page.traces) refresh(trace);
      add(fresh, "top");
      retime();
      problem.replaceChildren();
    } catch (error) {
      fail(error);
    } finally {
      polling = false;
    }
  };

  const refresh = (trace) => {
    const entry = shown.get(trace.root_trace_id);
    const json = JSON.stringify(trace);
    if (!entry || entry.json === json) return;
    const row = traceRow(trace);
    entry.row.replaceWith(row);
    shown.set(trace.root_trace_id, { row, json, trace });
  };

  // "3m ago" becomes "4m ago" as time passes.
  const retime = () => {
    const now = Date.now();
    for (const { row, trace } of shown.values()) {
      const cell = row.querySelector(".ago");
      const text = format.ago(trace.start_timestamp, now);
      if (cell.textContent !== text) cell.textContent = text;
    }
  };

  (async () => {
    body.append(el("tr", el("td", { class: "loading", attrs: { colspan: COLUMNS.length } }, "Loading…")));
    try {
      const page = await fetchPage(null);
      add(page.traces, "bottom");
      next = page.next;
      more.hidden = !next;
    } catch (error) {
      body.replaceChildren();
      fail(error);
    }
    const timer = setInterval(poll, POLL_MS);
    signal.addEventListener("abort", () => clearInterval(timer));
  })();
}

function anyFilter(filters) {
  return Object.values(filters).some(Boolean);
}
