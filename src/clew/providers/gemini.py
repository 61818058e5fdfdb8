"""Gemini ``generateContent`` / ``streamGenerateContent`` responses, on the Gemini API or
Vertex AI (clew's provider ``vertexai``, priced as genai-prices' ``google``).

Usage: ``promptTokenCount`` includes the ``cachedContentTokenCount`` read from a context cache;
``toolUsePromptTokenCount`` (what built-in tools such as search or code execution fed the
model) and ``thoughtsTokenCount`` are counted apart. clew's input is the prompt plus the tool
prompt, its cache reads are the cached tokens, its output the candidates' tokens plus the
thoughts (reported as reasoning): how genai-prices reads Google's usage.

Output parts: text, thoughts (``thought: true``) as ``reasoning``, ``functionCall`` as
``tool_call`` (with the ``id`` Gemini may give), and the code-execution tool's parts as
``{"type": "executable_code", "language", "code"}`` and
``{"type": "code_execution_result", "outcome", "output"}``. Finish reasons are kept as Google
wrote them, numbers (Vertex's ``enum-encoding=int``) turned into their names.

:class:`GeminiWire` speaks to the Gemini API, or to Vertex AI when the target has a
``project``; the body, URL, credentials and stream framings are in
:mod:`clew.providers.gemini_http`. The body has no model (the model is in the URL): a body's
``model``, if any, is read as the requested model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from clew import attributes as a
from clew.providers import gemini_http
from clew.providers.engine import Outcome, Route, StreamState
from clew.providers.messages import get, text_part, tool_call_part
from clew.providers.usage import Usage, estimate_tokens
from clew.providers.wire import Decoder, HttpRequest, Prompt, Target, Wire, require
from clew.tracer.serialize import to_json

__all__ = ["GEMINI_WIRE", "ROUTE", "GeminiWire", "GenerateContentStreamState", "gemini_usage"]

# Vertex AI's enums (aiplatform v1), for responses asked for with ``enum-encoding=int``.
# fmt: off
_FINISH_REASONS = dict(enumerate((
    "FINISH_REASON_UNSPECIFIED", "STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "OTHER",
    "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "MALFORMED_FUNCTION_CALL", "MODEL_ARMOR",
    "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "IMAGE_OTHER",
    "UNEXPECTED_TOOL_CALL", "NO_IMAGE",
)))
_BLOCK_REASONS = dict(enumerate((
    "BLOCKED_REASON_UNSPECIFIED", "SAFETY", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT",
)))
# fmt: on


def _enum(value: Any, names: Mapping[int, str]) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return names.get(value, str(value))
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def gemini_usage(metadata: Any) -> Usage | None:
    """The usage of a ``usageMetadata`` (None when there is none)."""
    if metadata is None:
        return None
    prompt = _int(get(metadata, "promptTokenCount"))
    cached = min(_int(get(metadata, "cachedContentTokenCount")), prompt)
    thoughts = _int(get(metadata, "thoughtsTokenCount"))
    return Usage(
        input_uncached=prompt - cached + _int(get(metadata, "toolUsePromptTokenCount")),
        cache_read=cached,
        output=_int(get(metadata, "candidatesTokenCount")) + thoughts,
        reasoning=thoughts,
    )


# -- request attributes and content ------------------------------------------------------------
_CONFIG_PARAMS = (
    ("temperature", "temperature", a.GEN_AI_REQUEST_TEMPERATURE),
    ("topP", "top_p", a.GEN_AI_REQUEST_TOP_P),
    ("topK", "top_k", a.GEN_AI_REQUEST_TOP_K),
    ("maxOutputTokens", "max_output_tokens", a.GEN_AI_REQUEST_MAX_TOKENS),
    ("seed", "seed", a.GEN_AI_REQUEST_SEED),
    ("frequencyPenalty", "frequency_penalty", a.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("presencePenalty", "presence_penalty", a.GEN_AI_REQUEST_PRESENCE_PENALTY),
)


def _either(body: Mapping[str, Any], camel: str, snake: str) -> Any:
    """A field by its JSON name or its proto name (the API takes both)."""
    value = body.get(camel)
    return body.get(snake) if value is None else value


def _request(body: Mapping[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    model = body.get("model")
    if isinstance(model, str) and model:
        attrs[a.GEN_AI_REQUEST_MODEL] = model
    config = _either(body, "generationConfig", "generation_config")
    if not isinstance(config, Mapping):
        return attrs
    for camel, snake, name in _CONFIG_PARAMS:
        value = _either(config, camel, snake)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attrs[name] = value
    stop = _either(config, "stopSequences", "stop_sequences")
    if isinstance(stop, list | tuple) and stop:
        attrs[a.GEN_AI_REQUEST_STOP_SEQUENCES] = tuple(str(s) for s in stop)
    count = _either(config, "candidateCount", "candidate_count")
    if isinstance(count, int) and not isinstance(count, bool) and count != 1:
        attrs[a.GEN_AI_REQUEST_CHOICE_COUNT] = count
    mime = _either(config, "responseMimeType", "response_mime_type")
    if mime == "application/json":
        attrs[a.GEN_AI_OUTPUT_TYPE] = "json"
    elif mime == "text/plain":
        attrs[a.GEN_AI_OUTPUT_TYPE] = "text"
    return attrs


def _modality(mime: Any) -> str:
    kind = str(mime or "").partition("/")[0]
    return kind if kind in ("image", "audio", "video") else "file"


def _part(part: Any) -> dict[str, Any] | None:
    """One Gemini part as a GenAI part (None for a part that carries nothing to show, such as
    an empty text or a bare ``thoughtSignature``)."""
    text = get(part, "text")
    if isinstance(text, str):
        if not text:
            return None
        return {"type": "reasoning", "content": text} if get(part, "thought") else text_part(text)
    call = get(part, "functionCall")
    if call is not None:
        return tool_call_part(get(call, "id"), get(call, "name"), get(call, "args", {}))
    response = get(part, "functionResponse")
    if response is not None:
        return {
            "type": "tool_call_response",
            "id": get(response, "id"),
            "name": get(response, "name"),
            "response": get(response, "response"),
        }
    inline = get(part, "inlineData")
    if inline is not None:
        mime = get(inline, "mimeType")
        return {
            "type": "blob",
            "modality": _modality(mime),
            "mime_type": mime,
            "content": "[inline data omitted]",
        }
    file = get(part, "fileData")
    if file is not None:
        mime = get(file, "mimeType")
        uri = get(file, "fileUri")
        return {"type": "uri", "modality": _modality(mime), "mime_type": mime, "uri": uri}
    code = get(part, "executableCode")
    if code is not None:
        return {
            "type": "executable_code",
            "language": get(code, "language"),
            "code": get(code, "code"),
        }
    result = get(part, "codeExecutionResult")
    if result is not None:
        return {
            "type": "code_execution_result",
            "outcome": get(result, "outcome"),
            "output": get(result, "output"),
        }
    return None


def _parts(parts: Any) -> list[dict[str, Any]]:
    if isinstance(parts, str):
        return [text_part(parts)]
    found = (_part(p) for p in parts or ())
    return [p for p in found if p is not None]


def _input_message(content: Any) -> dict[str, Any]:
    parts = _parts(get(content, "parts"))
    role = get(content, "role", "user")
    if role == "model":
        role = "assistant"
    elif parts and all(p["type"] == "tool_call_response" for p in parts):
        role = "tool"
    return {"role": role, "parts": parts}


def _tool_definitions(tools: Any) -> list[Any]:
    out: list[Any] = []
    for tool in tools if isinstance(tools, list | tuple) else ():
        declarations = get(tool, "functionDeclarations") or get(tool, "function_declarations")
        if not declarations:  # a built-in tool ({"googleSearch": {}} ...), named by its kind
            kinds = list(tool) if isinstance(tool, Mapping) else []
            kind = kinds[0] if len(kinds) == 1 else "tool"
            out.append({**(tool if isinstance(tool, Mapping) else {}), "type": kind, "name": kind})
            continue
        for declaration in declarations:
            parameters = get(declaration, "parametersJsonSchema") or get(declaration, "parameters")
            definition = {"type": "function", "name": get(declaration, "name")}
            if get(declaration, "description"):
                definition["description"] = get(declaration, "description")
            if parameters is not None:
                definition["parameters"] = parameters
            out.append(definition)
    return out


def _content(body: Mapping[str, Any], max_bytes: int) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    system = _either(body, "systemInstruction", "system_instruction")
    if system:
        parts = _parts(system if isinstance(system, str) else get(system, "parts"))
        attrs[a.GEN_AI_SYSTEM_INSTRUCTIONS] = to_json(parts, max_bytes)
    tools = body.get("tools")
    if tools:
        attrs[a.GEN_AI_TOOL_DEFINITIONS] = to_json(_tool_definitions(tools), max_bytes)
    contents = body.get("contents")
    if not isinstance(contents, list | tuple):
        contents = ()
    messages = [_input_message(c) for c in contents if c is not None]
    attrs[a.GEN_AI_INPUT_MESSAGES] = to_json(messages, max_bytes)
    return attrs


# -- responses -----------------------------------------------------------------------------------
def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _is_plain(messages: list[dict[str, Any]]) -> bool:
    return all(p["type"] == "text" for m in messages for p in m["parts"])


def _block_reason(response: Any) -> str | None:
    return _enum(get(get(response, "promptFeedback"), "blockReason"), _BLOCK_REASONS)


def generate_content_response(response: Any) -> Outcome:
    """Read a ``GenerateContentResponse`` (its JSON)."""
    candidates = sorted(get(response, "candidates", ()), key=lambda c: _int(get(c, "index")))
    reasons: list[str] = []
    messages: list[dict[str, Any]] = []
    for candidate in candidates:
        reason = _enum(get(candidate, "finishReason"), _FINISH_REASONS)
        parts = _parts(get(get(candidate, "content"), "parts"))
        messages.append({"role": "assistant", "parts": parts, "finish_reason": reason})
        if reason:
            reasons.append(reason)
    block = _block_reason(response)
    if block and not candidates:
        reasons.append(block)  # the prompt was refused: no candidate at all
    return Outcome(
        gemini_usage(get(response, "usageMetadata")),
        _text_or_none(get(response, "modelVersion")),
        None,
        _text_or_none(get(response, "responseId")),
        reasons,
        messages or None,
        _is_plain(messages),
    )


class _Candidate:
    __slots__ = ("finish_reason", "parts")

    def __init__(self) -> None:
        self.parts: list[Any] = []  # ["text" | "thought", [pieces]] or ["part", GenAI part]
        self.finish_reason: str | None = None


class GenerateContentStreamState(StreamState):
    """A ``streamGenerateContent`` stream: each chunk is a partial response. Text (and
    thought text) accumulates per candidate, function calls come whole, the finish reason and
    the usage are the last ones sent (usage is cumulative, never summed)."""

    __slots__ = ("block_reason", "body", "candidates", "model", "response_id", "usage")

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body
        self.candidates: dict[int, _Candidate] = {}
        self.usage: Any = None
        self.model: str | None = None
        self.response_id: str | None = None
        self.block_reason: str | None = None

    def record(self, chunk: Any) -> None:
        usage = get(chunk, "usageMetadata")
        if usage is not None:
            self.usage = usage
        self.model = _text_or_none(get(chunk, "modelVersion")) or self.model
        self.response_id = _text_or_none(get(chunk, "responseId")) or self.response_id
        self.block_reason = _block_reason(chunk) or self.block_reason
        for candidate in get(chunk, "candidates", ()):
            index = _int(get(candidate, "index"))
            slot = self.candidates.get(index)
            if slot is None:
                slot = self.candidates[index] = _Candidate()
            reason = _enum(get(candidate, "finishReason"), _FINISH_REASONS)
            if reason:
                slot.finish_reason = reason
            for part in get(get(candidate, "content"), "parts", ()):
                text = get(part, "text")
                if isinstance(text, str):
                    kind = "thought" if get(part, "thought") else "text"
                    if slot.parts and slot.parts[-1][0] == kind:
                        slot.parts[-1][1].append(text)
                    else:
                        slot.parts.append([kind, [text]])
                    continue
                converted = _part(part)
                if converted is not None:
                    slot.parts.append(["part", converted])

    def outcome(self) -> Outcome:
        messages: list[dict[str, Any]] = []
        reasons: list[str] = []
        for _, slot in sorted(self.candidates.items()):
            parts = []
            for kind, payload in slot.parts:
                if kind == "part":
                    parts.append(payload)
                elif text := "".join(payload):
                    parts.append(_part({"text": text, "thought": kind == "thought"}))
            messages.append(
                {"role": "assistant", "parts": parts, "finish_reason": slot.finish_reason}
            )
            if slot.finish_reason:
                reasons.append(slot.finish_reason)
        if self.block_reason and not self.candidates:
            reasons.append(self.block_reason)
        usage = gemini_usage(self.usage)
        if usage is None:
            usage = self._estimate()
        return Outcome(
            usage,
            self.model,
            None,
            self.response_id,
            reasons,
            messages or None,
            _is_plain(messages),
        )

    def _estimate(self) -> Usage:
        contents = self.body.get("contents")
        count = len(contents) if isinstance(contents, list | tuple) else 0
        system = _either(self.body, "systemInstruction", "system_instruction")
        prompt = _texts([contents, system])
        output: list[str] = []
        for slot in self.candidates.values():
            for kind, payload in slot.parts:
                output.extend(payload if kind != "part" else _texts(payload))
        return Usage(
            input_uncached=estimate_tokens(prompt, count),
            output=estimate_tokens(output) if output else 0,
            estimated=True,
        )


def _texts(value: Any) -> list[str]:
    """The texts of contents or parts, for estimating tokens (function calls and responses as
    their JSON; inline data left out)."""
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, Mapping):
            for key, inner in item.items():
                if key in ("text", "content", "code", "output"):
                    stack.append(inner)
                elif key in ("functionCall", "functionResponse", "arguments", "response"):
                    found.append(json.dumps(inner, default=str))
                elif key in ("parts", "contents"):
                    stack.append(inner)
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return found


ROUTE = Route("chat", _request, _content, generate_content_response, GenerateContentStreamState)
"""How to read a ``generateContent`` request, response and stream."""


class GeminiWire(Wire):
    """``POST .../models/{model}:generateContent`` on the Gemini API (``v1beta``), or on
    Vertex AI (``v1/projects/{project}/locations/{location}/publishers/google``) when the
    target has a ``project``; streams use ``:streamGenerateContent?alt=sse``."""

    name = "gemini"

    def default_base_url(self, target: Target) -> str | None:
        return gemini_http.base_url_for(target)

    def build(self, prompt: Prompt, target: Target, stream: bool) -> HttpRequest:
        model = require(prompt.model, "vertexai needs a model name", "llm_configuration.model")
        body = gemini_http.request_body(prompt, target.provider)
        headers = {"x-goog-api-key": target.api_key} if target.api_key else {}
        url = gemini_http.endpoint_url(target, str(model), stream)
        return HttpRequest.json(url, headers, body)

    def prepare(self, request: HttpRequest, target: Target) -> HttpRequest:
        return gemini_http.authorize(request, target)

    def decoder(self) -> Decoder:
        return gemini_http.GeminiStreamDecoder()

    def delta(self, event: Any) -> str | None:
        if not isinstance(event, Mapping):
            return None
        pieces = []
        for candidate in event.get("candidates") or ():
            if get(candidate, "index", 0) != 0:
                continue
            for part in get(get(candidate, "content"), "parts", ()):
                text = get(part, "text")
                if isinstance(text, str) and not get(part, "thought"):
                    pieces.append(text)
        return "".join(pieces) or None

    def stream_error(self, event: Any) -> str | None:
        if isinstance(event, Mapping):
            error = event.get("error")
            if isinstance(error, Mapping):
                return str(error.get("message") or error.get("status") or "stream error")
            if error:
                return str(error)
        return None

    def error_message(self, status: int, body: Any) -> str:
        if isinstance(body, list) and body and isinstance(body[0], Mapping):
            body = body[0]  # a streamGenerateContent error without alt=sse: [{"error": ...}]
        return super().error_message(status, body)


GEMINI_WIRE = GeminiWire(ROUTE)
"""The Gemini / Vertex AI wire."""
