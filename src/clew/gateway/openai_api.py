"""The OpenAI chat wire format of ``clew serve``: ``POST /v1/chat/completions`` bodies to
:class:`~clew.gateway.schemas.Completion` requests, and responses (and stream chunks) back.

``model`` may be ``provider/model`` (``anthropic/claude-sonnet-4-5``) to pick the provider; a
bare name is OpenAI's. ``models`` is the fallback list (seed 004). A parameter the gateway
cannot carry to the provider is a 400 naming it, never dropped.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from clew.errors import InvalidRequestError
from clew.gateway.request import validated
from clew.gateway.schemas import Completion, CompletionResponse
from clew.providers.wires import GATEWAY_PROVIDERS

__all__ = [
    "ChatRequest",
    "TextRequest",
    "chat_chunk",
    "chat_response",
    "text_chunk",
    "text_completion",
    "text_prompts",
    "text_response",
    "to_completion",
]

_PROVIDERS = frozenset(GATEWAY_PROVIDERS)


class ChatRequest(BaseModel):
    """The body of ``POST /v1/chat/completions`` that the gateway understands."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    models: list[str] | None = None
    messages: list[dict[str, Any]] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None
    n: int | None = Field(default=None, ge=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    user: str | None = None
    metadata: dict[str, Any] | None = None
    # clew's own, through the SDK's extra_body
    cache: bool = False
    tags: list[str] | None = None
    trace_id: str | None = None
    parent_trace_id: str | None = None
    root_trace_id: str | None = None


def _split(model: str, param: str) -> tuple[str, str]:
    head, sep, tail = model.partition("/")
    if sep and head in _PROVIDERS and tail:
        return head, tail
    if not model:
        raise InvalidRequestError("model must not be empty", param=param)
    return "openai", model


def parse(body: Any) -> ChatRequest:
    """The request, or an :class:`InvalidRequestError` naming the field (a 400, as on
    OpenAI's API)."""
    return validated(ChatRequest, body)


def _tool_choice(choice: str | Mapping[str, Any] | None) -> str | dict[str, str] | None:
    if choice is None or isinstance(choice, str):
        return choice
    function = choice.get("function")
    if isinstance(function, Mapping) and function.get("name"):
        return {"name": str(function["name"])}
    if choice.get("name"):
        return {"name": str(choice["name"])}
    raise InvalidRequestError("tool_choice must name a function", param="tool_choice")


def to_completion(request: ChatRequest) -> Completion:
    """The library request for a chat request."""
    if request.n not in (None, 1):
        raise InvalidRequestError("the gateway answers one choice: n must be 1", param="n")
    provider, model = _split(request.model, "model")
    fallbacks = [f"{p}/{m}" for p, m in (_split(x, "models") for x in request.models or ())]
    params: dict[str, Any] = {}
    if request.temperature is not None:
        if request.temperature > 1:
            raise InvalidRequestError(
                "temperature above 1 cannot be carried to every provider: use 0 to 1",
                param="temperature",
            )
        params["temp"] = request.temperature
    for source, target in (
        ("top_p", "top_p"),
        ("frequency_penalty", "frequency_penalty"),
        ("presence_penalty", "presence_penalty"),
        ("response_format", "response_format"),
    ):
        value = getattr(request, source)
        if value is not None:
            params[target] = value
    max_tokens = request.max_completion_tokens or request.max_tokens
    if max_tokens is not None:
        params["max_length"] = max_tokens
    functions = [
        tool["function"]
        for tool in request.tools or ()
        if tool.get("type") == "function" and isinstance(tool.get("function"), Mapping)
    ]
    if request.tools and len(functions) != len(request.tools):
        raise InvalidRequestError("only function tools are supported", param="tools")
    functions += list(request.functions or ())
    configuration: dict[str, Any] = {
        "provider": provider,
        "model": model,
        "messages": request.messages,
    }
    if params:
        configuration["model_params"] = params
    if functions:
        configuration["functions"] = functions
    choice = _tool_choice(request.tool_choice) or _tool_choice(request.function_call)
    if choice is not None:
        configuration["function_call"] = choice
    fields: dict[str, Any] = {
        "llm_configuration": configuration,
        "cache": request.cache,
        "stream": False,
        "fallback_strategy": fallbacks or None,
        "end_user_identifier": request.user,
        "metadata": request.metadata,
        "tags": request.tags,
        "trace_id": request.trace_id,
        "parent_trace_id": request.parent_trace_id,
        "root_trace_id": request.root_trace_id,
    }
    return validated(Completion, fields)


def _message(response: CompletionResponse) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant"}
    if response.tool_calls:
        message["content"] = None
        message["tool_calls"] = [call.model_dump() for call in response.tool_calls]
    else:
        message["content"] = response.content
    return message


def _usage(response: CompletionResponse) -> dict[str, Any]:
    return {
        "prompt_tokens": response.input_tokens,
        "completion_tokens": response.output_tokens,
        "total_tokens": response.total_tokens,
    }


def chat_response(response: CompletionResponse) -> dict[str, Any]:
    """A ``chat.completion`` object, with seed 004's ``provider`` and
    ``native_finish_reason``, and clew's ``cost`` and ``cache_hit``."""
    return {
        "id": f"chatcmpl-{response.inference_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": response.model,
        "provider": response.provider,
        "choices": [
            {
                "index": 0,
                "message": _message(response),
                "finish_reason": response.finish_reason or "stop",
                "native_finish_reason": response.native_finish_reason,
                "logprobs": None,
            }
        ],
        "usage": _usage(response),
        "cost": response.cost,
        "cache_hit": response.cache_hit,
    }


def chat_chunk(
    chunk_id: str,
    model: str,
    delta: dict[str, Any] | None,
    finish: CompletionResponse | None = None,
    usage: CompletionResponse | None = None,
) -> dict[str, Any]:
    """One ``chat.completion.chunk``: a delta, the last one (with the finish reason and any
    tool calls), or the usage chunk (no choices)."""
    chunk: dict[str, Any] = {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [],
    }
    if usage is not None:
        chunk["usage"] = _usage(usage)
        return chunk
    if finish is not None:
        last: dict[str, Any] = {}
        if finish.tool_calls:
            last["tool_calls"] = [
                {"index": i, **call.model_dump()} for i, call in enumerate(finish.tool_calls)
            ]
        chunk["provider"] = finish.provider
        chunk["choices"] = [
            {
                "index": 0,
                "delta": last,
                "finish_reason": finish.finish_reason or "stop",
                "native_finish_reason": finish.native_finish_reason,
            }
        ]
        return chunk
    chunk["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": None}]
    return chunk


