// The span tree beside the waterfall of its timing, in one scrolling pane.
//
// Rows have a fixed height, so only the rows on screen (and OVERSCAN more each way) are in the
// document: a trace of 5,000 or 50,000 spans opens as fast as one of 50, and scrolling redraws
// about a hundred rows. Collapsing a span takes its subtree out of the `visible` list.

import { el } from "./dom.js";
import * as format from "./format.js";
import { isLlm } from "./spans.js";

const ROW_PX = 24; // the rows' height, as --row in app.css
const OVERSCAN = 40; // rows drawn beyond each edge of the screen
const MARGIN = 10; // redraw when the screen comes this close to the edge of the drawn rows
const INDENT_PX = 14;
const MAX_INDENT_LEVELS = 40; // deeper spans line up at this level (the tree stays readable)
const TICKS = [0, 0.25, 0.5, 0.75, 1];

// Rows are cloned from these: faster than building each element anew.
const TREE_ROW = el(
  "div",
  { class: "span-row", testid: "span-row", attrs: { role: "treeitem" } },
  el("span", { class: "indent" }),
  el("span", { class: "toggle" }),
  el("span", { class: "dot" }),
  el("span", { class: "span-name" }),
);
const BAR_ROW = el(
  "div",
  { class: "bar-row" },
  el("span", { class: "bar" }),
  el("span", { class: "bar-label" }),
);

function treeRow(row, index, scoreCount) {
  const { span } = row;
  const node = TREE_ROW.cloneNode(true);
  const [indent, toggle, dot, name] = node.children;
  node.dataset.trace = span.trace_id;
  node.dataset.index = index;
  node.setAttribute("aria-level", row.depth + 1);
  node.title = span.name ?? "";
  indent.style.width = `${Math.min(row.depth, MAX_INDENT_LEVELS) * INDENT_PX}px`;
  if (row.children) {
    toggle.textContent = "▾";
    toggle.title = "Collapse or expand";
  }
  if (span.status === "error") dot.classList.add("status-error");
  name.textContent = span.name ?? "(unnamed)";
  if (isLlm(span)) node.append(el("span", { class: "kind-tag" }, span.model ?? "LLM"));
  if (scoreCount) {
    node.append(el("span", { class: "kind-tag score-tag", title: "scores" }, `★ ${scoreCount}`));
  }
  return node;
}

function barRow(row, index, start, total) {
  const { span } = row;
  const left = row.start === null ? 0 : ((row.start - start) / total) * 100;
  const length =
    row.finish === null || row.start === null ? 100 - left : ((row.finish - row.start) / total) * 100;
  const width = Math.max(length, 0.15);
  const node = BAR_ROW.cloneNode(true);
  const [bar, label] = node.children;
  node.dataset.index = index;
  const offset = row.start === null ? "" : ` · at +${format.duration((row.start - start) / 1e6)}`;
  node.title = `${span.name} · ${format.duration(span.latency)}${offset}`;
  bar.classList.add(span.status === "error" ? "kind-error" : isLlm(span) ? "kind-llm" : "kind-span");
  bar.style.left = `${left}%`;
  bar.style.width = `${width}%`;
  label.textContent = format.duration(span.latency);
  // The label goes after the bar; before it when the bar ends near the right edge; inside a
  // bar that spans most of the trace.
  if (left + width <= 75) label.style.left = `calc(${left + width}% + 4px)`;
  else if (left >= 15) label.style.right = `calc(${100 - left}% + 4px)`;
  else {
    label.style.left = `calc(${left}% + 6px)`;
    label.classList.add("bar-label-inside");
  }
  return node;
}

function axis(total) {
  return el(
    "div",
    { class: "axis" },
    TICKS.map((tick) => {
      const mark = el("span", { class: "tick" }, format.duration((tick * total) / 1e6));
      mark.style.left = `${tick * 100}%`;
      if (tick === 1) mark.classList.add("tick-last");
      return mark;
    }),
  );
}

/**
 * The pane of a trace's tree (from spans.buildTree). `onPick(index)` is called when the user
 * picks a row (click or arrow keys). Returns {element, select(index, {scroll})}.
 */
