"""The pipeline with plain OpenTelemetry exporters, and ending several pipelines at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import clew
from clew.config import load_config
from clew.exporters.base import SpanExporterAdapter
from clew.exporters.lifecycle import build_pipeline, flush_all, shutdown_all
from clew.exporters.pipeline import ExportPipeline, RetryPolicy
from clew.testing.otlp_receiver import Fault, OtlpHttpReceiver

from .conftest import Harness, assert_accounted, emit


class FlakyExporter(SpanExporter):
    """Answers FAILURE (or raises) a set number of times, then keeps what it gets."""

    def __init__(self, failures: int, *, raise_instead: bool = False) -> None:
        self.failures = failures
        self.raise_instead = raise_instead
        self.calls = 0
        self.kept: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        if self.calls <= self.failures:
            if self.raise_instead:
                raise OSError("disk full")
            return SpanExportResult.FAILURE
        self.kept.extend(spans)
        return SpanExportResult.SUCCESS


class BlockingExporter(SpanExporter):
    """Blocks every export until released: a plain exporter that hangs."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(10.0)
        return SpanExportResult.SUCCESS


def test_a_plain_span_exporter_sits_behind_the_pipeline(harness: Harness) -> None:
    memory = InMemorySpanExporter()
    pipeline = harness.pipeline(memory)
    emit(harness.tracer(pipeline), 25)
    assert pipeline.flush(5.0)
    assert len(memory.get_finished_spans()) == 25
    assert_accounted(pipeline, received=25)


@pytest.mark.parametrize("raise_instead", [False, True])
def test_failure_is_retried_a_few_times(harness: Harness, raise_instead: bool) -> None:
    flaky = FlakyExporter(2, raise_instead=raise_instead)
    pipeline = harness.pipeline(flaky, retry=RetryPolicy(initial_backoff=0.01, max_attempts=3))
    emit(harness.tracer(pipeline), 5)
    assert pipeline.flush(5.0)
    assert (flaky.calls, len(flaky.kept)) == (3, 5)
    assert_accounted(pipeline, received=5)


def test_failure_after_the_last_attempt_counts_failed(harness: Harness) -> None:
    flaky = FlakyExporter(100)
    adapter = SpanExporterAdapter(flaky, max_attempts=2)
    pipeline = harness.pipeline(adapter, retry=RetryPolicy(initial_backoff=0.01, max_attempts=2))
    emit(harness.tracer(pipeline), 5)
    assert pipeline.flush(5.0)
    stats = assert_accounted(pipeline, received=0)
    assert (flaky.calls, stats["failed"]) == (2, 5)
    assert "FAILURE" in str(stats["last_error"])


def test_a_hung_plain_exporter_does_not_hold_flush_or_shutdown(harness: Harness) -> None:
    blocking = BlockingExporter()
    pipeline = harness.pipeline(blocking)
    emit(harness.tracer(pipeline), 3)
    started = time.monotonic()
    assert not pipeline.flush(0.2)
    pipeline.shutdown(0.3)
    assert time.monotonic() - started < 1.5
    blocking.release.set()


def test_flush_all_shares_one_deadline_and_a_hung_exporter_holds_back_no_other(
    harness: Harness, receiver: OtlpHttpReceiver
) -> None:
    blocking = BlockingExporter()
    hung = harness.pipeline(blocking, name="hung")
    healthy = harness.otlp(receiver.url, name="otlp")
    for pipeline in (hung, healthy):
        emit(harness.tracer(pipeline), 10)
    started = time.monotonic()
    assert not flush_all([hung, healthy], 0.5)
    assert time.monotonic() - started < 1.5
    assert receiver.span_count() == 10
    shutdown_all([hung, healthy], 0.5)
    assert time.monotonic() - started < 2.5
    blocking.release.set()


def test_shutdown_all_delivers_what_is_queued(receiver: OtlpHttpReceiver) -> None:
    from clew.exporters.otlp import create_otlp_exporter

    pipelines = [
        build_pipeline("a", create_otlp_exporter(endpoint=receiver.url), schedule_delay=60.0),
        build_pipeline("b", InMemorySpanExporter(), schedule_delay=60.0),
    ]
    harness = Harness()
    for pipeline in pipelines:
        emit(harness.tracer(pipeline), 7)
    shutdown_all(pipelines, 5.0)
    assert receiver.span_count() == 7
    for pipeline in pipelines:
        assert_accounted(pipeline, received=7)


def test_the_batch_variables_reach_the_pipelines_configure_builds(
    clean_otlp_env: pytest.MonkeyPatch,
) -> None:
    clean_otlp_env.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "7")
    clean_otlp_env.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "3")
    clean_otlp_env.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")
    export = load_config().export
    assert (export.max_queue_size, export.max_batch_size, export.schedule_delay) == (7, 3, 60.0)
    memory = InMemorySpanExporter()
    clew.configure(exporter=memory)
    for _ in range(20):
        with clew.span("s"):
            pass
    stats = clew.stats()["InMemorySpanExporter"]
    assert stats["dropped"] >= 20 - 7 - 3
    assert clew.flush(5.0)
    stats = clew.stats()["InMemorySpanExporter"]
    assert stats["exported"] + stats["dropped"] == 20
    assert len(memory.get_finished_spans()) == stats["exported"]


def test_bad_arguments_raise_value_error() -> None:
    with pytest.raises(ValueError):
        ExportPipeline(InMemorySpanExporter(), max_queue_size=0)
    with pytest.raises(ValueError):
        RetryPolicy(initial_backoff=2.0, max_backoff=1.0)


def test_a_flush_from_the_worker_thread_does_not_deadlock(harness: Harness) -> None:
    results: list[bool] = []

    class Reentrant(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            results.append(pipeline.flush(5.0))
            return SpanExportResult.SUCCESS

    pipeline = harness.pipeline(Reentrant())
    emit(harness.tracer(pipeline), 1)
    assert pipeline.flush(5.0)
    assert results == [True]


def test_retry_wait_is_cut_short_by_shutdown(harness: Harness, receiver: OtlpHttpReceiver) -> None:
    receiver.add_faults(Fault.status(503, headers={"Retry-After": "30"}))
    pipeline = harness.otlp(receiver.url, retry=RetryPolicy(budget=60.0))
    emit(harness.tracer(pipeline), 2)
    assert not pipeline.flush(0.2)  # waiting the 30 s the backend asked for
    started = time.monotonic()
    pipeline.shutdown(0.5)
    assert time.monotonic() - started < 1.0
    stats = assert_accounted(pipeline, received=0)
    assert stats["failed"] == 2
