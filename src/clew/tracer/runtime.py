"""The process-wide tracing runtime: provider, clew's tracer, and the export processors.

clew adds ONE span processor (:class:`ClewSpanProcessor`) to the global OpenTelemetry
``TracerProvider`` — the application's own if it set one, never replaced — and swaps the
exporters behind it when :func:`configure` is called again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, Tracer, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

from clew import attributes as a
from clew.config import Config, load_config
from clew.errors import ConfigurationError
from clew.exporters.lifecycle import build_pipeline, flush_all, install_exit_flush, shutdown_all
from clew.exporters.memory import MemorySpanExporter
from clew.exporters.pipeline import ExportPipeline
from clew.tracer.ids import ClewIdGenerator
from clew.tracer.spans import SpanStarter, quiet_processor

logger = logging.getLogger("clew")

TRACER_NAME = "clew"
_VERSION = "0.1.0"


SAMPLING_MASK = (1 << 56) - 1
"""Sampling reads the trace id's rightmost 56 bits: the bits W3C Trace Context level 2 (and
OpenTelemetry's consistent probability sampling) promise to be random. The low 64 bits that
``TraceIdRatioBased`` reads are not: in a UUID4 ``root_trace_id`` their top bits are the fixed
variant bits, which would drop every such trace at a rate of 0.5."""


def sample_bound(rate: float) -> int:
    """A trace is kept when ``trace_id & SAMPLING_MASK`` is below this bound."""
    return round(rate * (1 << 56))


@quiet_processor
class ClewSpanProcessor(SpanProcessor):
    """Fans finished clew and GenAI spans out to the configured export processors.

    Spans of other instrumentations (HTTP clients, databases) are not exported by clew, so they
    never flood the LLM store. Called by the SDK on the thread that ends the span; it only hands
    the span on and never raises.
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
            (scope is not None and scope.name == TRACER_NAME)
            or a.GEN_AI_OPERATION_NAME in (span.attributes or {})
        ):
            return
        for processor in self._all:
            try:
                processor.on_end(span)
            except Exception:  # an exporter must never break the user's code
                logger.exception("clew: span processor %r failed", processor)

    def extra_and_simple(self) -> list[SpanProcessor]:
        """The processors that are not export pipelines (memory exporters, test captures)."""
        return [p for p in self._all if not isinstance(p, ExportPipeline)]

    def shutdown(self) -> None:
        for processor in self._all:
            _quietly(processor.shutdown)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        ok = True
        for processor in self._all:
            try:
                ok = processor.force_flush(timeout_millis) and ok
            except Exception:
                logger.exception("clew: flushing %r failed", processor)
                ok = False
        return ok


