"""Fault injection: provider-style errors, broken streams and latency.

Faults are queued on a server (:meth:`FakeLLMServer.fail_next
<clew.testing.llm_server.FakeLLMServer.fail_next>`, ``break_next_stream``) or asked for by one
request through the ``x-fake-*`` headers below. This module holds the queue and what a fault
looks like on the wire: the error bodies of both providers and the SSE error event a stream
broken in ``"error"`` mode ends with.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from clew.testing.cassettes import canonical_route
from clew.testing.llm_server.replies import JSON, Reply, dumps, id_headers, sse_data, sse_event

__all__ = [
    "ANTHROPIC_STREAM_ERROR",
    "FAKE_BREAK_AFTER_HEADER",
    "FAKE_BREAK_MODE_HEADER",
    "FAKE_LATENCY_HEADER",
    "FAKE_REPLY_WORDS_HEADER",
    "FAKE_RETRY_AFTER_HEADER",
    "FAKE_STATUS_HEADER",
    "OPENAI_STREAM_ERROR",
    "RESPONSES_STREAM_ERROR",
    "BreakMode",
    "FaultQueue",
    "StatusFault",
    "error_reply",
    "request_delay",
]

FAKE_STATUS_HEADER = "x-fake-status"
FAKE_RETRY_AFTER_HEADER = "x-fake-retry-after"
FAKE_LATENCY_HEADER = "x-fake-latency"
FAKE_BREAK_AFTER_HEADER = "x-fake-break-after"
FAKE_BREAK_MODE_HEADER = "x-fake-break-mode"
FAKE_REPLY_WORDS_HEADER = "x-fake-reply-words"

BreakMode = Literal["error", "close"]


@dataclass(frozen=True, slots=True)
class StatusFault:
    """An error response to send instead of the reply.

    Attributes:
        status: The HTTP status.
        retry_after: The ``retry-after`` header value, if any.
        body: The error body; None for the provider's default shape.
        path: Only requests on this route fail (None: any route).
    """

    status: int
    retry_after: str | None
    body: Any
    path: str | None


class FaultQueue:
    """The faults queued on one server, taken by its handler threads; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._statuses: list[StatusFault] = []
        self._breaks: list[tuple[int, BreakMode]] = []

    def push_status(self, fault: StatusFault, times: int) -> None:
        """Fail the next ``times`` requests (on ``fault.path``, if set) with ``fault``."""
        with self._lock:
            self._statuses.extend([fault] * times)

    def push_break(self, after: int, mode: BreakMode, times: int) -> None:
        """Break the next ``times`` streams after ``after`` events."""
        with self._lock:
            self._breaks.extend([(after, mode)] * times)

    def clear(self) -> None:
        """Forget every queued fault."""
        with self._lock:
            self._statuses.clear()
            self._breaks.clear()

    def take_status(self, route: str, headers: Mapping[str, str]) -> StatusFault | None:
        """The status fault for this request: forced by its headers, or the next queued one."""
        forced = headers.get(FAKE_STATUS_HEADER)
        if forced:
            return StatusFault(int(forced), headers.get(FAKE_RETRY_AFTER_HEADER), None, None)
        if not self._statuses:
            return None
        with self._lock:
            for n, fault in enumerate(self._statuses):
                if fault.path is None or canonical_route(fault.path) == route:
                    return self._statuses.pop(n)
        return None

    def take_break(self, headers: Mapping[str, str]) -> tuple[int, BreakMode] | None:
        """How this stream breaks (events sent first, mode), or None if it does not."""
        after = headers.get(FAKE_BREAK_AFTER_HEADER)
        if after is not None:
            mode = headers.get(FAKE_BREAK_MODE_HEADER, "error")
            return int(after), "close" if mode == "close" else "error"
        if not self._breaks:
            return None
        with self._lock:
            return self._breaks.pop(0) if self._breaks else None


def request_delay(latency: float, headers: Mapping[str, str]) -> float:
    """Seconds to wait before the first byte: the server's latency plus the request's."""
    extra = headers.get(FAKE_LATENCY_HEADER)
    return latency + (float(extra) if extra else 0.0)


# -- error responses ----------------------------------------------------------------------

# status: (OpenAI type, OpenAI code, Anthropic type, message)
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_ERRORS: dict[int, tuple[str, str | None, str, str]] = {
    400: ("invalid_request_error", None, "invalid_request_error", "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "authentication_error", "Invalid API key."),
    403: ("permission_error", None, "permission_error", "Permission denied."),
    404: ("invalid_request_error", "not_found", "not_found_error", "Not found."),
    408: ("timeout", None, "timeout_error", "Request timed out."),
    409: ("conflict", None, "api_error", "Conflict."),
    413: ("invalid_request_error", None, "request_too_large", "Request too large."),
    422: ("invalid_request_error", None, "invalid_request_error", "Unprocessable request."),
    429: ("requests", "rate_limit_exceeded", "rate_limit_error", "Rate limit reached."),
    500: ("server_error", None, "api_error", "The server had an error processing your request."),
    502: ("server_error", None, "api_error", "Bad gateway."),
    503: ("server_error", None, "api_error", "The engine is currently overloaded."),
    529: ("server_error", None, "overloaded_error", "Overloaded"),
}
OPENAI_STREAM_ERROR = sse_data(
    {"error": {"message": _ERRORS[500][3], "type": "server_error", "param": None, "code": None}}
)
ANTHROPIC_STREAM_ERROR = sse_event(
    "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
)
RESPONSES_STREAM_ERROR = sse_event(
    "error",
    {
        "type": "error",
        "code": "server_error",
        "message": _ERRORS[500][3],
        "param": None,
        "sequence_number": 0,
    },
)


def error_reply(
    provider: str,
    status: int,
    number: int,
    *,
    message: str | None = None,
    retry_after: str | None = None,
    body: Any = None,
) -> Reply:
    """A provider-style error response.

    Args:
        provider: ``"openai"``, ``"anthropic"``, ``"cohere"``, ``"gemini"`` or ``"bedrock"``:
            which error shape to send.
        status: The HTTP status.
        number: The request's number, for the request id.
        message: The error message (by default, the provider's usual one for ``status``).
        retry_after: A ``retry-after`` header value.
        body: The body to send instead of the provider's shape (JSON-serialisable, or
            str/bytes sent as is).
    """
    default = _ERRORS[500] if status >= 500 else _ERRORS[400]
    openai_type, code, anthropic_type, text = _ERRORS.get(status, default)
    text = message or text
    if body is None and provider in ("cohere", "bedrock"):
        body = {"message": text}  # Cohere's and Bedrock's error body
    elif body is None and provider == "gemini":
        body = {"error": {"code": status, "message": text, "status": _GOOGLE_STATUS.get(status)}}
    elif body is None and provider == "anthropic":
        body = {
            "type": "error",
            "error": {"type": anthropic_type, "message": text},
            "request_id": f"req_fake{number:08d}",
        }
    elif body is None:
        body = {"error": {"message": text, "type": openai_type, "param": None, "code": code}}
    if isinstance(body, str):
        body = body.encode()
    payload = body if isinstance(body, bytes) else dumps(body)
    headers = [("content-type", JSON), *id_headers(provider, number)]
    if retry_after is not None:
        headers.append(("retry-after", retry_after))
    return Reply(status, headers, payload)