export function waterfall(tree, onPick) {
  const total = Math.max(tree.end - tree.start, 1);
  const count = tree.rows.length;
  const treeColumn = el("div", {
    class: "span-tree",
    testid: "span-tree",
    attrs: { role: "tree", tabindex: 0, "aria-label": "Spans" },
  });
  const barColumn = el("div", { class: "waterfall", testid: "waterfall" });
  const columns = el("div", { class: "span-columns" }, treeColumn, barColumn);
  const head = el(
    "div",
    { class: "span-pane-head" },
    el("div", { class: "tree-head" }, "Span"),
    el("div", { class: "axis-head" }, axis(total)),
  );
  const pane = el("div", { class: "span-pane", testid: "span-pane" }, head, columns);

  const collapsed = new Set();
  const place = new Int32Array(count); // a row's place among the visible rows, or -1
  let visible = [];
  let selected = -1;
  let drawn = null; // [first, last) places in the document

  const layout = () => {
    visible = [];
    place.fill(-1);
    for (let i = 0; i < count; i++) {
      place[i] = visible.length;
      visible.push(i);
      if (collapsed.has(i)) i = tree.rows[i].end - 1; // skip its subtree
    }
    columns.style.height = `${visible.length * ROW_PX}px`;
    drawn = null;
    draw();
  };

  const draw = () => {
    const screen = (pane.clientHeight || window.innerHeight) - head.offsetHeight;
    const top = Math.floor(pane.scrollTop / ROW_PX);
    const bottom = Math.ceil((pane.scrollTop + screen) / ROW_PX);
    // Redraw only when the screen comes near the edge of what is drawn.
    if (
      drawn &&
      (drawn[0] === 0 || top - drawn[0] >= MARGIN) &&
      (drawn[1] === visible.length || drawn[1] - bottom >= MARGIN)
    ) {
      return;
    }
    const from = Math.max(0, top - OVERSCAN);
    const to = Math.min(visible.length, bottom + OVERSCAN);
    const treeRows = document.createDocumentFragment();
    const barRows = document.createDocumentFragment();
    for (let p = from; p < to; p++) {
      const index = visible[p];
      const row = tree.rows[index];
      const left = treeRow(row, index, tree.scores.get(row.span.trace_id)?.length ?? 0);
      const right = barRow(row, index, tree.start, total);
      if (collapsed.has(index)) left.classList.add("collapsed");
      if (index === selected) {
        left.classList.add("selected");
        left.setAttribute("aria-selected", "true");
        right.classList.add("selected");
      }
      treeRows.append(left);
      barRows.append(right);
    }
    treeColumn.replaceChildren(treeRows);
    barColumn.replaceChildren(barRows);
    treeColumn.style.paddingTop = barColumn.style.paddingTop = `${from * ROW_PX}px`;
    drawn = [from, to];
  };

  const toggle = (index, open = collapsed.has(index)) => {
    if (!tree.rows[index].children || open !== collapsed.has(index)) return;
    if (open) collapsed.delete(index);
    else collapsed.add(index);
    layout();
  };

  const scrollTo = (index) => {
    const y = place[index] * ROW_PX;
    const height = pane.clientHeight - head.offsetHeight;
    if (y < pane.scrollTop) pane.scrollTop = y;
    else if (y + ROW_PX > pane.scrollTop + height) pane.scrollTop = y + ROW_PX - height;
  };

  const select = (index, { scroll = false } = {}) => {
    const ancestors = [...collapsed].filter((open) => open < index && tree.rows[open].end > index);
    for (const open of ancestors) collapsed.delete(open);
    if (ancestors.length) layout();
    selected = index;
    for (const node of [...treeColumn.children, ...barColumn.children]) {
      const on = Number(node.dataset.index) === index;
      node.classList.toggle("selected", on);
      if (node.parentNode === treeColumn) node.setAttribute("aria-selected", String(on));
    }
    if (scroll) scrollTo(index);
    draw();
  };

  const onClick = (event) => {
    const row = event.target.closest("[data-index]");
    if (!row) return;
    const index = Number(row.dataset.index);
    if (event.target.closest(".toggle") && tree.rows[index].children) toggle(index);
    else onPick(index);
  };

  // Arrow keys walk the visible rows; left and right collapse and expand.
  const onKey = (event) => {
    const step = { ArrowDown: 1, ArrowUp: -1 }[event.key];
    if (step) {
      const next = visible[place[selected] + step];
      if (next !== undefined) onPick(next);
    } else if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      toggle(selected, event.key === "ArrowRight");
    } else {
      return;
    }
    event.preventDefault();
  };

  let frame = 0;
  pane.addEventListener(
    "scroll",
    () => {
      if (!frame) frame = requestAnimationFrame(() => ((frame = 0), draw()));
    },
    { passive: true },
  );
  treeColumn.addEventListener("click", onClick);
  barColumn.addEventListener("click", onClick);
  treeColumn.addEventListener("keydown", onKey);
  layout();
  return { element: pane, select };
}
