// Collapsible JSON, built from <details> elements. A collapsed object's children are built
// only when it is first opened, so a 10,000-item array costs nothing until looked at.

import { el } from "./dom.js";

const OPEN_DEPTH = 2; // levels open at first
const OPEN_MAX_ITEMS = 30; // larger objects start closed

function primitive(value) {
  if (value === null) return el("span", { class: "json-null" }, "null");
  switch (typeof value) {
    case "string":
      return el("span", { class: "json-string" }, `"${value}"`);
    case "number":
      return el("span", { class: "json-number" }, String(value));
    case "boolean":
      return el("span", { class: "json-bool" }, String(value));
    default:
      return el("span", { class: "json-other" }, String(value));
  }
}

const isContainer = (value) => value !== null && typeof value === "object";

function entriesOf(value) {
  return Array.isArray(value) ? value.map((item, index) => [index, item]) : Object.entries(value);
}

function summaryText(value) {
  const count = Array.isArray(value) ? value.length : Object.keys(value).length;
  if (Array.isArray(value)) return `[${count} item${count === 1 ? "" : "s"}]`;
  return `{${count} key${count === 1 ? "" : "s"}}`;
}

function keyLabel(key, isIndex) {
  return el("span", { class: isIndex ? "json-index" : "json-key" }, `${key}:`);
}

function node(key, value, depth) {
  const label = key === null ? null : keyLabel(key, typeof key === "number");
  if (!isContainer(value)) return el("div", { class: "json-line" }, label, " ", primitive(value));
  const entries = entriesOf(value);
  if (entries.length === 0) {
    return el(
      "div",
      { class: "json-line" },
      label,
      " ",
      el("span", { class: "json-empty" }, Array.isArray(value) ? "[]" : "{}"),
    );
  }
  const details = el(
    "details",
    { class: "json-node" },
    el("summary", label, " ", el("span", { class: "json-summary" }, summaryText(value))),
  );
  const body = el("div", { class: "json-children" });
  details.append(body);
  const build = () => {
    const fragment = document.createDocumentFragment();
    for (const [childKey, child] of entries) fragment.append(node(childKey, child, depth + 1));
    body.append(fragment);
  };
  if (depth < OPEN_DEPTH && entries.length <= OPEN_MAX_ITEMS) {
    details.open = true;
    build();
  } else {
    details.addEventListener("toggle", build, { once: true });
  }
  return details;
}

/**
 * A value as collapsible JSON. A string at the top is shown as plain text (an LLM's output
 * reads better without quotes and escapes).
 */
export function jsonView(value, { testid } = {}) {
  if (typeof value === "string") return el("pre", { class: "text-block", testid }, value);
  return el("div", { class: "json", testid }, node(null, value, 0));
}

/** A value that may be JSON text (attributes carry messages as JSON strings): parsed if so. */
export function parseMaybe(value) {
  if (typeof value !== "string") return value;
  const text = value.trim();
  if (!text.startsWith("{") && !text.startsWith("[")) return value;
  try {
    return JSON.parse(text);
  } catch {
    return value;
  }
}
