"""Wiring configuration, tracer and exporters together: ``clew.configure()`` and its friends.

This is the one module that knows all three. The tracer knows nothing of exporters: this
module builds the exporters :data:`EXPORTERS` names, puts each behind its export pipeline, adds
ONE span processor (:class:`~clew.exporters.fanout.ClewSpanProcessor`) to the global
OpenTelemetry ``TracerProvider`` — the application's own if it set one, never replaced — and
installs the tracer's settings (:func:`clew.tracer.entry.install`). Calling :func:`configure`
again swaps the exporters behind that one processor.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, Tracer, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

from clew import attributes as a
from clew import errors
from clew.config import Config, load_config
from clew.errors import ConfigurationError
from clew.exporters.fanout import ClewSpanProcessor
from clew.exporters.lifecycle import build_pipeline, flush_all, install_exit_flush, shutdown_all
from clew.exporters.memory import MemorySpanExporter
from clew.exporters.pipeline import ExportPipeline
from clew.tracer import conventions, entry, evaluation, sdk_shortcut
from clew.tracer.id_generator import ClewIdGenerator

__all__ = [
    "EXPORTERS",
    "clew_processor",
    "configure",
    "create_exporter",
    "exporter",
    "flush",
    "shutdown",
    "stats",
    "store_path",
    "use_generators",
]

logger = logging.getLogger(__name__)

VERSION = "0.1.0"

ExporterFactory = Callable[[Config], Any]
"""Builds an exporter (an OpenTelemetry ``SpanExporter`` or a ``PayloadExporter``) from the
configuration, or returns None (``none``)."""


def _sqlite(config: Config) -> Any:
    from clew.exporters.sqlite import SqliteSpanExporter

    return SqliteSpanExporter(config.store_path, project_name=config.project)


def _jsonl(config: Config) -> Any:
    from clew.exporters.jsonl import JsonlSpanExporter

    return JsonlSpanExporter(config.jsonl_path, project_name=config.project)


def _console(config: Config) -> Any:
    from clew.exporters.console import ConsoleSpanExporter

    return ConsoleSpanExporter(project_name=config.project)


def _otlp(config: Config) -> Any:
    from clew.exporters.otlp import create_otlp_exporter, traces_url

    otlp = config.otlp
    endpoint = otlp.traces_endpoint
    if endpoint is None and otlp.endpoint is not None:
        endpoint = otlp.endpoint if otlp.protocol == "grpc" else traces_url(otlp.endpoint)
    return create_otlp_exporter(
        endpoint=endpoint,
        headers=otlp.headers,
        timeout=otlp.timeout,
        compression=otlp.compression,
        protocol=otlp.protocol,
        certificate_file=otlp.certificate_file,
        client_certificate_file=otlp.client_certificate_file,
        client_key_file=otlp.client_key_file,
        insecure=otlp.insecure,
    )


def _http(config: Config) -> Any:
    from clew.exporters.http import create_http_exporter

    http = config.http
    return create_http_exporter(
        endpoint=http.endpoint,
        headers=http.headers,
        timeout=http.timeout,
        project_name=config.project,
    )


EXPORTERS: dict[str, ExporterFactory] = {
    "sqlite": _sqlite,
    "console": _console,
    "jsonl": _jsonl,
    "memory": lambda config: MemorySpanExporter(config.project),
    "none": lambda config: None,
    "otlp": _otlp,
    "http": _http,
}
"""Exporter name → factory: what ``configure(exporter=...)`` and ``CLEW_EXPORTER`` accept."""


def create_exporter(name: str, config: Config | None = None) -> Any:
    """The exporter ``name`` as ``configure(exporter=name)`` would build it.

    Use it to add one of clew's exporters to your own ``TracerProvider`` with the settings the
    environment gives (``OTEL_EXPORTER_OTLP_*``, ``CLEW_HTTP_*`` …).

    Args:
        name: a name in :data:`EXPORTERS`.
        config: the settings; read from the environment when None.

    Raises:
        ConfigurationError: an unknown name, or the exporter cannot be built from the settings
            (e.g. ``http`` without an endpoint).

    Example:
        >>> exporter = create_exporter("console")
    """
    factory = EXPORTERS.get(name)
    if factory is None:
        raise ConfigurationError(f"unknown exporter {name!r}; choose from {', '.join(EXPORTERS)}")
    return factory(config if config is not None else load_config(exporters=EXPORTERS))


class _Runtime:
    """The configuration in force and what was built from it."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.exporters: dict[str, Any] = {}
        self.pipelines: dict[str, ExportPipeline] = {}
        self.others: list[SpanProcessor] = []  # memory exporters, handed spans synchronously


