"""Cohere's Chat API: the reader of its requests, responses and streams, and the gateway's wire.

The gateway speaks the v2 API (``POST /v2/chat``); the reader takes v1's shapes too (``message``
/ ``preamble`` requests, ``text`` / ``meta`` responses, ``event_type`` stream events).

Tokens: ``usage.tokens`` counts what the model processed, Cohere's chat template included;
``usage.billed_units`` what Cohere charges. clew reports and prices the billed units (the GenAI
convention's rule for Cohere, and what genai-prices' Cohere extractor reads), the processed
counts only when nothing is billed. ``cached_tokens`` counts processed tokens and Cohere bills
them as input, so only with processed counts are they cache reads.

A failed 200 stream ends with a ``message-end`` of finish reason ``ERROR`` saying why in
``delta.error``: :meth:`CohereWire.stream_error` reports it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from clew import attributes as a
from clew.errors import InvalidRequestError
from clew.providers.engine import Outcome, Route, StreamState
from clew.providers.messages import (
    content_parts,
    get,
    param_attributes,
    text_part,
    texts_of,
    tool_call_part,
    tool_definitions,
)
from clew.providers.usage import Usage, estimate_tokens
from clew.providers.wire import (
    HttpRequest,
    Prompt,
    Target,
    Wire,
    function_choice,
    model_params,
    text_of,
)
from clew.tracer.serialize import to_json

__all__ = ["COHERE_WIRE", "ROUTE", "ChatStreamState", "CohereWire", "chat_response", "usage_of"]


# -- usage -----------------------------------------------------------------------------------
def _count(value: Any) -> int | None:
    """A token count (the SDK types them as floats), or None when absent."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if value >= 0 else None


def usage_of(usage: Any) -> Usage | None:
    """The billed tokens of a v2 ``usage`` or v1 ``meta``; the processed ones without them.

    Example:
        >>> usage = usage_of({"billed_units": {"input_tokens": 4, "output_tokens": 28},
        ...                   "tokens": {"input_tokens": 70, "output_tokens": 28}})
        >>> usage.input_tokens, usage.output
        (4, 28)
    """
    billed = get(usage, "billed_units")
    billed_in = _count(get(billed, "input_tokens"))
    billed_out = _count(get(billed, "output_tokens"))
    if billed_in is not None or billed_out is not None:
        return Usage(input_uncached=billed_in or 0, output=billed_out or 0)
    tokens = get(usage, "tokens")
    total_in = _count(get(tokens, "input_tokens"))
    output = _count(get(tokens, "output_tokens"))
    if total_in is None and output is None:
        return None
    total_in = total_in or 0
    cached = min(_count(get(usage, "cached_tokens")) or 0, total_in)
    return Usage(input_uncached=total_in - cached, cache_read=cached, output=output or 0)


# -- messages in the GenAI shape -----------------------------------------------------------
def _parts(message: Any) -> list[dict[str, Any]]:
    """Parts of a v2 assistant (or user, system) message: its content, the ``tool_plan`` as
    reasoning, then its tool calls."""
    parts = content_parts(get(message, "content"))
    plan = get(message, "tool_plan")
    if plan:
        parts.append({"type": "reasoning", "content": plan})
    for call in get(message, "tool_calls", ()):
        function = get(call, "function")
        parts.append(
            tool_call_part(get(call, "id"), get(function, "name"), get(function, "arguments"))
        )
    return parts


def _tool_response(content: Any) -> Any:
    """A tool result's content: its text, or its parts (documents) as they are."""
    if isinstance(content, list) and all(get(p, "type") == "text" for p in content):
        return "".join(str(get(p, "text", "")) for p in content)
    return content


_V1_ROLES = {"USER": "user", "CHATBOT": "assistant", "SYSTEM": "system", "TOOL": "tool"}


def _input_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if messages is None:  # v1: chat_history, then message
        out = []
        for turn in body.get("chat_history") or ():
            role = _V1_ROLES.get(str(get(turn, "role", "USER")).upper(), "user")
            text = get(turn, "message")
            out.append({"role": role, "parts": [text_part(text)] if text is not None else []})
        if body.get("message") is not None:
            out.append({"role": "user", "parts": [text_part(body["message"])]})
        return out
    out = []
    for message in messages if isinstance(messages, list | tuple) else ():
        role = get(message, "role", "user")
        if role == "tool":
            response = _tool_response(get(message, "content"))
            part = {"type": "tool_call_response", "id": get(message, "tool_call_id")}
            out.append({"role": "tool", "parts": [{**part, "response": response}]})
        else:
            out.append({"role": role, "parts": _parts(message)})
    return out


