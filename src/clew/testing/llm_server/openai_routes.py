"""The OpenAI routes: chat completions, legacy completions and embeddings.

Each route turns a :class:`~clew.testing.llm_server.replies.Call` into the JSON body the real
API sends, or (``"stream": true``) into its SSE events, in the real order. The Responses API
is in :mod:`clew.testing.llm_server.openai_responses`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import itertools
import random
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clew.testing.llm_server.examples import (
    ToolCall,
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
    reasoning_tokens,
    reply_text,
    text_pieces,
)
from clew.testing.llm_server.faults import OPENAI_STREAM_ERROR
from clew.testing.llm_server.replies import (
    Call,
    Reply,
    Route,
    dumps,
    json_reply,
    sse_data,
    sse_reply,
)

__all__ = ["CREATED", "OPENAI_ROUTES", "openai_cached_tokens"]

CREATED = 1_700_000_000
"""The ``created`` time of every OpenAI reply (fixed, so replies are deterministic)."""


def openai_cached_tokens(prompt_tokens: int, key: Any, cache: set[str]) -> int:
    """Cached prompt tokens, as OpenAI reports them: repeated prompts of 1024+ tokens."""
    if prompt_tokens < 1024:
        return 0
    digest = hashlib.sha1(dumps(key)).hexdigest()
    if digest in cache:
        return prompt_tokens // 128 * 128
    cache.add(digest)
    return 0


# -- OpenAI chat completions ---------------------------------------------------------------


@dataclass(slots=True)
class _Choice:
    text: str | None
    calls: list[ToolCall] = field(default_factory=list)
    finish: str = "stop"
    legacy_function: bool = False

    @property
    def tokens(self) -> int:
        return sum(c.tokens for c in self.calls) + (count_tokens(self.text) if self.text else 0)


def _chat_choices(call: Call) -> list[_Choice]:
    body = call.body
    messages = [m for m in body.get("messages") or () if isinstance(m, Mapping)]
    users = [m for m in messages if m.get("role") == "user"]
    prompt = plain_text(users[-1].get("content")) if users else ""
    last_is_user = bool(messages) and messages[-1].get("role") == "user"
    legacy = not body.get("tools") and bool(body.get("functions"))
    choice_arg = body.get("function_call") if legacy else body.get("tool_choice")
    parallel = body.get("parallel_tool_calls") is not False and not legacy
    picked = pick_tools(declared_tools(body), choice_arg, prompt, last_is_user, parallel)
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    choices = []
    for index in range(max(1, int(body.get("n") or 1))):
        if picked:
            calls = make_tool_calls(picked, "call_", call.number, index)
            finish = "function_call" if legacy else "tool_calls"
            choices.append(_Choice(None, calls, finish, legacy))
            continue
        text = formatted_reply(
            body.get("response_format"), reply_text(prompt, call.reply_words, index)
        )
        text, cut = cut_to_limit(text, limit)
        text, _stop = cut_at_stop(text, body.get("stop"))
        choices.append(_Choice(text, finish="length" if cut else "stop"))
    return choices


def _chat_usage(call: Call, completion: int) -> dict[str, Any]:
    messages = call.body.get("messages") or []
    prompt_tokens = max(1, count_words(messages))
    reasoning = reasoning_tokens(str(call.body.get("model", "")))
    completion += reasoning
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
        "prompt_tokens_details": {
            "cached_tokens": openai_cached_tokens(prompt_tokens, messages, call.cache),
            "audio_tokens": 0,
        },
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _openai_chat(call: Call) -> Reply:
    choices = _chat_choices(call)
    usage = _chat_usage(call, sum(c.tokens for c in choices))
    head = {
        "id": f"chatcmpl-fake{call.number:08d}",
        "created": CREATED,
        "model": str(call.body.get("model") or "gpt-fake"),
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }
    if call.body.get("stream"):
        return sse_reply(
            _chat_events(call, head, choices, usage), call.number, "openai", OPENAI_STREAM_ERROR
        )
    out = []
    for index, choice in enumerate(choices):
        message: dict[str, Any] = {"role": "assistant", "content": choice.text, "refusal": None}
        message["annotations"] = []
        if choice.legacy_function and choice.calls:
            first = choice.calls[0]
            message["function_call"] = {"name": first.name, "arguments": first.arguments}
        elif choice.calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in choice.calls
            ]
        out.append(
            {"index": index, "message": message, "logprobs": None, "finish_reason": choice.finish}
        )
    return json_reply(
        {**head, "object": "chat.completion", "choices": out, "usage": usage}, call.number
    )


def _chat_events(
    call: Call, head: dict[str, Any], choices: list[_Choice], usage: dict[str, Any]
) -> list[bytes]:
    options = call.body.get("stream_options")
    include_usage = isinstance(options, Mapping) and bool(options.get("include_usage"))
    base = {**head, "object": "chat.completion.chunk"}

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        payload = {
            **base,
            "choices": [
                {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
            ],
        }
        if include_usage:
            payload["usage"] = None
        return sse_data(payload)

    events = []
    for index, choice in enumerate(choices):
        content = None if choice.calls else ""
        events.append(chunk(index, {"role": "assistant", "content": content, "refusal": None}))
        for piece in text_pieces(choice.text or ""):
            events.append(chunk(index, {"content": piece}))
        calls = choice.calls[:1] if choice.legacy_function else choice.calls
        for n, tool_call in enumerate(calls):
            for delta in _call_deltas(tool_call, n, choice.legacy_function):
                events.append(chunk(index, delta))
        events.append(chunk(index, {}, choice.finish))
    if include_usage:
        events.append(sse_data({**base, "choices": [], "usage": usage}))
    events.append(b"data: [DONE]\n\n")
    return events


def _call_deltas(tool_call: ToolCall, n: int, legacy: bool) -> list[dict[str, Any]]:
    """The deltas streaming one tool call: id and name first, then the arguments in pieces."""
    pieces = argument_pieces(tool_call.arguments)
    if legacy:
        first: dict[str, Any] = {"name": tool_call.name, "arguments": ""}
        return [{"function_call": first}, *({"function_call": {"arguments": p}} for p in pieces)]
    function = {"name": tool_call.name, "arguments": ""}
    start = {"index": n, "id": tool_call.id, "type": "function", "function": function}
    rest = ({"tool_calls": [{"index": n, "function": {"arguments": p}}]} for p in pieces)
    return [{"tool_calls": [start]}, *rest]


# -- OpenAI legacy completions -------------------------------------------------------------


def _openai_completions(call: Call) -> Reply:
    body = call.body
    prompt = body.get("prompt", "")
    prompts = [prompt] if isinstance(prompt, str) or not isinstance(prompt, list) else prompt
    if prompts and all(isinstance(p, int) for p in prompts):
        prompts = [prompts]  # one prompt given as token ids
    texts = [
        p if isinstance(p, str) else " ".join(map(str, p)) if isinstance(p, list) else ""
        for p in prompts
    ]
    n = max(1, int(body.get("n") or 1))
    limit = body.get("max_tokens", 16)
    choices: list[dict[str, Any]] = []
    completion_tokens = 0
    for p_index, text in enumerate(texts):
        for variant in range(n):
            reply, cut = cut_to_limit(" " + reply_text(text, call.reply_words, variant), limit)
            reply, _stop = cut_at_stop(reply, body.get("stop"))
            completion_tokens += count_tokens(reply)
            full = (text if body.get("echo") else "") + reply
            choices.append(
                {
                    "text": full,
                    "index": p_index * n + variant,
                    "logprobs": _logprobs(full, body.get("logprobs")),
                    "finish_reason": "length" if cut else "stop",
                }
            )
    prompt_tokens = max(
        1, sum(len(p) if isinstance(p, list) else count_tokens(str(p)) for p in prompts)
    )
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    head = {"id": f"cmpl-fake{call.number:08d}", "object": "text_completion", "created": CREATED}
    head["model"] = str(body.get("model") or "gpt-3.5-turbo-instruct")
    if not body.get("stream"):
        return json_reply({**head, "choices": choices, "usage": usage}, call.number)
    options = body.get("stream_options")
    events = []
    for choice in choices:
        pieces = text_pieces(choice["text"]) or [""]
        for n_piece, piece in enumerate(pieces):
            last = n_piece == len(pieces) - 1
            delta = {"text": piece, "index": choice["index"], "logprobs": None}
            delta["finish_reason"] = choice["finish_reason"] if last else None
            events.append(sse_data({**head, "choices": [delta]}))
    if isinstance(options, Mapping) and options.get("include_usage"):
        events.append(sse_data({**head, "choices": [], "usage": usage}))
    events.append(b"data: [DONE]\n\n")
    return sse_reply(events, call.number, "openai", OPENAI_STREAM_ERROR)


def _logprobs(text: str, requested: Any) -> dict[str, Any] | None:
    if not isinstance(requested, int) or isinstance(requested, bool):
        return None
    tokens = text_pieces(text)
    values = [-round(0.1 * (n % 5 + 1), 1) for n in range(len(tokens))]
    offsets = list(itertools.accumulate((len(t) for t in tokens[:-1]), initial=0))
    top = [{t: v} for t, v in zip(tokens, values, strict=True)] if requested > 0 else None
    return {"tokens": tokens, "token_logprobs": values, "top_logprobs": top, "text_offset": offsets}


# -- OpenAI embeddings ----------------------------------------------------------------------

_DIMENSIONS = {"text-embedding-3-large": 3072}


@functools.lru_cache(maxsize=4096)
def _vector(text: str, dimensions: int) -> tuple[float, ...]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    rng = random.Random(seed)
    raw = [rng.uniform(-1.0, 1.0) for _ in range(dimensions)]
    norm = sum(x * x for x in raw) ** 0.5 or 1.0
    return tuple(round(x / norm, 7) for x in raw)


def _openai_embeddings(call: Call) -> Reply:
    body = call.body
    raw = body.get("input", "")
    items = (
        [raw]
        if isinstance(raw, str) or (raw and all(isinstance(x, int) for x in raw))
        else list(raw or [])
    )
    model = str(body.get("model") or "text-embedding-3-small")
    dimensions = int(body.get("dimensions") or _DIMENSIONS.get(model, 1536))
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    tokens = 0
    for index, item in enumerate(items):
        text = item if isinstance(item, str) else " ".join(map(str, item))
        tokens += len(item) if isinstance(item, list) else count_tokens(text)
        vector = _vector(text, dimensions)
        embedding: Any = (
            base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            if as_base64
            else list(vector)
        )
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return json_reply({"object": "list", "data": data, "model": model, "usage": usage}, call.number)


OPENAI_ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/v1/chat/completions"): _openai_chat,
    ("POST", "/v1/completions"): _openai_completions,
    ("POST", "/v1/embeddings"): _openai_embeddings,
}
