"""The Cohere route: v2 chat (``POST /v2/chat``), non-stream and SSE stream.

Replies follow the shared rules (:mod:`~clew.testing.llm_server.examples`): the text echoes the
last user message, ``reply_words`` words long; a tool is called when ``tool_choice`` is
``REQUIRED`` or the last message is the user's and names it (with a ``tool_plan`` saying so);
``max_tokens`` and ``stop_sequences`` cut the text (``MAX_TOKENS``, ``STOP_SEQUENCE``);
``thinking`` ``{"type": "enabled"}`` adds a thinking block. Usage is in both of Cohere's
counts: ``billed_units`` (a word is a token) and ``tokens``, which adds the template tokens
Cohere puts around the messages (:data:`TEMPLATE_TOKENS`), so a reader that takes the wrong one
is caught. A body Cohere would refuse gets its 400 (``{"message": ...}``); a stream broken in
``"error"`` mode ends as Cohere ends a failed stream: a ``message-end`` with finish reason
``ERROR`` and the error's text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from clew.testing.llm_server.examples import (
    argument_pieces,
    count_tokens,
    count_words,
    cut_at_stop,
    cut_to_limit,
    declared_tools,
    formatted_reply,
    make_tool_calls,
    pick_tools,
    plain_text,
    reply_text,
    text_pieces,
)
from clew.testing.llm_server.faults import error_reply
from clew.testing.llm_server.replies import Call, Reply, Route, json_reply, sse_event, sse_reply

__all__ = ["COHERE_ROUTES", "COHERE_STREAM_ERROR", "TEMPLATE_TOKENS"]

TEMPLATE_TOKENS = 7
"""Tokens Cohere's chat template adds to the input: counted in ``usage.tokens``, not billed."""

_ROLES = frozenset({"system", "user", "assistant", "tool"})
_DONE = b"data: [DONE]\n\n"

COHERE_STREAM_ERROR = sse_event(
    "message-end",
    {
        "type": "message-end",
        "delta": {
            "finish_reason": "ERROR",
            "usage": {},
            "error": "internal server error, this has been reported to our developers",
            "error_type": "INTERNAL_SERVER_ERROR",
        },
    },
)
"""What a Cohere stream broken in ``"error"`` mode ends with."""


