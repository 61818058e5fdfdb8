"""Public test helpers: capture clew's spans in memory and compare them exactly.

``capture_spans()`` adds an in-memory exporter next to whatever is configured, for the length
of a ``with`` block (or of a test, through the ``clew_spans`` pytest fixture)::

    from clew.testing import capture_spans

    with capture_spans() as captured:
        answer("hi")
    assert [r["name"] for r in captured.records()] == ["answer"]

The fake LLM server lives in :mod:`clew.testing.llm_server`, recorded provider responses in
:mod:`clew.testing.cassettes`, and an OTLP receiver in :mod:`clew.testing.otlp_receiver`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from clew.exporters.memory import MemorySpanExporter
from clew.tracer import runtime

__all__ = ["SpanCapture", "capture_spans"]


class SpanCapture:
    """What :func:`capture_spans` collected."""

    def __init__(self, exporter: MemorySpanExporter) -> None:
        self.exporter = exporter

    @property
    def spans(self) -> list[ReadableSpan]:
        """The finished spans, in the order they ended."""
        return list(self.exporter.get_finished_spans())

    def records(self) -> list[dict[str, Any]]:
        """The finished spans as clew log records, in the order they ended."""
        return self.exporter.records()

    def by_name(self, name: str) -> dict[str, Any]:
        """The one record named ``name`` (AssertionError if there is not exactly one)."""
        found = [r for r in self.records() if r["name"] == name]
        assert len(found) == 1, f"expected one span named {name!r}, found {len(found)}"
        return found[0]

    def clear(self) -> None:
        """Forget what was captured so far."""
        self.exporter.clear()


@contextmanager
def capture_spans() -> Iterator[SpanCapture]:
    """Collect every clew span that ends inside the block (spans are handed over synchronously)."""
    runtime.get_runtime()
    exporter = MemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    runtime.clew_processor().add_extra(processor)
    try:
        yield SpanCapture(exporter)
    finally:
        runtime.clew_processor().remove_extra(processor)
