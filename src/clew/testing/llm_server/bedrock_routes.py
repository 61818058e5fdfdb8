"""The fake AWS Bedrock Converse API: ``POST /model/{modelId}/converse`` and
``/converse-stream``.

Replies are deterministic, as the other fake routes' are: text echoing the last user message
(``reply_words`` words, one token each), ``toolUse`` blocks when the last user message names a
declared tool or ``toolChoice`` forces one, ``reasoningContent`` when
``additionalModelRequestFields.thinking`` is enabled, ``maxTokens`` and ``stopSequences``
cuts. ``cachePoint`` blocks simulate the prompt cache as the Anthropic routes do: the prefix
up to the last one is a cache write the first time, a cache read after.

Requests are checked the way Bedrock checks them (a 400 ``{"message": ...}`` otherwise): the
conversation starts with a user message and alternates roles, text is not blank, every
``toolResult`` answers a ``toolUse`` of the turn before, tool blocks need a ``toolConfig``,
and the body has no key Converse does not know.

Streams are real ``application/vnd.amazon.eventstream`` frames (prelude, CRC32s, string
headers), one event per frame; a stream broken in ``"error"`` mode ends with a
``modelStreamErrorException`` frame.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from clew.testing.llm_server.examples import (
    Tool,
    argument_pieces,
    count_tokens,
    cut_at_stop,
    cut_to_limit,
    make_tool_calls,
    pick_tools,
    plain_text,
    reply_text,
    text_pieces,
)
from clew.testing.llm_server.faults import error_reply
from clew.testing.llm_server.replies import JSON, Call, Reply, Route, dumps

__all__ = [
    "BEDROCK_ROUTES",
    "BEDROCK_STREAM_ERROR",
    "EVENT_STREAM",
    "event_frame",
    "exception_frame",
    "frame",
]

EVENT_STREAM = "application/vnd.amazon.eventstream"

_KEYS = frozenset(
    {
        "messages",
        "system",
        "inferenceConfig",
        "toolConfig",
        "guardrailConfig",
        "additionalModelRequestFields",
        "additionalModelResponseFieldPaths",
        "promptVariables",
        "requestMetadata",
        "performanceConfig",
    }
)
_CONFIG_KEYS = frozenset({"maxTokens", "temperature", "topP", "stopSequences"})
_UNCOUNTED = frozenset({"bytes", "toolUseId", "format", "s3Location", "cachePoint", "status"})


# -- event-stream frames ---------------------------------------------------------------------
def frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (total length, headers length, CRC32), headers as
    type-7 strings, the payload, and the CRC32 of everything before it."""
    encoded = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        encoded += bytes([len(raw_name)]) + raw_name + b"\x07"
        encoded += struct.pack(">H", len(raw_value)) + raw_value
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event_frame(event_type: str, payload: Mapping[str, Any]) -> bytes:
    """A ConverseStream event (``messageStart``, ``contentBlockDelta`` ...)."""
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return frame(headers, dumps(payload))


def exception_frame(exception_type: str, message: str) -> bytes:
    """An exception inside a stream (``:message-type`` ``exception``)."""
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return frame(headers, dumps({"message": message}))


BEDROCK_STREAM_ERROR = exception_frame(
    "modelStreamErrorException", "The model stream had an error. Try your request again."
)
"""What a Bedrock stream broken in ``"error"`` mode ends with."""


def _headers(number: int, content_type: str = JSON) -> list[tuple[str, str]]:
    return [("content-type", content_type), ("x-amzn-requestid", _request_id(number))]


def _request_id(number: int) -> str:
    return f"00000000-0000-4000-8000-{number:012d}"


# -- the routes ------------------------------------------------------------------------------
def _converse(call: Call) -> Reply:
    return _reply(call, stream=False)


def _converse_stream(call: Call) -> Reply:
    return _reply(call, stream=True)


def _reply(call: Call, stream: bool) -> Reply:
    problem = _invalid(call.body)
    if problem:
        reply = error_reply("bedrock", 400, call.number, message=problem)
        reply.headers.append(("x-amzn-errortype", "ValidationException"))
        return reply
    content, stop_reason = _content(call)
    output = sum(_output_tokens(block) for block in content)
    usage = {**_input_usage(call), "outputTokens": output}
    usage["totalTokens"] = output + sum(
        usage.get(k, 0) for k in ("inputTokens", "cacheReadInputTokens", "cacheWriteInputTokens")
    )
    if not stream:
        response = {
            "metrics": {"latencyMs": 0},
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop_reason,
            "usage": usage,
        }
        return Reply(200, _headers(call.number), dumps(response))
    events = _events(content, stop_reason, usage)
    return Reply(
        200, _headers(call.number, EVENT_STREAM), events=events, error_event=BEDROCK_STREAM_ERROR
    )