def _refusal(body: Mapping[str, Any]) -> str | None:
    """Why Cohere would refuse this body (None when it would not)."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "invalid request: model must be a non-empty string"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "invalid request: messages must be a non-empty list"
    called: set[str] = set()
    for n, message in enumerate(messages):
        if not isinstance(message, Mapping) or message.get("role") not in _ROLES:
            return f"invalid request: messages[{n}].role must be one of {sorted(_ROLES)}"
        role = message["role"]
        for call in message.get("tool_calls") or ():
            called.add(str(call.get("id")) if isinstance(call, Mapping) else "")
        if role == "tool" and message.get("tool_call_id") not in called:
            return f"invalid request: messages[{n}].tool_call_id does not match a tool call"
    choice = body.get("tool_choice")
    if choice is not None and choice not in ("REQUIRED", "NONE"):
        return "invalid request: tool_choice must be one of REQUIRED, NONE"
    if choice is not None and not body.get("tools"):
        return "invalid request: tool_choice requires tools"
    return None


def _cohere_chat(call: Call) -> Reply:
    body = call.body
    refusal = _refusal(body)
    if refusal:
        return error_reply("cohere", 400, call.number, message=refusal)
    message, finish = _message(call)
    billed_out = sum(count_tokens(b.get("text", b.get("thinking", ""))) for b in message["content"])
    billed_out += count_tokens(message.get("tool_plan", ""))
    billed_out += sum(max(1, len(c["function"]["arguments"]) // 4) for c in message["tool_calls"])
    billed_in = max(1, count_words(body["messages"]))
    usage = {
        "billed_units": {"input_tokens": billed_in, "output_tokens": billed_out},
        "tokens": {"input_tokens": billed_in + TEMPLATE_TOKENS, "output_tokens": billed_out},
    }
    reply_id = f"00000000-0000-4000-8000-{call.number:012d}"
    if body.get("stream"):
        events = _events(reply_id, message, finish, usage)
        return sse_reply(events, call.number, "cohere", COHERE_STREAM_ERROR)
    shown = {k: v for k, v in message.items() if v or k == "role"}
    reply = {"id": reply_id, "message": shown, "finish_reason": finish, "usage": usage}
    return json_reply(reply, call.number, "cohere")


def _message(call: Call) -> tuple[dict[str, Any], str]:
    """The assistant message (content, tool_plan, tool_calls) and its finish reason."""
    body = call.body
    messages = body["messages"]
    users = [m for m in messages if m.get("role") == "user"]
    prompt = plain_text(users[-1].get("content")) if users else ""
    choice = {"REQUIRED": "required", "NONE": "none"}.get(str(body.get("tool_choice")))
    last_is_user = messages[-1].get("role") == "user"
    picked = pick_tools(declared_tools(body), choice, prompt, last_is_user, True)
    content: list[dict[str, Any]] = []
    thinking = body.get("thinking")
    if isinstance(thinking, Mapping) and thinking.get("type") == "enabled":
        idea = " ".join(["Thinking", "about:", *prompt.split()[:6]])
        content.append({"type": "thinking", "thinking": idea})
    message: dict[str, Any] = {"role": "assistant", "content": content, "tool_calls": []}
    if picked:
        message["tool_plan"] = f"I will call {', '.join(t.name for t in picked)}."
        for tool_call in make_tool_calls(picked, "", call.number, 0):
            function = {"name": tool_call.name, "arguments": tool_call.arguments}
            message["tool_calls"].append(
                {"id": f"{tool_call.name}_{tool_call.id}", "type": "function", "function": function}
            )
        return message, "TOOL_CALL"
    text = reply_text(prompt, call.reply_words)
    text = formatted_reply(_openai_format(body.get("response_format")), text)
    text, stop = cut_at_stop(text, body.get("stop_sequences"))
    text, cut = cut_to_limit(text, body.get("max_tokens"))
    content.append({"type": "text", "text": text})
    return message, "STOP_SEQUENCE" if stop else "MAX_TOKENS" if cut else "COMPLETE"


def _openai_format(response_format: Any) -> Any:
    """Cohere's ``response_format`` in OpenAI's shape, for :func:`formatted_reply`."""
    if not isinstance(response_format, Mapping) or response_format.get("type") != "json_object":
        return None
    schema = response_format.get("json_schema")
    if isinstance(schema, Mapping):
        return {"type": "json_schema", "json_schema": {"schema": schema}}
    return {"type": "json_object"}


def _delta(kind: str, message: dict[str, Any], index: int | None = None) -> bytes:
    event: dict[str, Any] = {"type": kind}
    if index is not None:
        event["index"] = index
    event["delta"] = {"message": message}
    return sse_event(kind, event)


def _events(
    reply_id: str, message: dict[str, Any], finish: str, usage: dict[str, Any]
) -> list[bytes]:
    start = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}
    events = [
        sse_event(
            "message-start", {"id": reply_id, "type": "message-start", "delta": {"message": start}}
        )
    ]
    for index, block in enumerate(message["content"]):
        key = "thinking" if block["type"] == "thinking" else "text"
        first = {"content": {"type": block["type"], key: ""}}
        events.append(_delta("content-start", first, index))
        for piece in text_pieces(block[key]):
            events.append(_delta("content-delta", {"content": {key: piece}}, index))
        events.append(sse_event("content-end", {"type": "content-end", "index": index}))
    for piece in text_pieces(message.get("tool_plan", "")):
        events.append(_delta("tool-plan-delta", {"tool_plan": piece}))
    for index, tool_call in enumerate(message["tool_calls"]):
        function = tool_call["function"]
        opened = {**tool_call, "function": {"name": function["name"], "arguments": ""}}
        events.append(_delta("tool-call-start", {"tool_calls": opened}, index))
        for piece in argument_pieces(function["arguments"]):
            piece_call = {"function": {"arguments": piece}}
            events.append(_delta("tool-call-delta", {"tool_calls": piece_call}, index))
        events.append(sse_event("tool-call-end", {"type": "tool-call-end", "index": index}))
    end = {"type": "message-end", "delta": {"finish_reason": finish, "usage": usage}}
    events.append(sse_event("message-end", end))
    events.append(_DONE)
    return events


COHERE_ROUTES: tuple[tuple[str, re.Pattern[str], str, Route], ...] = (
    ("POST", re.compile(r"/v2/chat"), "cohere", _cohere_chat),
)
"""Cohere's v2 chat route, for :data:`~clew.testing.llm_server.gateway_routes.PATTERN_ROUTES`."""
