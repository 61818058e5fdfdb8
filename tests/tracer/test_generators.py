"""Generators and async generators: one span over the whole iteration, ended exactly once."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator

import pytest

import clew
from clew.testing import SpanCapture


@clew.trace
def words(n: int) -> Iterator[str]:
    for i in range(n):
        yield f"w{i} "


@clew.trace
def numbers(n: int) -> Iterator[int]:
    for i in range(n):
        with clew.span("inner-step"):
            pass
        yield i


@clew.trace
async def agen_words(n: int) -> AsyncIterator[str]:
    for i in range(n):
        yield f"a{i}"


def test_exhausted_generator_records_joined_text(clew_spans: SpanCapture) -> None:
    assert list(words(3)) == ["w0 ", "w1 ", "w2 "]
    records = clew_spans.records()
    assert len(records) == 1
    assert records[0]["output"] == "w0 w1 w2 "
    assert records[0]["inputs"] == {"n": 3}


def test_non_string_items_are_recorded_as_a_list(clew_spans: SpanCapture) -> None:
    assert list(numbers(3)) == [0, 1, 2]
    assert clew_spans.by_name("numbers")["output"] == [0, 1, 2]


def test_span_is_not_current_across_yield(clew_spans: SpanCapture) -> None:
    with clew.span("consumer") as consumer:
        for _ in numbers(2):
            # the consumer's code sees the consumer span, not the generator's
            assert clew.get_current_trace_id() == consumer.trace_id
            with clew.span("loop-body"):
                pass
    gen_record = clew_spans.by_name("numbers")
    consumer_record = clew_spans.by_name("consumer")
    steps = [r for r in clew_spans.records() if r["name"] == "inner-step"]
    bodies = [r for r in clew_spans.records() if r["name"] == "loop-body"]
    assert {r["parent_trace_id"] for r in steps} == {gen_record["trace_id"]}
    assert {r["parent_trace_id"] for r in bodies} == {consumer_record["trace_id"]}
    assert gen_record["parent_trace_id"] == consumer_record["trace_id"]


def test_early_break_ends_the_span_once_with_partial_output(clew_spans: SpanCapture) -> None:
    for item in words(10):
        if item == "w1 ":
            break
    gc.collect()
    records = clew_spans.records()
    assert len(records) == 1
    assert records[0]["output"] == "w0 w1 "
    assert records[0]["status"] == "success"


def test_close_ends_the_span(clew_spans: SpanCapture) -> None:
    gen = words(5)
    next(gen)
    gen.close()
    del gen
    gc.collect()
    assert [r["output"] for r in clew_spans.records()] == ["w0 "]


def test_unstarted_generator_collected_ends_the_span(clew_spans: SpanCapture) -> None:
    gen = words(5)
    del gen
    gc.collect()
    records = clew_spans.records()
    assert len(records) == 1
    assert records[0]["name"] == "words"


def test_error_mid_iteration(clew_spans: SpanCapture) -> None:
    @clew.trace
    def broken() -> Iterator[int]:
        yield 1
        raise RuntimeError("mid-stream")

    gen = broken()
    assert next(gen) == 1
    with pytest.raises(RuntimeError, match="mid-stream"):
        next(gen)
    del gen
    gc.collect()
    records = clew_spans.records()
    assert len(records) == 1
    assert records[0]["error"] == "RuntimeError: mid-stream"


def test_send_and_return_value_pass_through(clew_spans: SpanCapture) -> None:
    @clew.trace
    def echo() -> Iterator[str]:
        received = yield "ready"
        while received != "stop":
            received = yield f"got {received}"
        return "done"

    gen = echo()
    assert next(gen) == "ready"
    assert gen.send("a") == "got a"
    with pytest.raises(StopIteration) as stop:
        gen.send("stop")
    assert stop.value.value == "done"
    assert clew_spans.by_name("echo")["output"] == "readygot a"


def test_throw_into_generator(clew_spans: SpanCapture) -> None:
    @clew.trace
    def catcher() -> Iterator[str]:
        try:
            yield "first"
        except KeyError:
            yield "recovered"

    gen = catcher()
    next(gen)
    assert gen.throw(KeyError("k")) == "recovered"
    gen.close()
    assert clew_spans.by_name("catcher")["output"] == "firstrecovered"


async def test_async_generator_exhausted(clew_spans: SpanCapture) -> None:
    items = [item async for item in agen_words(3)]
    assert items == ["a0", "a1", "a2"]
    assert clew_spans.by_name("agen_words")["output"] == "a0a1a2"


async def test_async_generator_early_break_and_aclose(clew_spans: SpanCapture) -> None:
    gen = agen_words(10)
    async for item in gen:
        if item == "a1":
            break
    await gen.aclose()
    records = clew_spans.records()
    assert len(records) == 1
    assert records[0]["output"] == "a0a1"


async def test_async_generator_collected_ends_span(clew_spans: SpanCapture) -> None:
    gen = agen_words(10)
    assert await gen.__anext__() == "a0"
    del gen
    gc.collect()
    records = clew_spans.records()
    assert len(records) == 1
    assert records[0]["output"] == "a0"


async def test_async_generator_error(clew_spans: SpanCapture) -> None:
    @clew.trace
    async def broken() -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("async mid-stream")

    with pytest.raises(RuntimeError):
        async for _ in broken():
            pass
    assert clew_spans.by_name("broken")["status"] == "error"
