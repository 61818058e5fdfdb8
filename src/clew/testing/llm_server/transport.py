"""Just enough HTTP/1.1 for the SDK clients: keep-alive, chunked bodies, SSE streams.

The fake server's transport, kept apart from what it answers. A :class:`TCPServer` runs one
daemon thread per connection (:func:`accept_loop` accepts them); its :class:`Handler` reads
a request, asks the :class:`App` (the fake server) for a
:class:`~clew.testing.llm_server.replies.Reply`, waits out the latency and sends the reply:
a body with ``content-length``, or the SSE events as a chunked stream, broken as a queued
fault asks (an error event, or the connection dropped mid-body).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import socketserver
import threading
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Protocol

from clew.testing.llm_server.faults import BreakMode, error_reply
from clew.testing.llm_server.replies import Reply

__all__ = ["App", "Handler", "TCPServer", "accept_loop"]

_log = logging.getLogger(__name__)


class App(Protocol):
    """What the handler threads use of the server that owns the transport."""

    chunk_delay: float
    _lock: threading.Lock
    _closed: threading.Event
    _connections: set[socket.socket]

    def _respond(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Reply:
        """The reply to one request (a body, or SSE events)."""
        ...

    def _delay(self, headers: Mapping[str, str]) -> float:
        """Seconds to wait before the first byte."""
        ...

    def _take_break(self, headers: Mapping[str, str]) -> tuple[int, BreakMode] | None:
        """How this stream breaks, or None."""
        ...


class TCPServer(socketserver.ThreadingTCPServer):
    """A threading TCP server that keeps the :class:`App` its handlers answer for."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # socketserver's 5 drops connections a benchmark opens at once
    block_on_close = False

    def __init__(self, address: tuple[str, int], handler: type[Handler], app: App) -> None:
        self.app = app
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.debug("fake LLM server: error on a connection", exc_info=True)


def accept_loop(tcp: TCPServer, closed: threading.Event) -> None:
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


class Handler(socketserver.StreamRequestHandler):
    """Speaks just enough HTTP/1.1 (keep-alive, chunked) for the SDKs, cheaply."""

    disable_nagle_algorithm = True
    server: TCPServer

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
            reply = error_reply(
                "openai", 500, 0, message="The fake LLM server failed; see its log."
            )
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
        reply: Reply,
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
