"""Whatever the backend does, the app never waits and every span is accounted for."""

from __future__ import annotations

import logging
import time

import pytest

from clew.exporters.pipeline import RetryPolicy
from clew.testing.otlp_receiver import Fault, OtlpHttpReceiver, unused_port

from .conftest import Harness, assert_accounted, emit


def test_healthy_receiver_gets_every_span(harness: Harness, receiver: OtlpHttpReceiver) -> None:
    pipeline = harness.otlp(receiver.url, max_batch_size=100)
    emit(harness.tracer(pipeline), 1000)
    assert pipeline.flush(10.0)
    assert receiver.span_count() == 1000
    assert sorted(s.name for s in receiver.spans()) == sorted(f"span-{i}" for i in range(1000))
    assert_accounted(pipeline, received=1000)


def test_receiver_down_counts_failed_and_flush_returns(harness: Harness) -> None:
    url = f"http://127.0.0.1:{unused_port()}/v1/traces"
    pipeline = harness.otlp(url, retry=RetryPolicy(initial_backoff=0.01, budget=0.2))
    emit(harness.tracer(pipeline), 50)
    assert pipeline.flush(5.0)  # gave up within the budget: nothing left to wait for
    stats = assert_accounted(pipeline, received=0)
    assert stats["failed"] == 50
    assert "connection refused" in str(stats["last_error"])


def test_hung_receiver_flush_and_shutdown_return_within_timeout(
    harness: Harness, receiver: OtlpHttpReceiver
) -> None:
    receiver.set_default(Fault.hang())
    pipeline = harness.otlp(receiver.url, timeout=30.0)  # the request itself would wait 30 s
    emit(harness.tracer(pipeline), 20)
    started = time.monotonic()
    assert not pipeline.flush(0.3)
    pipeline.shutdown(0.5)
    assert time.monotonic() - started < 2.0
    stats = assert_accounted(pipeline, received=0)
    assert stats["failed"] == 20
    assert stats["queued"] == 0  # the aborted request was accounted before shutdown returned


def test_slow_receiver_within_timeout_delivers(
    harness: Harness, receiver: OtlpHttpReceiver
) -> None:
    receiver.add_faults(Fault.delay(0.3), Fault.delay(0.3))
    pipeline = harness.otlp(receiver.url, max_batch_size=10)
    emit(harness.tracer(pipeline), 30)
    assert pipeline.flush(10.0)
    assert receiver.span_count() == 30
    assert_accounted(pipeline, received=30)


def test_server_errors_then_success_delivers_once(
    harness: Harness, receiver: OtlpHttpReceiver
) -> None:
    receiver.add_faults(Fault.status(500), Fault.status(502), Fault.status(503))
    pipeline = harness.otlp(receiver.url)
    emit(harness.tracer(pipeline), 40)
    assert pipeline.flush(10.0)
    assert len(receiver.attempts) == 4
    assert receiver.span_count() == 40
    assert_accounted(pipeline, received=40)


def test_429_waits_for_retry_after(harness: Harness, receiver: OtlpHttpReceiver) -> None:
    receiver.add_faults(Fault.status(429, headers={"Retry-After": "1"}))
    pipeline = harness.otlp(receiver.url)
    emit(harness.tracer(pipeline), 5)
    assert pipeline.flush(10.0)
    first, second = receiver.attempts
    assert second - first >= 0.95  # the backend's word, not the 10 ms backoff
    assert_accounted(pipeline, received=5)


def test_408_is_retried(harness: Harness, receiver: OtlpHttpReceiver) -> None:
    receiver.add_faults(Fault.status(408))
    pipeline = harness.otlp(receiver.url)
    emit(harness.tracer(pipeline), 5)
    assert pipeline.flush(10.0)
    assert_accounted(pipeline, received=5)


def test_connection_reset_mid_request_is_retried(
    harness: Harness, receiver: OtlpHttpReceiver
) -> None:
    receiver.add_faults(Fault.reset(), Fault.reset())
    pipeline = harness.otlp(receiver.url)
    emit(harness.tracer(pipeline), 25)
    assert pipeline.flush(10.0)
    assert receiver.span_count() == 25
    assert_accounted(pipeline, received=25)


def test_malformed_response_is_retried(harness: Harness, receiver: OtlpHttpReceiver) -> None:
    receiver.add_faults(Fault.garbage())
    pipeline = harness.otlp(receiver.url)
    emit(harness.tracer(pipeline), 25)
    assert pipeline.flush(10.0)
    assert receiver.span_count() == 25
    assert "BadStatusLine" in str(pipeline.stats()["last_error"])
    assert_accounted(pipeline, received=25)


