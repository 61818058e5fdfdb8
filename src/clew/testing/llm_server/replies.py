"""The reply value every route builds, and the JSON and SSE encodings it carries.

A route turns a :class:`Call` (one parsed request) into a :class:`Reply`; the HTTP handler
sends a reply's body, or its SSE events as a chunked stream. Nothing here does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "JSON",
    "Call",
    "Reply",
    "Route",
    "dumps",
    "id_headers",
    "json_reply",
    "sse_data",
    "sse_event",
    "sse_reply",
]

JSON = "application/json"
_SSE = "text/event-stream; charset=utf-8"


@dataclass(slots=True)
class Reply:
    """A response to send: a body, or (``events`` set) an SSE stream.

    Attributes:
        status: The HTTP status.
        headers: The response headers, in order.
        body: The body of a non-stream response.
        events: The SSE events of a stream, each a complete ``event:``/``data:`` block.
        error_event: What a stream broken in ``"error"`` mode sends last.
    """

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    events: list[bytes] | None = None
    error_event: bytes = b""


@dataclass(slots=True)
class Call:
    """One request, as a route sees it.

    Attributes:
        body: The parsed JSON body.
        number: The request's number on its server, for deterministic ids.
        reply_words: Words (= output tokens) in a generated text reply.
        cache: The server's simulated prompt cache (digests of cached prefixes).
        params: The named groups of a parameterised route's path (Gemini's and Bedrock's
            model, Bedrock's action ...).
    """

    body: Mapping[str, Any]
    number: int
    reply_words: int
    cache: set[str]
    params: Mapping[str, str] = field(default_factory=dict)


Route = Callable[[Call], Reply]


def dumps(value: Any) -> bytes:
    """Compact JSON, as the providers send it."""
    return json.dumps(value, separators=(",", ":")).encode()


def json_reply(value: Any, number: int, provider: str = "openai", status: int = 200) -> Reply:
    """A JSON response with the provider's request-id headers."""
    return Reply(status, [("content-type", JSON), *id_headers(provider, number)], dumps(value))


def id_headers(provider: str, number: int) -> list[tuple[str, str]]:
    """The request-id headers the provider sends with every response."""
    if provider == "anthropic":
        return [("request-id", f"req_fake{number:08d}")]
    return [("x-request-id", f"req_fake{number:08d}"), ("openai-processing-ms", "0")]


def sse_reply(events: list[bytes], number: int, provider: str, error_event: bytes) -> Reply:
    """An SSE stream of ``events``; ``error_event`` is sent last if the stream is broken."""
    headers = [("content-type", _SSE), *id_headers(provider, number)]
    return Reply(200, headers, events=events, error_event=error_event)


def sse_data(value: Any) -> bytes:
    """An SSE event with only a ``data:`` line (OpenAI chat and completions streams)."""
    return b"data: " + dumps(value) + b"\n\n"


def sse_event(name: str, value: Any) -> bytes:
    """A named SSE event (Anthropic and OpenAI Responses streams)."""
    return b"event: " + name.encode() + b"\ndata: " + dumps(value) + b"\n\n"
