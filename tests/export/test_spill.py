"""Batches the backend could not take wait on disk and are replayed in order when it is back."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from clew.exporters.http import HttpJsonExporter
from clew.exporters.otlp import create_otlp_exporter
from clew.exporters.pipeline import ExportPipeline, RetryPolicy
from clew.testing.otlp_receiver import Fault, OtlpHttpReceiver, unused_port

from .conftest import Harness, assert_accounted, emit

GIVE_UP_FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.02, budget=0.05)


def _spill_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.spill"))


def test_undeliverable_batches_are_spilled_not_failed(harness: Harness, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{unused_port()}/v1/traces"
    pipeline = harness.otlp(url, spill_dir=tmp_path, retry=GIVE_UP_FAST, max_batch_size=10)
    emit(harness.tracer(pipeline), 35)
    assert pipeline.flush(5.0)
    stats = assert_accounted(pipeline, received=0)
    assert (stats["spilled"], stats["spill_pending"], stats["failed"]) == (35, 35, 0)
    assert len(_spill_files(tmp_path)) == 4


def test_spill_is_replayed_oldest_first_when_the_backend_answers(
    harness: Harness, tmp_path: Path
) -> None:
    port = unused_port()
    pipeline = harness.otlp(
        f"http://127.0.0.1:{port}/v1/traces",
        spill_dir=tmp_path,
        retry=GIVE_UP_FAST,
        max_batch_size=10,
    )
    tracer = harness.tracer(pipeline)
    emit(tracer, 30, prefix="early")
    assert pipeline.flush(5.0)
    with OtlpHttpReceiver(port=port) as receiver:
        emit(tracer, 5, prefix="late")
        assert pipeline.flush(5.0)
        names = [s.name for s in receiver.spans()]
    assert names == [f"early-{i}" for i in range(30)] + [f"late-{i}" for i in range(5)]
    stats = assert_accounted(pipeline, received=35)
    # The late batch goes out directly, or — when the worker reaches it while the early
    # batches still wait on disk — is spilled behind them to keep the order, then replayed.
    assert stats["replayed"] in (30, 35)
    assert stats["spill_pending"] == 0
    assert _spill_files(tmp_path) == []


def test_new_batches_queue_behind_spilled_ones(harness: Harness, tmp_path: Path) -> None:
    # While older batches wait on disk, newer ones go to disk too, so order is kept.
    with OtlpHttpReceiver() as receiver:
        receiver.set_default(Fault.status(503))
        pipeline = harness.otlp(
            receiver.url, spill_dir=tmp_path, retry=GIVE_UP_FAST, max_batch_size=5
        )
        tracer = harness.tracer(pipeline)
        emit(tracer, 5, prefix="a")
        assert pipeline.flush(5.0)
        attempts = len(receiver.attempts)
        emit(tracer, 5, prefix="b")
        pipeline.request_flush()  # the worker tries the spill once, then spills "b"
        assert pipeline.flush(5.0)
        assert pipeline.stats()["spill_pending"] == 10
        assert len(receiver.attempts) > attempts
        receiver.set_default(Fault.ok())
        assert pipeline.flush(5.0)
        assert [s.name for s in receiver.spans()] == [f"a-{i}" for i in range(5)] + [
            f"b-{i}" for i in range(5)
        ]
    assert_accounted(pipeline, received=10)


def test_full_spill_directory_counts_failed(
    harness: Harness, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{unused_port()}/v1/traces"
    pipeline = harness.otlp(
        url, spill_dir=tmp_path, spill_max_bytes=1500, retry=GIVE_UP_FAST, max_batch_size=5
    )
    with caplog.at_level(logging.WARNING, logger="clew.exporters"):
        emit(harness.tracer(pipeline), 40)
        assert pipeline.flush(5.0)
    stats = assert_accounted(pipeline, received=0)
    assert stats["spilled"] > 0 and stats["failed"] > 0
    assert "is full (1500 bytes)" in caplog.text
    assert sum(f.stat().st_size for f in _spill_files(tmp_path)) <= 1500


def test_shutdown_with_backend_down_spills_the_queue(harness: Harness, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{unused_port()}/v1/traces"
    pipeline = harness.otlp(url, spill_dir=tmp_path, schedule_delay=60.0)
    emit(harness.tracer(pipeline), 20)
    pipeline.shutdown(0.5)
    stats = assert_accounted(pipeline, received=0)
    assert stats["spill_pending"] == 20 and stats["failed"] == 0


def test_a_permanently_rejected_spilled_batch_is_removed_and_counted(
    harness: Harness, tmp_path: Path
) -> None:
    with OtlpHttpReceiver() as receiver:
        receiver.set_default(Fault.status(503))
        pipeline = harness.otlp(receiver.url, spill_dir=tmp_path, retry=GIVE_UP_FAST)
        emit(harness.tracer(pipeline), 4)
        assert pipeline.flush(5.0)
        receiver.set_default(Fault.status(400, body=b"schema mismatch"))
        assert pipeline.flush(5.0)
    stats = assert_accounted(pipeline, received=0)
    assert stats["failed"] == 4 and _spill_files(tmp_path) == []
    assert "schema mismatch" in str(stats["last_error"])


def test_spill_of_another_payload_kind_is_left_alone(harness: Harness, tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{unused_port()}/ingest"
    json_pipeline = harness.pipeline(HttpJsonExporter(down), spill_dir=tmp_path, retry=GIVE_UP_FAST)
    emit(harness.tracer(json_pipeline), 3)
    assert json_pipeline.flush(5.0)
    json_pipeline.shutdown(1.0)
    with OtlpHttpReceiver() as receiver:
        otlp = harness.pipeline(create_otlp_exporter(endpoint=receiver.url), spill_dir=tmp_path)
        emit(harness.tracer(otlp), 1)
        assert otlp.flush(5.0)
        assert receiver.span_count() == 1  # the JSON batch was not sent as OTLP
    assert len(_spill_files(tmp_path)) == 1


def test_spill_needs_a_payload_exporter() -> None:
    with pytest.raises(ValueError, match="PayloadExporter"):
        ExportPipeline(InMemorySpanExporter(), spill_dir="/tmp/never")
