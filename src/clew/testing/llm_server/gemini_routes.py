"""The fake Gemini API and Vertex AI: ``generateContent`` and ``streamGenerateContent``.

Replies are deterministic like the other routes': the text echoes the last user message,
``reply_words`` words long (one word is one token, so ``candidatesTokenCount`` is the reply's
word count); a declared function is called (a ``functionCall`` part, no id, as Gemini sends)
when the last user turn names it or the calling mode is ``ANY``. ``stopSequences``,
``maxOutputTokens`` (finish reason ``MAX_TOKENS``), ``candidateCount``, thinking
(``thinkingConfig``: ``thoughtsTokenCount``, and a ``thought`` part with ``includeThoughts``)
and JSON output (``responseMimeType``) are honoured. A request Gemini would refuse gets
Google's 400: no contents, a role other than ``user`` / ``model``, an empty part or text, a
function call or response without a name, a field the API does not know.

Streams are always server-sent events (``alt=sse``; the server matches paths without their
query), one ``data:`` event per token, CRLF separated, each carrying the usage so far.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from clew.testing.llm_server.examples import (
    Tool,
    count_tokens,
    count_words,
    cut_at_stop,
    cut_to_limit,
    example_value,
    make_tool_calls,
    pick_tools,
    plain_text,
    reply_text,
    text_pieces,
)
from clew.testing.llm_server.faults import error_reply
from clew.testing.llm_server.replies import Call, Reply, Route, dumps

__all__ = ["GEMINI_ROUTES", "GEMINI_STREAM_ERROR"]

_JSON = "application/json; charset=UTF-8"
_SSE = "text/event-stream"


def _sse(value: Any) -> bytes:
    return b"data: " + dumps(value) + b"\r\n\r\n"


GEMINI_STREAM_ERROR = _sse(
    {"error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}}
)
"""What a Gemini stream broken in ``"error"`` mode sends last."""

_REQUEST_FIELDS = {
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "safetySettings",
    "cachedContent",
    "labels",
    "model",
}
_CONFIG_FIELDS = {
    "temperature",
    "topP",
    "topK",
    "candidateCount",
    "maxOutputTokens",
    "stopSequences",
    "presencePenalty",
    "frequencyPenalty",
    "seed",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseLogprobs",
    "logprobs",
    "thinkingConfig",
    "responseModalities",
    "mediaResolution",
}
_PART_FIELDS = ("text", "inlineData", "fileData", "functionCall", "functionResponse")


def _snake(name: str) -> str:
    return re.sub(r"[A-Z]", lambda m: "_" + m.group().lower(), name)


def _unknown(given: Mapping[str, Any], known: set[str], where: str) -> str | None:
    allowed = known | {_snake(k) for k in known}
    for name in given:
        if name not in allowed:
            return (
                f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': "
                "Cannot find field."
            )
    return None


def _invalid(body: Mapping[str, Any]) -> str | None:
    """Google's message for a request it would refuse, or None."""
    problem = _unknown(body, _REQUEST_FIELDS, "")
    config = body.get("generationConfig", body.get("generation_config"))
    if problem is None and isinstance(config, Mapping):
        problem = _unknown(config, _CONFIG_FIELDS, "generation_config")
    if problem is not None:
        return problem
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for n, content in enumerate(contents):
        where = f"* GenerateContentRequest.contents[{n}]"
        if not isinstance(content, Mapping) or content.get("role") not in ("user", "model"):
            return "Please use a valid role: user, model."
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return f"{where}.parts: contents.parts must not be empty."
        for m, part in enumerate(parts):
            if not isinstance(part, Mapping) or not any(k in part for k in _PART_FIELDS):
                return (
                    f"{where}.parts[{m}].data: required oneof field 'data' must have one "
                    "initialized field"
                )
            if part.get("text") == "":
                return "Unable to submit request because it has an empty text parameter."
            for kind in ("functionCall", "functionResponse"):
                if kind in part and not (part[kind] or {}).get("name"):
                    return f"{where}.parts[{m}].{_snake(kind)}.name: Name cannot be empty."
    return None


def _declared(body: Mapping[str, Any]) -> list[Tool]:
    tools = []
    for tool in body.get("tools") or ():
        for declaration in (tool or {}).get("functionDeclarations") or ():
            schema = declaration.get("parametersJsonSchema") or declaration.get("parameters")
            tools.append(Tool(str(declaration.get("name")), schema or {}))
    return tools


def _choice(body: Mapping[str, Any], tools: list[Tool]) -> tuple[Any, list[Tool]]:
    """``tool_choice`` as the shared picker reads it, and the tools it may pick from."""
    config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    mode = str(config.get("mode") or "AUTO").upper()
    allowed = config.get("allowedFunctionNames") or []
    if mode == "NONE":
        return "none", tools
    if mode in ("ANY", "VALIDATED"):
        if len(allowed) == 1:
            return {"name": allowed[0]}, tools
        return "required", [t for t in tools if not allowed or t.name in allowed]
    return None, tools


