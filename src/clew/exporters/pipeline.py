"""The export pipeline: a bounded queue and one worker thread per exporter.

The application's thread only enqueues (:meth:`ExportPipeline.on_end`): no I/O, no lock, no
logging, never an exception. One worker thread per exporter batches spans, encodes each batch
once, delivers it with retries (exponential backoff with full jitter, ``Retry-After`` honoured,
within a time budget per batch), and, when a spill directory is configured, keeps undeliverable
batches on disk and replays them oldest first once the backend answers again. Each span ends in
exactly one of the counters of :meth:`ExportPipeline.stats`, so nothing vanishes silently.

Modelled on OpenTelemetry's ``BatchSpanProcessor``: a deque plus one daemon thread, fork-safe
through ``os.register_at_fork``, and a shutdown that is idempotent and bounded by a deadline.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from time import monotonic

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, Context, attach, set_value
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

from clew.errors import ExportError, PermanentExportError, RetryableExportError, internal_error
from clew.exporters._sizing import ThrottledLog, average_span_bytes, learned_span_bytes
from clew.exporters._spill import SpillDir
from clew.exporters.accounting import Accounting, Stats
from clew.exporters.base import PayloadExporter, SpanExporterAdapter
from clew.exporters.retry import RetryPolicy

_logger = logging.getLogger(__name__)
_FIRST_GUESS_BYTES = 4096.0  # per span, until the worker has measured a batch
_MIN_ATTEMPT = 0.05  # seconds: less than this left is not worth a request
_REPLAYS_PER_ROUND = 8


class ExportPipeline(SpanProcessor):
    """An OpenTelemetry ``SpanProcessor`` that exports through one exporter, resiliently.

    Args:
        exporter: a :class:`~clew.exporters.base.PayloadExporter` (retries reuse the encoded
            payload; spill possible), or any OpenTelemetry ``SpanExporter`` (``FAILURE`` retried
            up to 3 times; no spill), or a :class:`~clew.exporters.base.SpanExporterAdapter`.
        name: names the exporter in logs, the worker thread and the spill subdirectory.
        max_queue_size: spans waiting at most; more are dropped and counted.
        max_queue_bytes: approximate memory the waiting spans may hold; the worker measures the
            spans it sends and lowers the span limit so that limit × average size fits.
        max_batch_size: spans per export request.
        schedule_delay: seconds a partial batch waits before it is sent.
        retry: the retry policy for a batch.
        spill_dir: where undeliverable batches are kept (``None``: they are counted as failed).
            Payload exporters only.
        spill_max_bytes: the most the spill directory may hold.
        shutdown_timeout: default for :meth:`shutdown` called without one (as the SDK does).

    Example:
        >>> from opentelemetry.sdk.trace import TracerProvider
        >>> from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        ...     InMemorySpanExporter)
        >>> memory = InMemorySpanExporter()
        >>> pipeline = ExportPipeline(memory, name="memory")
        >>> provider = TracerProvider()
        >>> provider.add_span_processor(pipeline)
        >>> provider.get_tracer("demo").start_span("hello").end()
        >>> pipeline.flush(5.0), len(memory.get_finished_spans())
        (True, 1)
        >>> pipeline.shutdown()
    """

    def __init__(
        self,
        exporter: PayloadExporter | SpanExporter | SpanExporterAdapter,
        *,
        name: str = "",
        max_queue_size: int = 2048,
        max_queue_bytes: int = 32 * 1024 * 1024,
        max_batch_size: int = 512,
        schedule_delay: float = 1.0,
        retry: RetryPolicy | None = None,
        spill_dir: str | os.PathLike[str] | None = None,
        spill_max_bytes: int = 128 * 1024 * 1024,
        shutdown_timeout: float = 2.0,
    ) -> None:
        if max_queue_size < 1 or max_batch_size < 1 or max_queue_bytes < 1:
            raise ValueError("queue and batch sizes must be at least 1")
        if schedule_delay <= 0 or shutdown_timeout < 0:
            raise ValueError("schedule_delay must be > 0 and shutdown_timeout >= 0")
        self.name = name or type(exporter).__name__
        self._payload: PayloadExporter | None = None
        self._adapter: SpanExporterAdapter | None = None
        if isinstance(exporter, PayloadExporter):
            self._payload = exporter
            self._retry = retry or RetryPolicy()
        else:
            if spill_dir is not None:
                raise ValueError("spill_dir needs a PayloadExporter (otlp, http)")
            if not isinstance(exporter, SpanExporterAdapter):
                exporter = SpanExporterAdapter(exporter)
            self._adapter = exporter
            self._retry = retry or RetryPolicy(max_attempts=exporter.max_attempts)
        self._max_queue_size = max_queue_size
        self._max_queue_bytes = max_queue_bytes
        self._batch_size = max_batch_size
        self._schedule_delay = schedule_delay
        self._shutdown_timeout = shutdown_timeout
        self._spill = (
            SpillDir(spill_dir, kind=self._payload.payload_kind, max_bytes=spill_max_bytes)
            if spill_dir is not None and self._payload is not None
            else None
        )
        self._log = ThrottledLog(_logger, self.name)
        self._closed = False
        self._deadline = 0.0
        self._reserve = 0.0
        self._exporter_closed = False
        self._reset_state()
        weak_reinit = weakref.WeakMethod(self._after_fork_in_child)

        def after_fork_in_child() -> None:
            reinit = weak_reinit()
            if reinit is not None:
                reinit()

        os.register_at_fork(after_in_child=after_fork_in_child)
        self._start_worker()

    # ----------------------------------------------------------------- the app's side
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Enqueue a finished span; drop and count it when the queue is full. Never blocks."""
        ctx = span.context
        if ctx is None or not ctx.trace_flags.sampled:
            return
        self._count.offer()
        queue = self._queue
        if self._closed or len(queue) >= self._limit:
            self._count.drop()
            return
        queue.append(span)
        if len(queue) >= self._batch_size and not self._wake.is_set():
            self._wake.set()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """OpenTelemetry's flush, in milliseconds; see :meth:`flush`."""
        return self.flush(timeout_millis / 1000)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every span enqueued before the call is exported, failed or spilled.

        Spilled batches are offered to the backend first (oldest first), whatever the retry
        timer says. Returns within ``timeout`` seconds whatever the backend does; ``False`` if
        time ran out.
        """
        event = self.request_flush()
        return event is None or event.wait(max(timeout, 0.0))

    def shutdown(self, timeout: float | None = None) -> None:
        """Flush, then stop the worker and release the exporter, within ``timeout`` seconds.

        Idempotent. Spans still queued when time runs out are spilled (when configured) or
        counted as failed; a request still in flight is aborted. The worker is a daemon thread:
        it is not joined past the deadline.
        """
        self.begin_shutdown(self._shutdown_timeout if timeout is None else timeout)
        self.await_shutdown()

    def begin_shutdown(self, timeout: float) -> None:
        """Start shutting down without waiting; :meth:`await_shutdown` waits. Idempotent."""
        if self._closed:
            return
        timeout = max(timeout, 0.0)
        self._deadline = monotonic() + timeout
        self._reserve = min(0.25, 0.2 * timeout)  # kept to abort, account and spill
        self._closed = True
        self._stopping.set()
        self._wake.set()

    def await_shutdown(self) -> None:
        """Wait for the worker until the shutdown deadline, aborting what is in flight."""
        if not self._closed:
            self.begin_shutdown(self._shutdown_timeout)
        if threading.current_thread() is not self._worker:
            self._stopped.wait(max(self._deadline - self._reserve - monotonic(), 0.0))
            if not self._stopped.is_set():
                self._aborting.set()
                self._close_exporter()
                self._stopped.wait(max(self._deadline - monotonic(), 0.0))
        self._close_exporter()

    def stats(self) -> Stats:
        """Counters since this pipeline started (or its process forked); what each counts,
        and the rule they keep, are in :mod:`clew.exporters.accounting`."""
        with self._count.lock:
            stats = self._count.snapshot(len(self._queue), 0)
        if self._spill is not None:
            stats["spill_pending"] = self._spill.pending_spans()
        return stats

    # ----------------------------------------------------------------- lifecycle
    def _reset_state(self) -> None:
        self._queue: deque[ReadableSpan] = deque()
        self._limit = self._max_queue_size
        self._avg_bytes = _FIRST_GUESS_BYTES
        self._measured = False
        self._count = Accounting()
        self._dropped_reported = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._aborting = threading.Event()
        self._stopped = threading.Event()
        self._flush_lock = threading.Lock()
        self._flush_requests: list[threading.Event] = []
        self._next_probe = 0.0
        self._probe_failures = 0
        self._spill_waiting = bool(self._spill and self._spill.entries())

    def _start_worker(self) -> None:
        self._worker = threading.Thread(
            target=self._run, name=f"clew-export-{self.name}", daemon=True
        )
        self._worker.start()

    def _after_fork_in_child(self) -> None:
        # The child starts empty: the parent's queued spans are the parent's to export.
        self._reset_state()
        if self._closed:
            self._stopped.set()
        else:
            self._start_worker()

    def request_flush(self) -> threading.Event | None:
        """Ask the worker to flush without waiting; the event is set when it is done.

        ``None`` when there is nothing to wait for (the worker has stopped, or this is it).
        """
        if self._stopped.is_set() or threading.current_thread() is self._worker:
            return None
        event = threading.Event()
        with self._flush_lock:
            self._flush_requests.append(event)
        self._wake.set()
        if self._stopped.is_set():  # the worker ended meanwhile
            event.set()
        return event

    def _close_exporter(self) -> None:
        with self._count.lock:
            if self._exporter_closed:
                return
            self._exporter_closed = True
        closer = self._payload or self._adapter
        try:
            if closer is not None:
                closer.shutdown()
        except Exception:
            internal_error(_logger, "exporter %r: shutdown failed", self.name)

    # ----------------------------------------------------------------- the worker
    def _run(self) -> None:
        attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))  # our HTTP calls are not traced
        try:
            while True:
                timer_fired = self._wait_for_work()
                with self._flush_lock:
                    flushes, self._flush_requests = self._flush_requests, []
                stopping = self._stopping.is_set()
                if self._spill_waiting and not stopping:
                    self._replay_spill(everything=bool(flushes))
                if stopping:
                    self._drain(None)
                    break
                if flushes or timer_fired:
                    self._drain(len(self._queue))
                else:
                    self._drain(len(self._queue) // self._batch_size * self._batch_size)
                for event in flushes:
                    event.set()
                self._report_drops()
        except BaseException:  # never die silently: the queue would fill and drop everything
            internal_error(_logger, "exporter %r: the export worker stopped", self.name)
        finally:
            self._report_drops()
            self._stopped.set()
            with self._flush_lock:
                for event in self._flush_requests:
                    event.set()

    def _wait_for_work(self) -> bool:
        self._wake.clear()
        if self._stopping.is_set() or self._flush_requests:
            return False
        if len(self._queue) >= self._batch_size:
            return False
        timeout = self._schedule_delay
        if self._spill_waiting:
            timeout = min(timeout, max(self._next_probe - monotonic(), 0.0))
        return not self._wake.wait(timeout)

    def _drain(self, limit: int | None) -> None:
        """Process ``limit`` queued spans (``None``: until the queue is empty)."""
        remaining = limit
        while self._queue and (remaining is None or remaining > 0):
            n = min(self._batch_size, len(self._queue))
            if remaining is not None:
                n = min(n, remaining)
                remaining -= n
            with self._count.lock:
                batch = [self._queue.popleft() for _ in range(n)]
                self._count.in_flight = n
            try:
                self._process(batch)
            except Exception as exc:
                self._count.settle(failed=len(batch), error=f"internal error: {exc!r}")
                internal_error(_logger, "exporter %r: a batch could not be processed", self.name)

    def _process(self, spans: list[ReadableSpan]) -> None:
        self._learn_size(spans)
        n = len(spans)
        if self._payload is None:
            adapter = self._adapter
            assert adapter is not None
            error = self._deliver(lambda _timeout: adapter.export(spans))
            self._settle(n, error, payload=None)
            return
        exporter = self._payload
        try:
            payload = exporter.encode(spans)
        except PermanentExportError as exc:
            self._log.warning("encode", "cannot encode a batch: %r", exc)
            self._count.settle(failed=n, error=f"cannot encode a batch: {exc}")
            return
        if self._spill_waiting:  # older batches are on disk: keep the order
            self._to_spill(payload, n)
            return
        error = self._deliver(lambda timeout: exporter.send(payload, timeout))
        self._settle(n, error, payload)

    def _settle(self, n: int, error: ExportError | None, payload: bytes | None) -> None:
        if error is None:
            self._count.settle(exported=n)
        elif isinstance(error, RetryableExportError) and payload is not None and self._spill:
            self._to_spill(payload, n, error)
        else:
            kind = "permanent" if isinstance(error, PermanentExportError) else "failed"
            self._log.warning(kind, "%d spans not exported: %s", n, error)
            self._count.settle(failed=n, error=str(error))

    def _deliver(self, send: Callable[[float], None]) -> ExportError | None:
        """Send one batch with retries; ``None`` on success, else the last error.

        No new attempt starts after the retry budget (or, while shutting down, close to the
        deadline); each attempt gets the exporter's request timeout, capped by the deadline.
        """
        policy = self._retry
        give_up_at = monotonic() + policy.budget
        failures = 0
        error: ExportError = RetryableExportError("shutting down: no time left to send")
        while not self._aborting.is_set():
            timeout = self._request_timeout()
            if self._stopping.is_set():
                left = self._deadline - self._reserve - monotonic()
                if left < _MIN_ATTEMPT:
                    break
                timeout = min(timeout, left)
            try:
                send(timeout)
                return None
            except RetryableExportError as exc:
                error = exc
            except PermanentExportError as exc:
                return exc
            failures += 1
            with self._count.lock:
                self._count.last_error = str(error)
            if policy.max_attempts is not None and failures >= policy.max_attempts:
                break
            delay = error.retry_after if error.retry_after is not None else policy.backoff(failures)
            if not self._pause(delay, give_up_at):
                break
        return error

    def _request_timeout(self) -> float:
        return self._payload.timeout if self._payload is not None else float("inf")

    def _attempt_limit(self, give_up_at: float) -> float:
        if self._stopping.is_set():
            return min(give_up_at, self._deadline - self._reserve)
        return give_up_at

    def _pause(self, delay: float, give_up_at: float) -> bool:
        """Sleep ``delay`` seconds; ``False`` if the batch must be given up instead."""
        end = monotonic() + delay
        while True:
            if self._aborting.is_set() or end > self._attempt_limit(give_up_at):
                return False
            left = end - monotonic()
            if left <= 0:
                return True
            # Shutting down re-plans the pause against the deadline; aborting ends it.
            (self._aborting if self._stopping.is_set() else self._stopping).wait(left)

    # ----------------------------------------------------------------- spill
    def _to_spill(self, payload: bytes, n: int, error: ExportError | None = None) -> None:
        assert self._spill is not None
        refused = self._spill.write(payload, n)
        if refused is not None:
            self._log.warning("spill", "%d spans not exported: %s", n, refused)
            self._count.settle(failed=n, error=refused)
            return
        if error is not None:
            self._log.warning("failed", "%d spans spilled to disk: %s", n, error)
            self._probe_failures += 1
            self._next_probe = monotonic() + self._retry.backoff(self._probe_failures)
        self._spill_waiting = True
        self._count.settle(spilled=n, error=str(error) if error else None)

    def _replay_spill(self, *, everything: bool) -> None:
        """Resend spilled batches, oldest first, until one fails.

        Runs when the probe timer is due (a few batches per round, so the queue keeps moving)
        or on a flush (every batch, whatever the timer says).
        """
        spill, exporter = self._spill, self._payload
        assert spill is not None and exporter is not None
        if not everything and monotonic() < self._next_probe:
            return
        with spill.replay_lock() as held:
            if not held:  # another process replays this directory
                self._next_probe = monotonic() + self._schedule_delay
                return
            entries = spill.entries()
            for entry in entries if everything else entries[:_REPLAYS_PER_ROUND]:
                if self._stopping.is_set():
                    return
                payload = spill.read(entry)
                if payload is None:
                    if entry.path.exists():
                        spill.quarantine(entry)
                        self._count.settle(failed=entry.spans, error=f"unreadable {entry.path}")
                    continue
                try:
                    exporter.send(payload, exporter.timeout)
                except RetryableExportError as exc:
                    self._probe_failures += 1
                    delay = exc.retry_after
                    if delay is None:
                        delay = self._retry.backoff(self._probe_failures)
                    self._next_probe = monotonic() + delay
                    with self._count.lock:
                        self._count.last_error = str(exc)
                    return
                except Exception as exc:
                    spill.remove(entry)
                    self._count.settle(failed=entry.spans, error=str(exc))
                    if not isinstance(exc, PermanentExportError):  # the exporter broke its contract
                        internal_error(_logger, "exporter %r: replaying a batch failed", self.name)
                    self._log.warning("permanent", "spilled batch rejected: %s", exc)
                    continue
                spill.remove(entry)
                self._probe_failures = 0
                self._count.settle(exported=entry.spans, replayed=entry.spans)
            self._spill_waiting = bool(spill.entries())

    # ----------------------------------------------------------------- bookkeeping
    def _learn_size(self, spans: Sequence[ReadableSpan]) -> None:
        """Fit the span limit to the measured span size; trim what a burst let in."""
        self._avg_bytes = learned_span_bytes(
            average_span_bytes(spans), self._avg_bytes if self._measured else None
        )
        self._measured = True
        fits = int(self._max_queue_bytes // self._avg_bytes)
        self._limit = limit = max(1, min(self._max_queue_size, fits))
        queue = self._queue
        while len(queue) > limit:  # newest first, as on_end drops newcomers
            try:
                queue.pop()
            except IndexError:
                break
            self._count.drop()

    def _report_drops(self) -> None:
        dropped = self._count.dropped
        if dropped > self._dropped_reported:
            self._log.warning(
                "dropped",
                "queue full (%d spans): %d spans dropped so far",
                self._limit,
                dropped,
            )
            self._dropped_reported = dropped
