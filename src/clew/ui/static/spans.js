// A trace's spans as a tree: score spans set apart as scores of their parent, the rest in
// depth-first order with what the waterfall needs (depth, subtree extent, times).

import { isoMicros } from "./format.js";

const SCORE_NAME = "clew.score.name";

/** Whether a span records a score (clew.score, an eval) rather than work. */
const isScore = (span) => Boolean(span.attributes?.[SCORE_NAME]);

/** Whether a span is an LLM call: it names a model, or carries GenAI messages. */
export const isLlm = (span) =>
  Boolean(
    span.model || span.attributes?.["gen_ai.input.messages"] || span.attributes?.["gen_ai.output.messages"],
  );

/** A score span as {name, value, reason, source, span}. */
function scoreOf(span) {
  const attributes = span.attributes ?? {};
  return {
    name: attributes[SCORE_NAME],
    value: attributes["clew.score.value"],
    reason: attributes["clew.score.reason"],
    source: attributes["clew.score.source"],
    span,
  };
}

/**
 * The tree of a trace's spans (given in start order).
 *
 * Returns {rows, scores, byId, start, end}: `rows` in depth-first order, each
 * {span, depth, end (index after its subtree), children (count), start, finish (µs)};
 * `scores` maps a span id to the scores recorded on it; `start`/`end` bound the work (score
 * spans end after the trace, as an eval runs later, so they do not stretch the waterfall).
 */
export function buildTree(spans) {
  const scores = new Map();
  const nodes = new Map();
  for (const span of spans) {
    if (isScore(span)) {
      const list = scores.get(span.parent_trace_id) ?? [];
      list.push(scoreOf(span));
      scores.set(span.parent_trace_id, list);
    } else {
      nodes.set(span.trace_id, { span, children: [] });
    }
  }
  const roots = [];
  for (const node of nodes.values()) {
    const parent = nodes.get(node.span.parent_trace_id);
    // A span whose parent is not stored (yet) shows at the top rather than not at all.
    if (parent && parent !== node) parent.children.push(node);
    else roots.push(node);
  }
  const rows = flatten(roots);
  let start = Infinity;
  let end = -Infinity;
  for (const row of rows) {
    start = Math.min(start, row.start ?? Infinity);
    end = Math.max(end, row.finish ?? row.start ?? -Infinity);
  }
  if (!Number.isFinite(start)) start = end = 0;
  return { rows, scores, byId: new Map(rows.map((row, index) => [row.span.trace_id, index])), start, end };
}

// Depth first without recursion: a trace may nest thousands of levels deep.
function flatten(roots) {
  const rows = [];
  const stack = [...roots].reverse().map((node) => ({ node, depth: 0 }));
  const open = []; // rows whose subtree is still being walked
  while (stack.length) {
    const { node, depth } = stack.pop();
    while (open.length && open.at(-1).depth >= depth) open.pop().end = rows.length;
    const start = isoMicros(node.span.start_timestamp);
    let finish = isoMicros(node.span.end_timestamp);
    if (finish === null && start !== null && typeof node.span.latency === "number") {
      finish = start + node.span.latency * 1e6;
    }
    const row = {
      span: node.span,
      depth,
      end: rows.length + 1,
      children: node.children.length,
      start,
      finish,
    };
    open.push(row);
    rows.push(row);
    for (let i = node.children.length - 1; i >= 0; i--) {
      stack.push({ node: node.children[i], depth: depth + 1 });
    }
  }
  for (const row of open) row.end = rows.length;
  return rows;
}
