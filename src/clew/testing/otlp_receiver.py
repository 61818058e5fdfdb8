"""Real OTLP receivers for tests and benchmarks: OTLP/HTTP and OTLP/gRPC on ``127.0.0.1``.

:class:`OtlpHttpReceiver` is an HTTP server that decodes each ``POST /v1/traces`` body
(gzip or deflate as the ``Content-Encoding`` says) into an ``ExportTraceServiceRequest`` with
``opentelemetry-proto``, as a collector would, and can misbehave on demand::

    with OtlpHttpReceiver() as receiver:
        receiver.add_faults(Fault.status(503), Fault.reset())  # the next two requests
        ...  # export to receiver.url
        assert receiver.span_count() == 10

Faults apply to the next requests in order, then the ``default`` behaviour (a 200) resumes:
``Fault.status(code, body, headers)`` answers with that status, ``Fault.delay(s)`` answers 200
after ``s`` seconds, ``Fault.hang()`` never answers (until the receiver closes),
``Fault.reset()`` resets the connection after reading the request line and headers, and
``Fault.garbage()`` answers with bytes that are not HTTP. ``set_default(Fault.hang())`` makes
a receiver that accepts every connection and never answers. Only requests answered with a
2xx count as received. :class:`OtlpGrpcReceiver` (needs ``grpcio``) does the same over gRPC.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span

__all__ = ["Fault", "OtlpGrpcReceiver", "OtlpHttpReceiver", "ReceivedRequest", "unused_port"]


def unused_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Fault:
    """How the receiver answers one request. Build with the class methods."""

    kind: str
    code: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @classmethod
    def ok(cls) -> Fault:
        """Accept the spans and answer 200 (the default)."""
        return cls("ok")

    @classmethod
    def status(
        cls, code: int, *, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> Fault:
        """Answer with HTTP status ``code`` (the spans are not kept)."""
        return cls("status", code=code, body=body, headers=dict(headers or {}))

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Accept, but answer only after ``seconds``."""
        return cls("delay", seconds=seconds)

    @classmethod
    def hang(cls) -> Fault:
        """Read the request and never answer (until the receiver closes)."""
        return cls("hang")

    @classmethod
    def reset(cls) -> Fault:
        """Reset the connection (TCP RST) in the middle of the request."""
        return cls("reset")

    @classmethod
    def garbage(cls) -> Fault:
        """Answer with bytes that are not an HTTP response."""
        return cls("garbage")


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One accepted export request."""

    headers: dict[str, str]
    message: ExportTraceServiceRequest
    arrived: float


class _Received:
    """Accepted requests, every attempt's arrival time, and waiting for spans."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.requests: list[ReceivedRequest] = []
        self.attempts: list[float] = []
        self._span_count = 0

    def attempt(self) -> float:
        now = time.monotonic()
        with self._cond:
            self.attempts.append(now)
        return now

    def accept(self, request: ReceivedRequest) -> None:
        n = sum(len(ss.spans) for rs in request.message.resource_spans for ss in rs.scope_spans)
        with self._cond:
            self.requests.append(request)
            self._span_count += n
            self._cond.notify_all()

    def span_count(self) -> int:
        with self._cond:
            return self._span_count

    def wait_for_spans(self, count: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._span_count >= count, timeout)


