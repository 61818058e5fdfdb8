"""Public test helpers: capture clew's spans, and compare whole span trees exactly.

``capture_spans()`` adds an in-memory exporter next to whatever is configured, for the length
of a ``with`` block (or of a test, through the ``clew_spans`` pytest fixture).
``deterministic()`` makes span ids count up from 1 and every span time a whole second after
the last, so a test can compare a whole tree, ids and times included::

    from clew.testing import capture_spans, deterministic

    with deterministic(), capture_spans() as captured:
        answer("hi")
    assert captured.tree() == [{"name": "answer", ..., "children": [...]}]

The pytest plugin (registered through the ``pytest11`` entry point) also turns on strict mode:
a failure inside clew raises :class:`~clew.errors.InternalError` in the test instead of being
logged (:func:`internal_errors_swallowed` turns it off for a block).

The fake LLM server lives in :mod:`clew.testing.llm_server`, recorded provider responses in
:mod:`clew.testing.cassettes`, and an OTLP receiver in :mod:`clew.testing.otlp_receiver`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator

from clew import errors, setup
from clew.exporters.memory import MemorySpanExporter

__all__ = [
    "IncrementalIdGenerator",
    "SpanCapture",
    "TimeGenerator",
    "capture_spans",
    "deterministic",
    "internal_errors_swallowed",
]


class IncrementalIdGenerator(IdGenerator):
    """Span ids 1, 2, 3 …; the n-th trace's id is ``n`` in its high 64 bits and the next span
    id in its low 64 bits (which clew gives its root span), so every id is unique and a root's
    ``trace_id`` reads like ``00000000-0000-0001-0000-000000000001``.

    Example:
        >>> ids = IncrementalIdGenerator()
        >>> hex(ids.generate_trace_id()), ids.generate_span_id()
        ('0x10000000000000001', 2)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans = 0
        self._traces = 0

    def generate_span_id(self) -> int:
        with self._lock:
            self._spans += 1
            return self._spans

    def generate_trace_id(self) -> int:
        with self._lock:
            self._spans += 1
            self._traces += 1
            return (self._traces << 64) | self._spans

    def is_trace_id_random(self) -> bool:
        return False


class TimeGenerator:
    """A clock for span times: each reading is ``step_ns`` after the last (1 s by default).

    Example:
        >>> clock = TimeGenerator()
        >>> clock(), clock()
        (1000000000, 2000000000)
    """

    def __init__(self, start_ns: int = 0, step_ns: int = 1_000_000_000) -> None:
        self._lock = threading.Lock()
        self._ns = start_ns
        self._step = step_ns

    def __call__(self) -> int:
        with self._lock:
            self._ns += self._step
            return self._ns


@contextmanager
def deterministic(
    ids: IdGenerator | None = None, clock: TimeGenerator | None = None
) -> Iterator[None]:
    """Give clew's spans counted ids and clock times inside the block (fresh ones by default).

    Example:
        >>> import clew
        >>> with deterministic(), capture_spans() as captured, clew.span("one"):
        ...     pass
        >>> record = captured.records()[0]
        >>> record["trace_id"], record["start_timestamp"]
        ('00000000-0000-0001-0000-000000000001', '1970-01-01T00:00:01+00:00')
    """
    setup.use_generators(ids or IncrementalIdGenerator(), clock or TimeGenerator())
    try:
        yield
    finally:
        setup.use_generators(None, None)


@contextmanager
def internal_errors_swallowed() -> Iterator[None]:
    """Inside the block, a failure inside clew is logged and swallowed, as in production
    (for a test of that very behaviour; strict mode is back after the block)."""
    was_testing = errors.is_strict()
    errors.set_strict(testing=False)
    try:
        yield
    finally:
        errors.set_strict(testing=was_testing)


class SpanCapture:
    """What :func:`capture_spans` collected."""

    def __init__(self, exporter: MemorySpanExporter) -> None:
        self.exporter = exporter

    @property
    def spans(self) -> list[ReadableSpan]:
        """The finished spans, in the order they ended."""
        return list(self.exporter.get_finished_spans())

    def records(self) -> list[dict[str, Any]]:
        """The finished spans as clew log records, in the order they ended."""
        return self.exporter.records()

    def by_name(self, name: str) -> dict[str, Any]:
        """The one record named ``name`` (AssertionError if there is not exactly one)."""
        found = [r for r in self.records() if r["name"] == name]
        assert len(found) == 1, f"expected one span named {name!r}, found {len(found)}"
        return found[0]

    def tree(self, *fields: str) -> list[dict[str, Any]]:
        """The captured records as trees: each record gets its children, in the order they
        started, under ``"children"``; the roots (spans whose parent was not captured) come in
        the order they started.

        Args:
            *fields: keep only these fields of each record (all of them when none is given).
        """
        records = sorted(
            self.records(), key=lambda r: (r["start_timestamp"] or "", r["execution_order"] or 0)
        )
        nodes = {
            r["trace_id"]: {
                **({k: r[k] for k in fields} if fields else r),
                "children": [],
            }
            for r in records
        }
        roots: list[dict[str, Any]] = []
        for record in records:
            parent = nodes.get(record["parent_trace_id"] or "")
            (parent["children"] if parent is not None else roots).append(nodes[record["trace_id"]])
        return roots

    def clear(self) -> None:
        """Forget what was captured so far."""
        self.exporter.clear()


@contextmanager
def capture_spans() -> Iterator[SpanCapture]:
    """Collect every clew span that ends inside the block (spans are handed over synchronously)."""
    setup.current_config()
    exporter = MemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    setup.clew_processor().add_extra(processor)
    try:
        yield SpanCapture(exporter)
    finally:
        setup.clew_processor().remove_extra(processor)