# -- legacy text completions (seeds 003 and 004) ------------------------------------------------
class TextRequest(BaseModel):
    """The body of ``POST /v1/completions`` that the gateway understands."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    models: list[str] | None = None
    prompt: str | list[str] | list[int] | list[list[int]]
    best_of: int | None = None
    echo: bool | None = None
    logprobs: int | None = None
    suffix: str | None = None
    n: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    response_format: dict[str, Any] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    user: str | None = None
    metadata: dict[str, Any] | None = None
    cache: bool = False


def parse_text(body: Any) -> TextRequest:
    """A legacy completion request, or a 400 naming the field."""
    return validated(TextRequest, body)


def text_prompts(request: TextRequest) -> list[str]:
    """The prompts (one completion each), or a 400 for what the gateway cannot carry: it
    serves a prompt as one user message to a chat model, so token prompts, ``suffix``,
    ``echo``, ``logprobs`` and ``best_of`` are refused, naming the parameter."""
    for name in ("suffix", "echo", "logprobs"):
        if getattr(request, name) not in (None, False):
            raise InvalidRequestError(
                f"{name} is not supported: the gateway serves prompts through chat models",
                param=name,
            )
    if request.best_of not in (None, 1):
        raise InvalidRequestError("best_of must be 1", param="best_of")
    if request.n not in (None, 1):
        raise InvalidRequestError(
            "the gateway answers one choice per prompt: n must be 1", param="n"
        )
    if request.response_format and request.response_format.get("type") in ("grammar", "python"):
        raise InvalidRequestError(
            f"response_format {request.response_format.get('type')!r} is not supported by the"
            " gateway's providers",
            param="response_format",
        )
    prompt = request.prompt
    if isinstance(prompt, str):
        return [prompt]
    if all(isinstance(p, str) for p in prompt):
        return [str(p) for p in prompt]
    raise InvalidRequestError(
        "token prompts are not supported: send the prompt as text", param="prompt"
    )


_SHARED = {
    "model",
    "models",
    "temperature",
    "top_p",
    "max_tokens",
    "frequency_penalty",
    "presence_penalty",
    "response_format",
    "user",
    "metadata",
    "cache",
}
"""The fields a legacy completion shares with a chat request."""


def text_completion(request: TextRequest, prompt: str) -> Completion:
    """The library request for one prompt of a legacy completion."""
    shared = request.model_dump(include=_SHARED, exclude_none=True)
    chat = ChatRequest(messages=[{"role": "user", "content": prompt}], **shared)
    return to_completion(chat)


def text_response(responses: list[CompletionResponse]) -> dict[str, Any]:
    """A ``text_completion`` object (seed 004's ``CompletionResponse``), a choice per prompt."""
    first = responses[0]
    return {
        "id": f"cmpl-{first.inference_id}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": first.model,
        "provider": first.provider,
        "choices": [
            {
                "text": response.content,
                "index": index,
                "logprobs": None,
                "finish_reason": response.finish_reason or "stop",
                "native_finish_reason": response.native_finish_reason,
            }
            for index, response in enumerate(responses)
        ],
        "usage": {
            "prompt_tokens": sum(r.input_tokens for r in responses),
            "completion_tokens": sum(r.output_tokens for r in responses),
            "total_tokens": sum(r.total_tokens for r in responses),
        },
        "cost": None
        if any(r.cost is None for r in responses)
        else sum(r.cost or 0 for r in responses),
    }


def text_chunk(
    chunk_id: str, model: str, text: str | None, finish: CompletionResponse | None = None
) -> dict[str, Any]:
    """One streamed ``text_completion`` chunk (the last one has the finish reason and usage)."""
    chunk: dict[str, Any] = {
        "id": chunk_id,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "text": text or "",
                "index": 0,
                "logprobs": None,
                "finish_reason": (finish.finish_reason or "stop") if finish else None,
            }
        ],
    }
    if finish is not None:
        chunk["provider"] = finish.provider
        chunk["usage"] = _usage(finish)
    return chunk
