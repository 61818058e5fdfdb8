"""OTLP over gRPC (the ``grpc`` extra) against a real gRPC server."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from opentelemetry.trace import Status, StatusCode

from clew.errors import ConfigurationError
from clew.exporters.otlp import create_otlp_exporter
from clew.setup import create_exporter

from .conftest import Harness, assert_accounted, emit

grpc = pytest.importorskip("grpc")

from clew.exporters.otlp_grpc import OtlpGrpcSpanExporter  # noqa: E402
from clew.testing.otlp_receiver import OtlpGrpcReceiver  # noqa: E402


@pytest.fixture
def grpc_receiver() -> Iterator[OtlpGrpcReceiver]:
    with OtlpGrpcReceiver() as r:
        yield r


def test_spans_arrive_intact_over_grpc(
    harness: Harness, grpc_receiver: OtlpGrpcReceiver, clean_otlp_env: pytest.MonkeyPatch
) -> None:
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", grpc_receiver.endpoint)
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=k%2C1")
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    exporter = create_exporter("otlp")
    assert isinstance(exporter, OtlpGrpcSpanExporter)
    pipeline = harness.pipeline(exporter)
    tracer = harness.tracer(pipeline, service="grpc-svc")
    with tracer.start_as_current_span("root") as root:
        root.set_attributes({"s": "x", "i": 7, "b": True, "f": 1.5, "seq": ("a", "b")})
        root.add_event("evt", {"k": 1})
        root.set_status(Status(StatusCode.ERROR, "boom"))
        trace_id = root.get_span_context().trace_id
    assert pipeline.flush(5.0)
    (span,) = grpc_receiver.spans()
    assert span.trace_id == trace_id.to_bytes(16, "big")
    assert {kv.key for kv in span.attributes} == {"s", "i", "b", "f", "seq"}
    assert (span.status.code, span.status.message) == (2, "boom")
    assert [e.name for e in span.events] == ["evt"]
    (request,) = grpc_receiver.requests
    assert request.headers["x-api-key"] == "k,1"
    resource = {
        kv.key: kv.value.string_value
        for kv in request.message.resource_spans[0].resource.attributes
    }
    assert resource["service.name"] == "grpc-svc"
    assert_accounted(pipeline, received=1)


def test_unavailable_is_retried_over_grpc(
    harness: Harness, grpc_receiver: OtlpGrpcReceiver
) -> None:
    grpc_receiver.fail_next("UNAVAILABLE", times=2)
    pipeline = harness.pipeline(OtlpGrpcSpanExporter(endpoint=grpc_receiver.endpoint))
    emit(harness.tracer(pipeline), 10)
    assert pipeline.flush(10.0)
    assert len(grpc_receiver.attempts) == 3
    assert_accounted(pipeline, received=10)


def test_invalid_argument_is_permanent_over_grpc(
    harness: Harness, grpc_receiver: OtlpGrpcReceiver
) -> None:
    grpc_receiver.fail_next("INVALID_ARGUMENT", details="bad span")
    pipeline = harness.pipeline(OtlpGrpcSpanExporter(endpoint=grpc_receiver.endpoint))
    emit(harness.tracer(pipeline), 4)
    assert pipeline.flush(10.0)
    stats = assert_accounted(pipeline, received=0)
    assert stats["failed"] == 4
    assert "INVALID_ARGUMENT" in str(stats["last_error"])
    assert "bad span" in str(stats["last_error"])


def test_grpc_without_the_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "grpc", None)  # as if grpcio were not installed
    with pytest.raises(ConfigurationError, match=r"pip install 'clew\[grpc\]'"):
        create_otlp_exporter(protocol="grpc")


def test_grpc_receiver_down_fails_within_the_budget_and_shutdown_is_bounded(
    harness: Harness,
) -> None:
    from clew.exporters.pipeline import RetryPolicy
    from clew.testing.otlp_receiver import unused_port

    exporter = OtlpGrpcSpanExporter(endpoint=f"http://127.0.0.1:{unused_port()}", timeout=1.0)
    pipeline = harness.pipeline(exporter, retry=RetryPolicy(initial_backoff=0.01, budget=0.2))
    emit(harness.tracer(pipeline), 6)
    assert pipeline.flush(10.0)
    stats = assert_accounted(pipeline, received=0)
    assert stats["failed"] == 6
    assert "UNAVAILABLE" in str(stats["last_error"])
