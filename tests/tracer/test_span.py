"""``with clew.span(...)``, stitching across processes, trace_insert and the id helpers."""

from __future__ import annotations

import uuid

import pytest

import clew
from clew.testing import SpanCapture


def test_span_handle_setters(clew_spans: SpanCapture) -> None:
    with clew.span("retrieve", tags=["rag"], inputs={"q": "hi"}) as s:
        s.set_output(["doc-1", "doc-2"])
        s.set_metadata({"k": 1})
        s.set_metadata({"j": 2})
        s.add_tags("fast")
        s.add_tags(["cheap"])
        assert s.trace_id == s.root_trace_id
        assert s.parent_trace_id is None
    record = clew_spans.by_name("retrieve")
    assert record["inputs"] == {"q": "hi"}
    assert record["output"] == ["doc-1", "doc-2"]
    assert record["metadata"] == {"k": 1, "j": 2}
    assert record["tags"] == ["rag", "fast", "cheap"]
    assert record["trace_id"] == s.trace_id


async def test_async_with(clew_spans: SpanCapture) -> None:
    async with clew.span("outer") as outer, clew.span("inner") as inner:
        assert inner.parent_trace_id == outer.trace_id
        inner.set_inputs({"a": 1})
    assert clew_spans.by_name("inner")["parent_trace_id"] == outer.trace_id
    assert clew_spans.by_name("inner")["inputs"] == {"a": 1}


def test_error_inside_span_is_recorded_and_propagates(clew_spans: SpanCapture) -> None:
    with pytest.raises(KeyError), clew.span("lookup"):
        raise KeyError("missing")
    assert clew_spans.by_name("lookup")["status"] == "error"


def test_stitching_into_a_trace_begun_elsewhere(clew_spans: SpanCapture) -> None:
    with clew.span("producer") as producer, clew.span("step") as step:
        ids = (step.trace_id, step.root_trace_id)
    # later, "another process" continues under step
    stitched = clew.span("consumer", parent_trace_id=ids[0], root_trace_id=ids[1])
    with stitched as consumer, clew.span("consumer-child"):
        pass
    record = clew_spans.by_name("consumer")
    assert record["parent_trace_id"] == step.trace_id
    assert record["root_trace_id"] == producer.root_trace_id
    assert consumer.root_trace_id == producer.root_trace_id
    child = clew_spans.by_name("consumer-child")
    assert child["parent_trace_id"] == consumer.trace_id
    assert child["root_trace_id"] == producer.root_trace_id


def test_stitching_with_root_only_puts_the_span_under_the_root(clew_spans: SpanCapture) -> None:
    root = str(uuid.uuid4())
    with clew.span("job", root_trace_id=root):
        pass
    record = clew_spans.by_name("job")
    assert record["root_trace_id"] == root
    assert record["parent_trace_id"] == root
    assert record["trace_id"] != root


def test_stitching_with_foreign_parent_keeps_it_verbatim(clew_spans: SpanCapture) -> None:
    root, parent = str(uuid.uuid4()), str(uuid.uuid4())
    with clew.span("job", root_trace_id=root, parent_trace_id=parent):
        pass
    record = clew_spans.by_name("job")
    assert record["root_trace_id"] == root
    assert record["parent_trace_id"] == parent


def test_bad_ids_are_clear_errors() -> None:
    with pytest.raises(clew.ConfigurationError, match="root_trace_id must be a UUID"):
        clew.span("x", root_trace_id="not-a-uuid")


def test_trace_insert_merges_extends_and_replaces(clew_spans: SpanCapture) -> None:
    @clew.trace(tags=["a"], metadata={"m1": 1})
    def work(x: int) -> int:
        clew.trace_insert({"metadata": {"m2": 2}, "tags": ["b"], "end_user_identifier": "u-9"})
        clew.trace_insert({"tags": ["c"], "session_id": "s-1", "inputs": {"extra": True}})
        clew.trace_insert({"scores": [{"name": "f1", "score": 0.5}], "target": "gold"})
        return x

    work(3)
    record = clew_spans.by_name("work")
    assert record["metadata"] == {"m1": 1, "m2": 2}
    assert record["tags"] == ["a", "b", "c"]
    assert record["end_user_identifier"] == "u-9"
    assert record["session_id"] == "s-1"
    assert record["inputs"] == {"x": 3, "extra": True}
    assert record["target"] == "gold"
    assert record["attributes"]["clew.scores"] == '[{"name":"f1","score":0.5}]'


def test_trace_insert_into_an_ancestor(clew_spans: SpanCapture) -> None:
    with clew.span("parent") as parent, clew.span("child"):
        clew.trace_insert({"metadata": {"from": "child"}}, trace_id=parent.trace_id)
    assert clew_spans.by_name("parent")["metadata"] == {"from": "child"}
    assert clew_spans.by_name("child")["metadata"] == {}


def test_trace_insert_unknown_field_is_a_clear_error() -> None:
    with pytest.raises(clew.ConfigurationError, match="unknown field"):
        clew.trace_insert({"colour": "red"})
    with clew.span("x"), pytest.raises(clew.ConfigurationError, match="metadata"):
        clew.trace_insert({"colour": "red"})


def test_current_ids_outside_and_inside() -> None:
    assert clew.get_current_trace_id() is None
    assert clew.get_root_trace_id() is None
    with clew.span("a") as a, clew.span("b") as b:
        assert clew.get_current_trace_id() == b.trace_id
        assert clew.get_root_trace_id() == a.trace_id
        assert clew.current_span() is b
    assert clew.get_current_trace_id() is None