def _invalid(body: Mapping[str, Any]) -> str | None:
    """What Bedrock would refuse in ``body``, or None."""
    extra = sorted(set(body) - _KEYS)
    if extra:
        return f"Malformed input request: extraneous key [{extra[0]}] is not permitted"
    config = body.get("inferenceConfig") or {}
    extra = sorted(set(config) - _CONFIG_KEYS) if isinstance(config, Mapping) else ["?"]
    if extra:
        return f"Malformed input request: inferenceConfig: extraneous key [{extra[0]}]"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or _role(messages[0]) != "user":
        return (
            "A conversation must start with a user message. Try again with a conversation"
            " that starts with a user message."
        )
    uses_tools = False
    previous_uses: set[str] = set()
    for n, message in enumerate(messages):
        if n and _role(message) == _role(messages[n - 1]):
            return (
                "A conversation must alternate between user and assistant roles. Make sure"
                " the conversation alternates between user and assistant roles and try again."
            )
        content = message.get("content") if isinstance(message, Mapping) else None
        if not isinstance(content, list) or not content:
            return f"The content field in the Message object at messages.{n} is empty."
        uses: set[str] = set()
        for m, block in enumerate(content):
            if not isinstance(block, Mapping):
                return f"messages.{n}.content.{m} is not a ContentBlock object."
            text = block.get("text")
            if isinstance(text, str) and not text.strip():
                return (
                    f"The text field in the ContentBlock object at messages.{n}.content.{m} is"
                    " blank. Add text to the text field, and try again."
                )
            if isinstance(block.get("toolUse"), Mapping):
                uses_tools = True
                uses.add(str(block["toolUse"].get("toolUseId")))
            if isinstance(block.get("toolResult"), Mapping):
                uses_tools = True
                answered = str(block["toolResult"].get("toolUseId"))
                if answered not in previous_uses:
                    return (
                        f"The toolResult at messages.{n}.content.{m} answers {answered!r},"
                        " which is not a toolUse id of the previous turn."
                    )
        previous_uses = uses
    if uses_tools and not body.get("toolConfig"):
        return (
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
        )
    return None


def _role(message: Any) -> Any:
    return message.get("role") if isinstance(message, Mapping) else None


def _content(call: Call) -> tuple[list[dict[str, Any]], str]:
    """The assistant's content blocks and the stop reason."""
    body = call.body
    messages = body["messages"]
    users = [m for m in messages if m.get("role") == "user"]
    prompt = _plain(users[-1].get("content")) if users else ""
    last = messages[-1]
    last_is_user = last.get("role") == "user" and not all(
        "toolResult" in block for block in last.get("content") or ()
    )
    tool_config = body.get("toolConfig") or {}
    tools = [
        Tool(str(spec.get("name")), _schema(spec))
        for entry in tool_config.get("tools") or ()
        if isinstance(entry, Mapping) and isinstance(spec := entry.get("toolSpec"), Mapping)
    ]
    choice = _choice(tool_config.get("toolChoice"))
    picked = pick_tools(tools, choice, prompt, last_is_user, True)
    content: list[dict[str, Any]] = []
    thinking = (body.get("additionalModelRequestFields") or {}).get("thinking")
    if isinstance(thinking, Mapping) and thinking.get("type") == "enabled":
        idea = " ".join(["Thinking", "about:", *prompt.split()[:6]])
        reasoning = {"text": idea, "signature": f"fakesig{call.number:08d}"}
        content.append({"reasoningContent": {"reasoningText": reasoning}})
    if picked and choice is None:  # a forced call comes without words
        content.append({"text": f"I will call {', '.join(t.name for t in picked)}."})
    for tool_call in make_tool_calls(picked, "tooluse_", call.number, 0):
        use = {"toolUseId": tool_call.id, "name": tool_call.name}
        content.append({"toolUse": {**use, "input": json.loads(tool_call.arguments)}})
    if picked:
        return content, "tool_use"
    config = body.get("inferenceConfig") or {}
    text, stop = cut_at_stop(reply_text(prompt, call.reply_words), config.get("stopSequences"))
    text, cut = cut_to_limit(text, config.get("maxTokens"))
    content.append({"text": text})
    return content, "stop_sequence" if stop else "max_tokens" if cut else "end_turn"