_lock = threading.RLock()
_processor = ClewSpanProcessor()
sdk_shortcut.quiet_processor(ClewSpanProcessor)
_provider: TracerProvider | None = None
_tracer: Tracer | None = None
_runtime: _Runtime | None = None
_exit_hook: tuple[float, Callable[[], None]] | None = None
_generators: tuple[IdGenerator | None, Callable[[], int] | None] = (None, None)
_given: dict[str, Any] = {}
"""The arguments of every configure() so far (later ones win); the environment is read anew
each time, under them."""


def _sdk_provider(config: Config) -> tuple[TracerProvider, Tracer]:
    """The global SDK provider if the application set one, else a new one made global."""
    global _provider, _tracer
    if _provider is not None and _tracer is not None:
        return _provider, _tracer
    current = trace_api.get_tracer_provider()
    if isinstance(current, TracerProvider):
        provider = current
    else:
        resource = {"service.name": config.project, "clew.version": VERSION}
        if "openinference" in config.otel_conventions:  # Phoenix's project
            resource[a.OPENINFERENCE_PROJECT_NAME] = config.project
        provider = TracerProvider(resource=Resource.create(resource))
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
    tracer = provider.get_tracer(a.INSTRUMENTATION_SCOPE, VERSION)
    if not isinstance(tracer, Tracer):  # pragma: no cover - an SDK provider gives SDK tracers
        raise ConfigurationError("clew needs the OpenTelemetry SDK tracer")
    _provider, _tracer = provider, tracer
    return provider, tracer


def _install_tracer(config: Config) -> None:
    """Give the tracer the settings of ``config`` (and the id and time generators in use)."""
    provider, tracer = _sdk_provider(config)
    ids, clock = _generators
    id_generator = ClewIdGenerator(ids or provider.id_generator)
    tracer.id_generator = id_generator
    sdk_shortcut.set_clock(clock)
    entry.install(
        entry.TracerSettings(
            start_span=sdk_shortcut.SpanStarter(tracer, id_generator).start,
            new_trace_id=id_generator.new_root_trace_id,
            random_ids=ids is None and type(provider.id_generator) is RandomIdGenerator,
            capture=config.capture_content,
            max_value_bytes=config.max_value_bytes,
            sample_rate=config.sample_rate,
            conventions=conventions.families_of(config.otel_conventions),
        )
    )
    errors.set_strict(configured=config.strict)


def _build(config: Config) -> _Runtime:
    runtime = _Runtime(config)
    export = config.export
    for item in config.exporters:
        name = item if isinstance(item, str) else type(item).__name__
        exporter = item if isinstance(item, SpanExporter) else create_exporter(item, config)
        if exporter is None:
            continue
        runtime.exporters[name] = exporter
        if isinstance(exporter, MemorySpanExporter):  # tests read these at once
            runtime.others.append(SimpleSpanProcessor(exporter))
            continue
        runtime.pipelines[name] = build_pipeline(
            name,
            exporter,
            spill_dir=export.spill_dir,
            spill_max_bytes=export.spill_max_bytes,
            max_queue_size=export.max_queue_size,
            max_batch_size=export.max_batch_size,
            schedule_delay=export.schedule_delay,
            shutdown_timeout=export.exit_timeout,
        )
    return runtime


