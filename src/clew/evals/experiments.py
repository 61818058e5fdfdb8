"""Experiments: run a function on every row of a dataset, score each call, keep the results.

    result = clew.experiment("prompt-v3", data="refund-questions", func=answer,
                             evals=[clew.evals.exact_match, judge], concurrency=8).run()
    print(result.summary)

Each row (``n_trials`` times) is one trace: a root span named ``experiment <name>`` carrying
``clew.experiment_uuid``, the row's inputs and ``target``, and the call's output; ``func`` (sync
or async) runs inside it with the row's inputs as keyword arguments, so its own spans and LLM
calls nest under it. The evals then score it on the same worker (a score span each, source
``experiment``), with the tokens and cost of every LLM call the row made. A row that raises is
recorded as an error and scored like the rest (``Log.error``); the run goes on. Ctrl-C stops
the run: rows not started are dropped, the finished ones are kept and stored, and the result
says ``status == "interrupted"``.

The result (:class:`ExperimentResult`) has per eval the mean, standard deviation and count;
errors; tokens, cost and latency p50 / p95; and every row with its output, scores and trace
id. It is stored in the local store (``clew experiments list / show / compare``).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import queue
import statistics
import sys
import threading
import time
import uuid as uuids
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clew import attributes as a
from clew.errors import ConfigurationError, StoreError
from clew.evals import datasets
from clew.evals.datasets import Dataset, Row
from clew.evals.results import ExperimentResult, RowResult, Summary, save
from clew.setup import current_config
from clew.setup import stats as setup_stats
from clew.tracer.entry import open_span
from clew.tracer.evaluation import Scored, evaluate, span_seconds
from clew.tracer.live import LiveSpan, current_context
from clew.tracer.options import SpanSpec
from clew.tracer.scores import Evaluation, error_text
from clew.tracer.serialize import to_json

__all__ = ["Experiment", "experiment"]

logger = logging.getLogger(__name__)


# --- the data ---------------------------------------------------------------------------------
Data = str | Dataset | Iterable[Row | Mapping[str, Any]]


def _rows(data: Data, store: Path) -> tuple[list[Row], str | None, int | None]:
    """The rows to run, and the dataset's name and version when they come from one."""
    if isinstance(data, str):
        data = datasets.get(data, store=store)
    if isinstance(data, Dataset):
        return list(data.rows), data.name, data.version
    if isinstance(data, Mapping) or not isinstance(data, Iterable):
        raise ConfigurationError(
            "data is a dataset's name, a clew.datasets.Dataset, or a list of rows"
            f" ({{'inputs': {{...}}, 'target': ...}}); got {type(data).__name__}"
        )
    return datasets.rows(data), None, None


# --- the run ----------------------------------------------------------------------------------
class _Progress:
    """``name: done/total rows · errors · elapsed`` on stderr, when it is a terminal."""

    def __init__(self, name: str, total: int) -> None:
        self.name = name
        self.total = total
        self.done = 0
        self.errors = 0
        self.started = time.monotonic()
        self.shown = 0.0
        self.live = sys.stderr.isatty()

    def add(self, row: RowResult) -> None:
        self.done += 1
        self.errors += row.error is not None
        now = time.monotonic()
        if self.live and (now - self.shown >= 0.1 or self.done == self.total):
            self.shown = now
            sys.stderr.write(
                f"\r{self.name}: {self.done}/{self.total} rows · {self.errors} errors ·"
                f" {now - self.started:.1f} s"
            )
            sys.stderr.flush()

    def end(self) -> None:
        if self.live and self.done:
            sys.stderr.write("\n")


