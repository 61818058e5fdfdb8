"""clew.testing's deterministic ids and times: a test compares a whole span tree exactly."""

from __future__ import annotations

import clew
from clew.testing import SpanCapture, capture_spans, deterministic


@clew.trace
def answer(question: str) -> str:
    with clew.span("retrieve", tags=["rag"]) as s:
        s.set_output(["doc-1"])
    return question.upper()


def test_a_whole_tree_compares_exactly() -> None:
    with deterministic(), capture_spans() as captured:
        answer("why?")
        answer("how?")
    fields = ("name", "trace_id", "parent_trace_id", "start_timestamp", "end_timestamp")
    assert captured.tree(*fields, "inputs", "output", "tags") == [
        {
            "name": "answer",
            "trace_id": "00000000-0000-0001-0000-000000000001",
            "parent_trace_id": None,
            "start_timestamp": "1970-01-01T00:00:01+00:00",
            "end_timestamp": "1970-01-01T00:00:04+00:00",
            "inputs": {"question": "why?"},
            "output": "WHY?",
            "tags": [],
            "children": [
                {
                    "name": "retrieve",
                    "trace_id": "00000000-0000-0001-0000-000000000002",
                    "parent_trace_id": "00000000-0000-0001-0000-000000000001",
                    "start_timestamp": "1970-01-01T00:00:02+00:00",
                    "end_timestamp": "1970-01-01T00:00:03+00:00",
                    "inputs": None,
                    "output": ["doc-1"],
                    "tags": ["rag"],
                    "children": [],
                }
            ],
        },
        {
            "name": "answer",
            "trace_id": "00000000-0000-0002-0000-000000000003",
            "parent_trace_id": None,
            "start_timestamp": "1970-01-01T00:00:05+00:00",
            "end_timestamp": "1970-01-01T00:00:08+00:00",
            "inputs": {"question": "how?"},
            "output": "HOW?",
            "tags": [],
            "children": [
                {
                    "name": "retrieve",
                    "trace_id": "00000000-0000-0002-0000-000000000004",
                    "parent_trace_id": "00000000-0000-0002-0000-000000000003",
                    "start_timestamp": "1970-01-01T00:00:06+00:00",
                    "end_timestamp": "1970-01-01T00:00:07+00:00",
                    "inputs": None,
                    "output": ["doc-1"],
                    "tags": ["rag"],
                    "children": [],
                }
            ],
        },
    ]


def test_ids_and_times_are_random_and_real_again_after_the_block(clew_spans: SpanCapture) -> None:
    with deterministic():
        answer("a")
    answer("b")
    later = clew_spans.records()[-1]
    assert later["trace_id"] != "00000000-0000-0001-0000-000000000001"
    assert later["start_timestamp"] > "2020"


def test_a_sampled_out_root_uses_the_deterministic_ids() -> None:
    @clew.trace(log_sample_rate=0.0)
    def dropped() -> str | None:
        return clew.get_root_trace_id()

    with deterministic():
        assert dropped() == "00000000-0000-0001-0000-000000000001"
