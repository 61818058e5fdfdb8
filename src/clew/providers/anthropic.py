"""Anthropic: ``messages.create`` (stream and not) and the ``messages.stream(...)`` helper.

Anthropic reports ``input_tokens`` without the prompt-cache reads and writes; clew's
``gen_ai.usage.input_tokens`` includes them, as the GenAI convention says, and prices each
kind at its own rate. ``AnthropicBedrock`` is ``aws_bedrock`` and ``AnthropicVertex`` is
``vertexai``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clew import attributes as a
from clew.providers.engine import Adapter, Outcome, Route, StreamState
from clew.providers.messages import (
    content_parts,
    get,
    param_attributes,
    server_tool_call_part,
    server_tool_response_part,
    texts_of,
    tool_definitions,
)
from clew.providers.messages import tool_call_part as _tool_call
from clew.providers.patching import Instrumentation, Sdk, instrument_sdk
from clew.providers.registry import Endpoint, provider_for_url
from clew.providers.usage import Usage, estimate_tokens
from clew.tracer.serialize import to_json

__all__ = ["SDK", "instrument_anthropic"]


_SERVER_TOOL_CALLS = frozenset({"server_tool_use", "mcp_tool_use"})


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str) or content is None:
        return content_parts(content)
    parts: list[dict[str, Any]] = []
    for block in content:
        kind = get(block, "type")
        if kind == "tool_use":
            parts.append(_tool_call(get(block, "id"), get(block, "name"), get(block, "input")))
        elif kind in _SERVER_TOOL_CALLS:  # a tool Anthropic runs (web search, code execution)
            parts.append(
                server_tool_call_part(get(block, "id"), get(block, "name"), get(block, "input"))
            )
        elif isinstance(kind, str) and kind.endswith("_tool_result"):
            # its result: web_search_tool_result, code_execution_tool_result, mcp_tool_result ...
            parts.append(
                server_tool_response_part(get(block, "tool_use_id"), kind, get(block, "content"))
            )
        elif kind == "tool_result":
            response = get(block, "content")
            parts.append(
                {
                    "type": "tool_call_response",
                    "id": get(block, "tool_use_id"),
                    "response": response,
                }
            )
        elif kind == "redacted_thinking":
            parts.append({"type": "reasoning", "content": "[redacted]"})
        else:
            parts.extend(content_parts([block]))
    return parts


def _content(body: Mapping[str, Any], max_bytes: int) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    system = body.get("system")
    if system:
        attrs[a.GEN_AI_SYSTEM_INSTRUCTIONS] = to_json(_blocks(system), max_bytes)
    attrs.update(tool_definitions(body, max_bytes))
    messages = [
        {"role": get(m, "role", "user"), "parts": _blocks(get(m, "content"))}
        for m in body.get("messages") or ()
    ]
    attrs[a.GEN_AI_INPUT_MESSAGES] = to_json(messages, max_bytes)
    return attrs


def _outcome(
    usage: Usage | None, model: Any, response_id: Any, stop_reason: Any, blocks: Any
) -> Outcome:
    messages = None
    if blocks is not None:
        messages = [{"role": "assistant", "parts": _blocks(blocks), "finish_reason": stop_reason}]
    return Outcome(
        usage,
        model if isinstance(model, str) and model else None,
        None,
        response_id if isinstance(response_id, str) and response_id else None,
        [str(stop_reason)] if stop_reason else [],
        messages,
    )


def messages_response(message: Any) -> Outcome:
    """Read a Messages API response (an SDK object or its JSON)."""
    return _outcome(
        Usage.from_anthropic(get(message, "usage")),
        get(message, "model"),
        get(message, "id"),
        get(message, "stop_reason"),
        get(message, "content"),
    )


class MessagesStreamState(StreamState):
    """A Messages stream: content blocks from their deltas; usage from message_start, then
    replaced (never summed) by the counts ``message_delta`` reports."""

    __slots__ = ("blocks", "body", "message_id", "model", "stop_reason", "usage")

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body
        self.message_id: str | None = None
        self.model: str | None = None
        self.stop_reason: str | None = None
        self.usage: dict[str, int] = {}
        self.blocks: dict[int, list[Any]] = {}  # index → [block dict, [text pieces]]

    def record(self, chunk: Any) -> None:
        if type(chunk) is dict:  # an event's JSON, as the completion gateway reads it
            self._record_json(chunk)
            return
        kind = getattr(chunk, "type", None)
        if kind == "content_block_delta":
            slot = self.blocks.get(chunk.index)
            if slot is not None:
                delta = chunk.delta
                piece = (
                    getattr(delta, "text", None)
                    or getattr(delta, "partial_json", None)
                    or getattr(delta, "thinking", None)
                )
                if piece:
                    slot[1].append(piece)
        elif kind == "content_block_start":
            block = chunk.content_block
            self.blocks[chunk.index] = [block, []]
        elif kind == "message_start":
            message = chunk.message
            self.message_id = message.id
            self.model = message.model
            self._usage(message.usage)
        elif kind == "message_delta":
            self.stop_reason = getattr(chunk.delta, "stop_reason", None) or self.stop_reason
            self._usage(chunk.usage)

    def _record_json(self, event: dict[str, Any]) -> None:
        """:meth:`record` for an event's JSON (the same reading as for an SDK event)."""
        kind = event.get("type")
        if kind == "content_block_delta":
            slot = self.blocks.get(event.get("index", 0))
            if slot is not None:
                delta = event.get("delta") or {}
                piece = delta.get("text") or delta.get("partial_json") or delta.get("thinking")
                if piece:
                    slot[1].append(piece)
        elif kind == "content_block_start":
            self.blocks[event.get("index", 0)] = [event.get("content_block") or {}, []]
        elif kind == "message_start":
            message = event.get("message") or {}
            self.message_id = message.get("id")
            self.model = message.get("model")
            self._usage(message.get("usage"))
        elif kind == "message_delta":
            delta = event.get("delta") or {}
            self.stop_reason = delta.get("stop_reason") or self.stop_reason
            self._usage(event.get("usage"))

    def _usage(self, usage: Any) -> None:
        for key in (
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ):
            value = usage.get(key) if type(usage) is dict else getattr(usage, key, None)
            if isinstance(value, int):
                self.usage[key] = value

    def outcome(self) -> Outcome:
        blocks = []
        for _, (block, pieces) in sorted(self.blocks.items()):
            kind = get(block, "type")
            text = "".join(pieces)
            if kind == "tool_use" or kind in _SERVER_TOOL_CALLS:
                blocks.append(
                    {
                        "type": kind,
                        "id": get(block, "id"),
                        "name": get(block, "name"),
                        "input": text or get(block, "input"),
                    }
                )
            elif kind == "thinking":
                blocks.append({"type": "thinking", "thinking": text})
            elif kind == "text":
                blocks.append({"type": "text", "text": text})
            else:  # a block that arrives whole (a server tool's result ...), as its JSON
                dump = getattr(block, "model_dump", None)
                blocks.append(block if dump is None else dump(mode="json", exclude_unset=True))
        if self.usage:
            usage = Usage.from_anthropic(self.usage)
        else:
            texts = [*texts_of(self.body.get("messages")), *texts_of(self.body.get("system"))]
            output = [p for _, pieces in self.blocks.values() for p in pieces]
            usage = Usage(
                input_uncached=estimate_tokens(texts, len(self.body.get("messages") or ())),
                output=estimate_tokens(output) if output else 0,
                estimated=True,
            )
        return _outcome(
            usage, self.model, self.message_id, self.stop_reason, blocks if self.blocks else None
        )


