// Safe DOM construction. Every piece of content goes into the page as text (text nodes,
// textContent) or as a checked attribute; nothing here parses markup, so trace content such as
// `<img src=x onerror=...>` always shows as the characters it is.

import { preview, score } from "./format.js";

const SVG_NS = "http://www.w3.org/2000/svg";

// Attributes that could run code or load something: never set from here.
const FORBIDDEN_ATTRIBUTE = /^(on|href$|src$|srcset$|action$|formaction$|xlink:href$|style$)/i;

function setAttribute(node, name, value) {
  if (FORBIDDEN_ATTRIBUTE.test(name)) throw new Error(`refusing to set attribute ${name}`);
  if (value === null || value === undefined || value === false) return;
  node.setAttribute(name, value === true ? "" : String(value));
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.append(child);
    else node.append(document.createTextNode(String(child)));
  }
}

// Options shared by el() and svg(): class, testid, data (dataset), attrs, on (listeners),
// title, hidden. Styles are set on the element afterwards (node.style.x = ...): the page's
// Content-Security-Policy refuses style attributes.
function apply(node, options) {
  for (const [key, value] of Object.entries(options)) {
    if (value === null || value === undefined) continue;
    switch (key) {
      case "class":
        node.setAttribute("class", value);
        break;
      case "testid":
        node.dataset.testid = value;
        break;
      case "data":
        for (const [name, item] of Object.entries(value)) {
          if (item !== null && item !== undefined) node.dataset[name] = String(item);
        }
        break;
      case "attrs":
        for (const [name, item] of Object.entries(value)) setAttribute(node, name, item);
        break;
      case "on":
        for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
        break;
      case "href":
        node.href = checkedHash(value);
        break;
      case "title":
        node.title = String(value);
        break;
      case "hidden":
        node.hidden = Boolean(value);
        break;
      default:
        throw new Error(`unknown element option ${key}`);
    }
  }
}

// Links only ever point inside the app: a hash route built by router.hashOf().
function checkedHash(value) {
  const text = String(value);
  if (!text.startsWith("#/")) throw new Error(`refusing a link outside the app: ${text}`);
  return text;
}

function isOptions(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof Node);
}

function build(node, options, children) {
  if (isOptions(options)) apply(node, options);
  else children.unshift(options);
  append(node, children);
  return node;
}

/** An HTML element: `el("a", {href: "#/traces", class: "x"}, "text", child)`; options optional. */
export function el(tag, options, ...children) {
  return build(document.createElement(tag), options, children);
}

/** An SVG element; geometry goes in `attrs`. */
export function svg(tag, options, ...children) {
  return build(document.createElementNS(SVG_NS, tag), options, children);
}

/** Replace a node's children. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** A link to a route of the app. */
export function link(hash, ...children) {
  return el("a", { href: hash }, ...children);
}

/** A status badge: success, error, or whatever else the store said. */
export function statusBadge(status) {
  const known = status === "error" || status === "success" ? status : "other";
  return el("span", { class: `badge status-${known}`, testid: "status" }, status ?? "—");
}

/** A small labelled value, as in a header's row of facts. */
export function fact(label, ...value) {
  return el(
    "div",
    { class: "fact" },
    el("span", { class: "fact-label" }, label),
    el("span", { class: "fact-value" }, ...value),
  );
}

/** A section with a heading, for detail panes. */
export function section(title, ...children) {
  return el("section", { class: "section" }, el("h3", title), ...children);
}

/** The view's message when something failed. */
export function errorBox(error) {
  const message = error?.message ?? String(error);
  return el("div", { class: "error-box", testid: "error", attrs: { role: "alert" } }, message);
}

/** A placeholder while a request is under way. */
export function loading(what = "Loading…") {
  return el("div", { class: "loading" }, what);
}

/** A table from column headings and rows of cells (each cell: text, a node, or a list). */
export function table(headings, rows, options = {}) {
  return el(
    "table",
    { class: "table", ...options },
    el("thead", el("tr", headings.map((heading) => el("th", heading)))),
    el("tbody", rows.map((cells) => el("tr", cells.map((cell) => el("td", cell))))),
  );
}

/** A big value over its label, in a row of `.cards`. */
export function card(label, value) {
  return el(
    "div",
    { class: "card" },
    el("div", { class: "card-value" }, value),
    el("div", { class: "card-label" }, label),
  );
}

/** A value on one line, clipped, with the longer text on hover: for inputs and outputs in tables. */
export function clipped(value) {
  return el("span", { class: "clip", title: preview(value, 2000) }, preview(value));
}

/** A view's header: its title (also the document's), and anything beside it. */
export function pageHeader(title, ...extra) {
  document.title = `${title} · clew`;
  return el("header", { class: "page-header" }, el("h1", title), ...extra);
}

/** A score as a chip coloured by its value (for scores between 0 and 1). */
export function scoreChip(name, value, title = undefined) {
  let grade = "neutral";
  if (typeof value === "number" && value >= 0 && value <= 1) {
    grade = value < 0.5 ? "bad" : value < 0.8 ? "mid" : "good";
  }
  return el(
    "span",
    { class: `chip score-${grade}`, title, data: { score: name } },
    `${name} ${score(value)}`,
  );
}

/** Scores ({name: value}) as chips, and any further chips after them. */
export function scoreChips(scores, ...extra) {
  return el(
    "div",
    { class: "chips" },
    Object.entries(scores ?? {}).map(([name, value]) => scoreChip(name, value)),
    ...extra,
  );
}
