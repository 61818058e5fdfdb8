"""Scores in the local store: kept in ``span_scores``, filtered on by ``clew traces --score``,
averaged per trace, and shown by ``clew show``."""

from __future__ import annotations

import json
import operator
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clew
from clew.cli import main
from clew.store.sqlite import TraceStore

OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
}


def _scored_traces(store: Path, values: list[float]) -> dict[str, float]:
    """One trace per value, scored ``accuracy`` = value by an eval; root id → value."""
    clew.configure(exporter="sqlite", store_path=store)
    ids: dict[str, float] = {}

    for value in values:

        @clew.trace(name="answer", eval_funcs=[lambda log, v=value: clew.EvalResult("accuracy", v)])
        def answer() -> str:
            return clew.get_root_trace_id() or ""

        ids[answer()] = value
    clew.flush()
    return ids


@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), min_size=1, max_size=12),
    op=st.sampled_from(sorted(OPS)),
    threshold=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_the_score_filter_keeps_exactly_the_matching_traces(
    tmp_path_factory: pytest.TempPathFactory, values: list[float], op: str, threshold: float
) -> None:
    store = tmp_path_factory.mktemp("scores") / "traces.db"
    ids = _scored_traces(store, values)
    found = TraceStore(store).list_traces(limit=100, score=("accuracy", op, threshold))
    expected = {root for root, value in ids.items() if OPS[op](value, threshold)}
    assert {t["root_trace_id"] for t in found} == expected
    for trace in found:
        assert trace["scores"] == {"accuracy": ids[trace["root_trace_id"]]}
    named = TraceStore(store).list_traces(limit=100, score=("accuracy", None, None))
    assert {t["root_trace_id"] for t in named} == set(ids)
    assert TraceStore(store).list_traces(limit=100, score=("other", None, None)) == []


def test_scores_combine_with_other_filters_and_feedback(tmp_path: Path) -> None:
    store = tmp_path / "traces.db"
    clew.configure(exporter="sqlite", store_path=store)

    @clew.trace(tags=["beta"])
    def tagged() -> str:
        return clew.get_root_trace_id() or ""

    @clew.trace
    def plain() -> str:
        return clew.get_root_trace_id() or ""

    a, b = tagged(), plain()
    c = tagged()
    clew.flush()
    clew.score(a, "thumbs_up", True)
    clew.score(b, "thumbs_up", True)
    clew.score(c, "thumbs_up", False)
    clew.score(c, "thumbs_up", True)  # two scores of one name: the trace shows their mean
    clew.flush()
    traces = TraceStore(store)
    up = traces.list_traces(tag="beta", score=("thumbs_up", ">=", 1))
    assert {t["root_trace_id"] for t in up} == {a, c}
    (mixed,) = [t for t in up if t["root_trace_id"] == c]
    assert mixed["scores"] == {"thumbs_up": 0.5}
    assert traces.list_traces(tag="beta", score=("thumbs_up", "<", 1))[0]["root_trace_id"] == c


def test_clew_traces_and_show_print_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "traces.db"
    ids = _scored_traces(store, [0.2, 0.9])
    low = next(root for root, value in ids.items() if value == 0.2)
    clew.score(low, "helpful", 0, "it missed the point")
    clew.flush()
    assert main(["traces", "--store", str(store), "--score", "accuracy<0.5", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["root_trace_id"] == low
    assert listed["scores"] == {"accuracy": 0.2, "helpful": 0.0}
    assert listed["span_count"] == 1  # its score spans are not counted, nor timed
    (answer,) = [r for r in TraceStore(store).get_trace(low) if r["name"] == "answer"]
    assert listed["latency"] == pytest.approx(answer["latency"], abs=1e-6)
    assert main(["traces", "--store", str(store), "--score", "accuracy>=0.5"]) == 0
    text = capsys.readouterr().out
    assert "accuracy=0.90" in text and low not in text
    assert main(["traces", "--store", str(store), "--score", "accuracy>high"]) == 2
    assert main(["show", low, "--store", str(store)]) == 0
    shown = capsys.readouterr().out
    assert "★ accuracy = 0.2" in shown and "★ helpful = 0" in shown
    assert "it missed the point" in shown and "2 scores" in shown and "1 span " in shown


def test_a_store_from_before_scores_stays_readable_and_gains_them(tmp_path: Path) -> None:
    store = tmp_path / "traces.db"
    _scored_traces(store, [1.0])
    clew.shutdown()
    with sqlite3.connect(store) as conn:  # as a store written before scores existed
        conn.execute("DROP TABLE span_scores")
    clew.configure(exporter="sqlite", store_path=store)
    assert TraceStore(store).list_traces(score=("accuracy", None, None)) == []
    assert [t["scores"] for t in TraceStore(store).list_traces()] == [{}]
    ids = _scored_traces(store, [0.5])  # the next write adds the table
    found = TraceStore(store).list_traces(score=("accuracy", None, None))
    assert [t["root_trace_id"] for t in found] == list(ids)


def test_records_written_whole_keep_their_scores(tmp_path: Path) -> None:
    from clew.testing import capture_spans

    with capture_spans() as capture:

        @clew.trace(eval_funcs=[lambda log: clew.EvalResult("exact", 1)])
        def call() -> int:
            return 1

        call()
        clew.flush()
        records: list[dict[str, Any]] = capture.records()
    store = TraceStore(tmp_path / "copy.db")
    store.write_records(records)
    (found,) = store.list_traces(score=("exact", "=", 1))
    assert found["scores"] == {"exact": 1.0}
