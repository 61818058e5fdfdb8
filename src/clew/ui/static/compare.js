// Two experiment runs side by side: per eval means, their difference with its confidence
// interval, and the rows that got worse first.

import { getJSON, isAbort } from "./api.js";
import { clipped, el, errorBox, fill, link, loading, pageHeader, scoreChips, section, table } from "./dom.js";
import { comparePicker } from "./experiments.js";
import * as format from "./format.js";
import { hashOf } from "./router.js";

function signed(value) {
  if (typeof value !== "number") return el("span", { class: "muted" }, "—");
  const direction = value > 0 ? "better" : value < 0 ? "worse" : "same";
  return el("span", { class: `diff diff-${direction}` }, `${value > 0 ? "+" : ""}${format.score(value)}`);
}

function interval(low, high) {
  if (typeof low !== "number" || typeof high !== "number") return "—";
  return `[${format.score(low)}, ${format.score(high)}]`;
}

function evalsTable(evals) {
  const rows = evals.map((item) => [
    el("strong", item.name),
    format.score(item.mean_a),
    format.score(item.mean_b),
    signed(item.diff),
    interval(item.ci_low, item.ci_high),
    String(item.pairs ?? "—"),
    item.significant
      ? el("span", { class: "badge status-error" }, "significant")
      : el("span", { class: "muted" }, "no"),
  ]);
  return table(["eval", "mean A", "mean B", "B − A", "95% CI", "pairs", "significant"], rows, {
    testid: "compare-table",
  });
}

function rowsTable(rows) {
  const cells = rows.map((row) => [
    String(row.index),
    clipped(row.inputs),
    clipped(row.output_a),
    clipped(row.output_b),
    scoreChips(row.scores_a),
    scoreChips(row.scores_b),
    signed(row.diff),
  ]);
  const result = table(["#", "inputs", "output A", "output B", "scores A", "scores B", "B − A"], cells, {
    testid: "compare-rows",
  });
  rows.forEach((row, i) => {
    if (typeof row.diff === "number" && row.diff < 0) result.tBodies[0].rows[i].classList.add("row-worse");
  });
  return result;
}

function runLink(run, letter) {
  return el(
    "span",
    { class: "run-link" },
    el("span", { class: "badge" }, letter),
    " ",
    link(hashOf(["experiments", run.uuid]), run.name),
  );
}

export function mountCompare(root, route, { signal }) {
  const a = route.params.get("a") ?? "";
  const b = route.params.get("b") ?? "";
  const body = el("div", loading(a && b ? "Comparing…" : "Loading runs…"));
  root.append(pageHeader("Compare runs"), body);
  const runs = getJSON("experiments", {}, signal).then((data) => data.experiments ?? []);
  if (!a || !b) {
    runs
      .then((list) => fill(body, comparePicker(list, a, b)))
      .catch((error) => isAbort(error) || fill(body, errorBox(error)));
    return;
  }
  getJSON("compare", { a, b }, signal)
    .then(async (data) => {
      const worse = (data.rows ?? []).filter((row) => typeof row.diff === "number" && row.diff < 0).length;
      fill(
        body,
        el(
          "p",
          { class: "compare-runs", testid: "compare-runs" },
          runLink(data.a, "A"),
          el("span", { class: "muted" }, " vs "),
          runLink(data.b, "B"),
        ),
        section("Evals", evalsTable(data.evals ?? [])),
        section(
          `Rows (${worse} got worse; worst first)`,
          el("div", { class: "table-wrap" }, rowsTable(data.rows ?? [])),
        ),
        section("Compare other runs", comparePicker(await runs.catch(() => []), a, b)),
      );
    })
    .catch((error) => isAbort(error) || fill(body, errorBox(error)));
}
