"""A local, deterministic fake of the OpenAI and Anthropic HTTP APIs.

:class:`FakeLLMServer` listens on ``127.0.0.1`` (a free port) in daemon threads and answers
the real ``openai`` and ``anthropic`` SDK clients as the providers would, without network
access or keys. Tests, benchmarks and ``clew demo`` point a client at it::

    with FakeLLMServer() as server:
        with OpenAI(base_url=server.openai_base_url, api_key="test") as client:
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=[...])
    assert server.requests[0].path == "/v1/chat/completions"

Endpoints (non-stream and ``"stream": true`` SSE for each, except embeddings):

- OpenAI ``POST /v1/chat/completions`` (``n``, ``stop``, ``max_tokens`` /
  ``max_completion_tokens``, ``tools`` / legacy ``functions`` with streamed argument deltas,
  ``response_format`` json_object / json_schema, ``stream_options.include_usage``),
  ``POST /v1/completions`` (``prompt`` str or list, ``n``, ``echo``, ``logprobs``, ``stop``;
  ``max_tokens`` defaults to 16 as on the real API), ``POST /v1/embeddings`` (float and
  base64), ``POST /v1/responses``. Azure paths (``/openai/deployments/<name>/...``) work too.
- Anthropic ``POST /v1/messages`` (text, ``tool_use`` with ``input_json_delta``,
  ``thinking``, ``stop_sequences``, ``cache_control`` usage) and
  ``POST /v1/messages/count_tokens``.

Replies are deterministic: the text echoes the start of the last user message, then filler,
``reply_words`` words long (18 by default, so a chat stream has about 20 chunks). A token is
a whitespace-separated word, so usage agrees between stream and non-stream. A tool is
called when ``tool_choice`` forces one or the last user message names it (or a word of its
name, or says "tool"); arguments are built from the tool's JSON schema. Ids come from a
per-server counter (``chatcmpl-fake00000001`` ...). Caching is simulated per server:
Anthropic counts the prefix up to the last ``cache_control`` block as a cache write the first
time and a cache read afterwards; OpenAI reports cached tokens for a repeated prompt of at
least 1024 tokens. Models named ``o1``/``o3``/``o4``/``gpt-5``... report 16 reasoning tokens.

Faults, per server or per request (request headers, e.g. via the SDK's ``extra_headers``):

- ``fail_next(status, times, retry_after, body)`` / header ``x-fake-status: 500`` (with
  ``x-fake-retry-after``): a provider-style error response.
- ``latency`` / header ``x-fake-latency``: seconds before the first byte.
- ``chunk_delay``: seconds between SSE events.
- ``break_next_stream(after, mode)`` / headers ``x-fake-break-after: 3`` and
  ``x-fake-break-mode: error|close``: send ``after`` events, then an SSE error event
  (``mode="error"``) or drop the connection (``mode="close"``).
- header ``x-fake-reply-words``: the reply length for one request.

Replay: ``FakeLLMServer(cassette=path)`` or :class:`ReplayServer` serves recorded responses
(see :mod:`clew.testing.cassettes`) instead of generated ones.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import itertools
import json
import logging
import os
import random
import re
import socket
import socketserver
import struct
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from clew.testing.cassettes import CassetteReplayer, Interaction, canonical_route, load_cassette

__all__ = [
    "FAKE_BREAK_AFTER_HEADER",
    "FAKE_BREAK_MODE_HEADER",
    "FAKE_LATENCY_HEADER",
    "FAKE_REPLY_WORDS_HEADER",
    "FAKE_RETRY_AFTER_HEADER",
    "FAKE_STATUS_HEADER",
    "REDACTED",
    "BreakMode",
    "FakeLLMServer",
    "RecordedRequest",
    "ReplayServer",
]

_log = logging.getLogger(__name__)

FAKE_STATUS_HEADER = "x-fake-status"
FAKE_RETRY_AFTER_HEADER = "x-fake-retry-after"
FAKE_LATENCY_HEADER = "x-fake-latency"
FAKE_BREAK_AFTER_HEADER = "x-fake-break-after"
FAKE_BREAK_MODE_HEADER = "x-fake-break-mode"
FAKE_REPLY_WORDS_HEADER = "x-fake-reply-words"
REDACTED = "REDACTED"

BreakMode = Literal["error", "close"]
CassetteSource = str | os.PathLike[str] | Iterable[str | os.PathLike[str] | Interaction]

_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key"})
# Hop-by-hop and transport headers of a recording that must not be replayed verbatim.
_UNREPLAYED_HEADERS = frozenset(
    {"connection", "keep-alive", "set-cookie", "alt-svc", "strict-transport-security"}
)
_CREATED = 1_700_000_000
_REASONING_TOKENS = 16
_REASONING_MODELS = re.compile(r"^(o\d|gpt-5)")
_FILLER_TEXT = (
    "this is a deterministic reply from the clew fake llm server so that tests "
    "can rely on stable text and stable token counts every time"
)
_FILLER = _FILLER_TEXT.split()
_JSON = "application/json"
_SSE = "text/event-stream; charset=utf-8"
_PIECES = re.compile(r"\s*\S+")
_ARG_PIECES = re.compile(r"\w+|\W+")
_GENERIC_NAME_PARTS = frozenset({"get", "set", "list", "create", "update", "fetch", "tool"})


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request the server received, kept for assertions.

    Attributes:
        method: The HTTP method.
        path: The path, without the query string.
        query: The query string ("" when none).
        headers: The headers, lower-cased names; credentials replaced by ``"REDACTED"``.
        body: The parsed JSON body (the raw text if it is not JSON, None if empty).
    """

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True, slots=True)
class _StatusFault:
    status: int
    retry_after: str | None
    body: Any
    path: str | None


