"""Threads: without help a thread starts a new trace; wrap() and instrument_threads() carry it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import clew
from clew.testing import SpanCapture


@clew.trace
def job(i: int) -> int:
    return i


def test_plain_thread_does_not_inherit(clew_spans: SpanCapture) -> None:
    with clew.span("parent"):
        t = threading.Thread(target=job, args=(1,))
        t.start()
        t.join()
    assert clew_spans.by_name("job")["parent_trace_id"] is None


def test_wrap_carries_the_trace(clew_spans: SpanCapture) -> None:
    with clew.span("parent") as parent:
        wrapped = clew.wrap(job)
        threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    jobs = [r for r in clew_spans.records() if r["name"] == "job"]
    assert len(jobs) == 4
    assert {r["parent_trace_id"] for r in jobs} == {parent.trace_id}


def test_instrument_threads_covers_executors_and_threads(clew_spans: SpanCapture) -> None:
    with clew.instrument_threads() as handle:
        assert clew.instrument_threads() is not handle  # second call is a no-op handle
        with clew.span("parent") as parent, ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(job, range(6)))
            t = threading.Thread(target=job, args=(99,))
            t.start()
            t.join()
    assert results == list(range(6))
    jobs = [r for r in clew_spans.records() if r["name"] == "job"]
    assert len(jobs) == 7
    assert {r["parent_trace_id"] for r in jobs} == {parent.trace_id}
    # after uninstrument, threads start fresh traces again
    clew_spans.clear()
    with clew.span("parent2"), ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(job, 1).result()
    assert clew_spans.by_name("job")["parent_trace_id"] is None