class Experiment:
    """An experiment ready to run (see :func:`experiment`)."""

    def __init__(
        self,
        name: str,
        data: Data,
        func: Callable[..., Any],
        *,
        evals: Sequence[Callable[..., Any]] = (),
        n_trials: int = 1,
        concurrency: int = 8,
        metadata: Mapping[str, Any] | None = None,
        store: str | Path | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError(f"an experiment's name is non-empty text, got {name!r}")
        if not callable(func):
            raise ConfigurationError(f"func must be a function, got {type(func).__name__}")
        if not all(callable(fn) for fn in evals):
            raise ConfigurationError("evals must be functions that take a clew.Log")
        for label, value in (("n_trials", n_trials), ("concurrency", concurrency)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{label} is a whole number of at least 1, got {value!r}")
        self.name = name
        self.func = func
        self.evals = tuple(evals)
        self.n_trials = n_trials
        self.concurrency = concurrency
        self.metadata = dict(metadata or {})
        self.store = Path(store) if store is not None else current_config().store_path
        self.rows, self.dataset, self.dataset_version = _rows(data, self.store)
        if not self.rows:
            raise ConfigurationError(f"experiment {name!r} has no rows to run")
        self.uuid = str(uuids.uuid4())
        self._spec = SpanSpec(f"experiment {name}", {"log_sample_rate": 1.0})  # rows all kept
        self._metadata = {"experiment": name, **self.metadata}

    def _jobs(self) -> list[tuple[int, int, Row]]:
        return [
            (index, trial, row)
            for index, row in enumerate(self.rows)
            for trial in range(self.n_trials)
        ]

    def _open(self, index: int, trial: int, row: Row) -> LiveSpan | None:
        """The row's root span, current, with its evaluation (deferred: the row runs it)."""
        live = open_span(self._spec, current_context(), None, dict, (row.inputs,))
        if live is None:
            return None
        live.set_attribute(a.CLEW_EXPERIMENT_UUID, self.uuid)
        live.set_metadata({**self._metadata, "row": index, "trial": trial})
        if row.target is not None:
            live.set_attribute(a.CLEW_TARGET, to_json(row.target, live.max_bytes))
        if live.recording:
            live.evaluation = Evaluation(self.evals, dict(row.inputs), row.target, deferred=True)
        return live

    def _result(
        self,
        index: int,
        trial: int,
        row: Row,
        live: LiveSpan | None,
        output: Any,
        error: str | None,
    ) -> RowResult:
        scores: dict[str, list[float]] = {}
        failures: dict[str, str] = {}
        evaluation = live.evaluation if live is not None else None
        latency, input_tokens, output_tokens, cost = 0.0, 0, 0, None
        if live is not None and evaluation is not None:
            if self.evals:
                for item in evaluate(live, evaluation, error, source="experiment"):
                    _collect(item, scores, failures)
            latency = span_seconds(live)
            input_tokens, output_tokens = evaluation.input_tokens, evaluation.output_tokens
            cost = evaluation.cost
        return RowResult(
            index=index,
            trial=trial,
            inputs=dict(row.inputs),
            target=row.target,
            output=output,
            error=error,
            scores={name: statistics.fmean(values) for name, values in scores.items()},
            score_errors=failures,
            trace_id=live.trace_id if live is not None else None,
            latency=latency,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost=cost,
        )

    def _one(self, index: int, trial: int, row: Row) -> RowResult:
        output: Any = None
        error: str | None = None
        live = self._open(index, trial, row)
        token = live.activate() if live is not None else None
        try:
            output = self.func(**row.inputs)
        except Exception as exc:  # foreign: the function under test
            error = error_text(exc)
            if live is not None:
                live.deactivate(token)  # type: ignore[arg-type]
                live.fail(exc)
        else:
            if live is not None:
                live.deactivate(token)  # type: ignore[arg-type]
                live.end(output, True)
        return self._result(index, trial, row, live, output, error)

    async def _aone(self, index: int, trial: int, row: Row) -> RowResult:
        output: Any = None
        error: str | None = None
        live = self._open(index, trial, row)
        token = live.activate() if live is not None else None
        try:
            output = await self.func(**row.inputs)
        except Exception as exc:  # foreign: the function under test
            error = error_text(exc)
            if live is not None:
                live.deactivate(token)  # type: ignore[arg-type]
                live.fail(exc)
        else:
            if live is not None:
                live.deactivate(token)  # type: ignore[arg-type]
                live.end(output, True)
        return await asyncio.to_thread(self._result, index, trial, row, live, output, error)

    def run(self) -> ExperimentResult:
        """Run every row (``n_trials`` times), ``concurrency`` at a time; store and return
        the result. An async ``func`` runs on an event loop of its own (from async code, use
        :meth:`arun`).

        Raises:
            ConfigurationError: ``run()`` of an async func inside a running event loop.
        """
        if inspect.iscoroutinefunction(self.func):
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return asyncio.run(self.arun())
            raise ConfigurationError("inside an event loop, use `await experiment.arun()`")
        started = time.monotonic()
        jobs = self._jobs()
        progress = _Progress(self.name, len(jobs))
        pending = iter(jobs)
        taking = threading.Lock()
        finished: queue.SimpleQueue[RowResult | None] = queue.SimpleQueue()
        stop = threading.Event()

        def work() -> None:
            try:
                while not stop.is_set():
                    with taking:
                        job = next(pending, None)
                    if job is None:
                        return
                    _pace()
                    finished.put(contextvars.Context().run(self._one, *job))  # a trace each
            finally:
                finished.put(None)  # this worker is done

        workers = [
            threading.Thread(target=work, name="clew-experiment", daemon=True)
            for _ in range(min(self.concurrency, len(jobs)))
        ]
        for worker in workers:
            worker.start()
        results: list[RowResult] = []
        status = "finished"
        running = len(workers)
        try:
            while running:
                try:
                    item = finished.get(timeout=0.2)  # a timeout lets Ctrl-C in
                except queue.Empty:
                    continue
                if item is None:
                    running -= 1
                else:
                    results.append(item)
                    progress.add(item)
        except KeyboardInterrupt:
            status = "interrupted"
            stop.set()  # rows under way finish in the background; they are not waited for
            while not finished.empty():
                item = finished.get_nowait()
                if item is not None:
                    results.append(item)
        finally:
            progress.end()
        return self._finish(results, status, time.monotonic() - started)

    async def arun(self) -> ExperimentResult:
        """:meth:`run` for ``await``: an async ``func`` is awaited; a sync one runs in
        threads."""
        if not inspect.iscoroutinefunction(self.func):
            return await asyncio.to_thread(self.run)
        started = time.monotonic()
        jobs = self._jobs()
        progress = _Progress(self.name, len(jobs))
        gate = asyncio.Semaphore(self.concurrency)
        results: list[RowResult] = []

        async def one(job: tuple[int, int, Row]) -> None:
            async with gate:
                result = await self._aone(*job)
            results.append(result)
            progress.add(result)

        tasks = [asyncio.create_task(one(job), context=contextvars.Context()) for job in jobs]
        status = "finished"
        try:
            await asyncio.gather(*tasks)
        except (KeyboardInterrupt, asyncio.CancelledError):
            status = "interrupted"
            for task in tasks:
                task.cancel()
        finally:
            progress.end()
        return self._finish(results, status, time.monotonic() - started)

    def _finish(self, rows: list[RowResult], status: str, duration: float) -> ExperimentResult:
        rows.sort(key=lambda row: (row.index, row.trial))
        result = ExperimentResult(
            uuid=self.uuid,
            name=self.name,
            created=datetime.now(tz=UTC).isoformat(),
            status=status,
            dataset=self.dataset,
            dataset_version=self.dataset_version,
            summary=Summary.of(rows, duration),
            rows=rows,
            metadata=self.metadata,
        )
        try:
            save(result, self.store)
        except StoreError as exc:
            logger.error("clew: experiment %r ran but could not be stored: %s", self.name, exc)
        return result


def _pace() -> None:
    """Wait (a little) while an exporter's queue is over half full: an experiment makes spans
    faster than a store may write them while its threads hold the interpreter, and a dropped
    span would lose a row's trace. Application code is never held up like this; an experiment
    is a batch job that can wait."""
    limit = current_config().export.max_queue_size // 2
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline and any(
        found.get("queued", 0) > limit for found in setup_stats().values()
    ):
        time.sleep(0.005)


def _collect(item: Scored, scores: dict[str, list[float]], failures: dict[str, str]) -> None:
    if item.value is not None:
        scores.setdefault(item.name, []).append(item.value)
    elif item.error is not None:
        failures[item.name] = item.error


def experiment(
    name: str,
    data: Data,
    func: Callable[..., Any] | Callable[..., Awaitable[Any]],
    *,
    evals: Sequence[Callable[..., Any]] = (),
    n_trials: int = 1,
    concurrency: int = 8,
    metadata: Mapping[str, Any] | None = None,
    store: str | Path | None = None,
) -> Experiment:
    """An experiment: ``func`` on every row of ``data``, scored by ``evals``. Call
    ``.run()`` (or ``await .arun()``).

    Args:
        name: the experiment's name; runs of one name are compared with
            ``clew experiments compare``.
        data: a dataset's name (its latest version), a :class:`~clew.evals.datasets.Dataset`,
            or rows: ``{"inputs": {...}, "target": ..., "metadata": {...}}`` or
            :class:`~clew.evals.datasets.Row`.
        func: called with each row's inputs as keyword arguments; sync or async.
        evals: eval functions (``clew.evals.exact_match``, ``clew.evals.llm_judge(...)``, your
            own), given each call's :class:`~clew.Log` with the row's target.
        n_trials: how many times each row runs.
        concurrency: rows run at once.
        metadata: kept with the result and on each row's span.
        store: the store it is read from and kept in (default: ``CLEW_STORE``).

    Raises:
        ConfigurationError: a bad argument, or no rows.
        StoreError: ``data`` names a dataset that does not exist.

    Example:
        >>> import clew
        >>> result = clew.experiment("prompt-v3", data="refund-questions",  # doctest: +SKIP
        ...     func=answer, evals=[clew.evals.exact_match]).run()
        >>> print(result.summary)  # doctest: +SKIP
    """
    return Experiment(
        name,
        data,
        func,
        evals=evals,
        n_trials=n_trials,
        concurrency=concurrency,
        metadata=metadata,
        store=store,
    )