def _content(body: Mapping[str, Any], max_bytes: int) -> dict[str, Any]:
    # v2 system messages are part of the chat history, so they stay in the input messages
    # (as for OpenAI chat); v1's separate ``preamble`` is the system instructions.
    attrs: dict[str, Any] = {}
    preamble = body.get("preamble")
    if preamble:
        attrs[a.GEN_AI_SYSTEM_INSTRUCTIONS] = to_json([text_part(preamble)], max_bytes)
    attrs.update(tool_definitions(body, max_bytes))
    attrs[a.GEN_AI_INPUT_MESSAGES] = to_json(_input_messages(body), max_bytes)
    return attrs


def _request(body: Mapping[str, Any]) -> dict[str, Any]:
    attrs = param_attributes(body)
    for key, name in (("p", a.GEN_AI_REQUEST_TOP_P), ("k", a.GEN_AI_REQUEST_TOP_K)):
        value = body.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attrs[name] = value
    return attrs


# -- responses -----------------------------------------------------------------------------
def _outcome(usage: Usage | None, response_id: Any, finish: Any, parts: Any) -> Outcome:
    messages = None
    if parts is not None:
        messages = [{"role": "assistant", "parts": parts, "finish_reason": finish}]
    reasons = [str(finish)] if finish else []
    # Cohere does not say which model answered (None: the requested one did).
    response_id = response_id if isinstance(response_id, str) and response_id else None
    return Outcome(usage, None, None, response_id, reasons, messages)


def chat_response(response: Any) -> Outcome:
    """Read a chat response (v2, or v1's ``text`` / ``meta`` shape; an SDK object or JSON)."""
    message = get(response, "message")
    finish = get(response, "finish_reason")
    if message is None and get(response, "meta") is not None:  # v1
        text = get(response, "text")
        parts = [text_part(text)] if text else []
        for call in get(response, "tool_calls", ()):
            parts.append(tool_call_part(None, get(call, "name"), get(call, "parameters")))
        response_id = get(response, "response_id") or get(response, "generation_id")
        return _outcome(usage_of(get(response, "meta")), response_id, finish, parts)
    output = None if message is None else _parts(message)
    return _outcome(usage_of(get(response, "usage")), get(response, "id"), finish, output)


def _message_of(event: Any) -> Any:
    return get(get(event, "delta"), "message")


class ChatStreamState(StreamState):
    """A chat stream: content blocks (text, thinking), the tool plan and tool calls from their
    deltas; the finish reason and usage from ``message-end`` (v1: ``stream-end``)."""

    __slots__ = ("body", "calls", "contents", "finish_reason", "plan", "response_id", "usage")

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body
        self.response_id: str | None = None
        self.finish_reason: str | None = None
        self.usage: Any = None
        self.contents: dict[int, list[Any]] = {}  # index → [kind, [pieces]]
        self.plan: list[str] = []
        self.calls: dict[int, list[Any]] = {}  # index → [id, name, [argument pieces]]

    def record(self, chunk: Any) -> None:
        kind = get(chunk, "type")
        if kind == "content-delta":
            content = get(_message_of(chunk), "content")
            text = get(content, "text")
            piece = text or get(content, "thinking")
            if piece:
                slot = self.contents.get(index := get(chunk, "index", 0))
                if slot is None:  # no content-start: the delta says which kind
                    slot = self.contents[index] = ["text" if text else "thinking", []]
                slot[1].append(piece)
        elif kind == "tool-call-delta":
            function = get(get(_message_of(chunk), "tool_calls"), "function")
            piece = get(function, "arguments")
            call = self.calls.get(get(chunk, "index", 0))
            if piece and call is not None:
                call[2].append(piece)
        elif kind == "tool-plan-delta":
            piece = get(_message_of(chunk), "tool_plan")
            if piece:
                self.plan.append(piece)
        elif kind == "content-start":
            content = get(_message_of(chunk), "content")
            first = get(content, "text") or get(content, "thinking")
            block = get(content, "type", "text")
            self.contents[get(chunk, "index", 0)] = [block, [first] if first else []]
        elif kind == "tool-call-start":
            call = get(_message_of(chunk), "tool_calls")
            function = get(call, "function")
            first = get(function, "arguments")
            entry = [get(call, "id"), get(function, "name"), [first] if first else []]
            self.calls[get(chunk, "index", 0)] = entry
        elif kind == "message-start":
            self.response_id = get(chunk, "id") or self.response_id
        elif kind == "message-end":
            delta = get(chunk, "delta")
            self.finish_reason = get(delta, "finish_reason") or self.finish_reason
            self.usage = get(delta, "usage", self.usage)
        elif kind is None:
            self._v1(chunk)

    def _v1(self, event: Any) -> None:
        kind = get(event, "event_type")
        if kind == "text-generation":
            text = get(event, "text")
            if text:
                self.contents.setdefault(0, ["text", []])[1].append(text)
        elif kind == "tool-calls-generation":
            for n, call in enumerate(get(event, "tool_calls", ())):
                arguments = json.dumps(get(call, "parameters", {}))
                self.calls[n] = [None, get(call, "name"), [arguments]]
        elif kind == "stream-start":
            self.response_id = get(event, "generation_id") or self.response_id
        elif kind == "stream-end":
            response = get(event, "response")
            self.response_id = get(response, "response_id") or self.response_id
            self.finish_reason = get(event, "finish_reason") or get(response, "finish_reason")
            self.usage = get(response, "meta", self.usage)

    def outcome(self) -> Outcome:
        parts: list[dict[str, Any]] = []
        for _, (kind, pieces) in sorted(self.contents.items()):
            text = "".join(pieces)
            parts.append(
                {"type": "reasoning", "content": text} if kind == "thinking" else text_part(text)
            )
        if self.plan:
            parts.append({"type": "reasoning", "content": "".join(self.plan)})
        for _, (call_id, name, pieces) in sorted(self.calls.items()):
            parts.append(tool_call_part(call_id, name, "".join(pieces)))
        seen = self.response_id is not None or self.finish_reason is not None
        usage = usage_of(self.usage) or self._estimate()
        outcome = _outcome(
            usage, self.response_id, self.finish_reason, parts if parts or seen else None
        )
        outcome.plain = bool(parts) and all(p["type"] == "text" for p in parts)
        return outcome

    def _estimate(self) -> Usage:
        body = self.body
        messages = body.get("messages")
        if messages is None:
            messages = [body.get("preamble"), body.get("chat_history"), body.get("message")]
        count = len(messages) if isinstance(messages, list) else 0
        output = [p for _, pieces in self.contents.values() for p in pieces]
        output += self.plan
        output += [p for _, name, pieces in self.calls.values() for p in [name or "", *pieces]]
        output_tokens = estimate_tokens(output) if output else 0
        return Usage(
            estimate_tokens(texts_of(messages), count), output=output_tokens, estimated=True
        )


