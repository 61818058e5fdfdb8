"""Walks of the trace store: the newest traces that match, found by walking an index that
leads with a start time (or a filter value, then a start time) backwards.

A walk is a query yielding ``(root_trace_id, start_ns)`` of matching spans, newest first (see
:mod:`clew.store.queries`, which chooses it); :func:`newest_roots` turns it into the newest
traces, checking each trace it meets. A walk can be narrowed (a page after the first, a
prefilter), sliced (so a walk that SQLite scans in C for long still lets its caller see the
time), and stopped at a deadline where it can go on later.
"""

from __future__ import annotations

import heapq
import math
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from clew.store.schema import root_key

Check = Callable[[sqlite3.Connection, str], bool]
"""Whether the trace of a root id matches a filter the walk leaves out."""

_FIRST_START = "SELECT min(start_ns) FROM spans WHERE root_key = ? AND root_trace_id = ?"


@dataclass(frozen=True, slots=True)
class Window:
    """Traces that started at or after ``since`` (ns), and before the cursor ``before``:
    ``(start_ns, root_trace_id)`` of the last trace of the previous page."""

    since: float | None = None
    before: tuple[float, str] | None = None


def narrowed(
    walk: str, params: tuple[Any, ...], condition: str, values: tuple[Any, ...]
) -> tuple[str, tuple[Any, ...]]:
    """``walk`` over only the rows that also meet ``condition``."""
    head, order = walk.split(" ORDER BY ")
    joiner = " AND " if " WHERE " in head else " WHERE "
    return f"{head}{joiner}{condition} ORDER BY {order}", (*params, *values)


def up_to(walk: str, params: tuple[Any, ...], start: float) -> tuple[str, tuple[Any, ...]]:
    """``walk`` from ``start`` back (a page after the first: its traces started before the
    previous page's last, whose first span the walk must still meet)."""
    return narrowed(walk, params, "start_ns <= ?", (start,))


def first_start(conn: sqlite3.Connection, root: str) -> float:
    """A trace's earliest start in ns: an int (a float would round it), -inf when unknown."""
    (first,) = conn.execute(_FIRST_START, (root_key(root), root)).fetchone()
    return -math.inf if first is None else int(first)


SLICE_SPANS = 10_000
"""Spans per slice of a prefiltered walk (10-20 ms of scanning raw text)."""
_SLICE_END = (
    "SELECT start_ns FROM spans WHERE start_ns <= ? ORDER BY start_ns DESC LIMIT 1 OFFSET ?"
)


def walked(
    conn: sqlite3.Connection, walk: str, params: tuple[Any, ...], sliced: bool, top: float
) -> Iterator[tuple[str | None, Any]]:
    """The rows of ``walk``, whose spans started at ``top`` or earlier; ``sliced``, in slices of
    about :data:`SLICE_SPANS` spans of the store, each followed by ``(None, start)``: every span
    that started at ``start`` or later has been met.

    A walk with prefilters may scan many spans in C between two rows it yields; its slices let
    the caller see the time between them.
    """
    if not sliced:
        with closing(conn.execute(walk, params)) as cursor:
            yield from cursor
        return
    high = top
    while True:
        end = conn.execute(
            _SLICE_END, (high if high < math.inf else 2**63 - 1, SLICE_SPANS)
        ).fetchone()
        if end is None or end[0] is None:
            values: tuple[Any, ...] = (high,)
            condition = "start_ns <= ?"
            if top == math.inf:  # the first page: spans without a start come last (as unsliced)
                condition = "(start_ns <= ? OR start_ns IS NULL)"
            if high == math.inf:
                condition, values = "1", ()
            with closing(conn.execute(*narrowed(walk, params, condition, values))) as cursor:
                yield from cursor
            return
        low = min(int(end[0]), int(high) - 1) if high < math.inf else int(end[0])
        in_slice = narrowed(walk, params, "start_ns <= ? AND start_ns > ?", (high, low))
        with closing(conn.execute(*in_slice)) as cursor:
            yield from cursor
        yield None, low + 1
        high = low


def newest_roots(
    conn: sqlite3.Connection,
    limit: int,
    walk: str,
    params: tuple[Any, ...],
    checks: list[Check],
    window: Window | None = None,
    deadline: float | None = None,
    sliced: bool = False,
) -> tuple[list[str], int | None]:
    """The ``limit`` matching root ids whose traces started last, newest first, and where the
    walk stopped at the ``deadline`` (``time.monotonic()``), if it did.

    A trace starts with its earliest span. The walk meets matching spans newest first, so every
    trace it has not met yet started at or before the current span: it stops once ``limit``
    traces met so far started after the current span (ties are ordered by root id, so one
    that started at the same time may still come). With a ``window``, only traces that
    started in it count, and the walk stops at its start.

    Past the ``deadline``, the walk stops where it has met every span that started at some
    time or later (where the start time changes, or a slice ends: see :func:`walked`), and
    keeps only the traces that started then or later, which it has seen whole: the search
    goes on from that time (the value returned), below the page's. It always gets below
    where it began, so a search resumed again and again ends.
    """
    since, before = (window.since, window.before) if window is not None else (None, None)
    starts: dict[str, float] = {}
    rejected: set[str] = set()
    ahead: list[float] = []  # max-heap (negated) of found traces' starts not yet walked past
    passed = 0
    last = math.inf  # every span that started after this was met
    stopped: int | None = None
    top = math.inf if before is None else before[0]

    def out_of_time(met_from: float) -> bool:
        return (
            deadline is not None
            and met_from < top
            and met_from > -math.inf
            and time.monotonic() > deadline
        )

    for root, start in walked(conn, walk, params, sliced, top):
        position = -math.inf if start is None else start
        if root is None:  # a slice ended
            if out_of_time(position):
                stopped = int(position)
                break
            continue
        if since is not None and position < since:
            break  # every trace not met yet started before the window
        if position < last and out_of_time(last):
            stopped = int(last)
            break
        last = position
        if root not in starts and root not in rejected:
            if all(check(conn, root) for check in checks):
                first = first_start(conn, root)
                if (since is not None and first < since) or (
                    before is not None and (first, root) >= before
                ):
                    rejected.add(root)
                    continue
                starts[root] = first
                heapq.heappush(ahead, -first)
            else:
                rejected.add(root)
        while ahead and -ahead[0] > position:  # walked past it (a tie may be unmet)
            heapq.heappop(ahead)
            passed += 1
        if passed >= limit:
            break
    found = sorted(starts, key=lambda root: (starts[root], root), reverse=True)
    if stopped is not None:
        found = [root for root in found if starts[root] >= stopped]
    return found[:limit], stopped