class _ReceiverBase:
    def __init__(self) -> None:
        self._received = _Received()
        self._lock = threading.Lock()
        self._faults: deque[Any] = deque()
        self._closed = threading.Event()

    @property
    def requests(self) -> list[ReceivedRequest]:
        """The accepted requests, in arrival order."""
        return list(self._received.requests)

    @property
    def attempts(self) -> list[float]:
        """``time.monotonic()`` at the arrival of every request, accepted or not."""
        return list(self._received.attempts)

    def resource_spans(self) -> list[ResourceSpans]:
        """Every ``ResourceSpans`` received."""
        return [rs for r in self.requests for rs in r.message.resource_spans]

    def spans(self) -> list[Span]:
        """Every span received, in arrival order."""
        return [s for rs in self.resource_spans() for ss in rs.scope_spans for s in ss.spans]

    def span_count(self) -> int:
        """How many spans were accepted."""
        return self._received.span_count()

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until ``count`` spans were accepted; ``False`` after ``timeout`` seconds."""
        return self._received.wait_for_spans(count, timeout)

    def _next_fault(self, default: Any) -> Any:
        with self._lock:
            return self._faults.popleft() if self._faults else default

    def __enter__(self) -> Self:
        self.start()  # type: ignore[attr-defined]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()  # type: ignore[attr-defined]


class OtlpHttpReceiver(_ReceiverBase):
    """An OTLP/HTTP receiver on ``127.0.0.1`` (a free port unless ``port`` is given).

    Attributes:
        endpoint: the base URL, for ``OTEL_EXPORTER_OTLP_ENDPOINT``.
        url: the traces URL, ``endpoint + "/v1/traces"``.
    """

    def __init__(self, *, port: int = 0, path: str = "/v1/traces") -> None:
        super().__init__()
        self.path = path
        self._default = Fault.ok()
        self._server: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._port = port

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The traces URL."""
        return self.endpoint + self.path

    @property
    def port(self) -> int:
        """The port listened on (after :meth:`start`)."""
        assert self._server is not None, "start the receiver first"
        return int(self._server.server_address[1])

    def add_faults(self, *faults: Fault) -> None:
        """Answer the next requests with ``faults``, in order."""
        with self._lock:
            self._faults.extend(faults)

    def set_default(self, fault: Fault) -> None:
        """How to answer once the queued faults are used up (initially ``Fault.ok()``)."""
        self._default = fault

    def start(self) -> Self:
        """Bind and serve in a daemon thread; idempotent."""
        if self._server is None:
            self._server = _HttpServer(("127.0.0.1", self._port), _make_handler(self))
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="otlp-http-receiver",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, release hung requests, drop connections; idempotent."""
        server, self._server = self._server, None
        self._closed.set()
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def _answer(self, handler: _Handler) -> None:
        arrived = self._received.attempt()
        fault: Fault = self._next_fault(self._default)
        if fault.kind == "reset":
            handler.reset_connection()
            return
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length)
        if fault.kind == "hang":
            self._closed.wait()
            handler.close_connection = True
            return
        if fault.kind == "garbage":
            handler.wfile.write(b"this is not HTTP\r\n\r\n")
            handler.close_connection = True
            return
        if fault.kind == "delay":
            self._closed.wait(fault.seconds)
        if fault.kind == "status":
            handler.reply(fault.code, fault.body, fault.headers)
            return
        if handler.path.split("?")[0] != self.path:
            handler.reply(404, b"not found")
            return
        try:
            message = ExportTraceServiceRequest.FromString(
                _decompress(body, handler.headers.get("content-encoding", ""))
            )
        except Exception as exc:
            handler.reply(400, f"cannot decode ExportTraceServiceRequest: {exc}".encode())
            return
        headers = {k.lower(): v for k, v in handler.headers.items()}
        self._received.accept(ReceivedRequest(headers, message, arrived))
        reply = ExportTraceServiceResponse().SerializeToString()
        handler.reply(200, reply, {"content-type": "application/x-protobuf"})


def _decompress(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], handler: type[_Handler]) -> None:
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, handler)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as collectors do
    server: _HttpServer
    receiver: OtlpHttpReceiver

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)

    def do_POST(self) -> None:
        self.receiver._answer(self)

    def reply(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def reset_connection(self) -> None:
        # SO_LINGER with a zero timeout makes close() send a TCP RST.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.close()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the receiver's state, not its access log."""


def _make_handler(receiver: OtlpHttpReceiver) -> type[_Handler]:
    return type("OtlpHandler", (_Handler,), {"receiver": receiver})


class OtlpGrpcReceiver(_ReceiverBase):
    """An OTLP/gRPC receiver on ``127.0.0.1`` (needs ``grpcio``).

    ``fail_next("UNAVAILABLE", times=2)`` makes the next calls fail with that status code.

    Attributes:
        endpoint: ``http://127.0.0.1:<port>``, for ``OTEL_EXPORTER_OTLP_ENDPOINT``.
    """

    def __init__(self) -> None:
        super().__init__()
        import grpc  # type: ignore[import-untyped,unused-ignore]

        self._grpc = grpc
        self._server: Any = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, code: str, *, times: int = 1, details: str = "injected fault") -> None:
        """Fail the next ``times`` calls with status ``code`` (a ``grpc.StatusCode`` name)."""
        with self._lock:
            self._faults.extend([(code, details)] * times)

    def start(self) -> Self:
        """Bind and serve; idempotent."""
        if self._server is not None:
            return self
        grpc = self._grpc
        handler = grpc.unary_unary_rpc_method_handler(
            self._export,
            request_deserializer=ExportTraceServiceRequest.FromString,
            response_serializer=ExportTraceServiceResponse.SerializeToString,
        )
        service = grpc.method_handlers_generic_handler(
            "opentelemetry.proto.collector.trace.v1.TraceService", {"Export": handler}
        )
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers((service,))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        return self

    def close(self) -> None:
        """Stop serving; idempotent."""
        server, self._server = self._server, None
        self._closed.set()
        if server is not None:
            server.stop(grace=None).wait(2.0)

    def _export(self, request: ExportTraceServiceRequest, context: Any) -> Any:
        arrived = self._received.attempt()
        fault = self._next_fault(None)
        if fault is not None:
            code, details = fault
            abort: Callable[..., Any] = context.abort
            abort(getattr(self._grpc.StatusCode, code), details)
        headers = {str(k): str(v) for k, v in context.invocation_metadata()}
        self._received.accept(ReceivedRequest(headers, request, arrived))
        return ExportTraceServiceResponse()
