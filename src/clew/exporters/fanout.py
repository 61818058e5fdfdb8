"""The one span processor clew adds to the ``TracerProvider``: it hands clew's spans (and other
instrumentations' GenAI spans) to the export processors, and nothing else."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from clew import attributes as a
from clew.errors import internal_error
from clew.exporters.pipeline import ExportPipeline

__all__ = ["ClewSpanProcessor"]

logger = logging.getLogger(__name__)


class ClewSpanProcessor(SpanProcessor):
    """Fans finished clew and GenAI spans out to the configured export processors.

    Spans of other instrumentations (HTTP clients, databases) are not exported by clew, so they
    never flood the LLM store. Called by the SDK on the thread that ends the span; it only hands
    the span on and never raises (an export processor's failure is an internal error). Its
    ``on_start`` does nothing: when it is the provider's only processor, clew's spans skip the
    provider's fan-out (see :func:`clew.tracer.sdk_shortcut.quiet_processor`).
    """

    def __init__(self) -> None:
        self._children: tuple[SpanProcessor, ...] = ()
        self._extra: tuple[SpanProcessor, ...] = ()
        self._all: tuple[SpanProcessor, ...] = ()  # children + extra, read per span

    def set_children(self, processors: Sequence[SpanProcessor]) -> tuple[SpanProcessor, ...]:
        """Install new export processors; returns the old ones for the caller to shut down."""
        old, self._children = self._children, tuple(processors)
        self._all = self._children + self._extra
        return old

    def add_extra(self, processor: SpanProcessor) -> None:
        """Add a processor that outlives reconfiguration (used by ``clew.testing``)."""
        self._extra = (*self._extra, processor)
        self._all = self._children + self._extra

    def remove_extra(self, processor: SpanProcessor) -> None:
        """Remove a processor added with :meth:`add_extra`."""
        self._extra = tuple(p for p in self._extra if p is not processor)
        self._all = self._children + self._extra

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        scope = span.instrumentation_scope
        if not (
            (scope is not None and scope.name == a.INSTRUMENTATION_SCOPE)
            or a.GEN_AI_OPERATION_NAME in (span.attributes or {})
        ):
            return
        for processor in self._all:
            try:
                processor.on_end(span)
            except Exception:
                internal_error(logger, "span processor %r failed", processor)

    def unpipelined(self) -> list[SpanProcessor]:
        """The processors that are not export pipelines (memory exporters, test captures)."""
        return [p for p in self._all if not isinstance(p, ExportPipeline)]

    def shutdown(self) -> None:
        for processor in self._all:
            try:
                processor.shutdown()
            except Exception:
                internal_error(logger, "shutting down %r failed", processor)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        ok = True
        for processor in self._all:
            try:
                ok = processor.force_flush(timeout_millis) and ok
            except Exception:
                internal_error(logger, "flushing %r failed", processor)
                ok = False
        return ok