@dataclass(slots=True)
class _Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    events: list[bytes] | None = None  # set for an SSE stream
    error_event: bytes = b""  # what a stream broken in "error" mode sends last


@dataclass(slots=True)
class _Call:
    body: Mapping[str, Any]
    number: int
    reply_words: int
    cache: set[str]


class FakeLLMServer:
    """A fake OpenAI + Anthropic API on ``127.0.0.1``, run in daemon threads.

    Use it as a context manager, or call :meth:`start` and :meth:`close`. See the module
    docstring for the endpoints, the reply rules and the fault options.

    Args:
        latency: Seconds to wait before the first byte of every response.
        chunk_delay: Seconds to wait between SSE events.
        reply_words: Words (= output tokens) in a generated text reply.
        cassette: Serve these recorded interactions instead of generated replies: a
            cassette path, or several paths and/or :class:`Interaction` values.
        allow_repeats: In replay mode, answer a request on an exhausted route with the
            route's last interaction instead of a 404.
        record_requests: Keep every request in :attr:`requests`. Turn it off for long
            benchmark runs, where the list would only grow.
        port: The port to bind (0 picks a free one).

    Example:
        >>> with FakeLLMServer() as server:
        ...     server.openai_base_url.startswith("http://127.0.0.1:")
        True
    """

    def __init__(
        self,
        latency: float = 0.0,
        chunk_delay: float = 0.0,
        *,
        reply_words: int = 18,
        cassette: CassetteSource | None = None,
        allow_repeats: bool = False,
        record_requests: bool = True,
        port: int = 0,
    ) -> None:
        if latency < 0 or chunk_delay < 0 or reply_words < 1:
            raise ValueError("latency and chunk_delay must be >= 0 and reply_words >= 1")
        self.latency = latency
        self.chunk_delay = chunk_delay
        self.reply_words = reply_words
        self.requests: list[RecordedRequest] = []
        self.record_requests = record_requests
        self._replayer = (
            None
            if cassette is None
            else CassetteReplayer(_interactions(cassette), allow_repeats=allow_repeats)
        )
        self._port = port
        self._counter = itertools.count(1)
        self._cache: set[str] = set()
        self._faults: list[_StatusFault] = []
        self._breaks: list[tuple[int, BreakMode]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._connections: set[socket.socket] = set()
        self._tcp: _TCPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> Self:
        """Bind and start serving in a daemon thread; idempotent. Returns the server."""
        if self._tcp is None:
            self._closed.clear()
            tcp = _TCPServer(("127.0.0.1", self._port), _Handler, self)
            self._tcp = tcp
            self._thread = threading.Thread(
                target=_accept_loop,
                args=(tcp, self._closed),
                name=f"clew-fake-llm:{tcp.server_address[1]}",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and drop open connections; idempotent, returns within about 1 s."""
        tcp, self._tcp = self._tcp, None
        if tcp is None:
            return
        self._closed.set()
        with contextlib.suppress(OSError):  # wake the accept loop so that it sees _closed
            socket.create_connection(("127.0.0.1", tcp.server_address[1]), timeout=1.0).close()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        tcp.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The server's root URL, e.g. ``http://127.0.0.1:54321``."""
        if self._tcp is None:
            raise RuntimeError("the fake LLM server is not running: call start() first")
        return f"http://127.0.0.1:{self._tcp.server_address[1]}"

    @property
    def openai_base_url(self) -> str:
        """The ``base_url`` for ``openai.OpenAI`` (the root URL + ``/v1``)."""
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        """The ``base_url`` for ``anthropic.Anthropic`` (the root URL)."""
        return self.url

    @property
    def unplayed(self) -> list[Interaction]:
        """In replay mode, the recorded interactions not served yet ([] otherwise)."""
        return [] if self._replayer is None else self._replayer.unplayed

    # -- faults ----------------------------------------------------------------------

    def fail_next(
        self,
        status: int = 429,
        times: int = 1,
        retry_after: float | str | None = None,
        body: Any = None,
        *,
        path: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests with a provider-style error.

        Args:
            status: The HTTP status to return.
            times: How many requests fail.
            retry_after: A ``retry-after`` header value, in seconds.
            body: The error body (JSON-serialisable, or str/bytes sent as is); by default
                ``{"error": {...}}`` for OpenAI routes and ``{"type": "error", "error":
                {...}}`` for Anthropic ones.
            path: Only requests on this route fail (e.g. ``"/v1/embeddings"``).
        """
        fault = _StatusFault(status, None if retry_after is None else str(retry_after), body, path)
        with self._lock:
            self._faults.extend([fault] * times)

    def break_next_stream(self, after: int = 3, mode: BreakMode = "error", times: int = 1) -> None:
        """Break the next ``times`` streamed responses after ``after`` SSE events.

        Args:
            after: Events sent before the break.
            mode: ``"error"`` sends the provider's SSE error event and ends the stream;
                ``"close"`` drops the connection mid-body.
            times: How many streams break.
        """
        if mode not in ("error", "close"):
            raise ValueError(f"mode must be 'error' or 'close', not {mode!r}")
        with self._lock:
            self._breaks.extend([(after, mode)] * times)

    def reset_faults(self) -> None:
        """Forget faults queued by :meth:`fail_next` and :meth:`break_next_stream`."""
        with self._lock:
            self._faults.clear()
            self._breaks.clear()

    # -- request handling (handler threads) -------------------------------------------

    def _respond(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> _Reply:
        path, _, query = target.partition("?")
        body = _parse_body(raw)
        if self.record_requests:
            self.requests.append(RecordedRequest(method, path, query, _redact(headers), body))
        number = next(self._counter)
        route = canonical_route(path)
        provider = "anthropic" if route.startswith(("/v1/messages", "/v1/complete")) else "openai"
        fault = self._take_fault(route, headers)
        if fault is not None:
            return _error(
                provider, fault.status, number, retry_after=fault.retry_after, body=fault.body
            )
        if self._replayer is not None:
            return _replay(self._replayer, method, path, body, provider, number)
        builder = _ROUTES.get((method, route))
        if builder is None:
            return _error(provider, 404, number, message=f"Unknown route: {method} {path}")
        if not isinstance(body, Mapping):
            return _error(provider, 400, number, message="The request body must be a JSON object.")
        words = int(headers.get(FAKE_REPLY_WORDS_HEADER, self.reply_words))
        return builder(_Call(body, number, max(1, words), self._cache))

    def _take_fault(self, route: str, headers: Mapping[str, str]) -> _StatusFault | None:
        forced = headers.get(FAKE_STATUS_HEADER)
        if forced:
            return _StatusFault(int(forced), headers.get(FAKE_RETRY_AFTER_HEADER), None, None)
        if not self._faults:
            return None
        with self._lock:
            for n, fault in enumerate(self._faults):
                if fault.path is None or canonical_route(fault.path) == route:
                    return self._faults.pop(n)
        return None

    def _take_break(self, headers: Mapping[str, str]) -> tuple[int, BreakMode] | None:
        after = headers.get(FAKE_BREAK_AFTER_HEADER)
        if after is not None:
            mode = headers.get(FAKE_BREAK_MODE_HEADER, "error")
            return int(after), "close" if mode == "close" else "error"
        if not self._breaks:
            return None
        with self._lock:
            return self._breaks.pop(0) if self._breaks else None

    def _delay(self, headers: Mapping[str, str]) -> float:
        extra = headers.get(FAKE_LATENCY_HEADER)
        return self.latency + (float(extra) if extra else 0.0)


class ReplayServer(FakeLLMServer):
    """A :class:`FakeLLMServer` that only serves recorded interactions.

    Args:
        paths: A cassette path, or several paths and/or :class:`Interaction` values.
        latency: Seconds to wait before the first byte of every response.
        chunk_delay: Seconds to wait between SSE events.
        allow_repeats: Serve a route's last interaction again once all were played.
        record_requests: Keep every request in :attr:`requests`.

    Example:
        >>> with ReplayServer("test_chat.yaml") as server:  # doctest: +SKIP
        ...     ...
    """

    def __init__(
        self,
        paths: CassetteSource,
        *,
        latency: float = 0.0,
        chunk_delay: float = 0.0,
        allow_repeats: bool = False,
        record_requests: bool = True,
    ) -> None:
        super().__init__(
            latency,
            chunk_delay,
            cassette=paths,
            allow_repeats=allow_repeats,
            record_requests=record_requests,
        )


def _replay(
    replayer: CassetteReplayer, method: str, path: str, body: Any, provider: str, number: int
) -> _Reply:
    interaction = replayer.match(method, path, body)
    if interaction is None:
        message = f"No recorded interaction left for {method} {path}"
        return _error(provider, 404, number, message=message)
    headers = [(k, v) for k, v in interaction.response_headers if k not in _UNREPLAYED_HEADERS]
    if interaction.is_stream and interaction.status == 200:
        error_event = _ANTHROPIC_STREAM_ERROR if provider == "anthropic" else _OPENAI_STREAM_ERROR
        return _Reply(200, headers, events=interaction.sse_events(), error_event=error_event)
    return _Reply(interaction.status, headers, interaction.response_body)


def _interactions(source: CassetteSource) -> list[Interaction]:
    if isinstance(source, str | os.PathLike):
        return load_cassette(source)
    loaded: list[Interaction] = []
    for item in source:
        loaded.extend([item] if isinstance(item, Interaction) else load_cassette(Path(item)))
    return loaded


# -- HTTP plumbing ----------------------------------------------------------------------


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(
        self, address: tuple[str, int], handler: type[_Handler], app: FakeLLMServer
    ) -> None:
        self.app = app
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.debug("fake LLM server: error on a connection", exc_info=True)


def _accept_loop(tcp: _TCPServer, closed: threading.Event) -> None:
    """Accept connections until ``closed`` is set (and a connection wakes the loop)."""
    while True:
        try:
            request, address = tcp.get_request()
        except OSError:
            return  # the listening socket is gone
        if closed.is_set():
            tcp.shutdown_request(request)
            return
        try:
            tcp.process_request(request, address)
        except Exception:
            tcp.handle_error(request, address)
            tcp.shutdown_request(request)


class _Handler(socketserver.StreamRequestHandler):
    """Speaks just enough HTTP/1.1 (keep-alive, chunked) for the SDKs, cheaply."""

    disable_nagle_algorithm = True
    server: _TCPServer

    def setup(self) -> None:
        super().setup()
        app = self.server.app
        with app._lock:
            app._connections.add(self.connection)

    def finish(self) -> None:
        app = self.server.app
        with app._lock:
            app._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def handle(self) -> None:
        try:
            while self._handle_one():
                pass
        except OSError:
            pass  # the client went away

    def _handle_one(self) -> bool:
        rfile = self.rfile
        line = rfile.readline(65537)
        while line in (b"\r\n", b"\n"):
            line = rfile.readline(65537)
        parts = line.split()
        if len(parts) != 3:
            return False
        method, target, version = (p.decode("latin-1") for p in parts)
        headers: dict[str, str] = {}
        while True:
            header = rfile.readline(65537)
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        raw = self._read_body(headers)
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection and (
            version == "HTTP/1.1" or "keep-alive" in connection
        )
        app = self.server.app
        broken = None
        try:
            reply = app._respond(method, target, headers, raw)
            delay = app._delay(headers)
            if reply.events is not None:
                broken = app._take_break(headers)
        except Exception:
            _log.exception("fake LLM server: failed to answer %s %s", method, target)
            reply = _error("openai", 500, 0, message="The fake LLM server failed; see its log.")
            delay = 0.0
        if delay > 0 and app._closed.wait(delay):
            return False
        if reply.events is None:
            self._send(reply.status, reply.headers, reply.body, keep_alive)
            return keep_alive
        return self._stream(reply, reply.events, broken, keep_alive)

    def _read_body(self, headers: Mapping[str, str]) -> bytes:
        length = headers.get("content-length")
        if length is not None:
            return self.rfile.read(int(length))
        if "chunked" not in headers.get("transfer-encoding", ""):
            return b""
        body = bytearray()
        while True:
            size = int(self.rfile.readline(65537).split(b";")[0], 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(body)
            body += self.rfile.read(size)
            self.rfile.readline(65537)

    def _head(self, status: int, headers: list[tuple[str, str]], keep_alive: bool) -> bytes:
        lines = [f"HTTP/1.1 {status} {_reason(status)}\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in headers)
        if not keep_alive:
            lines.append("connection: close\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1")

    def _send(
        self, status: int, headers: list[tuple[str, str]], body: bytes, keep_alive: bool
    ) -> None:
        head = self._head(status, [*headers, ("content-length", str(len(body)))], keep_alive)
        self.connection.sendall(head + body)

    def _stream(
        self,
        reply: _Reply,
        events: list[bytes],
        broken: tuple[int, BreakMode] | None,
        keep_alive: bool,
    ) -> bool:
        app = self.server.app
        headers = [*reply.headers, ("transfer-encoding", "chunked")]
        if not any(name == "cache-control" for name, _ in reply.headers):
            headers.append(("cache-control", "no-cache"))
        head = self._head(reply.status, headers, keep_alive)
        if broken is not None:
            events = events[: broken[0]]
        if broken is not None and broken[1] == "error":
            events = [*events, reply.error_event]
        send = self.connection.sendall
        if app.chunk_delay <= 0:
            send(head + b"".join(_chunk(event) for event in events))
        else:
            send(head)
            for n, event in enumerate(events):
                if n and app._closed.wait(app.chunk_delay):
                    return False
                send(_chunk(event))
        if broken is not None and broken[1] == "close":
            self.connection.shutdown(socket.SHUT_RDWR)
            return False
        send(b"0\r\n\r\n")
        return keep_alive


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


@functools.cache
def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def _redact(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: REDACTED if k in _SECRET_HEADERS else v for k, v in headers.items()}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _json_reply(value: Any, number: int, provider: str = "openai", status: int = 200) -> _Reply:
    return _Reply(status, [("content-type", _JSON), *_id_headers(provider, number)], _dumps(value))


def _id_headers(provider: str, number: int) -> list[tuple[str, str]]:
    if provider == "anthropic":
        return [("request-id", f"req_fake{number:08d}")]
    return [("x-request-id", f"req_fake{number:08d}"), ("openai-processing-ms", "0")]


def _sse(events: list[bytes], number: int, provider: str, error_event: bytes) -> _Reply:
    headers = [("content-type", _SSE), *_id_headers(provider, number)]
    return _Reply(200, headers, events=events, error_event=error_event)


def _data(value: Any) -> bytes:
    return b"data: " + _dumps(value) + b"\n\n"


def _event(name: str, value: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + _dumps(value) + b"\n\n"


# -- errors -----------------------------------------------------------------------------

# status: (OpenAI type, OpenAI code, Anthropic type, message)
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
_OPENAI_STREAM_ERROR = _data(
    {"error": {"message": _ERRORS[500][3], "type": "server_error", "param": None, "code": None}}
)
_ANTHROPIC_STREAM_ERROR = _event(
    "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
)


def _error(
    provider: str,
    status: int,
    number: int,
    *,
    message: str | None = None,
    retry_after: str | None = None,
    body: Any = None,
) -> _Reply:
    default = _ERRORS[500] if status >= 500 else _ERRORS[400]
    openai_type, code, anthropic_type, text = _ERRORS.get(status, default)
    text = message or text
    if body is None and provider == "anthropic":
        body = {
            "type": "error",
            "error": {"type": anthropic_type, "message": text},
            "request_id": f"req_fake{number:08d}",
        }
    elif body is None:
        body = {"error": {"message": text, "type": openai_type, "param": None, "code": code}}
    if isinstance(body, str):
        body = body.encode()
    payload = body if isinstance(body, bytes) else _dumps(body)
    headers = [("content-type", _JSON), *_id_headers(provider, number)]
    if retry_after is not None:
        headers.append(("retry-after", retry_after))
    return _Reply(status, headers, payload)


# -- shared reply logic ------------------------------------------------------------------


def _words(value: Any) -> int:
    """Count the words (= tokens) of the text in a message list, message or content."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_words(item) for item in value)
    if not isinstance(value, Mapping):
        return 0
    total = sum(
        _words(value[key]) for key in ("text", "content", "arguments", "output") if key in value
    )
    if value.get("type") == "tool_use":
        total += len(json.dumps(value.get("input")).split())
    for call in value.get("tool_calls") or ():
        if isinstance(call, Mapping):
            total += _words(call.get("function"))
    return total


def _text(value: Any) -> str:
    """The plain text of a message content (str or list of parts)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(_text(item) for item in value)
    if isinstance(value, Mapping):
        inner = value.get("text", value.get("content"))
        return "" if inner is None else _text(inner)
    return ""


def _reply_text(prompt: str, words: int, variant: int = 0) -> str:
    head = ["Echo:" if variant == 0 else f"Echo#{variant + 1}:", *prompt.split()[:6]]
    filler = itertools.islice(itertools.cycle(_FILLER), max(0, words - len(head)))
    return " ".join([*head, *filler][:words])


def _pieces(text: str) -> list[str]:
    return _PIECES.findall(text)


def _limit(text: str, limit: Any) -> tuple[str, bool]:
    """Cut ``text`` to ``limit`` tokens; return it and whether it was cut."""
    if not isinstance(limit, int) or isinstance(limit, bool):
        return text, False
    pieces = _pieces(text)
    if len(pieces) <= limit:
        return text, False
    return "".join(pieces[: max(limit, 0)]), True


def _stop_at(text: str, stop: Any) -> tuple[str, str | None]:
    """Cut ``text`` before the first stop sequence it contains."""
    stops = [stop] if isinstance(stop, str) else [s for s in stop or () if isinstance(s, str)]
    hits = [(text.find(s), s) for s in stops if s and s in text]
    if not hits:
        return text, None
    index, sequence = min(hits)
    return text[:index].rstrip(), sequence


def _tokens(text: str) -> int:
    return len(text.split())


def _reasoning_tokens(model: str) -> int:
    return _REASONING_TOKENS if _REASONING_MODELS.match(model) else 0


def _openai_cached(prompt_tokens: int, key: Any, cache: set[str]) -> int:
    """Cached prompt tokens, as OpenAI reports them: repeated prompts of 1024+ tokens."""
    if prompt_tokens < 1024:
        return 0
    digest = hashlib.sha1(_dumps(key)).hexdigest()
    if digest in cache:
        return prompt_tokens // 128 * 128
    cache.add(digest)
    return 0


@dataclass(frozen=True, slots=True)
class _Tool:
    name: str
    schema: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _ToolCall:
    id: str
    name: str
    arguments: str

    @property
    def tokens(self) -> int:
        return max(1, len(self.arguments) // 4)


def _tools(body: Mapping[str, Any]) -> list[_Tool]:
    found: list[_Tool] = []
    for spec in [*(body.get("tools") or ()), *(body.get("functions") or ())]:
        if not isinstance(spec, Mapping):
            continue
        nested = spec.get("function")
        function: Mapping[str, Any] = nested if isinstance(nested, Mapping) else spec
        kind = spec.get("type", "function")
        if kind not in ("function", "custom") or not isinstance(function.get("name"), str):
            continue  # hosted / server tools (web search, code interpreter ...) are not called
        schema = function.get("parameters") or function.get("input_schema") or {}
        found.append(_Tool(function["name"], schema if isinstance(schema, Mapping) else {}))
    return found


def _mentions(prompt: str, name: str) -> bool:
    lowered = name.lower()
    if lowered in prompt:
        return True
    parts = [
        p for p in re.split(r"[_\-\s.]+", lowered) if len(p) >= 4 and p not in _GENERIC_NAME_PARTS
    ]
    return any(re.search(rf"\b{re.escape(part)}", prompt) for part in parts)


def _pick_tools(
    tools: list[_Tool], choice: Any, prompt: str, last_is_user: bool, parallel: bool
) -> list[_Tool]:
    """Decide which tools the fake model calls (see the module docstring)."""
    if not tools:
        return []
    required = False
    if isinstance(choice, str):
        if choice == "none":
            return []
        required = choice in ("required", "any")
    elif isinstance(choice, Mapping):
        kind = choice.get("type")
        function = choice.get("function")
        name = choice.get("name") or (
            function.get("name") if isinstance(function, Mapping) else None
        )
        if kind == "none":
            return []
        if isinstance(name, str):
            return [next((t for t in tools if t.name == name), _Tool(name, {}))]
        required = kind in ("any", "required")
    if not (last_is_user or required):
        return []
    lowered = prompt.lower()
    picked = [t for t in tools if _mentions(lowered, t.name)]
    if not picked and (required or re.search(r"\btools?\b", lowered)):
        picked = [tools[0]]
    return picked if parallel else picked[:1]


def _example(schema: Any, root: Mapping[str, Any], hint: str = "value", depth: int = 0) -> Any:
    """A deterministic instance of a JSON schema (enough for tool arguments and json_schema)."""
    if not isinstance(schema, Mapping) or depth > 8:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        return _example(target, root, hint, depth + 1)
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [
            o for o in schema.get(key) or () if isinstance(o, Mapping) and o.get("type") != "null"
        ]
        if options:
            return _example(options[0], root, hint, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {name: _example(sub, root, name, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        return [_example(schema.get("items"), root, hint, depth + 1)]
    return {
        "integer": 1,
        "number": 1.5,
        "boolean": True,
        "null": None,
    }.get(str(kind), _example_string(schema, hint))


def _example_string(schema: Mapping[str, Any], hint: str) -> str:
    formats = {"date-time": "2024-01-01T00:00:00Z", "date": "2024-01-01", "email": "a@example.com"}
    return formats.get(str(schema.get("format")), f"example {hint}")


def _calls(picked: list[_Tool], prefix: str, number: int, choice: int) -> list[_ToolCall]:
    return [
        _ToolCall(
            f"{prefix}fake{number:08d}_{choice}_{n}",
            tool.name,
            json.dumps(_example(tool.schema, tool.schema, tool.name) or {}, separators=(",", ":")),
        )
        for n, tool in enumerate(picked)
    ]


def _arg_pieces(arguments: str) -> list[str]:
    return _ARG_PIECES.findall(arguments) or [arguments]


# -- OpenAI chat completions ---------------------------------------------------------------


@dataclass(slots=True)
class _Choice:
    text: str | None
    calls: list[_ToolCall] = field(default_factory=list)
    finish: str = "stop"
    legacy_function: bool = False

    @property
    def tokens(self) -> int:
        return sum(c.tokens for c in self.calls) + (_tokens(self.text) if self.text else 0)


def _chat_choices(call: _Call) -> list[_Choice]:
    body = call.body
    messages = [m for m in body.get("messages") or () if isinstance(m, Mapping)]
    users = [m for m in messages if m.get("role") == "user"]
    prompt = _text(users[-1].get("content")) if users else ""
    last_is_user = bool(messages) and messages[-1].get("role") == "user"
    legacy = not body.get("tools") and bool(body.get("functions"))
    choice_arg = body.get("function_call") if legacy else body.get("tool_choice")
    parallel = body.get("parallel_tool_calls") is not False and not legacy
    picked = _pick_tools(_tools(body), choice_arg, prompt, last_is_user, parallel)
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    choices = []
    for index in range(max(1, int(body.get("n") or 1))):
        if picked:
            calls = _calls(picked, "call_", call.number, index)
            finish = "function_call" if legacy else "tool_calls"
            choices.append(_Choice(None, calls, finish, legacy))
            continue
        text = _formatted(body.get("response_format"), _reply_text(prompt, call.reply_words, index))
        text, cut = _limit(text, limit)
        text, _stop = _stop_at(text, body.get("stop"))
        choices.append(_Choice(text, finish="length" if cut else "stop"))
    return choices


def _formatted(response_format: Any, text: str) -> str:
    """The reply as JSON when the request asks for json_object / json_schema output."""
    if not isinstance(response_format, Mapping):
        return text
    kind = response_format.get("type")
    if kind == "json_object":
        return json.dumps({"reply": text})
    if kind == "json_schema":
        spec = response_format.get("json_schema") or response_format
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        return json.dumps(_example(schema, schema) if isinstance(schema, Mapping) else {})
    return text


def _chat_usage(call: _Call, completion: int) -> dict[str, Any]:
    messages = call.body.get("messages") or []
    prompt_tokens = max(1, _words(messages))
    reasoning = _reasoning_tokens(str(call.body.get("model", "")))
    completion += reasoning
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
        "prompt_tokens_details": {
            "cached_tokens": _openai_cached(prompt_tokens, messages, call.cache),
            "audio_tokens": 0,
        },
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _openai_chat(call: _Call) -> _Reply:
    choices = _chat_choices(call)
    usage = _chat_usage(call, sum(c.tokens for c in choices))
    head = {
        "id": f"chatcmpl-fake{call.number:08d}",
        "created": _CREATED,
        "model": str(call.body.get("model") or "gpt-fake"),
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }
    if call.body.get("stream"):
        return _sse(
            _chat_events(call, head, choices, usage), call.number, "openai", _OPENAI_STREAM_ERROR
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
    return _json_reply(
        {**head, "object": "chat.completion", "choices": out, "usage": usage}, call.number
    )


def _chat_events(
    call: _Call, head: dict[str, Any], choices: list[_Choice], usage: dict[str, Any]
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
        return _data(payload)

    events = []
    for index, choice in enumerate(choices):
        content = None if choice.calls else ""
        events.append(chunk(index, {"role": "assistant", "content": content, "refusal": None}))
        for piece in _pieces(choice.text or ""):
            events.append(chunk(index, {"content": piece}))
        calls = choice.calls[:1] if choice.legacy_function else choice.calls
        for n, tool_call in enumerate(calls):
            for delta in _call_deltas(tool_call, n, choice.legacy_function):
                events.append(chunk(index, delta))
        events.append(chunk(index, {}, choice.finish))
    if include_usage:
        events.append(_data({**base, "choices": [], "usage": usage}))
    events.append(b"data: [DONE]\n\n")
    return events


def _call_deltas(tool_call: _ToolCall, n: int, legacy: bool) -> list[dict[str, Any]]:
    """The deltas streaming one tool call: id and name first, then the arguments in pieces."""
    pieces = _arg_pieces(tool_call.arguments)
    if legacy:
        first: dict[str, Any] = {"name": tool_call.name, "arguments": ""}
        return [{"function_call": first}, *({"function_call": {"arguments": p}} for p in pieces)]
    function = {"name": tool_call.name, "arguments": ""}
    start = {"index": n, "id": tool_call.id, "type": "function", "function": function}
    rest = ({"tool_calls": [{"index": n, "function": {"arguments": p}}]} for p in pieces)
    return [{"tool_calls": [start]}, *rest]


# -- OpenAI legacy completions -------------------------------------------------------------


def _openai_completions(call: _Call) -> _Reply:
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
            reply, cut = _limit(" " + _reply_text(text, call.reply_words, variant), limit)
            reply, _stop = _stop_at(reply, body.get("stop"))
            completion_tokens += _tokens(reply)
            full = (text if body.get("echo") else "") + reply
            choices.append(
                {
                    "text": full,
                    "index": p_index * n + variant,
                    "logprobs": _logprobs(full, body.get("logprobs")),
                    "finish_reason": "length" if cut else "stop",
                }
            )
    prompt_tokens = max(1, sum(len(p) if isinstance(p, list) else _tokens(str(p)) for p in prompts))
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    head = {"id": f"cmpl-fake{call.number:08d}", "object": "text_completion", "created": _CREATED}
    head["model"] = str(body.get("model") or "gpt-3.5-turbo-instruct")
    if not body.get("stream"):
        return _json_reply({**head, "choices": choices, "usage": usage}, call.number)
    options = body.get("stream_options")
    events = []
    for choice in choices:
        pieces = _pieces(choice["text"]) or [""]
        for n_piece, piece in enumerate(pieces):
            last = n_piece == len(pieces) - 1
            delta = {"text": piece, "index": choice["index"], "logprobs": None}
            delta["finish_reason"] = choice["finish_reason"] if last else None
            events.append(_data({**head, "choices": [delta]}))
    if isinstance(options, Mapping) and options.get("include_usage"):
        events.append(_data({**head, "choices": [], "usage": usage}))
    events.append(b"data: [DONE]\n\n")
    return _sse(events, call.number, "openai", _OPENAI_STREAM_ERROR)


def _logprobs(text: str, requested: Any) -> dict[str, Any] | None:
    if not isinstance(requested, int) or isinstance(requested, bool):
        return None
    tokens = _pieces(text)
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


def _openai_embeddings(call: _Call) -> _Reply:
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
        tokens += len(item) if isinstance(item, list) else _tokens(text)
        vector = _vector(text, dimensions)
        embedding: Any = (
            base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            if as_base64
            else list(vector)
        )
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return _json_reply(
        {"object": "list", "data": data, "model": model, "usage": usage}, call.number
    )


# -- OpenAI Responses API -------------------------------------------------------------------


def _openai_responses(call: _Call) -> _Reply:
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
        _text(user_items[-1] if isinstance(user_items[-1], str) else user_items[-1].get("content"))
        if user_items
        else ""
    )
    last = items[-1] if items else None
    last_is_user = isinstance(last, str) or (
        isinstance(last, Mapping) and last.get("role") == "user"
    )
    parallel = body.get("parallel_tool_calls") is not False
    picked = _pick_tools(_tools(body), body.get("tool_choice"), prompt, last_is_user, parallel)
    number = call.number
    output: list[dict[str, Any]] = []
    reasoning = _reasoning_tokens(model)
    if reasoning:
        output.append(
            {"id": f"rs_fake{number:08d}", "type": "reasoning", "summary": [], "status": None}
        )
    cut = False
    for tool_call in _calls(picked, "call_", number, 0):
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
    completion = sum(c.tokens for c in _calls(picked, "call_", number, 0))
    if not picked:
        text_options = body.get("text")
        text_format = text_options.get("format") if isinstance(text_options, Mapping) else None
        text = _formatted(text_format, _reply_text(prompt, call.reply_words))
        text, cut = _limit(text, body.get("max_output_tokens"))
        completion += _tokens(text)
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
    input_tokens = max(1, _words(items) + _words(body.get("instructions") or ""))
    output_tokens = completion + reasoning
    usage = {
        "input_tokens": input_tokens,
        "input_tokens_details": {
            "cached_tokens": _openai_cached(
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
        "created_at": _CREATED,
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
        return _json_reply(response, number)
    return _sse(_responses_events(response), number, "openai", _RESPONSES_STREAM_ERROR)


_RESPONSES_STREAM_ERROR = _event(
    "error",
    {
        "type": "error",
        "code": "server_error",
        "message": _ERRORS[500][3],
        "param": None,
        "sequence_number": 0,
    },
)


def _responses_events(response: dict[str, Any]) -> list[bytes]:
    events: list[bytes] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append(_event(kind, {"type": kind, "sequence_number": len(events), **fields}))

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
            for piece in _pieces(part["text"]):
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
            for piece in _arg_pieces(item["arguments"]):
                emit("response.function_call_arguments.delta", **where, delta=piece)
            emit("response.function_call_arguments.done", **where, arguments=item["arguments"])
        else:
            emit("response.output_item.added", output_index=index, item=item)
        emit("response.output_item.done", output_index=index, item=item)
    final = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
    emit(final, response=response)
    return events


# -- Anthropic Messages ---------------------------------------------------------------------


def _anthropic_messages(call: _Call) -> _Reply:
    body = call.body
    number = call.number
    if not isinstance(body.get("max_tokens"), int):
        return _error("anthropic", 400, number, message="max_tokens: Field required")
    model = str(body.get("model") or "claude-fake")
    content = _anthropic_content(call)
    stop_reason, stop_sequence = "end_turn", None
    text_blocks = [b for b in content if b["type"] == "text"]
    if any(b["type"] == "tool_use" for b in content):
        stop_reason = "tool_use"
    elif text_blocks:
        block = text_blocks[-1]
        block["text"], stop_sequence = _stop_at(block["text"], body.get("stop_sequences"))
        block["text"], cut = _limit(block["text"], body["max_tokens"])
        stop_reason = "stop_sequence" if stop_sequence else "max_tokens" if cut else "end_turn"
    output_tokens = sum(
        _tokens(b.get("text", b.get("thinking", "")))
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
        return _json_reply(message, number, "anthropic")
    return _sse(_anthropic_events(message), number, "anthropic", _ANTHROPIC_STREAM_ERROR)


def _anthropic_content(call: _Call) -> list[dict[str, Any]]:
    body = call.body
    messages = [m for m in body.get("messages") or () if isinstance(m, Mapping)]
    users = [m for m in messages if m.get("role") == "user"]
    prompt = _text(users[-1].get("content")) if users else ""
    last = messages[-1] if messages else {}
    last_content = last.get("content")
    only_results = isinstance(last_content, list) and all(
        isinstance(b, Mapping) and b.get("type") == "tool_result" for b in last_content
    )
    last_is_user = last.get("role") == "user" and not only_results
    choice = body.get("tool_choice")
    parallel = not (isinstance(choice, Mapping) and choice.get("disable_parallel_tool_use"))
    picked = _pick_tools(_tools(body), choice, prompt, last_is_user, parallel)
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
    for tool_call in _calls(picked, "toolu_", call.number, 0):
        arguments = json.loads(tool_call.arguments)
        content.append(
            {"type": "tool_use", "id": tool_call.id, "name": tool_call.name, "input": arguments}
        )
    if not picked:
        content.append({"type": "text", "text": _reply_text(prompt, call.reply_words)})
    return content


def _anthropic_input_usage(call: _Call) -> dict[str, Any]:
    """Input tokens split into uncached / cache write / cache read by ``cache_control``."""
    blocks: list[Any] = []
    system = call.body.get("system")
    blocks.extend(system if isinstance(system, list) else [system] if system else [])
    for message in call.body.get("messages") or ():
        content = message.get("content") if isinstance(message, Mapping) else None
        blocks.extend(content if isinstance(content, list) else [content])
    total = max(1, _words(blocks))
    marked = [n for n, b in enumerate(blocks) if isinstance(b, Mapping) and b.get("cache_control")]
    prefix = blocks[: marked[-1] + 1] if marked else []
    prefix_tokens = min(total, _words(prefix))
    write = read = 0
    if prefix_tokens:
        digest = "anthropic:" + hashlib.sha1(_dumps([call.body.get("model"), prefix])).hexdigest()
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
        _event(
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
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        )
        if index == 0:
            events.append(_event("ping", {"type": "ping"}))
        if kind == "text":
            deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"])]
        elif kind == "thinking":
            deltas = [{"type": "thinking_delta", "thinking": p} for p in _pieces(block["thinking"])]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:
            arguments = json.dumps(block["input"], separators=(",", ":"))
            deltas = [
                {"type": "input_json_delta", "partial_json": p}
                for p in ["", *_arg_pieces(arguments)]
            ]
        for delta in deltas:
            events.append(
                _event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            )
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    final_usage = {k: v for k, v in usage.items() if k not in ("cache_creation", "service_tier")}
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    events.append(
        _event("message_delta", {"type": "message_delta", "delta": delta, "usage": final_usage})
    )
    events.append(_event("message_stop", {"type": "message_stop"}))
    return events


def _anthropic_count_tokens(call: _Call) -> _Reply:
    blocks = [call.body.get("system") or "", call.body.get("messages") or []]
    return _json_reply({"input_tokens": max(1, _words(blocks))}, call.number, "anthropic")


_ROUTES: dict[tuple[str, str], Callable[[_Call], _Reply]] = {
    ("POST", "/v1/chat/completions"): _openai_chat,
    ("POST", "/v1/completions"): _openai_completions,
    ("POST", "/v1/embeddings"): _openai_embeddings,
    ("POST", "/v1/responses"): _openai_responses,
    ("POST", "/v1/messages"): _anthropic_messages,
    ("POST", "/v1/messages/count_tokens"): _anthropic_count_tokens,
}