def _request(body: Mapping[str, Any]) -> dict[str, Any]:
    return param_attributes(body)


ROUTES: dict[str, Route] = {
    "/v1/messages": Route("chat", _request, _content, messages_response, MessagesStreamState),
}


def _endpoint_of(client: Any) -> Endpoint:
    names = {cls.__name__ for cls in type(client).__mro__}
    base_url = str(getattr(client, "_base_url", ""))
    endpoint = provider_for_url(base_url, default="anthropic")
    if names & {"AnthropicBedrock", "AsyncAnthropicBedrock"}:
        return Endpoint("aws_bedrock", endpoint.host, endpoint.port)
    if names & {"AnthropicVertex", "AsyncAnthropicVertex"}:
        return Endpoint("vertexai", endpoint.host, endpoint.port)
    if endpoint.provider != "anthropic" and endpoint.provider not in ("litellm", "openrouter"):
        return Endpoint("anthropic", endpoint.host, endpoint.port)
    return endpoint


def _without_sdk_span(options: Any) -> None:
    # anthropic >= 2 opens its own OpenTelemetry span per call when a tracer provider is set;
    # clew's span carries the same call with tokens and cost, so the SDK's would duplicate it.
    if getattr(options, "span_name", None) is not None:
        object.__setattr__(options, "span_name", None)


_adapter: Adapter | None = None


class _AnthropicAdapter(Adapter):
    def route(self, url: str) -> Route | None:
        return super().route(url.partition("?")[0])


def _load() -> tuple[Adapter, type, type]:
    """The Anthropic adapter and base client classes (imports the ``anthropic`` SDK)."""
    global _adapter
    from anthropic._base_client import AsyncAPIClient, SyncAPIClient

    if _adapter is None:
        from anthropic import AsyncStream, Stream
        from anthropic._response import BaseAPIResponse

        _adapter = _AnthropicAdapter(
            "anthropic",
            ROUTES,
            (Stream, AsyncStream),
            (BaseAPIResponse,),
            _endpoint_of,
            _without_sdk_span,
        )
    return _adapter, SyncAPIClient, AsyncAPIClient


SDK = Sdk("anthropic", "anthropic", "anthropic >= 0.51", _load)
"""The ``anthropic`` SDK, for :func:`~clew.providers.patching.instrument_sdk`."""


def instrument_anthropic(client: Any = None) -> Instrumentation:
    """Trace Anthropic calls: every client (no argument) or one client.

    Args:
        client: an ``anthropic.Anthropic`` / ``AsyncAnthropic`` client, or None for all.

    Returns:
        A handle that undoes it (also a context manager); the same handle while active.

    Raises:
        ImportError: the ``anthropic`` package is not installed (``pip install anthropic``).
        ConfigurationError: ``client`` is not an Anthropic client.

    Example:
        >>> import clew
        >>> clew.instrument_anthropic()  # doctest: +SKIP
    """
    return instrument_sdk(SDK, client)
