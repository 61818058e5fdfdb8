"""Prints each finished trace as a readable tree, with tokens and cost, for local development."""

from __future__ import annotations

import logging
import os
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, TextIO

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from clew import attributes as a
from clew.errors import internal_error
from clew.log_record import span_to_record
from clew.render import render_tree

__all__ = ["ConsoleSpanExporter"]

_logger = logging.getLogger(__name__)
_exporters: weakref.WeakSet[ConsoleSpanExporter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # Another thread may have held an exporter's lock at the moment of the fork.
    for exporter in list(_exporters):
        exporter._lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)

_PRINTED_TRACES = 1000  # how many finished traces are remembered, to place late spans


class ConsoleSpanExporter(SpanExporter):
    """Buffers the spans of each trace and prints the trace's tree when its top span ends.

    A span is the top of what this exporter will see when it has no parent, its parent is
    remote (another process), or it is a clew span with no clew parent (``clew.depth`` 0, for
    example under a web framework's request span that is not exported). Children end before
    their parent, so by then the whole tree is buffered. Spans that end after their trace was
    printed (a stream consumed after its caller returned) are printed as a tree of their own.

    The buffer is bounded: past ``max_buffered_spans``, the oldest unfinished traces are
    dropped. :meth:`shutdown` prints what is still buffered. Thread-safe; never raises.

    Example:
        >>> from opentelemetry.sdk.trace import TracerProvider
        >>> from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        >>> provider = TracerProvider()
        >>> provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))

    Args:
        stream: where trees are written; ``sys.stdout`` at the time of writing by default.
        project_name: recorded on every span; defaults to the resource's ``service.name``.
        max_buffered_spans: the most spans held while their traces are unfinished.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        project_name: str | None = None,
        max_buffered_spans: int = 10_000,
    ) -> None:
        if max_buffered_spans < 1:
            raise ValueError(f"max_buffered_spans must be at least 1, got {max_buffered_spans}")
        self.stream = stream
        self.project_name = project_name
        self.max_buffered_spans = max_buffered_spans
        self.dropped_spans = 0
        self._lock = threading.Lock()
        _exporters.add(self)
        self._pending: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._buffered = 0
        self._printed: OrderedDict[str, set[str]] = OrderedDict()
        self._shutdown = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Buffer ``spans`` and print every trace they complete; never raises."""
        if self._shutdown:
            return SpanExportResult.FAILURE
        try:
            with self._lock:
                for span in spans:
                    self._add(span)
        except Exception:
            internal_error(_logger, "the console exporter failed")
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def _add(self, span: ReadableSpan) -> None:
        record = span_to_record(span, self.project_name)
        root = str(record["root_trace_id"])
        group = self._pending.setdefault(root, [])
        group.append(record)
        self._buffered += 1
        if self._is_top(span, record, root):
            self._print(root, self._pending.pop(root))
            self._buffered -= len(group)
            return
        while self._buffered > self.max_buffered_spans and self._pending:
            _, dropped = self._pending.popitem(last=False)
            self._buffered -= len(dropped)
            self.dropped_spans += len(dropped)
            _logger.debug("clew: console exporter dropped %d unfinished span(s)", len(dropped))

    def _is_top(self, span: ReadableSpan, record: dict[str, Any], root: str) -> bool:
        parent = span.parent
        if parent is None or not parent.is_valid or parent.is_remote:
            return True
        if (span.attributes or {}).get(a.CLEW_DEPTH) == 0:
            return True
        return record.get("parent_trace_id") in self._printed.get(root, ())

    def _print(self, root: str, records: list[dict[str, Any]]) -> None:
        printed = self._printed.setdefault(root, set())
        printed.update(str(r["trace_id"]) for r in records)
        self._printed.move_to_end(root)
        while len(self._printed) > _PRINTED_TRACES:
            self._printed.popitem(last=False)
        self._write(render_tree(records) + "\n\n")

    def _write(self, text: str) -> None:
        # A closed or broken stream loses this tree only: the buffer stays consistent, so the
        # batch is not reported as failed (a retry would print its spans twice).
        stream = self.stream or sys.stdout
        try:
            try:
                stream.write(text)
            except UnicodeEncodeError:  # a console that cannot show ✓ or box drawing
                encoding = getattr(stream, "encoding", None) or "ascii"
                stream.write(text.encode(encoding, "replace").decode(encoding))
            stream.flush()
        except Exception:  # foreign: the user's stream (closed, broken pipe, a bad encoding)
            _logger.warning("clew: the console exporter cannot write a trace", exc_info=True)

    def shutdown(self) -> None:
        """Print the traces still buffered (as partial trees), then stop. Idempotent."""
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
            pending, self._pending, self._buffered = self._pending, OrderedDict(), 0
            try:
                for root, records in pending.items():
                    self._print(root, records)
            except Exception:
                internal_error(_logger, "the console exporter failed at shutdown")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing to flush: a trace is printed as soon as it is complete."""
        return True
