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

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace.export import SpanExporter

from clew import setup as _setup
from clew.errors import (
    AuthenticationError,
    ClewError,
    CompletionError,
    CompletionTimeoutError,
    ConfigurationError,
    InvalidRequestError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    StoreError,
)
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
from clew.tracer.scores import EvalResult, Log
from clew.tracer.span_block import span
from clew.tracer.threads import ThreadInstrumentation, instrument_threads, wrap

if TYPE_CHECKING:
    from clew import evals
    from clew.evals import datasets
    from clew.evals.experiments import Experiment
    from clew.gateway import deployments
    from clew.gateway.schemas import Completion, CompletionResponse
    from clew.gateway.stream import AsyncCompletionStream, CompletionStream

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "ClewError",
    "Completion",
    "CompletionError",
    "CompletionResponse",
    "CompletionTimeoutError",
    "ConfigurationError",
    "EvalResult",
    "Instrumentation",
    "InvalidRequestError",
    "LiveSpan",
    "Log",
    "PermissionDeniedError",
    "ProviderError",
    "RateLimitError",
    "StoreError",
    "ThreadInstrumentation",
    "__version__",
    "acompletion",
    "astream_completion",
    "completion",
    "configure",
    "current_span",
    "datasets",
    "deployments",
    "evals",
    "experiment",
    "flush",
    "get_current_trace_id",
    "get_root_trace_id",
    "instrument",
    "instrument_anthropic",
    "instrument_openai",
    "instrument_threads",
    "score",
    "shutdown",
    "span",
    "stats",
    "stream_completion",
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
    providers: Mapping[str, Mapping[str, Any]] | None = None,
    gateway: Mapping[str, Any] | None = None,
    otel_conventions: str | Sequence[str] | None = None,
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
        providers: per provider of :func:`clew.completion`, its ``base_url``, ``api_key``,
            ``api_version`` (azure), ``project`` / ``location`` (vertexai), ``region``
            (aws_bedrock); over ``CLEW_<PROVIDER>_BASE_URL`` / ``CLEW_<PROVIDER>_API_KEY``.
        gateway: how completions run: ``timeout`` (seconds, the whole call), ``max_retries``
            (per model), ``cache_url`` (``redis://…`` or a SQLite path), ``cache_ttl``
            (seconds), ``cache_max_bytes``.
        otel_conventions: the keys written beside ``gen_ai.*`` and ``clew.*`` so that backends
            show clew's spans natively: ``"all"`` (default: OpenInference's, which Arize
            Phoenix reads, and Langfuse's), ``"genai"`` (none), or a list or comma-separated
            list of ``openinference`` and ``langfuse`` (``CLEW_OTEL_CONVENTIONS``).

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
        "providers": providers,
        "gateway": gateway,
        "otel_conventions": otel_conventions,
    }
    _setup.configure(**arguments)


def flush(timeout: float = 5.0) -> bool:
    """Finish pending evals and export every finished span now. Returns False if that took
    longer than ``timeout`` seconds."""
    return _setup.flush(timeout)


def score(
    trace_id: str,
    name: str,
    value: float | bool,
    reason: str | None = None,
    *,
    root_trace_id: str | None = None,
) -> None:
    """Record feedback on a traced call after the fact, from any process: a score span under the
    span ``trace_id``. See :func:`clew.evals.feedback.score`.

    Example:
        >>> import clew
        >>> clew.score(trace_id, "thumbs_up", True, "the user clicked 👍")  # doctest: +SKIP
    """
    from clew.evals.feedback import score as record

    record(trace_id, name, value, reason, root_trace_id=root_trace_id)


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


# -- the completion API (imported on first use: it brings httpx2) ------------------------------
def completion(request: Completion | Mapping[str, Any]) -> CompletionResponse:
    """Complete a prompt with any of the twelve providers: deployed prompts, cache, fallbacks,
    retries, exact tokens and cost, and a span. See :func:`clew.gateway.completion.completion`.

    Example:
        >>> import clew
        >>> clew.completion({"llm_configuration": {"provider": "openai",  # doctest: +SKIP
        ...     "model": "gpt-4o-mini", "messages": [{"content": "Say hi"}]}}).content
    """
    from clew.gateway.completion import completion as run

    return run(request)


async def acompletion(request: Completion | Mapping[str, Any]) -> CompletionResponse:
    """:func:`completion`, for ``await``."""
    from clew.gateway.completion import acompletion as run

    return await run(request)


def stream_completion(request: Completion | Mapping[str, Any]) -> CompletionStream:
    """Stream a completion: iterate for text deltas; ``.response`` once exhausted. See
    :func:`clew.gateway.stream.stream_completion`."""
    from clew.gateway.stream import stream_completion as run

    return run(request)


async def astream_completion(request: Completion | Mapping[str, Any]) -> AsyncCompletionStream:
    """:func:`stream_completion`, for ``async for`` (``await`` it first)."""
    from clew.gateway.stream import astream_completion as run

    return await run(request)


# -- evaluation (imported on first use) ---------------------------------------------------------
def experiment(
    name: str,
    data: Any,
    func: Callable[..., Any],
    *,
    evals: Sequence[Callable[..., Any]] = (),
    n_trials: int = 1,
    concurrency: int = 8,
    metadata: Mapping[str, Any] | None = None,
    store: str | Path | None = None,
) -> Experiment:
    """An experiment: ``func`` on every row of ``data`` (a dataset's name, a dataset, or rows),
    each call a trace scored by ``evals``; ``.run()`` it. See
    :func:`clew.evals.experiments.experiment`.

    Example:
        >>> import clew
        >>> result = clew.experiment("prompt-v3", data="refund-questions",  # doctest: +SKIP
        ...     func=answer, evals=[clew.evals.exact_match]).run()
        >>> print(result.summary)  # doctest: +SKIP
    """
    from clew.evals.experiments import experiment as make

    return make(
        name,
        data,
        func,
        evals=evals,
        n_trials=n_trials,
        concurrency=concurrency,
        metadata=metadata,
        store=store,
    )


def __getattr__(name: str) -> Any:
    if name in ("Completion", "CompletionResponse"):
        from clew.gateway import schemas

        return getattr(schemas, name)
    if name == "deployments":
        from clew.gateway import deployments

        return deployments
    if name == "evals":
        import clew.evals

        return clew.evals
    if name == "datasets":
        from clew.evals import datasets

        return datasets
    raise AttributeError(f"module 'clew' has no attribute {name!r}")
