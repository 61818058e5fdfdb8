"""Eval functions on traced calls, and scores as spans.

A span opened with ``eval_funcs`` (``@clew.trace(eval_funcs=[...])``, ``clew.span(...,
eval_funcs=[...])``) gets an :class:`~clew.tracer.scores.Evaluation`: while the call runs it
gathers what the eval functions will be given (the call's own inputs and output, its target, and
the tokens and cost of every LLM call under it). When the span ends, the caller's thread only
puts a job on a queue; a bounded pool of worker threads builds the
:class:`~clew.tracer.scores.Log`, runs each eval function, and records each result as a **score
span**: a child of the span it scores, named ``score <name>``, with ``clew.score.name``,
``clew.score.value``, ``clew.score.reason``, ``clew.score.source`` and ``clew.score.eval``. A
score span reaches every exporter like any other span (the store indexes it). An eval that
raises, or runs longer than :data:`TIMEOUT` seconds, records a failed score span (status error,
no value) instead, and the call never knows.

Only recorded calls are evaluated (a sampled-out call has nowhere to put its scores), and of
those the share ``apply_eval_frac``, decided by the trace id's high 64 bits: a trace is scored
whole or not at all, the same way in every process. A score's reason is left out when the scored
span's outputs are omitted (it often quotes them). The queue holds at most :data:`MAX_PENDING`
calls; beyond that calls are not evaluated (counted in :func:`stats`, logged once a minute), so
evals never hold up the application.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace as trace_api

from clew import attributes as a
from clew.errors import ConfigurationError, EvalTimeoutError, internal_error
from clew.tracer.entry import open_span, stitch
from clew.tracer.live import LiveSpan
from clew.tracer.options import SpanSpec
from clew.tracer.scores import (
    EvalResult,
    Evaluation,
    Log,
    error_text,
    results_of,
    set_submitter,
)

__all__ = [
    "MAX_PENDING",
    "TIMEOUT",
    "WORKERS",
    "Scored",
    "drain",
    "evaluate",
    "record_scores",
    "register",
    "registered",
    "span_seconds",
    "stats",
]

logger = logging.getLogger(__name__)

WORKERS = 4
"""Threads that run eval functions (more start in place of any stuck past :data:`TIMEOUT`)."""
MAX_PENDING = 10_000
"""Calls waiting to be evaluated at most; beyond that, calls are not evaluated."""
TIMEOUT = 60.0
"""Seconds an eval function may run before its score is recorded as failed."""


@dataclass(slots=True)
class _Job:
    live: LiveSpan
    evaluation: Evaluation
    error: str | None


def _log(job: _Job) -> Log:
    live, evaluation = job.live, job.evaluation
    span: Any = live.span
    attrs = getattr(span, "attributes", None) or {}
    return Log(
        inputs=evaluation.inputs,
        output=evaluation.output,
        target=evaluation.target,
        error=job.error,
        latency=span_seconds(live),
        input_tokens=evaluation.input_tokens,
        output_tokens=evaluation.output_tokens,
        cost=evaluation.cost,
        trace_id=live.trace_id,
        parent_trace_id=live.parent_trace_id,
        root_trace_id=live.root_trace_id,
        name=getattr(span, "name", ""),
        tags=tuple(attrs.get(a.CLEW_TAGS, ())),
        metadata=dict(live._metadata or {}),
        end_user_identifier=attrs.get(a.CLEW_END_USER_IDENTIFIER),
        session_id=attrs.get(a.CLEW_SESSION_ID),
        experiment_uuid=attrs.get(a.CLEW_EXPERIMENT_UUID),
    )


def span_seconds(live: LiveSpan) -> float:
    """How long an ended span ran (0 when its span does not say)."""
    span: Any = live.span
    start, end = getattr(span, "start_time", None), getattr(span, "end_time", None)
    return (end - start) / 1e9 if start is not None and end is not None else 0.0


# --- score spans -----------------------------------------------------------------------------
_specs: dict[str, SpanSpec] = {}


def _spec(name: str) -> SpanSpec:
    spec = _specs.get(name)
    if spec is None:
        spec = SpanSpec(f"score {name}", {"kind": "evaluator"})
        if len(_specs) < 1024:
            _specs[name] = spec
    return spec


def _score_attributes(
    name: str, source: str, eval_name: str | None, value: float | None, reason: str | None
) -> dict[str, Any]:
    attrs: dict[str, Any] = {a.CLEW_SCORE_NAME: name, a.CLEW_SCORE_SOURCE: source}
    if eval_name:
        attrs[a.CLEW_SCORE_EVAL] = eval_name
    if value is not None:
        attrs[a.CLEW_SCORE_VALUE] = value
    if reason is not None:
        attrs[a.CLEW_SCORE_REASON] = reason
    return attrs


def _emit(
    parent: LiveSpan,
    name: str,
    source: str,
    eval_name: str | None,
    result: EvalResult | None,
    error: BaseException | None = None,
) -> None:
    """One score span under ``parent`` (ended): a result, or a failure of eval ``name``."""
    reason = None if result is None or parent.omit_outputs else result.reason
    attrs = _score_attributes(
        name, source, eval_name, result.score if result is not None else None, reason
    )
    context = trace_api.set_span_in_context(parent.span)
    score = open_span(_spec(name), context, parent, extra=attrs)
    if score is None:
        return
    if error is None:
        score.end()
    else:
        score.fail(error)


def record_scores(
    results: Sequence[EvalResult],
    *,
    trace_id: str,
    root_trace_id: str,
    source: str = "feedback",
) -> None:
    """Record scores on a span that ended, perhaps in another process: a score span each,
    joined to its trace by the ids (:func:`~clew.tracer.entry.stitch`).

    Raises:
        ConfigurationError: an id is not a UUID.
    """
    stitched = stitch(trace_id, root_trace_id)
    for result in results:
        attrs = _score_attributes(result.name, source, None, result.score, result.reason)
        score = open_span(
            _spec(result.name), stitched.context, None, stitched=stitched, extra=attrs
        )
        if score is not None:
            score.end()


# --- evals by id (a completion's eval_metric_ids) ----------------------------------------------
_registry: dict[int | str, Callable[..., Any]] = {}


def register(id: int | str, fn: Callable[..., Any]) -> None:
    """Register ``fn`` as the eval a completion's ``eval_metric_ids`` names by ``id`` (a later
    registration of the same id replaces it).

    Raises:
        ConfigurationError: ``fn`` is not callable, or ``id`` is not an int or a str.
    """
    if isinstance(id, bool) or not isinstance(id, int | str):
        raise ConfigurationError(f"an eval's id is an int or a str, got {id!r}")
    if not callable(fn):
        raise ConfigurationError(f"eval {id!r} must be a function that takes a clew.Log")
    _registry[id] = fn


def registered(ids: Sequence[int | str]) -> tuple[Callable[..., Any], ...]:
    """The evals registered under ``ids``, in order.

    Raises:
        KeyError: an id has no eval; the message names it.
    """
    missing = [i for i in ids if i not in _registry]
    if missing:
        raise KeyError(
            f"no eval is registered under {', '.join(map(repr, missing))}: register one with"
            " clew.evals.register(id, fn)"
        )
    return tuple(_registry[i] for i in ids)


# --- the pool --------------------------------------------------------------------------------
class _Running:
    __slots__ = ("abandoned", "eval_name", "job", "name", "started")

    def __init__(self, job: _Job, name: str, eval_name: str) -> None:
        self.job = job
        self.name = name
        self.eval_name = eval_name
        self.started = time.monotonic()
        self.abandoned = False


class _Pool:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Condition()
        self._pending = 0  # queued or running
        self._threads = 0
        self._stuck = 0  # threads running an abandoned eval
        self._running: dict[int, _Running] = {}
        self._watchdog: threading.Thread | None = None
        self.dropped = 0
        self.evaluated = 0
        self.failed = 0
        self._warned = -float("inf")

    def submit(self, job: _Job) -> None:
        with self._lock:
            if self._pending >= MAX_PENDING:
                self.dropped += 1
                now = time.monotonic()
                if now - self._warned >= 60:
                    self._warned = now
                    logger.warning(
                        "clew: %d calls wait for their evals; not evaluating more until some"
                        " finish (%d skipped so far)",
                        self._pending,
                        self.dropped,
                    )
                return
            self._pending += 1
            if self._threads - self._stuck < min(WORKERS, self._pending):
                self._start_thread()
        self._queue.put(job)

    def _start_thread(self) -> None:
        self._threads += 1
        threading.Thread(target=self._work, name="clew-evals", daemon=True).start()
        if self._watchdog is None:
            self._watchdog = threading.Thread(
                target=self._watch, name="clew-evals-watchdog", daemon=True
            )
            self._watchdog.start()

    def _work(self) -> None:
        loop: asyncio.AbstractEventLoop | None = None
        while True:
            job = self._queue.get()
            try:
                loop = self._run(job, loop)
            except Exception:
                internal_error(logger, "running evals failed")
            with self._lock:
                self._pending -= 1
                self.evaluated += 1
                self._lock.notify_all()
                if self._threads - self._stuck > WORKERS:  # a stuck thread came back
                    self._threads -= 1
                    return

    def _run(self, job: _Job, loop: asyncio.AbstractEventLoop | None) -> Any:
        log = _log(job)
        me = threading.get_ident()
        for fn in job.evaluation.evals:
            name, eval_name = _names(fn)
            running = _Running(job, name, eval_name)
            with self._lock:
                self._running[me] = running
            results, error, loop = _call(fn, log, loop)
            with self._lock:
                del self._running[me]
                if running.abandoned:  # the watchdog recorded its failure already
                    self._stuck -= 1
                    continue
            if error is not None:
                self.failed += 1
            _record(job.live, "eval", name, eval_name, results, error)
        return loop

    def _watch(self) -> None:
        while True:
            time.sleep(min(1.0, TIMEOUT / 4))
            now = time.monotonic()
            late: list[_Running] = []
            with self._lock:
                for running in self._running.values():
                    if not running.abandoned and now - running.started > TIMEOUT:
                        running.abandoned = True
                        self._stuck += 1
                        late.append(running)
                        self._start_thread()  # in place of the stuck one
            for running in late:
                self.failed += 1
                error = EvalTimeoutError(f"eval {running.name!r} ran over {TIMEOUT:g} s")
                try:
                    _emit(running.job.live, running.name, "eval", running.eval_name, None, error)
                except Exception:
                    internal_error(logger, "recording a late eval failed")

    def drain(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending - self._stuck > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True


def _names(fn: Callable[..., Any]) -> tuple[str, str]:
    """An eval's name (its scores' default name) and its qualified name."""
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return name, f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', name)}"


def _call(
    fn: Callable[..., Any], log: Log, loop: asyncio.AbstractEventLoop | None
) -> tuple[list[EvalResult], BaseException | None, asyncio.AbstractEventLoop | None]:
    """Run one eval (an async one in ``loop``, made if None): its results or its error, and
    the loop for the next."""
    try:
        value = fn(log)
        if inspect.isawaitable(value):
            if loop is None:
                loop = asyncio.new_event_loop()
            value = loop.run_until_complete(_bounded(value))
        return results_of(value, _names(fn)[0]), None, loop
    except Exception as exc:  # foreign: the user's eval
        return [], exc, loop


def _record(
    live: LiveSpan,
    source: str,
    name: str,
    eval_name: str,
    results: list[EvalResult],
    error: BaseException | None,
) -> None:
    if error is not None:
        _emit(live, name, source, eval_name, None, error)
    for result in results:
        _emit(live, result.name, source, eval_name, result)


@dataclass(frozen=True, slots=True)
class Scored:
    """A score :func:`evaluate` recorded: its value and reason, or the error of its eval."""

    name: str
    value: float | None
    reason: str | None = None
    error: str | None = None


def evaluate(
    live: LiveSpan, evaluation: Evaluation, error: str | None, *, source: str = "experiment"
) -> list[Scored]:
    """Run a span's evals now, on this thread (an experiment's row), recording a score span
    each as the pool would, with ``source``; returns the scores. The span must have ended;
    its evaluation is one made with ``deferred`` set."""
    log = _log(_Job(live, evaluation, error))
    scored: list[Scored] = []
    loop: asyncio.AbstractEventLoop | None = None
    try:
        for fn in evaluation.evals:
            name, eval_name = _names(fn)
            results, failure, loop = _call(fn, log, loop)
            _record(live, source, name, eval_name, results, failure)
            if failure is not None:
                scored.append(Scored(name, None, None, error_text(failure)))
            scored.extend(Scored(r.name, r.score, r.reason) for r in results)
    finally:
        if loop is not None:
            loop.close()
    return scored


async def _bounded(awaitable: Any) -> Any:
    try:
        return await asyncio.wait_for(awaitable, TIMEOUT)
    except TimeoutError:
        raise EvalTimeoutError(f"the eval ran over {TIMEOUT:g} s") from None


_pool = _Pool()
set_submitter(lambda live, evaluation, error: _pool.submit(_Job(live, evaluation, error)))


def drain(timeout: float) -> bool:
    """Wait until every queued call has been evaluated; False if ``timeout`` seconds passed
    first. (An eval stuck past :data:`TIMEOUT` is not waited for: its failure is recorded.)"""
    return _pool.drain(timeout)


def stats() -> dict[str, int]:
    """Calls evaluated, waiting, and skipped because too many waited; eval runs that failed."""
    with _pool._lock:
        return {
            "evaluated": _pool.evaluated,
            "pending": _pool._pending,
            "skipped": _pool.dropped,
            "failed": _pool.failed,
        }
