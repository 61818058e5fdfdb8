"""The OpenAI Responses API route: ``POST /v1/responses``, non-stream and stream.

A reply is a ``message`` output item (or ``function_call`` items when the model calls tools),
preceded by a ``reasoning`` item for reasoning models; ``max_output_tokens`` makes it
``incomplete``. The stream sends the real event sequence, each event numbered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clew.testing.llm_server.examples import (
    argument_pieces,
    count_tokens,
    count_words,
    cut_to_limit,
    declared_tools,
    formatted_reply,
    make_tool_calls,
    pick_tools,
    plain_text,
    reasoning_tokens,
    reply_text,
    text_pieces,
)
from clew.testing.llm_server.faults import RESPONSES_STREAM_ERROR
from clew.testing.llm_server.openai_routes import CREATED, openai_cached_tokens
from clew.testing.llm_server.replies import Call, Reply, Route, json_reply, sse_event, sse_reply

__all__ = ["RESPONSES_ROUTES"]


def _openai_responses(call: Call) -> Reply:
    body = call.body
    model = str(body.get("model") or "gpt-fake")
    items = body.get("input")
    items = (
        [items]
        if isinstance(items, str)
        else [i for i in items or () if isinstance(i, Mapping | str)]
    )
    user_items = [i for i in items if isinstance(i, str) or i.get("role") == "user"]
    prompt = (
        plain_text(
            user_items[-1] if isinstance(user_items[-1], str) else user_items[-1].get("content")
        )
        if user_items
        else ""
    )
    last = items[-1] if items else None
    last_is_user = isinstance(last, str) or (
        isinstance(last, Mapping) and last.get("role") == "user"
    )
    parallel = body.get("parallel_tool_calls") is not False
    picked = pick_tools(
        declared_tools(body), body.get("tool_choice"), prompt, last_is_user, parallel
    )
    number = call.number
    output: list[dict[str, Any]] = []
    reasoning = reasoning_tokens(model)
    if reasoning:
        output.append(
            {"id": f"rs_fake{number:08d}", "type": "reasoning", "summary": [], "status": None}
        )
    cut = False
    for tool_call in make_tool_calls(picked, "call_", number, 0):
        output.append(
            {
                "id": "fc" + tool_call.id[4:],
                "type": "function_call",
                "status": "completed",
                "call_id": tool_call.id,
                "name": tool_call.name,
                "arguments": tool_call.arguments,
            }
        )
    completion = sum(c.tokens for c in make_tool_calls(picked, "call_", number, 0))
    if not picked:
        text_options = body.get("text")
        text_format = text_options.get("format") if isinstance(text_options, Mapping) else None
        text = formatted_reply(text_format, reply_text(prompt, call.reply_words))
        text, cut = cut_to_limit(text, body.get("max_output_tokens"))
        completion += count_tokens(text)
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        output.append(
            {
                "id": f"msg_fake{number:08d}",
                "type": "message",
                "status": "incomplete" if cut else "completed",
                "role": "assistant",
                "content": [part],
            }
        )
    input_tokens = max(1, count_words(items) + count_words(body.get("instructions") or ""))
    output_tokens = completion + reasoning
    usage = {
        "input_tokens": input_tokens,
        "input_tokens_details": {
            "cached_tokens": openai_cached_tokens(
                input_tokens, [items, body.get("instructions")], call.cache
            )
        },
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }
    response = {
        "id": f"resp_fake{number:08d}",
        "object": "response",
        "created_at": CREATED,
        "status": "incomplete" if cut else "completed",
        "background": False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": parallel,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": usage,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }
    if not body.get("stream"):
        return json_reply(response, number)
    return sse_reply(_responses_events(response), number, "openai", RESPONSES_STREAM_ERROR)


def _responses_events(response: dict[str, Any]) -> list[bytes]:
    events: list[bytes] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append(sse_event(kind, {"type": kind, "sequence_number": len(events), **fields}))

    pending = {
        **response,
        "status": "in_progress",
        "output": [],
        "usage": None,
        "incomplete_details": None,
    }
    emit("response.created", response=pending)
    emit("response.in_progress", response=pending)
    for index, item in enumerate(response["output"]):
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "message":
            part = item["content"][0]
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "content": []},
            )
            emit("response.content_part.added", **where, content_index=0, part={**part, "text": ""})
            for piece in text_pieces(part["text"]):
                emit(
                    "response.output_text.delta", **where, content_index=0, delta=piece, logprobs=[]
                )
            emit(
                "response.output_text.done",
                **where,
                content_index=0,
                text=part["text"],
                logprobs=[],
            )
            emit("response.content_part.done", **where, content_index=0, part=part)
        elif item["type"] == "function_call":
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            for piece in argument_pieces(item["arguments"]):
                emit("response.function_call_arguments.delta", **where, delta=piece)
            emit("response.function_call_arguments.done", **where, arguments=item["arguments"])
        else:
            emit("response.output_item.added", output_index=index, item=item)
        emit("response.output_item.done", output_index=index, item=item)
    final = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
    emit(final, response=response)
    return events


RESPONSES_ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/v1/responses"): _openai_responses,
}
