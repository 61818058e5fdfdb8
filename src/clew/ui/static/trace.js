// The trace view: its header, the span tree beside a waterfall of its timing (waterfall.js),
// and the selected span's detail (span.js). Selecting a span changes only `?span=` (replacing
// the history entry), which the view handles in place: the trace is fetched and built once.

import { getJSON, isAbort, segment } from "./api.js";
import { el, errorBox, fact, fill, link, loading, pageHeader, scoreChip, statusBadge } from "./dom.js";
import * as format from "./format.js";
import { hashOf, navigate } from "./router.js";
import { spanDetail } from "./span.js";
import { buildTree } from "./spans.js";
import { waterfall } from "./waterfall.js";

function sum(rows, key) {
  let total = null;
  for (const { span } of rows) if (typeof span[key] === "number") total = (total ?? 0) + span[key];
  return total;
}

function traceHeader(tree, rootId, onScore) {
  const head = tree.rows[0]?.span ?? {};
  const latency = tree.end > tree.start ? (tree.end - tree.start) / 1e6 : head.latency;
  const errors = tree.rows.filter(({ span }) => span.status === "error").length;
  const allScores = [...tree.scores.values()].flat();
  return el(
    "div",
    { class: "trace-header" },
    pageHeader(head.name ?? "Trace", statusBadge(errors ? "error" : head.status)),
    el(
      "div",
      { class: "facts" },
      fact("Trace", el("code", { class: "id" }, rootId)),
      fact("Started", format.dateTime(head.start_timestamp)),
      fact("Latency", format.duration(latency)),
      fact(
        "Spans",
        String(tree.rows.length),
        errors ? el("span", { class: "error-text" }, ` (${errors} failed)`) : null,
      ),
      fact("Tokens", format.tokens(sum(tree.rows, "total_tokens"))),
      fact("Cost", format.cost(sum(tree.rows, "cost"))),
      head.end_user_identifier
        ? fact("User", link(hashOf(["traces"], { user: head.end_user_identifier }), head.end_user_identifier))
        : null,
      head.session_id ? fact("Session", link(hashOf(["sessions", head.session_id]), head.session_id)) : null,
      head.project_name ? fact("Project", head.project_name) : null,
      head.tags?.length
        ? fact(
            "Tags",
            el(
              "span",
              { class: "chips" },
              head.tags.map((tag) => el("span", { class: "chip" }, tag)),
            ),
          )
        : null,
    ),
    allScores.length
      ? el(
          "div",
          { class: "trace-scores chips", testid: "scores" },
          allScores.map((score) => {
            const chip = scoreChip(score.name, score.value, score.reason ?? undefined);
            return el(
              "button",
              {
                class: "chip-button",
                attrs: { type: "button" },
                on: { click: () => onScore(score.span.parent_trace_id) },
              },
              chip,
            );
          }),
        )
      : null,
  );
}

export function mountTrace(root, route, { signal }) {
  const rootId = route.parts[1];
  let wanted = route.params.get("span");
  let view = null;
  root.append(loading("Loading trace…"));
  getJSON(`traces/${segment(rootId)}`, {}, signal)
    .then((data) => {
      view = build(root, rootId, data.spans ?? []);
      view.select(wanted, { scroll: true });
    })
    .catch(
      (error) =>
        isAbort(error) ||
        fill(root, pageHeader("Trace"), errorBox(error), link(hashOf(["traces"]), "Back to the traces")),
    );
  return {
    update(next) {
      wanted = next.params.get("span");
      view?.select(wanted, { scroll: true });
      return true;
    },
  };
}

function build(root, rootId, spans) {
  const tree = buildTree(spans);
  const pickId = (id) => navigate(hashOf(["trace", rootId], { span: id }), { replace: true });
  const pane = waterfall(tree, (index) => pickId(tree.rows[index].span.trace_id));
  const detail = el("aside", { class: "span-detail", testid: "span-detail" });
  fill(root, traceHeader(tree, rootId, pickId), el("div", { class: "trace-body" }, pane.element, detail));
  if (tree.rows.length === 0) {
    fill(detail, el("p", { class: "muted" }, "This trace has no spans yet."));
    return { select: () => {} };
  }
  return {
    // The span with this id (the first span when there is none), shown in the detail.
    select(id, options) {
      const index = tree.byId.get(id) ?? 0;
      pane.select(index, options);
      const { span } = tree.rows[index];
      fill(detail, spanDetail(span, tree.scores.get(span.trace_id) ?? []));
    },
  };
}
