// An LLM call's messages as a conversation, from the OpenTelemetry GenAI attributes:
// gen_ai.system_instructions, gen_ai.input.messages and gen_ai.output.messages (JSON text of
// [{role, parts: [{type: "text" | "tool_call" | "tool_call_response" | ..., ...}]}]).

import { el } from "./dom.js";
import { jsonView, parseMaybe } from "./json.js";

const ROLES = new Set(["system", "user", "assistant", "tool"]);
const ROLE_LABEL = { system: "System", user: "User", assistant: "Assistant", tool: "Tool" };

function textPart(content) {
  return el("div", { class: "part-text" }, typeof content === "string" ? content : JSON.stringify(content));
}

function toolCall(part) {
  return el(
    "div",
    { class: "part-tool", testid: "tool-call" },
    el(
      "div",
      { class: "part-head" },
      "Tool call ",
      el("code", { class: "tool-name" }, part.name ?? "?"),
      part.id ? el("span", { class: "muted" }, ` ${part.id}`) : null,
    ),
    part.arguments === undefined ? null : jsonView(parseMaybe(part.arguments)),
  );
}

function toolResult(part) {
  return el(
    "div",
    { class: "part-tool", testid: "tool-result" },
    el(
      "div",
      { class: "part-head" },
      "Tool result",
      part.id ? el("span", { class: "muted" }, ` ${part.id}`) : null,
    ),
    jsonView(parseMaybe(part.response ?? null)),
  );
}

function part(item) {
  if (typeof item === "string") return textPart(item);
  switch (item?.type) {
    case "text":
      return textPart(item.content ?? "");
    case "reasoning":
      return el(
        "div",
        { class: "part-reasoning" },
        el("div", { class: "part-head" }, "Reasoning"),
        textPart(item.content ?? ""),
      );
    case "tool_call":
      return toolCall(item);
    case "tool_call_response":
      return toolResult(item);
    default:
      return el(
        "div",
        { class: "part-other" },
        el("div", { class: "part-head" }, String(item?.type ?? "part")),
        jsonView(item),
      );
  }
}

// Messages in another shape ({role, content: "..."}) are read as one text part.
function partsOf(message) {
  if (Array.isArray(message.parts)) return message.parts;
  if (message.content === undefined) return [];
  return Array.isArray(message.content) ? message.content : [message.content];
}

function message(item, origin) {
  if (item === null || typeof item !== "object") {
    const attributes = { class: "message role-other", testid: "message", data: { role: "other" } };
    return el("div", attributes, jsonView(item));
  }
  const role = ROLES.has(item.role) ? item.role : "other";
  return el(
    "div",
    { class: `message role-${role} from-${origin}`, testid: "message", data: { role } },
    el(
      "div",
      { class: "message-head" },
      el("span", { class: "role" }, ROLE_LABEL[role] ?? String(item.role ?? "message")),
      item.finish_reason ? el("span", { class: "muted" }, `finish: ${item.finish_reason}`) : null,
    ),
    partsOf(item).map(part),
  );
}

function listOf(value) {
  const parsed = parseMaybe(value);
  if (parsed === undefined || parsed === null) return [];
  return Array.isArray(parsed) ? parsed : [parsed];
}

/** The conversation of an LLM span's attributes, or null when they carry no messages. */
export function conversation(attributes) {
  const system = listOf(attributes["gen_ai.system_instructions"]);
  const input = listOf(attributes["gen_ai.input.messages"]);
  const output = listOf(attributes["gen_ai.output.messages"]);
  const outputOmitted = !output.length && attributes["clew.output.omitted"] === true;
  if (!system.length && !input.length && !output.length) return null;
  return el(
    "div",
    { class: "conversation", testid: "conversation" },
    system.length ? message({ role: "system", parts: system }, "input") : null,
    input.map((item) => message(item, "input")),
    output.length || outputOmitted ? el("div", { class: "conversation-divider" }, "response") : null,
    output.map((item) => message(item, "output")),
    outputOmitted ? el("div", { class: "omitted", testid: "omitted" }, "omitted") : null,
  );
}
