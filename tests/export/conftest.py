"""Fixtures for the export tests: real receivers, real SDK spans, fast retry policies."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer

from clew.exporters.base import PayloadExporter
from clew.exporters.otlp import create_otlp_exporter
from clew.exporters.pipeline import ExportPipeline, RetryPolicy
from clew.testing.otlp_receiver import OtlpHttpReceiver

FAST_RETRY = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, budget=2.0)


@pytest.fixture
def receiver() -> Iterator[OtlpHttpReceiver]:
    with OtlpHttpReceiver() as r:
        yield r


class Harness:
    """Builds pipelines and tracers, and shuts them all down at the end of the test."""

    def __init__(self) -> None:
        self.pipelines: list[ExportPipeline] = []
        self.providers: list[TracerProvider] = []

    def pipeline(self, exporter: Any, **options: Any) -> ExportPipeline:
        options.setdefault("name", "test")
        if isinstance(exporter, PayloadExporter):
            options.setdefault("retry", FAST_RETRY)
        pipeline = ExportPipeline(exporter, **options)
        self.pipelines.append(pipeline)
        return pipeline

    def otlp(self, url: str, **options: Any) -> ExportPipeline:
        timeout = options.pop("timeout", 2.0)
        return self.pipeline(create_otlp_exporter(endpoint=url, timeout=timeout), **options)

    def tracer(self, pipeline: ExportPipeline, service: str = "export-tests") -> Tracer:
        provider = TracerProvider(
            resource=Resource.create({"service.name": service}), shutdown_on_exit=False
        )
        provider.add_span_processor(pipeline)
        self.providers.append(provider)
        return provider.get_tracer("clew.tests", "1.2.3")

    def close(self) -> None:
        for pipeline in self.pipelines:
            pipeline.shutdown(2.0)


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.close()


def emit(tracer: Tracer, n: int, prefix: str = "span") -> None:
    """End ``n`` spans, each with its index as an attribute."""
    for i in range(n):
        with tracer.start_as_current_span(f"{prefix}-{i}") as span:
            span.set_attribute("index", i)


def assert_accounted(pipeline: ExportPipeline, received: int | None = None) -> dict[str, Any]:
    """Every span enqueued is exported, dropped, failed, on disk or still queued."""
    stats = pipeline.stats()
    assert stats["enqueued"] == (
        stats["exported"]
        + stats["dropped"]
        + stats["failed"]
        + stats["spill_pending"]
        + stats["queued"]
    ), stats
    if received is not None:
        assert stats["exported"] == received, stats
    return stats


class JsonReceiver:
    """A plain HTTP endpoint that keeps gzip-compressed JSON bodies (for the http exporter)."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self.headers: list[dict[str, str]] = []
        self.statuses: list[int] = []  # answers to give, in order; then 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                status = outer.statuses.pop(0) if outer.statuses else 200
                if status == 200:
                    outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                    assert self.headers["content-encoding"] == "gzip"
                    outer.bodies.append(json.loads(gzip.decompress(body)))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/ingest"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2.0)


@pytest.fixture
def json_receiver() -> Iterator[JsonReceiver]:
    r = JsonReceiver()
    yield r
    r.close()


EnvSetter = Callable[..., None]


@pytest.fixture
def clean_otlp_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No OTEL_EXPORTER_OTLP_* / CLEW_* exporter variables from the outside."""
    import os

    for name in list(os.environ):
        if name.startswith(("OTEL_EXPORTER_OTLP_", "CLEW_HTTP_", "OTEL_BSP_", "CLEW_SPILL")):
            monkeypatch.delenv(name)
    return monkeypatch
