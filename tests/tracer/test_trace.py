"""@clew.trace on every kind of callable: ids, tree, inputs, outputs, errors."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

import clew
from clew.testing import SpanCapture


@clew.trace
def add(x: int, y: int = 2) -> int:
    return x + y


@clew.trace(name="outer-span", tags=["t1"], metadata={"k": "v"}, end_user_identifier="u-1")
def outer(n: int) -> int:
    return add(n) + add(n, y=10)


def test_bare_decorator_records_inputs_output_and_root_ids(clew_spans: SpanCapture) -> None:
    assert add(1) == 3
    record = clew_spans.by_name("add")
    assert record["inputs"] == {"x": 1, "y": 2}
    assert record["output"] == 3
    assert record["status"] == "success"
    assert record["error"] is None
    assert record["trace_id"] == record["root_trace_id"]
    assert record["parent_trace_id"] is None
    assert record["depth"] == 0
    assert record["execution_order"] == 0
    assert record["latency"] >= 0
    assert record["project_name"] == "tests"


def test_nested_calls_form_one_tree(clew_spans: SpanCapture) -> None:
    assert outer(1) == 3 + 11
    records = clew_spans.records()
    root = clew_spans.by_name("outer-span")
    children = [r for r in records if r["name"] == "add"]
    assert len(children) == 2
    for child in children:
        assert child["parent_trace_id"] == root["trace_id"]
        assert child["root_trace_id"] == root["trace_id"] == root["root_trace_id"]
        assert child["depth"] == 1
        assert child["trace_id"] != root["trace_id"]
    assert sorted(c["execution_order"] for c in children) == [1, 2]
    assert root["tags"] == ["t1"]
    assert root["metadata"] == {"k": "v"}
    assert root["end_user_identifier"] == "u-1"
    assert children[0]["inputs"] == {"x": 1, "y": 2}
    assert children[1]["inputs"] == {"x": 1, "y": 10}


def test_ids_are_uuid_strings_mapped_onto_opentelemetry_ids(clew_spans: SpanCapture) -> None:
    outer(2)
    spans = {s.name: s for s in clew_spans.spans}
    root = spans["outer-span"]
    assert root.context is not None
    trace_id = root.context.trace_id
    assert root.context.span_id == trace_id & ((1 << 64) - 1)
    record = clew_spans.by_name("outer-span")
    assert record["root_trace_id"].replace("-", "") == f"{trace_id:032x}"
    child = next(s for s in clew_spans.spans if s.name == "add")
    assert child.context is not None
    child_record = next(r for r in clew_spans.records() if r["name"] == "add")
    expected = f"{trace_id >> 64:016x}{child.context.span_id:016x}"
    assert child_record["trace_id"].replace("-", "") == expected
    assert len(child_record["trace_id"]) == 36


class Boom(Exception):
    pass


@clew.trace
def explode(reason: str) -> None:
    raise Boom(reason)


def test_exception_is_recorded_and_reraised_unchanged(clew_spans: SpanCapture) -> None:
    with pytest.raises(Boom) as info:
        explode("bad input")
    assert str(info.value) == "bad input"
    record = clew_spans.by_name("explode")
    assert record["status"] == "error"
    assert record["error"] == "Boom: bad input"
    assert record["attributes"]["error.type"].endswith("Boom")
    span = clew_spans.spans[0]
    assert [e.name for e in span.events] == ["exception"]


def test_signature_and_metadata_are_kept() -> None:
    def plain(a: int, b: str = "x", *, c: float = 1.0) -> str:
        """Doc."""
        return b

    traced = clew.trace(plain)
    assert inspect.signature(traced) == inspect.signature(plain)
    assert traced.__name__ == "plain"
    assert traced.__doc__ == "Doc."


class Service:
    prefix = "p"

    @clew.trace
    def method(self, item: str) -> str:
        return self.prefix + item

    @clew.trace
    @classmethod
    def build(cls, item: str) -> str:
        return cls.prefix + item

    @classmethod
    @clew.trace
    def build_inner(cls, item: str) -> str:
        return cls.prefix + item

    @clew.trace
    @staticmethod
    def helper(item: str) -> str:
        return item * 2


def test_methods_classmethods_staticmethods(clew_spans: SpanCapture) -> None:
    svc = Service()
    assert svc.method("a") == "pa"
    assert Service.build("b") == "pb"
    assert Service.build_inner("c") == "pc"
    assert svc.helper("d") == "dd"
    assert Service.helper("e") == "ee"
    by_name = {r["name"]: r for r in clew_spans.records()}
    assert by_name["method"]["inputs"] == {"item": "a"}
    assert by_name["build"]["inputs"] == {"item": "b"}
    assert by_name["build_inner"]["inputs"] == {"item": "c"}
    assert by_name["helper"]["inputs"] == {"item": "e"}


def test_varargs_and_kwargs_are_bound(clew_spans: SpanCapture) -> None:
    @clew.trace
    def flexible(first: int, *rest: int, flag: bool = False, **extra: Any) -> int:
        return first + sum(rest)

    assert flexible(1, 2, 3, flag=True, colour="red") == 6
    assert clew_spans.by_name("flexible")["inputs"] == {
        "first": 1,
        "rest": [2, 3],
        "flag": True,
        "colour": "red",
    }


def test_wrong_arguments_raise_the_functions_own_type_error(clew_spans: SpanCapture) -> None:
    with pytest.raises(TypeError):
        add()  # type: ignore[call-arg]
    assert clew_spans.by_name("add")["status"] == "error"


async def test_async_function_and_gather_siblings(clew_spans: SpanCapture) -> None:
    @clew.trace
    async def leaf(i: int) -> int:
        await asyncio.sleep(0)
        return i * 2

    @clew.trace
    async def fan_out() -> list[int]:
        return list(await asyncio.gather(*(leaf(i) for i in range(5))))

    assert await fan_out() == [0, 2, 4, 6, 8]
    root = clew_spans.by_name("fan_out")
    leaves = [r for r in clew_spans.records() if r["name"] == "leaf"]
    assert len(leaves) == 5
    assert {r["parent_trace_id"] for r in leaves} == {root["trace_id"]}
    assert len({r["trace_id"] for r in leaves}) == 5
    assert sorted(r["output"] for r in leaves) == [0, 2, 4, 6, 8]
    assert sorted(r["execution_order"] for r in leaves) == [1, 2, 3, 4, 5]
    assert root["output"] == [0, 2, 4, 6, 8]


async def test_async_exception_and_cancellation(clew_spans: SpanCapture) -> None:
    @clew.trace
    async def failing() -> None:
        await asyncio.sleep(0)
        raise ValueError("nope")

    @clew.trace
    async def waits_forever() -> None:
        await asyncio.sleep(3600)

    with pytest.raises(ValueError, match="nope"):
        await failing()
    task = asyncio.ensure_future(waits_forever())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clew_spans.by_name("failing")["error"] == "ValueError: nope"
    assert clew_spans.by_name("waits_forever")["status"] == "error"


def test_decorating_a_non_callable_is_a_clear_error() -> None:
    with pytest.raises(clew.ConfigurationError, match="decorates functions"):
        clew.trace(42)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tags": "one"}, "list of strings"),
        ({"tags": [1]}, "list of strings"),
        ({"metadata": ["x"]}, "metadata must be a dict"),
        ({"log_sample_rate": 1.5}, "from 0 to 1"),
        ({"log_sample_rate": True}, "from 0 to 1"),
        ({"end_user_identifier": 7}, "end_user_identifier must be a string"),
        ({"name": ""}, "non-empty string"),
    ],
)
def test_bad_decorator_arguments_fail_at_decoration(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(clew.ConfigurationError, match=message):
        clew.trace(**kwargs)(lambda: None)
