"""The Anthropic routes: Messages (non-stream and stream) and ``count_tokens``.

Messages support text, ``tool_use`` (streamed as ``input_json_delta``), ``thinking``,
``stop_sequences`` and ``max_tokens``. Prompt caching is simulated per server: the prefix up to
the last ``cache_control`` block counts as a cache write the first time, a cache read after.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from clew.testing.llm_server.examples import (
    argument_pieces,
    count_tokens,
    count_words,
    cut_at_stop,
    cut_to_limit,
    declared_tools,
    make_tool_calls,
    pick_tools,
    plain_text,
    reply_text,
    text_pieces,
)
from clew.testing.llm_server.faults import ANTHROPIC_STREAM_ERROR, error_reply
from clew.testing.llm_server.replies import (
    Call,
    Reply,
    Route,
    dumps,
    json_reply,
    sse_event,
    sse_reply,
)

__all__ = ["ANTHROPIC_ROUTES"]


def _anthropic_messages(call: Call) -> Reply:
    body = call.body
    number = call.number
    if not isinstance(body.get("max_tokens"), int):
        return error_reply("anthropic", 400, number, message="max_tokens: Field required")
    model = str(body.get("model") or "claude-fake")
    content = _anthropic_content(call)
    stop_reason, stop_sequence = "end_turn", None
    text_blocks = [b for b in content if b["type"] == "text"]
    if any(b["type"] == "tool_use" for b in content):
        stop_reason = "tool_use"
    elif text_blocks:
        block = text_blocks[-1]
        block["text"], stop_sequence = cut_at_stop(block["text"], body.get("stop_sequences"))
        block["text"], cut = cut_to_limit(block["text"], body["max_tokens"])
        stop_reason = "stop_sequence" if stop_sequence else "max_tokens" if cut else "end_turn"
    output_tokens = sum(
        count_tokens(b.get("text", b.get("thinking", "")))
        if b["type"] != "tool_use"
        else max(1, len(json.dumps(b["input"])) // 4)
        for b in content
    )
    usage = {
        **_anthropic_input_usage(call),
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }
    message = {
        "id": f"msg_fake{number:08d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage,
    }
    if not body.get("stream"):
        return json_reply(message, number, "anthropic")
    return sse_reply(_anthropic_events(message), number, "anthropic", ANTHROPIC_STREAM_ERROR)


def _anthropic_content(call: Call) -> list[dict[str, Any]]:
    body = call.body
    messages = [m for m in body.get("messages") or () if isinstance(m, Mapping)]
    users = [m for m in messages if m.get("role") == "user"]
    prompt = plain_text(users[-1].get("content")) if users else ""
    last = messages[-1] if messages else {}
    last_content = last.get("content")
    only_results = isinstance(last_content, list) and all(
        isinstance(b, Mapping) and b.get("type") == "tool_result" for b in last_content
    )
    last_is_user = last.get("role") == "user" and not only_results
    choice = body.get("tool_choice")
    parallel = not (isinstance(choice, Mapping) and choice.get("disable_parallel_tool_use"))
    picked = pick_tools(declared_tools(body), choice, prompt, last_is_user, parallel)
    content: list[dict[str, Any]] = []
    thinking = body.get("thinking")
    if isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive"):
        idea = " ".join(["Thinking", "about:", *prompt.split()[:6]])
        content.append(
            {"type": "thinking", "thinking": idea, "signature": f"fakesig{call.number:08d}"}
        )
    forced = isinstance(choice, Mapping) and choice.get("type") in ("any", "tool")
    if picked and not forced:
        names = ", ".join(t.name for t in picked)
        content.append({"type": "text", "text": f"I will call {names}."})
    for tool_call in make_tool_calls(picked, "toolu_", call.number, 0):
        arguments = json.loads(tool_call.arguments)
        content.append(
            {"type": "tool_use", "id": tool_call.id, "name": tool_call.name, "input": arguments}
        )
    if not picked:
        content.append({"type": "text", "text": reply_text(prompt, call.reply_words)})
    return content


def _anthropic_input_usage(call: Call) -> dict[str, Any]:
    """Input tokens split into uncached / cache write / cache read by ``cache_control``."""
    blocks: list[Any] = []
    system = call.body.get("system")
    blocks.extend(system if isinstance(system, list) else [system] if system else [])
    for message in call.body.get("messages") or ():
        content = message.get("content") if isinstance(message, Mapping) else None
        blocks.extend(content if isinstance(content, list) else [content])
    total = max(1, count_words(blocks))
    marked = [n for n, b in enumerate(blocks) if isinstance(b, Mapping) and b.get("cache_control")]
    prefix = blocks[: marked[-1] + 1] if marked else []
    prefix_tokens = min(total, count_words(prefix))
    write = read = 0
    if prefix_tokens:
        digest = "anthropic:" + hashlib.sha1(dumps([call.body.get("model"), prefix])).hexdigest()
        if digest in call.cache:
            read = prefix_tokens
        else:
            call.cache.add(digest)
            write = prefix_tokens
    return {
        "input_tokens": total - prefix_tokens,
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
        "cache_creation": {"ephemeral_5m_input_tokens": write, "ephemeral_1h_input_tokens": 0},
    }


def _anthropic_events(message: dict[str, Any]) -> list[bytes]:
    usage = message["usage"]
    start_usage = {**usage, "output_tokens": 1}
    events = [
        sse_event(
            "message_start",
            {
                "type": "message_start",
                "message": {**message, "content": [], "stop_reason": None, "usage": start_usage},
            },
        )
    ]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        empty = {
            "text": {"type": "text", "text": ""},
            "thinking": {"type": "thinking", "thinking": "", "signature": ""},
        }
        start = empty.get(kind, {**block, "input": {}})
        events.append(
            sse_event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        )
        if index == 0:
            events.append(sse_event("ping", {"type": "ping"}))
        if kind == "text":
            deltas = [{"type": "text_delta", "text": p} for p in text_pieces(block["text"])]
        elif kind == "thinking":
            deltas = [
                {"type": "thinking_delta", "thinking": p} for p in text_pieces(block["thinking"])
            ]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:
            arguments = json.dumps(block["input"], separators=(",", ":"))
            deltas = [
                {"type": "input_json_delta", "partial_json": p}
                for p in ["", *argument_pieces(arguments)]
            ]
        for delta in deltas:
            events.append(
                sse_event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            )
        events.append(
            sse_event("content_block_stop", {"type": "content_block_stop", "index": index})
        )
    final_usage = {k: v for k, v in usage.items() if k not in ("cache_creation", "service_tier")}
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    events.append(
        sse_event("message_delta", {"type": "message_delta", "delta": delta, "usage": final_usage})
    )
    events.append(sse_event("message_stop", {"type": "message_stop"}))
    return events


def _anthropic_count_tokens(call: Call) -> Reply:
    blocks = [call.body.get("system") or "", call.body.get("messages") or []]
    return json_reply({"input_tokens": max(1, count_words(blocks))}, call.number, "anthropic")


ANTHROPIC_ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/v1/messages"): _anthropic_messages,
    ("POST", "/v1/messages/count_tokens"): _anthropic_count_tokens,
}
