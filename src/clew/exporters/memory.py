"""An in-memory exporter: the real exporter tests use as their double."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from clew.log_record import span_to_record


class MemorySpanExporter(InMemorySpanExporter):
    """Keeps finished spans in a list; :meth:`records` gives them as clew log records."""

    def __init__(self, project_name: str | None = None) -> None:
        super().__init__()
        self._project_name = project_name

    def records(self) -> list[dict[str, Any]]:
        """Every finished span so far as a log record, in the order they ended."""
        return [span_to_record(s, self._project_name) for s in self.get_finished_spans()]