ROUTE = Route("chat", _request, _content, chat_response, ChatStreamState)
"""How a Cohere chat call is read (``/v2/chat``, and ``/v1/chat``)."""


# -- the wire ------------------------------------------------------------------------------
_PARAMS: dict[str, str | None] = {
    "temp": "temperature",
    "top_p": "p",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "max_length": "max_tokens",
    "response_format": "response_format",
}
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


def _fail(message: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(message, param=f"llm_configuration.{param}")


def _user_content(content: Any) -> Any:
    """OpenAI-style content parts → Cohere's (text, and images by URL or data URL)."""
    if content is None or isinstance(content, str):
        return content or ""
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, str):
            parts.append({"type": "text", "text": part})
            continue
        kind = get(part, "type", "text")
        if kind == "text":
            parts.append({"type": "text", "text": str(get(part, "text", ""))})
        elif kind == "image_url":
            image = get(part, "image_url")
            url = get(image, "url") if isinstance(image, Mapping) else image
            parts.append({"type": "image_url", "image_url": {"url": str(url)}})
        else:
            raise _fail(f"cohere does not take {kind!r} message content", "messages")
    return parts


def _tool_calls(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An assistant message's tool calls in Cohere's shape; a legacy ``function_call`` has no
    id, so its name is its id (the ``function`` message answering it names it too)."""
    legacy = message.get("function_call")
    legacy_calls = [{"function": legacy}] if isinstance(legacy, Mapping) else []
    calls = [*(message.get("tool_calls") or ()), *legacy_calls]
    out = []
    for call in calls:
        function = call.get("function") or {}
        name = str(function.get("name") or "")
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments if arguments is not None else {})
        function = {"name": name, "arguments": arguments}
        out.append({"id": str(call.get("id") or name), "type": "function", "function": function})
    return out


def _messages(prompt: Prompt) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in prompt.messages:
        role = message.get("role") or "user"
        if role in ("tool", "function"):
            call_id = message.get("tool_call_id") or message.get("name")
            if not call_id:
                raise _fail("a tool message needs the tool_call_id it answers", "messages")
            content = text_of(message.get("content"))
            out.append({"role": "tool", "tool_call_id": str(call_id), "content": content})
            continue
        if role not in _ROLES:
            raise _fail(f"cohere does not take messages of role {role!r}", "messages")
        entry: dict[str, Any] = {"role": _ROLES[role]}
        if role == "assistant":
            calls = _tool_calls(message)
            text = text_of(message.get("content"))
            if text or not calls:
                entry["content"] = text
            if calls:
                entry["tool_calls"] = calls
        elif entry["role"] == "system":
            entry["content"] = text_of(message.get("content"))
        else:
            entry["content"] = _user_content(message.get("content"))
        out.append(entry)
    return out


def _params(prompt: Prompt) -> dict[str, Any]:
    body = model_params(prompt, "cohere", _PARAMS)
    for key in ("frequency_penalty", "presence_penalty"):
        value = body.get(key)
        if isinstance(value, int | float) and not 0 <= value <= 1:
            raise _fail(f"cohere takes {key} from 0 to 1, not {value}", f"model_params.{key}")
    p = body.get("p")
    if isinstance(p, int | float):  # Cohere's p is 0.01 to 0.99: top_p 1.0 ("all") takes 0.99
        body["p"] = min(max(p, 0.01), 0.99)
    if "response_format" in body:
        body["response_format"] = _response_format(body["response_format"])
    return body


def _response_format(value: Any) -> dict[str, Any]:
    """OpenAI's ``response_format`` → Cohere's (``json_object`` with an optional schema)."""
    param = "model_params.response_format"
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind == "text":
        return {"type": "text"}
    if kind == "json_object":
        schema = value.get("json_schema") or value.get("schema")
        return {"type": "json_object", **({"json_schema": schema} if schema else {})}
    if kind == "json_schema":
        spec = value.get("json_schema") or value
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if not isinstance(schema, Mapping):
            raise _fail("response_format json_schema needs json_schema.schema", param)
        return {"type": "json_object", "json_schema": dict(schema)}
    raise _fail(f"cohere does not take response_format {value!r}", param)


def _tools(prompt: Prompt) -> dict[str, Any]:
    body: dict[str, Any] = {}
    tools = []
    for function in prompt.functions:
        if not function.get("name"):
            raise _fail("every function needs a name", "functions")
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        spec = {"name": function["name"], "parameters": parameters}
        if function.get("description"):
            spec["description"] = function["description"]
        tools.append({"type": "function", "function": spec})
    if tools:
        body["tools"] = tools
        if all(function.get("strict") is True for function in prompt.functions):
            body["strict_tools"] = True
    mode, forced = function_choice(prompt)
    names = [f.get("name") for f in prompt.functions]
    if forced and names != [forced]:
        raise _fail(
            f"cohere cannot force {forced!r} among {len(names)} functions, only require one: "
            "give that function alone, or use function_call 'required'",
            "function_call",
        )
    if tools and mode in ("none", "required"):
        body["tool_choice"] = str(mode).upper()
    return body


class CohereWire(Wire):
    """``POST {base_url}/v2/chat``, with a bearer key."""

    name = "cohere-chat"

    def default_base_url(self, target: Target) -> str | None:
        return "https://api.cohere.com"

    def build(self, prompt: Prompt, target: Target, stream: bool) -> HttpRequest:
        if not prompt.messages:
            raise _fail("the request has no messages: give messages or a deployment_id", "messages")
        body: dict[str, Any] = {"model": prompt.model, "messages": _messages(prompt)}
        body.update(_params(prompt))
        body.update(_tools(prompt))
        body["stream"] = stream
        base = target.base_url.rstrip("/")
        if base.endswith(("/v1", "/v2")):
            base = base[:-3]
        headers = {"accept": "application/json"}
        if target.api_key:
            headers["authorization"] = f"Bearer {target.api_key}"
        return HttpRequest.json(f"{base}/v2/chat", headers, body)

    def delta(self, event: Any) -> str | None:
        kind = get(event, "type")
        if kind in ("content-delta", "content-start"):
            text = get(get(_message_of(event), "content"), "text")
        elif kind is None and get(event, "event_type") == "text-generation":  # v1
            text = get(event, "text")
        else:
            return None
        return text if isinstance(text, str) and text else None

    def stream_error(self, event: Any) -> str | None:
        if not isinstance(event, Mapping):
            return None
        kind = event.get("type")
        if kind == "message-end" or event.get("event_type") == "stream-end":
            delta = event.get("delta") if kind else event
            reason = str(get(delta, "finish_reason") or "")
            error = get(delta, "error")
            if error or reason.startswith("ERROR"):
                return str(error or get(delta, "error_type") or reason)
            return None
        if kind == "error":
            error = event.get("error")
            return str(get(error, "message") or event.get("message") or error or "stream error")
        return None


COHERE_WIRE = CohereWire(ROUTE)
"""The Cohere v2 chat wire."""
