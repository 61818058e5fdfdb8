"""The default exporter: span records into the local SQLite trace store."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from clew.errors import StoreError, internal_error
from clew.store.sqlite import DEFAULT_STORE_PATH, TraceStore

__all__ = ["SqliteSpanExporter"]

_logger = logging.getLogger(__name__)


class SqliteSpanExporter(SpanExporter):
    """Writes finished spans to the local trace store read by ``clew traces`` and ``clew show``.

    Each :meth:`export` call is one transaction. The exporter is called by a span processor
    (usually a batch processor's worker thread); it may block while another process holds the
    store's write lock (up to ``timeout`` seconds) and never raises: a failed batch is logged
    and reported as :attr:`SpanExportResult.FAILURE`.

    Example:
        >>> from opentelemetry.sdk.trace import TracerProvider
        >>> from opentelemetry.sdk.trace.export import BatchSpanProcessor
        >>> provider = TracerProvider()
        >>> provider.add_span_processor(BatchSpanProcessor(SqliteSpanExporter(".clew/traces.db")))

    Args:
        path: the store file, created with its parent directories on the first export.
        project_name: recorded on every span; defaults to the resource's ``service.name``.
        timeout: seconds a batch keeps retrying while other writers hold the store.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_STORE_PATH,
        project_name: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.store = TraceStore(path, timeout=timeout)
        self.project_name = project_name
        self._shutdown = False
        self._failing = False  # log the first failure of a run loudly, the rest quietly

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write ``spans`` to the store in one transaction; never raises."""
        if self._shutdown:
            _logger.debug("SqliteSpanExporter.export called after shutdown; dropping spans")
            return SpanExportResult.FAILURE
        try:
            self.store.write_spans(spans, self.project_name)
        except StoreError as exc:  # the file cannot be written, or stays locked
            self._report(exc, len(spans))
            return SpanExportResult.FAILURE
        except Exception:
            internal_error(_logger, "writing %d span(s) to the trace store failed", len(spans))
            return SpanExportResult.FAILURE
        if self._failing:
            self._failing = False
            _logger.info("clew: writing to the trace store %s works again", self.store.path)
        return SpanExportResult.SUCCESS

    def _report(self, exc: StoreError, count: int) -> None:
        first, self._failing = not self._failing, True
        level = logging.WARNING if first else logging.DEBUG
        _logger.log(
            level,
            "clew: dropped %d span(s): cannot write to the trace store %s: %s",
            count,
            self.store.path,
            exc,
            exc_info=first,
        )

    def shutdown(self) -> None:
        """Close the store; later exports fail. Idempotent."""
        self._shutdown = True
        try:
            self.store.close()
        except (sqlite3.Error, OSError):  # foreign: closing must not raise into the shutdown
            _logger.debug("clew: closing the trace store failed", exc_info=True)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here: every export is committed before it returns."""
        return True
