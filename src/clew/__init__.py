"""clew: OpenTelemetry-native tracing middleware for LLM applications.

Example:
    >>> import clew
    >>> clew.configure(project="support-bot", exporter="console")  # doctest: +SKIP
    >>> @clew.trace(tags=["rag"])
    ... def answer(question: str) -> str:
    ...     with clew.span("retrieve") as s:
    ...         s.set_output(["doc-1"])
    ...     return "42"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter

from clew import setup as _setup
from clew.errors import ClewError, ConfigurationError, StoreError
from clew.providers import (
    Instrumentation,
    instrument,
    instrument_anthropic,
    instrument_openai,
    wrap_openai_client,
)
from clew.tracer.current import (
    current_span,
    get_current_trace_id,
    get_root_trace_id,
    trace_insert,
)
from clew.tracer.decorator import trace
from clew.tracer.live import LiveSpan
from clew.tracer.span_block import span
from clew.tracer.threads import ThreadInstrumentation, instrument_threads, wrap

__version__ = "0.1.0"

__all__ = [
    "ClewError",
    "ConfigurationError",
    "Instrumentation",
    "LiveSpan",
    "StoreError",
    "ThreadInstrumentation",
    "__version__",
    "configure",
    "current_span",
    "flush",
    "get_current_trace_id",
    "get_root_trace_id",
    "instrument",
    "instrument_anthropic",
    "instrument_openai",
    "instrument_threads",
    "shutdown",
    "span",
    "stats",
    "trace",
    "trace_insert",
    "wrap",
    "wrap_openai_client",
]


def configure(
    *,
    project: str | None = None,
    exporter: str | SpanExporter | list[str | SpanExporter] | None = None,
    sample_rate: float | None = None,
    capture_content: bool | None = None,
    store_path: str | Path | None = None,
    max_value_bytes: int | None = None,
    jsonl_path: str | Path | None = None,
) -> None:
    """Set up clew. Optional: the first span configures the defaults (the local SQLite store).

    Call it again to change settings; arguments not given keep the value an earlier call gave
    them, and the environment is read again on every call. Arguments win over the environment
    (``CLEW_PROJECT``, ``CLEW_EXPORTER``, ``CLEW_SAMPLE_RATE``, ``CLEW_CAPTURE_CONTENT``,
    ``CLEW_STORE``, ``CLEW_JSONL`` …: :data:`clew.environment.VARIABLES` lists them all). An
    OpenTelemetry ``TracerProvider`` the application already set is used, never replaced.

    Args:
        project: the project name recorded on every span (``service.name`` of a new provider).
        exporter: where spans go: ``"sqlite"`` (default), ``"console"``, ``"jsonl"``,
            ``"memory"``, ``"none"``, a comma-separated list such as ``"sqlite,console"``,
            a list of names, or any OpenTelemetry ``SpanExporter``.
        sample_rate: the share of traces kept, from 0 to 1 (decided at the root).
        capture_content: False records no inputs, outputs or messages anywhere.
        store_path: the SQLite store file (default ``.clew/traces.db``).
        max_value_bytes: the largest captured value; longer ones are truncated with a marker.
        jsonl_path: the file the ``jsonl`` exporter appends to (default ``.clew/traces.jsonl``).

    Example:
        >>> import clew
        >>> clew.configure(project="support-bot", exporter="sqlite,console")  # doctest: +SKIP

    Raises:
        ConfigurationError: an argument is invalid; the message says which and how to fix it.
    """
    arguments: dict[str, Any] = {
        "project": project,
        "exporter": exporter,
        "sample_rate": sample_rate,
        "capture_content": capture_content,
        "store_path": store_path,
        "max_value_bytes": max_value_bytes,
        "jsonl_path": jsonl_path,
    }
    _setup.configure(**arguments)


def flush(timeout: float = 5.0) -> bool:
    """Export every finished span now. Returns False if that took longer than ``timeout`` s."""
    return _setup.flush(timeout)


def stats() -> dict[str, dict[str, Any]]:
    """Per exporter: spans ``enqueued``, ``exported``, ``dropped`` (queue full), ``failed``
    (after retries, or refused), ``spilled``, ``replayed``, ``queued``, ``spill_pending`` and
    the ``last_error``. Nothing is lost silently: every span is in one of these counts.

    Example:
        >>> import clew
        >>> clew.stats()  # doctest: +SKIP
        {'sqlite': {'enqueued': 12, 'exported': 12, 'dropped': 0, 'failed': 0, ...}}
    """
    return _setup.stats()


def shutdown(timeout: float = 5.0) -> None:
    """Flush and stop the exporters, within ``timeout`` seconds. ``configure()`` starts again."""
    _setup.shutdown(timeout)