def _quietly(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except Exception:
        logger.exception("clew: %r failed", fn)


def build_exporter(name: str | SpanExporter, config: Config) -> Any:
    """The exporter for one entry of ``config.exporters`` (None for ``none``).

    Raises:
        ConfigurationError: the exporter cannot be built (e.g. ``http`` without an endpoint).
    """
    if not isinstance(name, str):
        return name
    project = config.project
    if name == "none":
        return None
    if name == "memory":
        return MemorySpanExporter(project)
    if name == "sqlite":
        from clew.exporters.sqlite import SqliteSpanExporter

        return SqliteSpanExporter(config.store_path, project_name=project)
    if name == "jsonl":
        from clew.exporters.jsonl import JsonlSpanExporter

        return JsonlSpanExporter(config.jsonl_path, project_name=project)
    if name == "console":
        from clew.exporters.console import ConsoleSpanExporter

        return ConsoleSpanExporter(project_name=project)
    if name == "otlp":
        from clew.exporters.otlp import create_otlp_exporter

        return create_otlp_exporter()
    if name == "http":
        from clew.exporters.http import create_http_exporter

        return create_http_exporter(project_name=project)
    raise ConfigurationError(f"the {name!r} exporter is not available in this version of clew")


def _processor_for(name: str, exporter: Any, config: Config) -> SpanProcessor:
    """Memory exporters get spans synchronously (tests read them at once); every other
    exporter sits behind its own bounded, never-blocking :class:`ExportPipeline`."""
    if isinstance(exporter, MemorySpanExporter):
        return SimpleSpanProcessor(exporter)
    return build_pipeline(name, exporter, spill_dir=config.spill_dir)


class Runtime:
    """Everything the per-span path needs, resolved once per :func:`configure` call."""

    def __init__(self, config: Config, tracer: Tracer, id_generator: ClewIdGenerator) -> None:
        self.config = config
        self.tracer = tracer
        self.id_generator = id_generator
        self.start_span = SpanStarter(tracer, id_generator).start
        self.capture = config.capture_content
        self.max_value_bytes = config.max_value_bytes
        self.sample_rate = config.sample_rate
        self.sample_bound = sample_bound(config.sample_rate)
        self.exporters: dict[str, Any] = {}
        self.pipelines: dict[str, ExportPipeline] = {}


_lock = threading.RLock()
_processor = ClewSpanProcessor()
_provider: TracerProvider | None = None
_runtime: Runtime | None = None
_exit_hook_installed = False


def _sdk_provider(config: Config) -> TracerProvider:
    """The global SDK provider if the application set one, else a new one made global."""
    global _provider
    if _provider is not None:
        return _provider
    current = trace_api.get_tracer_provider()
    if isinstance(current, TracerProvider):
        provider = current
    else:
        provider = TracerProvider(
            resource=Resource.create({"service.name": config.project, "clew.version": _VERSION})
        )
        if isinstance(current, trace_api.ProxyTracerProvider):
            trace_api.set_tracer_provider(provider)
            if trace_api.get_tracer_provider() is not provider:  # lost a race: use theirs
                other = trace_api.get_tracer_provider()
                if isinstance(other, TracerProvider):
                    provider = other
        else:
            logger.warning(
                "clew: the global TracerProvider (%s) is not the OpenTelemetry SDK's; clew"
                " records its spans with a private provider",
                type(current).__name__,
            )
    provider.add_span_processor(_processor)
    _provider = provider
    return provider


def configure(**arguments: Any) -> Runtime:
    """Validate the settings, (re)build the exporters, and make them current."""
    global _runtime, _exit_hook_installed
    with _lock:
        config = load_config(base=_runtime.config if _runtime else None, **arguments)
        provider = _sdk_provider(config)
        tracer = provider.get_tracer(TRACER_NAME, _VERSION)
        if not isinstance(tracer, Tracer):  # pragma: no cover - the SDK provider gives SDK tracers
            raise ConfigurationError("clew needs the OpenTelemetry SDK tracer")
        id_generator = ClewIdGenerator(provider.id_generator)
        tracer.id_generator = id_generator
        runtime = Runtime(config, tracer, id_generator)
        processors = []
        for entry in config.exporters:
            exporter = build_exporter(entry, config)
            if exporter is None:
                continue
            name = entry if isinstance(entry, str) else type(entry).__name__
            runtime.exporters[name] = exporter
            processor = _processor_for(name, exporter, config)
            if isinstance(processor, ExportPipeline):
                runtime.pipelines[name] = processor
            processors.append(processor)
        old = _processor.set_children(processors)
        old_runtime, _runtime = _runtime, runtime
        if not _exit_hook_installed:
            install_exit_flush(_current_pipelines)
            _exit_hook_installed = True
    if old_runtime is not None:
        shutdown_all(old_runtime.pipelines.values(), 5.0)
    for processor in old:
        if not isinstance(processor, ExportPipeline):
            _quietly(processor.shutdown)
    return runtime


def _current_pipelines() -> list[ExportPipeline]:
    runtime = _runtime
    return list(runtime.pipelines.values()) if runtime is not None else []


def get_runtime() -> Runtime:
    """The runtime in force, configuring the defaults on first use."""
    runtime = _runtime
    if runtime is None:
        with _lock:
            runtime = _runtime or configure()
    return runtime


def clew_processor() -> ClewSpanProcessor:
    """The single processor clew added to the provider."""
    return _processor


def flush(timeout: float = 5.0) -> bool:
    """Export every finished span now; returns False if that did not finish within ``timeout``."""
    runtime = _runtime
    if runtime is None:
        return True
    done = flush_all(runtime.pipelines.values(), timeout)
    for processor in _processor.extra_and_simple():
        done = processor.force_flush(int(timeout * 1000)) and done
    return done


def shutdown(timeout: float = 5.0) -> None:
    """Flush, then stop the exporters within ``timeout``. Spans ended afterwards are dropped
    until :func:`configure` (or the next span) starts clew again."""
    global _runtime
    with _lock:
        runtime, _runtime = _runtime, None
        old = _processor.set_children(())
    if runtime is None:
        return
    shutdown_all(runtime.pipelines.values(), timeout)
    for processor in old:
        if not isinstance(processor, ExportPipeline):
            _quietly(processor.shutdown)


def stats() -> dict[str, dict[str, Any]]:
    """Per exporter: spans enqueued, exported, dropped (queue full), failed, spilled, replayed,
    queued, waiting in the spill, and the last error."""
    runtime = _runtime
    if runtime is None:
        return {}
    return {name: dict(p.stats()) for name, p in runtime.pipelines.items()}


def store_path() -> Path:
    """Where the sqlite store of the current (or default) configuration lives."""
    return get_runtime().config.store_path
