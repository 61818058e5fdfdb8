"""After fork() each process exports its own spans once; many threads lose nothing."""

from __future__ import annotations

import json
import os
import threading

import pytest

from clew.testing.otlp_receiver import OtlpHttpReceiver

from .conftest import Harness, assert_accounted, emit


def test_fork_child_exports_its_own_spans_and_does_not_duplicate_the_parents(
    harness: Harness, receiver: OtlpHttpReceiver
) -> None:
    pipeline = harness.otlp(receiver.url, schedule_delay=60.0)
    tracer = harness.tracer(pipeline)
    emit(tracer, 3, prefix="before")
    assert pipeline.flush(5.0)  # the parent now holds a kept-alive connection
    emit(tracer, 10, prefix="parent")  # queued in the parent at fork time
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        status = 1
        try:
            os.close(read_end)
            emit(tracer, 5, prefix="child")
            flushed = pipeline.flush(5.0)
            os.write(write_end, json.dumps([flushed, pipeline.stats()]).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        flushed, child_stats = json.loads(pipe.read())
    _, wait_status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(wait_status) == 0
    assert flushed
    assert (child_stats["enqueued"], child_stats["exported"]) == (5, 5)
    assert pipeline.flush(5.0)
    names = sorted(s.name for s in receiver.spans())
    expected = [f"before-{i}" for i in range(3)] + [f"parent-{i}" for i in range(10)]
    assert names == sorted(expected + [f"child-{i}" for i in range(5)])
    assert_accounted(pipeline, received=13)


@pytest.mark.parametrize(
    "queue",
    [
        pytest.param({}, id="default-queue"),  # overloaded: most are dropped, all are counted
        pytest.param({"max_queue_size": 100_000, "max_queue_bytes": 2**31}, id="roomy-queue"),
    ],
)
def test_fifty_threads_lose_no_span(
    harness: Harness, receiver: OtlpHttpReceiver, queue: dict[str, int]
) -> None:
    threads, per_thread = 50, 2000
    # A generous request timeout: a retry after a timeout could deliver a batch twice
    # (OTLP is at-least-once), and 50 busy threads slow this process's receiver down.
    pipeline = harness.otlp(receiver.url, timeout=60.0, **queue)
    tracer = harness.tracer(pipeline)
    start = threading.Barrier(threads)

    def work(t: int) -> None:
        start.wait()
        emit(tracer, per_thread, prefix=f"t{t}")

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert pipeline.flush(120.0)  # a bound for slow machines, not a timing
    stats = assert_accounted(pipeline, received=receiver.span_count())
    assert stats["enqueued"] == threads * per_thread
    assert stats["queued"] == 0 and stats["failed"] == 0
    assert receiver.span_count() + stats["dropped"] == threads * per_thread
    names = [s.name for s in receiver.spans()]
    assert len(names) == len(set(names))  # nothing sent twice
    if queue:
        assert stats["dropped"] == 0