def _schema(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    """A ``toolSpec``'s JSON schema (``inputSchema.json``)."""
    schema = (spec.get("inputSchema") or {}).get("json")
    return schema if isinstance(schema, Mapping) else {}


def _choice(choice: Any) -> Any:
    """Converse's ``toolChoice`` in the terms of :func:`~.examples.pick_tools`."""
    if not isinstance(choice, Mapping):
        return None
    if "any" in choice:
        return "any"
    if isinstance(choice.get("tool"), Mapping):
        return {"name": choice["tool"].get("name")}
    return None


def _plain(content: Any) -> str:
    if not isinstance(content, list):
        return plain_text(content)
    return " ".join(str(b["text"]) for b in content if isinstance(b.get("text"), str))


def _words(value: Any) -> int:
    """The words (= tokens) of every string in a body part, ids and inline bytes aside."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_words(item) for item in value)
    if isinstance(value, Mapping):
        return sum(_words(v) for k, v in value.items() if k not in _UNCOUNTED)
    return 0


def _input_usage(call: Call) -> dict[str, int]:
    """``inputTokens`` without the cached prefix, which is a cache write or a cache read."""
    blocks: list[Any] = list(call.body.get("system") or ())
    for message in call.body["messages"]:
        blocks.extend(message.get("content") or ())
    tool_config = call.body.get("toolConfig")
    total = max(1, _words(blocks) + _words(tool_config))
    marked = [n for n, b in enumerate(blocks) if isinstance(b, Mapping) and "cachePoint" in b]
    if not marked:
        return {"inputTokens": total}
    prefix_tokens = min(total, _words(blocks[: marked[-1]]))
    write = read = 0
    if prefix_tokens:
        model = unquote(call.params.get("model", ""))
        digest = "bedrock:" + hashlib.sha1(dumps([model, blocks[: marked[-1]]])).hexdigest()
        if digest in call.cache:
            read = prefix_tokens
        else:
            call.cache.add(digest)
            write = prefix_tokens
    return {
        "inputTokens": total - prefix_tokens,
        "cacheReadInputTokens": read,
        "cacheWriteInputTokens": write,
    }


def _output_tokens(block: Mapping[str, Any]) -> int:
    if "toolUse" in block:
        return max(1, len(json.dumps(block["toolUse"]["input"], separators=(",", ":"))) // 4)
    if "reasoningContent" in block:
        return count_tokens(block["reasoningContent"]["reasoningText"]["text"])
    return count_tokens(str(block.get("text", "")))


def _events(content: list[dict[str, Any]], stop_reason: str, usage: Any) -> list[bytes]:
    events = [event_frame("messageStart", {"role": "assistant"})]
    for index, block in enumerate(content):
        deltas: list[dict[str, Any]]
        if "toolUse" in block:
            use = block["toolUse"]
            start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
            events.append(
                event_frame("contentBlockStart", {"contentBlockIndex": index, "start": start})
            )
            arguments = json.dumps(use["input"], separators=(",", ":"))
            deltas = [{"toolUse": {"input": piece}} for piece in argument_pieces(arguments)]
        elif "reasoningContent" in block:
            reasoning = block["reasoningContent"]["reasoningText"]
            deltas = [
                {"reasoningContent": {"text": piece}} for piece in text_pieces(reasoning["text"])
            ]
            deltas.append({"reasoningContent": {"signature": reasoning["signature"]}})
        else:
            deltas = [{"text": piece} for piece in text_pieces(block["text"])]
        for delta in deltas:
            payload = {"contentBlockIndex": index, "delta": delta}
            events.append(event_frame("contentBlockDelta", payload))
        events.append(event_frame("contentBlockStop", {"contentBlockIndex": index}))
    events.append(event_frame("messageStop", {"stopReason": stop_reason}))
    events.append(event_frame("metadata", {"usage": usage, "metrics": {"latencyMs": 0}}))
    return events


_MODEL = r"/model/(?P<model>[^/]+)"

BEDROCK_ROUTES: tuple[tuple[str, re.Pattern[str], str, Route], ...] = (
    ("POST", re.compile(_MODEL + r"/converse"), "bedrock", _converse),
    ("POST", re.compile(_MODEL + r"/converse-stream"), "bedrock", _converse_stream),
)
"""Converse and ConverseStream; the model id (``:`` possibly quoted as ``%3A``) is the
``model`` group."""
