// The selected span's detail: error, scores, for an LLM call its tokens, cost, parameters and
// conversation, then inputs, output, metadata, tags and the remaining attributes.

import { conversation } from "./conversation.js";
import { el, fact, link, section, statusBadge, table } from "./dom.js";
import * as format from "./format.js";
import { jsonView, parseMaybe } from "./json.js";
import { hashOf } from "./router.js";
import { isLlm } from "./spans.js";

const REQUEST_PREFIX = "gen_ai.request.";
// Attributes shown elsewhere in the detail, left out of the "Attributes" section.
const SHOWN = new Set([
  "gen_ai.input.messages",
  "gen_ai.output.messages",
  "gen_ai.system_instructions",
  "gen_ai.tool.definitions",
  "clew.inputs.omitted",
  "clew.output.omitted",
]);

function omitted() {
  return el(
    "div",
    { class: "omitted", testid: "omitted" },
    "omitted",
    el("span", { class: "muted" }, " (not recorded for this span)"),
  );
}

function valueSection(title, value, isOmitted, testid) {
  if (isOmitted) return section(title, el("div", { testid }, omitted()));
  if (value === null || value === undefined) return null;
  return section(title, jsonView(value, { testid }));
}

function stat(label, value, testid) {
  return el(
    "div",
    { class: "stat", testid },
    el("div", { class: "stat-value" }, value),
    el("div", { class: "stat-label" }, label),
  );
}

function hasTokens(span) {
  return ["input_tokens", "output_tokens", "total_tokens"].some((key) => typeof span[key] === "number");
}

function usage(span) {
  return el(
    "div",
    { class: "stats" },
    el(
      "div",
      { class: "stat-group", testid: "tokens" },
      stat("input", format.tokens(span.input_tokens), "tokens-input"),
      stat("cached", format.tokens(span.cache_read_input_tokens), "tokens-cached"),
      stat("output", format.tokens(span.output_tokens), "tokens-output"),
      stat("reasoning", format.tokens(span.reasoning_tokens), "tokens-reasoning"),
      stat("total", format.tokens(span.total_tokens), "tokens-total"),
    ),
    stat("cost", format.cost(span.cost), "cost"),
    typeof span.time_to_first_token === "number"
      ? stat("time to first token", format.duration(span.time_to_first_token), "ttft")
      : null,
  );
}

function display(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

function parameters(attributes) {
  const rows = Object.entries(attributes)
    .filter(([key]) => key.startsWith(REQUEST_PREFIX) && key !== `${REQUEST_PREFIX}model`)
    .map(([key, value]) => [el("code", key.slice(REQUEST_PREFIX.length)), display(value)]);
  const response = ["gen_ai.response.model", "gen_ai.response.finish_reasons", "gen_ai.response.id"]
    .filter((key) => attributes[key] !== undefined)
    .map((key) => [el("code", key.replace("gen_ai.", "")), display(attributes[key])]);
  const all = [...rows, ...response];
  return all.length
    ? section("Parameters", table(["name", "value"], all, { testid: "parameters", class: "table compact" }))
    : null;
}

function scoresSection(scores) {
  if (!scores.length) return null;
  const rows = scores.map((score) => [
    el("strong", score.name),
    el("span", { class: "num" }, format.score(score.value)),
    score.reason ?? "",
    score.source ?? "",
  ]);
  return section(
    "Scores",
    table(["score", "value", "reason", "source"], rows, { testid: "span-scores", class: "table compact" }),
  );
}

function llmSections(span) {
  const attributes = span.attributes ?? {};
  const tools = parseMaybe(attributes["gen_ai.tool.definitions"]);
  return [
    section("Usage", usage(span)),
    section("Conversation", conversation(attributes) ?? el("p", { class: "muted" }, "No messages recorded.")),
    parameters(attributes),
    tools ? section("Tools", jsonView(tools)) : null,
  ];
}

function context(span) {
  const facts = [
    ["Session", span.session_id && link(hashOf(["sessions", span.session_id]), span.session_id)],
    [
      "User",
      span.end_user_identifier &&
        link(hashOf(["traces"], { user: span.end_user_identifier }), span.end_user_identifier),
    ],
    ["Project", span.project_name],
    ["Deployment", span.deployment_id],
  ].filter(([, value]) => value);
  return facts.length
    ? el(
        "div",
        { class: "facts" },
        facts.map(([label, value]) => fact(label, value)),
      )
    : null;
}

function remainingAttributes(attributes) {
  const rest = Object.fromEntries(Object.entries(attributes ?? {}).filter(([key]) => !SHOWN.has(key)));
  if (!Object.keys(rest).length) return null;
  const details = el("details", { class: "section" }, el("summary", el("h3", "Attributes")));
  details.addEventListener("toggle", () => details.append(jsonView(rest)), { once: true });
  return details;
}

/** The detail of one span, with the scores recorded on it. */
export function spanDetail(span, scores) {
  const attributes = span.attributes ?? {};
  const llm = isLlm(span);
  const model = [span.provider, span.model].filter(Boolean).join(" · ");
  return el(
    "div",
    { class: "span-detail-body", data: { trace: span.trace_id } },
    el(
      "div",
      { class: "detail-head" },
      el("h2", span.name ?? "(unnamed)"),
      statusBadge(span.status),
      llm ? el("span", { class: "kind-tag" }, "LLM") : null,
    ),
    el(
      "div",
      { class: "facts" },
      fact("Span", el("code", { class: "id" }, span.trace_id)),
      fact("Started", format.dateTime(span.start_timestamp)),
      fact("Latency", format.duration(span.latency)),
      model ? fact("Model", model) : null,
    ),
    span.error ? el("pre", { class: "error-box", testid: "span-error" }, span.error) : null,
    scoresSection(scores),
    llm ? llmSections(span) : hasTokens(span) ? section("Usage", usage(span)) : null,
    valueSection("Inputs", span.inputs, attributes["clew.inputs.omitted"] === true, "inputs"),
    valueSection("Output", span.output, attributes["clew.output.omitted"] === true, "output"),
    valueSection("Target", span.target, false, "target"),
    span.tags?.length
      ? section(
          "Tags",
          el(
            "div",
            { class: "chips", testid: "tags" },
            span.tags.map((tag) => link(hashOf(["traces"], { tag }), el("span", { class: "chip" }, tag))),
          ),
        )
      : null,
    span.metadata && Object.keys(span.metadata).length
      ? section("Metadata", jsonView(span.metadata, { testid: "metadata" }))
      : null,
    context(span),
    remainingAttributes(attributes),
  );
}
