"""SqliteSpanExporter: finished spans land in the store; failures are reported, never raised."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

from clew.exporters.sqlite import SqliteSpanExporter
from clew.store import TraceStore
from span_factory import SpanFactory, root_id


def test_exported_spans_are_in_the_store(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    spans = SpanFactory(SqliteSpanExporter(path))
    with spans.span("root") as root, spans.span("child"):
        pass
    spans.shutdown()

    records = TraceStore(path).get_trace(root_id(root))

    assert sorted(r["name"] for r in records) == ["child", "root"]
    assert {r["project_name"] for r in records} == {"tests"}


def test_project_name_overrides_the_service_name(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    spans = SpanFactory(SqliteSpanExporter(path, project_name="support-bot"))
    with spans.span("root") as root:
        pass
    spans.shutdown()

    (record,) = TraceStore(path).get_trace(root_id(root))

    assert record["project_name"] == "support-bot"


def test_a_batch_processor_delivers_on_flush(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    exporter = SqliteSpanExporter(path)
    spans = SpanFactory()
    processor = BatchSpanProcessor(exporter, schedule_delay_millis=60_000)
    spans.provider.add_span_processor(processor)
    for i in range(10):
        with spans.span(f"trace-{i}"), spans.span("child"):
            pass

    assert processor.force_flush(10_000)
    assert TraceStore(path).count_spans() == 20
    spans.shutdown()


def test_an_unwritable_path_fails_the_batch_without_raising(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = SqliteSpanExporter(tmp_path)  # a directory, not a file
    spans = SpanFactory()
    with spans.span("root"):
        pass

    with caplog.at_level(logging.WARNING, logger="clew.exporters.sqlite"):
        first = exporter.export(spans.spans())
        second = exporter.export(spans.spans())

    assert (first, second) == (SpanExportResult.FAILURE, SpanExportResult.FAILURE)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "a lasting failure is logged loudly once"
    assert "cannot write to the trace store" in warnings[0].getMessage()
    exporter.shutdown()


def test_export_after_shutdown_fails(tmp_path: Path) -> None:
    exporter = SqliteSpanExporter(tmp_path / "traces.db")
    spans = SpanFactory()
    with spans.span("root"):
        pass
    assert exporter.export(spans.spans()) is SpanExportResult.SUCCESS

    exporter.shutdown()
    exporter.shutdown()

    assert exporter.export(spans.spans()) is SpanExportResult.FAILURE
    assert exporter.force_flush() is True
