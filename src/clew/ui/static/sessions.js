// A session: the traces of one session_id read as one conversation, oldest first.

import { getJSON, isAbort, segment } from "./api.js";
import { el, errorBox, fill, link, loading, pageHeader, statusBadge } from "./dom.js";
import * as format from "./format.js";
import { jsonView } from "./json.js";
import { hashOf } from "./router.js";

// A call's inputs read best as their one text when there is one ({question: "..."}).
function soleText(value) {
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const values = Object.values(value);
    if (values.length === 1 && typeof values[0] === "string") return values[0];
  }
  return null;
}

function bubble(role, value) {
  const text = soleText(value);
  return el(
    "div",
    { class: `message role-${role}`, testid: "message", data: { role } },
    el(
      "div",
      { class: "message-head" },
      el("span", { class: "role" }, role === "user" ? "Inputs" : "Output"),
    ),
    text === null ? jsonView(value) : el("div", { class: "part-text" }, text),
  );
}

function turn(trace) {
  return el(
    "article",
    { class: "turn", testid: "session-turn", data: { root: trace.root_trace_id } },
    el(
      "div",
      { class: "turn-head" },
      link(hashOf(["trace", trace.root_trace_id]), trace.name ?? "(unnamed)"),
      statusBadge(trace.status),
      el("span", { class: "muted" }, format.dateTime(trace.start_timestamp)),
      el("span", { class: "muted" }, format.duration(trace.latency)),
    ),
    trace.inputs === null || trace.inputs === undefined ? null : bubble("user", trace.inputs),
    trace.output === null || trace.output === undefined ? null : bubble("assistant", trace.output),
  );
}

export function mountSession(root, route, { signal }) {
  const id = route.parts[1];
  root.append(loading("Loading session…"));
  getJSON(`sessions/${segment(id)}`, {}, signal)
    .then((data) => {
      const traces = data.traces ?? [];
      fill(
        root,
        pageHeader(`Session ${id}`, link(hashOf(["traces"], { session: id }), "as a list")),
        el("p", { class: "muted" }, `${traces.length} trace${traces.length === 1 ? "" : "s"}, oldest first.`),
        el("div", { class: "conversation session", testid: "conversation" }, traces.map(turn)),
      );
    })
    .catch((error) => isAbort(error) || fill(root, pageHeader(`Session ${id}`), errorBox(error)));
}
