// Experiments: the list of runs, and one run's summary and rows.

import { getJSON, isAbort, segment } from "./api.js";
import {
  card,
  clipped,
  el,
  errorBox,
  fact,
  fill,
  link,
  loading,
  pageHeader,
  scoreChip,
  scoreChips,
  section,
  table,
} from "./dom.js";
import * as format from "./format.js";
import { jsonView } from "./json.js";
import { hashOf, navigate } from "./router.js";

const evalChips = (summary) =>
  el(
    "div",
    { class: "chips" },
    Object.values(summary?.evals ?? {}).map((stats) => scoreChip(stats.name, stats.mean, `n=${stats.count}`)),
  );

function datasetLink(run) {
  if (!run.dataset) return el("span", { class: "muted" }, "rows given in code");
  const label = run.dataset_version ? `${run.dataset} v${run.dataset_version}` : run.dataset;
  return link(hashOf(["datasets", run.dataset], { version: run.dataset_version }), label);
}

function runLabel(run) {
  return `${run.name} · ${format.dateTime(run.created)}`;
}

/** Two pickers of runs and a button that opens their comparison. */
export function comparePicker(runs, a = "", b = "") {
  const picker = (name, value) =>
    el(
      "select",
      { attrs: { name, "aria-label": `run ${name.toUpperCase()}` }, testid: `compare-${name}` },
      el("option", { attrs: { value: "" } }, `Run ${name.toUpperCase()}…`),
      runs.map((run) =>
        el(
          "option",
          { attrs: { value: run.uuid, selected: value === run.uuid || value === run.name } },
          runLabel(run),
        ),
      ),
    );
  const form = el(
    "form",
    { class: "compare-picker", testid: "compare-picker" },
    picker("a", a),
    el("span", { class: "muted" }, "vs"),
    picker("b", b),
    el("button", { class: "button primary", attrs: { type: "submit" } }, "Compare"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = Object.fromEntries(new FormData(form));
    if (values.a && values.b) navigate(hashOf(["compare"], values));
  });
  return form;
}

export function mountExperiments(root, route, { signal }) {
  const body = el("div", loading("Loading experiments…"));
  root.append(pageHeader("Experiments"), body);
  getJSON("experiments", {}, signal)
    .then(({ experiments }) => {
      if (!experiments.length) {
        fill(
          body,
          el("div", { class: "empty" }, "No experiment runs yet. Run one with clew.experiment(...).run()."),
        );
        return;
      }
      const rows = experiments.map((run) => [
        link(hashOf(["experiments", run.uuid]), run.name),
        format.dateTime(run.created),
        run.status,
        datasetLink(run),
        format.tokens(run.summary?.rows),
        format.tokens(run.summary?.errors),
        evalChips(run.summary),
        format.cost(run.summary?.cost),
        format.duration(run.summary?.latency_p50),
      ]);
      const [newest, previous] = experiments;
      fill(
        body,
        comparePicker(experiments, previous?.uuid, newest.uuid),
        table(
          ["run", "created", "status", "dataset", "rows", "errors", "evals", "cost", "latency p50"],
          rows,
          { testid: "experiments-table" },
        ),
      );
    })
    .catch((error) => isAbort(error) || fill(body, errorBox(error)));
}

function summaryCards(summary) {
  return el(
    "div",
    { class: "cards" },
    card("rows", format.tokens(summary.rows)),
    card("errors", format.tokens(summary.errors)),
    card("latency p50", format.duration(summary.latency_p50)),
    card("latency p95", format.duration(summary.latency_p95)),
    card("tokens", format.compact((summary.input_tokens ?? 0) + (summary.output_tokens ?? 0))),
    card("cost", format.cost(summary.cost)),
    card("duration", format.duration(summary.duration)),
  );
}

function meanBar(mean) {
  const bar = el("span", { class: "mean-bar" }, el("span", { class: "mean-fill" }));
  if (typeof mean === "number" && mean >= 0 && mean <= 1) bar.firstChild.style.width = `${mean * 100}%`;
  else bar.hidden = true;
  return bar;
}

function evalsTable(summary) {
  const evals = Object.values(summary.evals ?? {});
  if (!evals.length) return el("p", { class: "muted" }, "No evals in this run.");
  const rows = evals.map((stats) => [
    el("strong", stats.name),
    el("span", { class: "mean" }, meanBar(stats.mean), format.score(stats.mean)),
    format.score(stats.stdev),
    String(stats.count ?? "—"),
    format.score(stats.min),
    format.score(stats.max),
  ]);
  return table(["eval", "mean", "stdev", "count", "min", "max"], rows, { testid: "evals-table" });
}

function evalErrors(errors) {
  const count = typeof errors === "number" ? errors : Object.keys(errors ?? {}).length;
  if (!count) return null;
  return el(
    "div",
    { class: "error-box" },
    "Some evals failed: ",
    typeof errors === "number" ? `${errors}` : jsonView(errors),
  );
}

function rowsTable(rows) {
  const cells = rows.map((row) => [
    String(row.index),
    String(row.trial ?? 0),
    clipped(row.inputs),
    clipped(row.target),
    clipped(row.output),
    row.error ? el("span", { class: "error-text" }, row.error) : "",
    scoreChips(
      row.scores,
      Object.entries(row.score_errors ?? {}).map(([name, error]) =>
        el("span", { class: "chip score-bad", title: String(error) }, `${name} failed`),
      ),
    ),
    format.duration(row.latency),
    format.cost(row.cost),
    row.trace_id ? link(hashOf(["trace", row.trace_id]), "trace") : "—",
  ]);
  const headings = ["#", "trial", "inputs", "target", "output", "error", "scores", "latency", "cost", ""];
  const body = table(headings, cells, { testid: "experiment-rows" });
  rows.forEach((row, i) => {
    const tr = body.tBodies[0].rows[i];
    tr.dataset.testid = "experiment-row";
    if (row.error) tr.classList.add("row-error");
  });
  return body;
}

function runView(run, others) {
  const summary = run.summary ?? {};
  return [
    pageHeader(run.name, el("span", { class: "badge" }, run.status ?? "")),
    el(
      "div",
      { class: "facts" },
      fact("Run", el("code", { class: "id" }, run.uuid)),
      fact("Created", format.dateTime(run.created)),
      fact("Dataset", datasetLink(run)),
    ),
    el(
      "div",
      { class: "experiment-summary", testid: "experiment-summary" },
      summaryCards(summary),
      section("Evals", evalsTable(summary)),
      evalErrors(summary.eval_errors),
    ),
    others.length > 1 ? section("Compare with another run", comparePicker(others, run.uuid, "")) : null,
    run.metadata && Object.keys(run.metadata).length ? section("Metadata", jsonView(run.metadata)) : null,
    section(
      `Rows (${(run.rows ?? []).length})`,
      el("div", { class: "table-wrap" }, rowsTable(run.rows ?? [])),
    ),
  ];
}

export function mountExperiment(root, route, { signal }) {
  const id = route.parts[1];
  root.append(loading("Loading the run…"));
  Promise.all([
    getJSON(`experiments/${segment(id)}`, {}, signal),
    getJSON("experiments", {}, signal).catch(() => ({ experiments: [] })),
  ])
    .then(([run, list]) => fill(root, ...runView(run, list.experiments ?? [])))
    .catch(
      (error) =>
        isAbort(error) ||
        fill(root, pageHeader("Experiment"), errorBox(error), link(hashOf(["experiments"]), "All runs")),
    );
}
