"""Building export pipelines and ending them: shared deadlines and the exit flush.

``configure()`` builds one :class:`~clew.exporters.pipeline.ExportPipeline` per exporter with
:func:`build_pipeline`, flushes or shuts them down together with :func:`flush_all` and
:func:`shutdown_all` (one deadline for all, so a hung backend cannot eat another exporter's
time), and calls :func:`install_exit_flush` once so spans still queued at interpreter exit are
delivered within the exit timeout (``CLEW_EXIT_TIMEOUT``, default 2 s), or spilled, and exit
never hangs. Settings come as arguments: the setup module reads them from the configuration.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable, Iterable
from time import monotonic

from opentelemetry.sdk.trace.export import SpanExporter

from clew.errors import internal_error
from clew.exporters._spill import spill_subdir
from clew.exporters.base import PayloadExporter, SpanExporterAdapter
from clew.exporters.pipeline import ExportPipeline
from clew.exporters.retry import RetryPolicy

_logger = logging.getLogger(__name__)
DEFAULT_EXIT_TIMEOUT = 2.0


def build_pipeline(
    name: str,
    exporter: PayloadExporter | SpanExporter | SpanExporterAdapter,
    *,
    spill_dir: str | os.PathLike[str] | None = None,
    spill_max_bytes: int = 128 * 1024 * 1024,
    max_queue_size: int = 2048,
    max_queue_bytes: int = 32 * 1024 * 1024,
    max_batch_size: int = 512,
    schedule_delay: float = 1.0,
    retry: RetryPolicy | None = None,
    shutdown_timeout: float = DEFAULT_EXIT_TIMEOUT,
) -> ExportPipeline:
    """An export pipeline for ``exporter``, spilling into its own folder of ``spill_dir``.

    The defaults are those of :class:`clew.config.ExportConfig` (where the environment's
    ``OTEL_BSP_*``, ``CLEW_SPILL_*`` and ``CLEW_EXIT_TIMEOUT`` end up).

    Args:
        name: the exporter's name (``"otlp"``, ``"sqlite"`` …): logs, thread, spill subfolder.
        exporter: a payload exporter or any OpenTelemetry ``SpanExporter``.
        spill_dir: the shared spill directory; this exporter spills into its own
            ``spill_dir/<name>``. Ignored for exporters without payloads.
        spill_max_bytes: cap of this exporter's spill folder.
        max_queue_size: spans waiting at most.
        max_queue_bytes: approximate memory cap of the queue.
        max_batch_size: spans per export.
        schedule_delay: seconds a partial batch waits.
        retry: the retry policy (default: 0.5 s to 15 s backoff within 30 s per batch).
        shutdown_timeout: for a ``shutdown()`` without a timeout, as the SDK's own exit hook
            calls it.

    Raises:
        ValueError: a bad argument.

    Example:
        >>> from opentelemetry.sdk.trace.export import ConsoleSpanExporter
        >>> pipeline = build_pipeline("console", ConsoleSpanExporter())
        >>> pipeline.name
        'console'
        >>> pipeline.shutdown()
    """
    payload = isinstance(exporter, PayloadExporter)
    if spill_dir is not None and not payload:
        _logger.debug("clew: exporter %r has no payloads to spill", name)
    return ExportPipeline(
        exporter,
        name=name,
        max_queue_size=max_queue_size,
        max_queue_bytes=max_queue_bytes,
        max_batch_size=max_batch_size,
        schedule_delay=schedule_delay,
        retry=retry,
        spill_dir=spill_subdir(spill_dir, name) if spill_dir is not None and payload else None,
        spill_max_bytes=spill_max_bytes,
        shutdown_timeout=shutdown_timeout,
    )


def flush_all(pipelines: Iterable[ExportPipeline], timeout: float) -> bool:
    """Flush every pipeline at once; ``True`` if all finished within ``timeout`` seconds."""
    deadline = monotonic() + max(timeout, 0.0)
    events = [p.request_flush() for p in pipelines]
    done = True
    for event in events:
        if event is not None and not event.wait(max(deadline - monotonic(), 0.0)):
            done = False
    return done


def shutdown_all(pipelines: Iterable[ExportPipeline], timeout: float) -> None:
    """Shut every pipeline down at once, all within ``timeout`` seconds. Idempotent."""
    chosen = list(pipelines)
    for pipeline in chosen:
        pipeline.begin_shutdown(timeout)
    for pipeline in chosen:
        pipeline.await_shutdown()


def install_exit_flush(
    pipelines: Callable[[], Iterable[ExportPipeline]],
    *,
    timeout: float = DEFAULT_EXIT_TIMEOUT,
) -> Callable[[], None]:
    """At interpreter exit, shut ``pipelines()`` down within ``timeout`` seconds.

    Queued spans are delivered when the backend answers, spilled when it does not and a
    spill directory is set, counted as failed otherwise; exit never waits past the timeout.
    Register it after building the ``TracerProvider`` (``atexit`` runs last-registered
    first), or build the provider with ``shutdown_on_exit=False``.

    Args:
        pipelines: called at exit, returns the pipelines to shut down.
        timeout: seconds (the configuration's ``export.exit_timeout``).

    Returns:
        A function that unregisters the hook (for ``clew.shutdown()`` and tests).
    """
    seconds = timeout
    done = threading.Event()

    def flush_at_exit() -> None:
        if done.is_set():
            return
        done.set()
        try:
            shutdown_all(pipelines(), seconds)
        except Exception:
            internal_error(_logger, "flushing spans at exit failed")

    def uninstall() -> None:
        done.set()
        atexit.unregister(flush_at_exit)

    atexit.register(flush_at_exit)
    return uninstall