def test_unreadable_2xx_body_is_still_success(harness: Harness, receiver: OtlpHttpReceiver) -> None:
    receiver.add_faults(Fault.status(200, body=b"\xff\xfe not protobuf"))
    pipeline = harness.otlp(receiver.url)
    emit(harness.tracer(pipeline), 7)
    assert pipeline.flush(10.0)
    stats = assert_accounted(pipeline)
    assert stats["exported"] == 7 and stats["failed"] == 0


def test_client_error_is_not_retried_and_logged_once_with_backends_message(
    harness: Harness, receiver: OtlpHttpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    status = b"\x08\x03\x12\x16invalid span: bad name"  # google.rpc.Status{code:3, message}
    for _ in range(5):
        receiver.add_faults(
            Fault.status(400, body=status, headers={"content-type": "application/x-protobuf"})
        )
    pipeline = harness.otlp(receiver.url, max_batch_size=1)
    with caplog.at_level(logging.WARNING, logger="clew.exporters"):
        emit(harness.tracer(pipeline), 5)
        assert pipeline.flush(10.0)
    assert len(receiver.attempts) == 5  # one attempt per batch
    stats = assert_accounted(pipeline, received=0)
    assert stats["failed"] == 5
    assert stats["last_error"] == f"HTTP 400 from {receiver.url}: invalid span: bad name"
    logged = [r.getMessage() for r in caplog.records if "invalid span" in r.getMessage()]
    assert len(logged) == 1


def test_retry_budget_gives_up_and_counts_failed(
    harness: Harness, receiver: OtlpHttpReceiver
) -> None:
    receiver.set_default(Fault.status(503))
    policy = RetryPolicy(initial_backoff=0.01, max_backoff=0.02, budget=0.3)
    pipeline = harness.otlp(receiver.url, retry=policy)
    emit(harness.tracer(pipeline), 10)
    assert pipeline.flush(5.0)
    stats = assert_accounted(pipeline, received=0)
    assert stats["failed"] == 10
    assert len(receiver.attempts) > 2


def test_full_queue_drops_and_counts_without_blocking(
    harness: Harness, receiver: OtlpHttpReceiver
) -> None:
    receiver.set_default(Fault.hang())
    pipeline = harness.otlp(receiver.url, max_queue_size=50, max_batch_size=10, timeout=30.0)
    tracer = harness.tracer(pipeline)
    started = time.monotonic()
    emit(tracer, 1000)
    assert time.monotonic() - started < 5.0  # never waits on the hung backend
    stats = pipeline.stats()
    assert stats["enqueued"] == 1000
    assert stats["dropped"] >= 1000 - 50 - 10
    receiver.set_default(Fault.ok())
    pipeline.shutdown(1.0)  # the hung request is aborted and counted
    assert_accounted(pipeline)


def test_queue_memory_bound_lowers_the_span_limit_for_big_spans(
    harness: Harness, receiver: OtlpHttpReceiver
) -> None:
    pipeline = harness.otlp(
        receiver.url, max_queue_size=10_000, max_queue_bytes=2_000_000, max_batch_size=5
    )
    tracer = harness.tracer(pipeline)

    def emit_big(n: int) -> None:  # ~100 kB each: the byte bound, not the count, stops them
        for i in range(n):
            with tracer.start_as_current_span(f"big-{i}") as span:
                span.set_attribute("clew.output", "x" * 100_000)

    emit_big(5)
    assert pipeline.flush(5.0)  # the worker has measured spans this size
    receiver.set_default(Fault.hang())
    emit_big(200)
    stats = pipeline.stats()
    assert stats["queued"] <= 2_000_000 // 100_000 + 5
    assert stats["dropped"] >= 200 - 25
    pipeline.shutdown(0.5)
    assert_accounted(pipeline, received=5)


def test_on_end_after_shutdown_counts_dropped(harness: Harness, receiver: OtlpHttpReceiver) -> None:
    pipeline = harness.otlp(receiver.url)
    tracer = harness.tracer(pipeline)
    pipeline.shutdown(1.0)
    emit(tracer, 3)
    stats = assert_accounted(pipeline)
    assert stats["dropped"] == 3
    pipeline.shutdown(1.0)  # idempotent


def test_problems_are_logged_at_most_once_a_minute(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{unused_port()}/v1/traces"
    policy = RetryPolicy(initial_backoff=0.01, max_backoff=0.01, budget=0.0)
    pipeline = harness.otlp(url, retry=policy, max_batch_size=1)
    with caplog.at_level(logging.WARNING, logger="clew.exporters"):
        emit(harness.tracer(pipeline), 20)
        assert pipeline.flush(5.0)
    assert pipeline.stats()["failed"] == 20
    assert len([r for r in caplog.records if "not exported" in r.getMessage()]) == 1
