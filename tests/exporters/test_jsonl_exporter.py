"""JsonlSpanExporter: one strict JSON record per span per line, appended, from any thread."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace.export import SpanExportResult

from clew.exporters.jsonl import JsonlSpanExporter
from span_factory import SpanFactory


def _strict(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [_strict(line) for line in path.read_text("utf-8").splitlines()]


def test_each_span_is_one_line_holding_its_record(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "spans.jsonl"
    spans = SpanFactory(JsonlSpanExporter(path))
    with spans.span("root", tags=["rag"], inputs={"q": "é"}), spans.span("llm", cost=0.5):
        pass
    spans.shutdown()

    assert _lines(path) == spans.records()


def test_lines_are_appended_to_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    path.write_text('{"earlier": true}\n', "utf-8")
    spans = SpanFactory(JsonlSpanExporter(path, project_name="p"))
    with spans.span("root"):
        pass
    spans.shutdown()

    lines = _lines(path)
    assert lines[0] == {"earlier": True}
    assert [(r["name"], r["project_name"]) for r in lines[1:]] == [("root", "p")]


def test_non_finite_numbers_are_written_as_null(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    spans = SpanFactory(JsonlSpanExporter(path))
    with spans.span("llm", cost=float("nan")):
        pass
    spans.shutdown()

    (record,) = _lines(path)
    assert record["cost"] is None


def test_concurrent_exports_never_interleave_lines(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    exporter = JsonlSpanExporter(path)
    spans = SpanFactory()
    for i in range(50):
        with spans.span(f"span-{i}", inputs={"padding": "x" * 5000}):
            pass
    batch = spans.spans()
    results: list[SpanExportResult] = []

    def export() -> None:
        for _ in range(20):
            results.append(exporter.export(batch))

    threads = [threading.Thread(target=export) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    exporter.shutdown()

    assert results == [SpanExportResult.SUCCESS] * 80
    lines = _lines(path)
    assert len(lines) == 80 * 50
    assert {r["name"] for r in lines} == {f"span-{i}" for i in range(50)}


def test_an_unwritable_path_fails_the_batch_without_raising(tmp_path: Path) -> None:
    exporter = JsonlSpanExporter(tmp_path)  # a directory, not a file
    spans = SpanFactory()
    with spans.span("root"):
        pass

    assert exporter.export(spans.spans()) is SpanExportResult.FAILURE
    exporter.shutdown()
    assert exporter.export(spans.spans()) is SpanExportResult.FAILURE
    assert exporter.force_flush() is True
