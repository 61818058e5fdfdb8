"""One JSON record per span per line, appended to a file: the seed's log fields, for pipelines."""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import pydantic_core
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from clew.errors import internal_error
from clew.log_record import span_to_record

__all__ = ["JsonlSpanExporter"]

_logger = logging.getLogger(__name__)
_exporters: weakref.WeakSet[JsonlSpanExporter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # Another thread may have held an exporter's lock at the moment of the fork.
    for exporter in list(_exporters):
        exporter._lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


class JsonlSpanExporter(SpanExporter):
    """Appends one JSON object per finished span to a file (JSON Lines).

    Each line is the record of :func:`clew.log_record.span_to_record`. A batch is
    written with a single ``write`` to a file opened in append mode, so it is on disk (in the
    OS's cache) when :meth:`export` returns and lines from several threads or processes never
    interleave mid-line. Non-finite floats are written as ``null`` so every line is strict
    JSON. Thread-safe; never raises: a failed batch is logged and reported as FAILURE.

    Example:
        >>> from opentelemetry.sdk.trace import TracerProvider
        >>> from opentelemetry.sdk.trace.export import BatchSpanProcessor
        >>> provider = TracerProvider()
        >>> provider.add_span_processor(BatchSpanProcessor(JsonlSpanExporter("spans.jsonl")))

    Args:
        path: the file; it and its parent directories are created on the first export.
        project_name: recorded on every span; defaults to the resource's ``service.name``.
    """

    def __init__(self, path: str | os.PathLike[str], project_name: str | None = None) -> None:
        self.path = Path(path)
        self.project_name = project_name
        self._lock = threading.Lock()
        _exporters.add(self)
        self._file: BinaryIO | None = None
        self._shutdown = False
        self._failing = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Append one line per span; never raises."""
        if self._shutdown:
            _logger.debug("JsonlSpanExporter.export called after shutdown; dropping spans")
            return SpanExportResult.FAILURE
        try:
            data = b"".join(
                pydantic_core.to_json(
                    span_to_record(span, self.project_name), inf_nan_mode="null", fallback=str
                )
                + b"\n"
                for span in spans
            )
        except Exception:
            internal_error(_logger, "encoding %d span(s) as JSON lines failed", len(spans))
            return SpanExportResult.FAILURE
        try:
            with self._lock:
                self._write(data)
        except OSError as exc:  # the file cannot be opened or written (moved, disk full...)
            self._report(exc, len(spans))
            return SpanExportResult.FAILURE
        self._failing = False
        return SpanExportResult.SUCCESS

    def _write(self, data: bytes) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 - kept open
        view = memoryview(data)
        try:
            while view:
                written = self._file.write(view)
                if not written:
                    raise OSError(f"could not write to {self.path}")
                view = view[written:]
        except BaseException:
            # Reopen on the next batch: the file may have been moved or its disk filled.
            self._file.close()
            self._file = None
            raise

    def _report(self, exc: OSError, count: int) -> None:
        first, self._failing = not self._failing, True
        _logger.log(
            logging.WARNING if first else logging.DEBUG,
            "clew: dropped %d span(s): cannot append to %s: %s",
            count,
            self.path,
            exc,
            exc_info=first,
        )

    def shutdown(self) -> None:
        """Close the file; later exports fail. Idempotent."""
        with self._lock:
            self._shutdown = True
            file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError:
                _logger.debug("clew: closing %s failed", self.path, exc_info=True)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here: each batch is written before :meth:`export` returns."""
        return True