def _stop(runtime: _Runtime | None, timeout: float) -> None:
    if runtime is None:
        return
    shutdown_all(runtime.pipelines.values(), timeout)
    for processor in runtime.others:
        processor.shutdown()


def configure(**arguments: Any) -> Config:
    """Validate the settings, (re)build the exporters, and make them current.

    Takes the arguments of :func:`clew.configure`; those not given keep the value an earlier
    call gave, else the environment's (read again on every call), else the default.

    Raises:
        ConfigurationError: an argument is invalid, or an exporter cannot be built.
    """
    global _runtime, _exit_hook
    with _lock:
        given = {**_given, **{k: v for k, v in arguments.items() if v is not None}}
        config = load_config(exporters=EXPORTERS, **given)
        _given.update(given)
        runtime = _build(config)
        _install_tracer(config)
        _processor.set_children([*runtime.pipelines.values(), *runtime.others])
        old, _runtime = _runtime, runtime
        exit_timeout = config.export.exit_timeout
        if _exit_hook is None or _exit_hook[0] != exit_timeout:
            if _exit_hook is not None:
                _exit_hook[1]()
            _exit_hook = (exit_timeout, install_exit_flush(_pipelines, timeout=exit_timeout))
    _stop(old, 5.0)
    return config


def _configure_defaults() -> None:
    with _lock:
        if _runtime is None:
            configure()


entry.on_first_span(_configure_defaults)


def _pipelines() -> list[ExportPipeline]:
    runtime = _runtime
    return list(runtime.pipelines.values()) if runtime is not None else []


def use_generators(ids: IdGenerator | None = None, clock: Callable[[], int] | None = None) -> None:
    """Make span ids come from ``ids`` and span times from ``clock`` (None: the defaults).

    For tests that compare whole span trees (:mod:`clew.testing` has deterministic ones).
    """
    global _generators
    with _lock:
        _generators = (ids, clock)
        if _runtime is None:
            configure()
        else:
            _install_tracer(_runtime.config)


def current_config() -> Config:
    """The configuration in force, configuring the defaults on first use."""
    if _runtime is None:
        _configure_defaults()
    assert _runtime is not None
    return _runtime.config


def exporter(name: str) -> Any:
    """The exporter the configuration in force built under ``name`` (``"memory"`` …).

    Raises:
        KeyError: no such exporter is configured.
    """
    return (_runtime.exporters if _runtime is not None else {})[name]


def clew_processor() -> ClewSpanProcessor:
    """The single processor clew added to the provider."""
    return _processor


def flush(timeout: float = 5.0) -> bool:
    """Finish the pending evals, then export every finished span now (their scores too);
    returns False if that did not finish within ``timeout``."""
    deadline = time.monotonic() + timeout
    evaluated = evaluation.drain(timeout)
    timeout = max(deadline - time.monotonic(), 0.0)
    runtime = _runtime
    if runtime is None:
        return evaluated
    done = flush_all(runtime.pipelines.values(), timeout) and evaluated
    for processor in _processor.unpipelined():
        done = processor.force_flush(int(timeout * 1000)) and done
    return done


def shutdown(timeout: float = 5.0) -> None:
    """Flush, then stop the exporters within ``timeout``. Spans ended afterwards are dropped
    until :func:`configure` (or the next span) starts clew again."""
    global _runtime
    with _lock:
        runtime, _runtime = _runtime, None
        _processor.set_children(())
        entry.install(None)
    _stop(runtime, timeout)


def stats() -> dict[str, dict[str, Any]]:
    """Per exporter: spans enqueued, exported, dropped (queue full), failed, spilled, replayed,
    queued, waiting in the spill, and the last error."""
    runtime = _runtime
    if runtime is None:
        return {}
    return {name: dict(p.stats()) for name, p in runtime.pipelines.items()}


def store_path() -> Path:
    """Where the sqlite store of the current (or default) configuration lives."""
    return current_config().store_path
