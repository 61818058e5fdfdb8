// Small inline SVG charts over time buckets, built with DOM APIs. Hovering a bucket shows its
// values (an SVG <title>, set as text).

import { el, svg } from "./dom.js";

const WIDTH = 640;
const HEIGHT = 180;
const PAD = { top: 10, right: 10, bottom: 22, left: 72 };
const INNER_W = WIDTH - PAD.left - PAD.right;
const INNER_H = HEIGHT - PAD.top - PAD.bottom;

// The smallest 1, 2, 2.5 or 5 times a power of ten at or above `value`: the top of the axis.
function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((m) => m >= value);
}

const yOf = (value, max) => PAD.top + INNER_H - (value / max) * INNER_H;

function frame(points, max, format, labelOf) {
  const grid = [0, 0.5, 1].map((share) => {
    const y = yOf(share * max, max);
    return svg(
      "g",
      { class: "grid" },
      svg("line", { attrs: { x1: PAD.left, x2: WIDTH - PAD.right, y1: y, y2: y } }),
      svg(
        "text",
        { class: "axis-label", attrs: { x: PAD.left - 6, y: y + 4, "text-anchor": "end" } },
        format(share * max),
      ),
    );
  });
  const band = INNER_W / Math.max(points.length, 1);
  const labelled = points.length ? [...new Set([0, Math.floor(points.length / 2), points.length - 1])] : [];
  const xLabels = labelled.map((i) =>
    svg(
      "text",
      {
        class: "axis-label",
        attrs: { x: PAD.left + band * (i + 0.5), y: HEIGHT - 6, "text-anchor": "middle" },
      },
      labelOf(points[i]),
    ),
  );
  return [...grid, ...xLabels];
}

function legend(series) {
  return el(
    "div",
    { class: "legend" },
    series.map((item, i) =>
      el("span", { class: "legend-item" }, el("span", { class: `swatch series-${i}` }), item.label),
    ),
  );
}

function tooltip(point, series, format, labelOf) {
  return svg(
    "title",
    [labelOf(point), ...series.map((item) => `${item.label}: ${format(point[item.key])}`)].join("\n"),
  );
}

function chartCard(title, series, plot) {
  return el(
    "figure",
    { class: "chart", testid: "dashboard-chart" },
    el("figcaption", title, legend(series)),
    plot,
  );
}

function canvas(children) {
  return svg(
    "svg",
    { class: "chart-svg", attrs: { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img" } },
    children,
  );
}

/** Stacked bars, one per bucket: series [{key, label}], `format` for values. */
export function barChart({ title, points, series, format, labelOf }) {
  const totals = points.map((point) => series.reduce((sum, item) => sum + (point[item.key] ?? 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const band = INNER_W / Math.max(points.length, 1);
  const bars = points.map((point, i) => {
    let base = 0;
    const rects = series.map((item, s) => {
      const value = point[item.key] ?? 0;
      const top = yOf(base + value, max);
      const rect = svg("rect", {
        class: `series-${s}`,
        attrs: {
          x: PAD.left + band * i + band * 0.15,
          width: band * 0.7,
          y: top,
          height: Math.max(yOf(base, max) - top, 0),
        },
      });
      base += value;
      return rect;
    });
    // A full-height hit area, so that empty buckets show their tooltip too.
    const hit = svg("rect", {
      class: "hit",
      attrs: { x: PAD.left + band * i, width: band, y: PAD.top, height: INNER_H },
    });
    return svg("g", { class: "bucket" }, tooltip(point, series, format, labelOf), hit, rects);
  });
  return chartCard(title, series, canvas([...frame(points, max, format, labelOf), ...bars]));
}

/** Lines, one per series, broken where a bucket has no value (null). */
export function lineChart({ title, points, series, format, labelOf }) {
  const values = points
    .flatMap((point) => series.map((item) => point[item.key]))
    .filter((v) => typeof v === "number");
  const max = niceMax(Math.max(0, ...values));
  const band = INNER_W / Math.max(points.length, 1);
  const xOf = (i) => PAD.left + band * (i + 0.5);
  const lines = series.map((item, s) => {
    let path = "";
    let drawing = false;
    const dots = [];
    points.forEach((point, i) => {
      const value = point[item.key];
      if (typeof value !== "number") {
        drawing = false;
        return;
      }
      path += `${drawing ? "L" : "M"}${xOf(i).toFixed(1)},${yOf(value, max).toFixed(1)}`;
      drawing = true;
      dots.push(svg("circle", { class: `series-${s}`, attrs: { cx: xOf(i), cy: yOf(value, max), r: 2.5 } }));
    });
    return svg("g", { class: `line series-${s}` }, path ? svg("path", { attrs: { d: path } }) : null, dots);
  });
  const hits = points.map((point, i) =>
    svg(
      "rect",
      { class: "hit", attrs: { x: PAD.left + band * i, width: band, y: PAD.top, height: INNER_H } },
      tooltip(point, series, format, labelOf),
    ),
  );
  return chartCard(title, series, canvas([...frame(points, max, format, labelOf), ...lines, ...hits]));
}