def _candidates(call: Call) -> tuple[list[dict[str, Any]], int, int]:
    """The candidates, their output tokens and the thought tokens."""
    body = call.body
    contents = body["contents"]
    config = body.get("generationConfig") or {}
    users = [c for c in contents if c["role"] == "user" and any("text" in p for p in c["parts"])]
    prompt = plain_text([p for p in users[-1]["parts"] if "text" in p]) if users else ""
    last = contents[-1]
    last_is_user = last["role"] == "user" and any(
        "functionResponse" not in p for p in last["parts"]
    )
    choice, tools = _choice(body, _declared(body))
    picked = pick_tools(tools, choice, prompt, last_is_user, True)
    thinking = config.get("thinkingConfig") or {}
    thought = " ".join(["Thinking", "about:", *prompt.split()[:6]]) if thinking else ""
    thoughts = count_tokens(thought) if thinking.get("thinkingBudget", 1) else 0
    candidates: list[dict[str, Any]] = []
    output = 0
    for index in range(max(1, int(config.get("candidateCount") or 1))):
        parts: list[dict[str, Any]] = []
        if thoughts and thinking.get("includeThoughts") and index == 0:
            parts.append({"text": thought, "thought": True})
        reason = "STOP"
        for tool_call in make_tool_calls(picked, "", call.number, index):
            parts.append(
                {"functionCall": {"name": tool_call.name, "args": json.loads(tool_call.arguments)}}
            )
            output += tool_call.tokens
        if not picked:
            text = _formatted(config, reply_text(prompt, call.reply_words, index))
            text, stop = cut_at_stop(text, config.get("stopSequences"))
            text, cut = cut_to_limit(text, config.get("maxOutputTokens"))
            reason = "MAX_TOKENS" if cut and not stop else "STOP"
            if text:
                parts.append({"text": text})
            output += count_tokens(text)
        candidates.append(
            {"content": {"parts": parts, "role": "model"}, "finishReason": reason, "index": index}
        )
    return candidates, output, thoughts


def _formatted(config: Mapping[str, Any], text: str) -> str:
    if config.get("responseMimeType") != "application/json":
        return text
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    if isinstance(schema, Mapping):
        return json.dumps(example_value(schema, schema))
    return json.dumps({"reply": text})


def _usage(prompt: int, output: int, thoughts: int) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": output,
        "totalTokenCount": prompt + output + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def _generate(call: Call) -> Reply:
    problem = _invalid(call.body)
    if problem is not None:
        return error_reply("gemini", 400, call.number, message=problem)
    system = (call.body.get("systemInstruction") or {}).get("parts") or []
    prompt = max(1, count_words([*system, *(p for c in call.body["contents"] for p in c["parts"])]))
    candidates, output, thoughts = _candidates(call)
    response = {
        "candidates": candidates,
        "usageMetadata": _usage(prompt, output, thoughts),
        "modelVersion": call.params.get("model") or "gemini-fake",
        "responseId": f"fake{call.number:08d}",
    }
    if call.params.get("method") != "streamGenerateContent":
        return Reply(200, [("content-type", _JSON)], dumps(response))
    return Reply(
        200,
        [("content-type", _SSE)],
        events=_events(response, prompt, thoughts),
        error_event=GEMINI_STREAM_ERROR,
    )


def _events(response: dict[str, Any], prompt: int, thoughts: int) -> list[bytes]:
    """The response as stream chunks: a token of text per chunk, function calls whole, each
    candidate's finish reason on its last chunk, the usage so far on every chunk (the last
    chunk's is the whole response's)."""
    chunks: list[dict[str, Any]] = []
    output = 0
    for candidate in response["candidates"]:
        groups: list[list[dict[str, Any]]] = []
        for part in candidate["content"]["parts"]:
            if "text" in part:
                thought = {"thought": True} if part.get("thought") else {}
                groups.extend([{"text": piece, **thought}] for piece in text_pieces(part["text"]))
            elif groups and "functionCall" in groups[-1][0]:
                groups[-1].append(part)
            else:
                groups.append([part])
        groups = groups or [[]]
        for n, parts in enumerate(groups):
            output += sum(1 for p in parts if "text" in p and not p.get("thought"))
            entry: dict[str, Any] = {
                "content": {"parts": parts, "role": "model"},
                "index": candidate["index"],
            }
            if n == len(groups) - 1:
                entry["finishReason"] = candidate["finishReason"]
            chunks.append(
                {
                    "candidates": [entry],
                    "usageMetadata": _usage(prompt, output, thoughts),
                    "modelVersion": response["modelVersion"],
                    "responseId": response["responseId"],
                }
            )
    chunks[-1]["usageMetadata"] = response["usageMetadata"]
    return [_sse(chunk) for chunk in chunks]


_METHOD = r"(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)"
_VERTEX = r"/v1(?:beta1)?/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"

GEMINI_ROUTES: tuple[tuple[str, re.Pattern[str], str, Route], ...] = (
    ("POST", re.compile(r"/v1(?:beta|alpha)?/models/" + _METHOD), "gemini", _generate),
    ("POST", re.compile(_VERTEX + r"/publishers/google/models/" + _METHOD), "gemini", _generate),
)
"""The Gemini API's and Vertex AI's ``generateContent`` / ``streamGenerateContent`` routes."""
