"""The fake server: its lifecycle, fault API, request recording and routing.

:class:`FakeLLMServer` parses each request, records it, applies a queued fault, and hands it
to a route of :mod:`~clew.testing.llm_server.openai_routes`,
:mod:`~clew.testing.llm_server.openai_responses`,
:mod:`~clew.testing.llm_server.anthropic_routes` or, for paths with parameters, of
:mod:`~clew.testing.llm_server.gateway_routes` (Cohere, Gemini / Vertex AI, Bedrock) (or, in
replay mode, to the cassette replayer). The HTTP side is in
:mod:`~clew.testing.llm_server.transport`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from clew.testing.cassettes import CassetteReplayer, Interaction, canonical_route, load_cassette
from clew.testing.llm_server.anthropic_routes import ANTHROPIC_ROUTES
from clew.testing.llm_server.cohere_routes import COHERE_STREAM_ERROR
from clew.testing.llm_server.faults import (
    ANTHROPIC_STREAM_ERROR,
    FAKE_REPLY_WORDS_HEADER,
    OPENAI_STREAM_ERROR,
    BreakMode,
    FaultQueue,
    StatusFault,
    error_reply,
    request_delay,
)
from clew.testing.llm_server.gateway_routes import PATTERN_ROUTES
from clew.testing.llm_server.gemini_routes import GEMINI_STREAM_ERROR
from clew.testing.llm_server.openai_responses import RESPONSES_ROUTES
from clew.testing.llm_server.openai_routes import OPENAI_ROUTES
from clew.testing.llm_server.replies import Call, Reply, Route
from clew.testing.llm_server.transport import Handler, TCPServer, accept_loop

__all__ = ["REDACTED", "CassetteSource", "FakeLLMServer", "RecordedRequest", "ReplayServer"]

REDACTED = "REDACTED"

CassetteSource = str | os.PathLike[str] | Iterable[str | os.PathLike[str] | Interaction]

_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key"}
)
# Hop-by-hop and transport headers of a recording that must not be replayed verbatim.
_UNREPLAYED_HEADERS = frozenset(
    {"connection", "keep-alive", "set-cookie", "alt-svc", "strict-transport-security"}
)
_ROUTES: dict[tuple[str, str], Route] = {**OPENAI_ROUTES, **RESPONSES_ROUTES, **ANTHROPIC_ROUTES}


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
        self._faults = FaultQueue()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._connections: set[socket.socket] = set()
        self._tcp: TCPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> Self:
        """Bind and start serving in a daemon thread; idempotent. Returns the server."""
        if self._tcp is None:
            self._closed.clear()
            tcp = TCPServer(("127.0.0.1", self._port), Handler, self)
            self._tcp = tcp
            self._thread = threading.Thread(
                target=accept_loop,
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

    def providers(self, api_key: str = "test-key") -> dict[str, dict[str, str]]:
        """Settings that point every provider of :func:`clew.completion` at this server, for
        ``clew.configure(providers=server.providers())``.

        Example:
            >>> with FakeLLMServer() as server:
            ...     sorted(server.providers())[:3]
            ['anthropic', 'anyscale', 'aws_bedrock']
        """
        openai_format = {"base_url": self.openai_base_url, "api_key": api_key}
        settings = {
            name: dict(openai_format)
            for name in (
                "openai",
                "openrouter",
                "groq",
                "fireworks",
                "anyscale",
                "mistral",
                "litellm",
            )
        }
        settings["azure"] = {"base_url": self.url + "/openai", "api_key": api_key}
        for name in ("anthropic", "cohere", "vertexai"):
            settings[name] = {"base_url": self.url, "api_key": api_key}
        # A Bedrock API key (bearer) stands in for AWS credentials here.
        settings["aws_bedrock"] = {"base_url": self.url, "api_key": api_key, "region": "us-east-1"}
        return settings

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
        fault = StatusFault(status, None if retry_after is None else str(retry_after), body, path)
        self._faults.push_status(fault, times)

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
        self._faults.push_break(after, mode, times)

    def reset_faults(self) -> None:
        """Forget faults queued by :meth:`fail_next` and :meth:`break_next_stream`."""
        self._faults.clear()

    # -- request handling (handler threads) -------------------------------------------

    def _respond(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Reply:
        path, _, query = target.partition("?")
        body = _parse_body(raw)
        if self.record_requests:
            self.requests.append(RecordedRequest(method, path, query, _redact(headers), body))
        number = next(self._counter)
        route = canonical_route(path)
        provider = "anthropic" if route.startswith(("/v1/messages", "/v1/complete")) else "openai"
        builder: Route | None = None
        params: dict[str, str] = {}
        for route_method, pattern, route_provider, route_builder in PATTERN_ROUTES:
            match = pattern.fullmatch(path) if method == route_method else None
            if match is not None:
                provider, builder, params = route_provider, route_builder, match.groupdict()
                break
        fault = self._faults.take_status(route, headers)
        if fault is not None:
            return error_reply(
                provider, fault.status, number, retry_after=fault.retry_after, body=fault.body
            )
        if self._replayer is not None:
            return _replay(self._replayer, method, path, body, provider, number)
        if builder is None:
            builder = _ROUTES.get((method, route))
        if builder is None:
            return error_reply(provider, 404, number, message=f"Unknown route: {method} {path}")
        if not isinstance(body, Mapping):
            return error_reply(
                provider, 400, number, message="The request body must be a JSON object."
            )
        words = int(headers.get(FAKE_REPLY_WORDS_HEADER, self.reply_words))
        return builder(Call(body, number, max(1, words), self._cache, params))

    def _take_break(self, headers: Mapping[str, str]) -> tuple[int, BreakMode] | None:
        return self._faults.take_break(headers)

    def _delay(self, headers: Mapping[str, str]) -> float:
        return request_delay(self.latency, headers)


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
) -> Reply:
    interaction = replayer.match(method, path, body)
    if interaction is None:
        message = f"No recorded interaction left for {method} {path}"
        return error_reply(provider, 404, number, message=message)
    headers = [(k, v) for k, v in interaction.response_headers if k not in _UNREPLAYED_HEADERS]
    if interaction.is_stream and interaction.status == 200:
        error_event = {
            "anthropic": ANTHROPIC_STREAM_ERROR,
            "cohere": COHERE_STREAM_ERROR,
            "gemini": GEMINI_STREAM_ERROR,
        }.get(provider, OPENAI_STREAM_ERROR)
        return Reply(200, headers, events=interaction.sse_events(), error_event=error_event)
    return Reply(interaction.status, headers, interaction.response_body)


def _interactions(source: CassetteSource) -> list[Interaction]:
    if isinstance(source, str | os.PathLike):
        return load_cassette(source)
    loaded: list[Interaction] = []
    for item in source:
        loaded.extend([item] if isinstance(item, Interaction) else load_cassette(Path(item)))
    return loaded


def _parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def _redact(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: REDACTED if k in _SECRET_HEADERS else v for k, v in headers.items()}
