"""Experiments: every row a scored trace, the summary, the stored run, Ctrl-C, and comparing
two runs."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clew
from clew import attributes as a
from clew.cli import main
from clew.errors import ConfigurationError, StoreError
from clew.evals import results
from clew.evals.compare import compare
from clew.evals.results import ExperimentResult, RowResult, Summary
from clew.testing import SpanCapture, capture_spans

ROWS = [
    {"inputs": {"question": "2+2"}, "target": "4"},
    {"inputs": {"question": "3+3"}, "target": "6"},
    {"inputs": {"question": "5+5"}, "target": "10"},
    {"inputs": {"question": "boom"}, "target": "?"},
]


def _solve(question: str) -> str:
    if question == "boom":
        raise ValueError("cannot solve boom")
    left, right = question.split("+")
    return str(int(left) + int(right))


def _sloppy(question: str) -> str:
    return "4" if question != "boom" else "?"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "traces.db"
    clew.configure(exporter="sqlite", store_path=path)
    return path


@pytest.fixture
def spans() -> Iterator[SpanCapture]:
    with capture_spans() as capture:
        yield capture


def test_every_row_is_a_scored_trace_and_the_run_is_stored(store: Path, spans: SpanCapture) -> None:
    result = clew.experiment(
        "math", ROWS, _solve, evals=[clew.evals.exact_match], n_trials=2, concurrency=3
    ).run()
    assert result.status == "finished" and len(result.rows) == 8
    assert [(r.index, r.trial) for r in result.rows] == [(i, t) for i in range(4) for t in (0, 1)]
    good = [r for r in result.rows if r.index < 3]
    assert all(
        r.output == ROWS[r.index]["target"] and r.scores == {"exact_match": 1.0} for r in good
    )
    boom = [r for r in result.rows if r.index == 3]
    assert all(r.error == "ValueError: cannot solve boom" for r in boom)
    assert all(r.scores == {"exact_match": 0.0} for r in boom)  # a call that raised scores 0
    summary = result.summary
    assert summary.rows == 8 and summary.errors == 2
    assert summary.evals["exact_match"].mean == pytest.approx(0.75)
    assert summary.evals["exact_match"].count == 8
    clew.flush()
    roots = [r for r in spans.records() if r["name"] == "experiment math"]
    assert sorted(r["trace_id"] for r in roots) == sorted(r.trace_id or "" for r in result.rows)
    for root in roots:
        assert root["parent_trace_id"] is None
        assert root["attributes"][a.CLEW_EXPERIMENT_UUID] == result.uuid
        assert root["target"] in {"4", "6", "10", "?"}
    scores = [r for r in spans.records() if r["name"] == "score exact_match"]
    assert len(scores) == 8
    assert {s["attributes"][a.CLEW_SCORE_SOURCE] for s in scores} == {"experiment"}
    loaded = results.load("math", store=store)
    assert loaded.uuid == result.uuid and loaded.rows == result.rows
    assert loaded.summary == result.summary


def test_async_functions_and_datasets(store: Path) -> None:
    dataset = clew.datasets.create("sums", ROWS[:3])

    async def solve(question: str) -> str:
        await asyncio.sleep(0)
        return _solve(question)

    result = clew.experiment("async-math", "sums", solve, evals=[clew.evals.exact_match]).run()
    assert (result.dataset, result.dataset_version) == ("sums", dataset.version)
    assert result.summary.evals["exact_match"].mean == 1.0

    async def inside() -> ExperimentResult:
        return await clew.experiment("async-2", dataset, solve, concurrency=2).arun()

    again = asyncio.run(inside())
    assert [r.output for r in again.rows] == ["4", "6", "10"]
    with pytest.raises(StoreError, match="no dataset named 'missing'"):
        clew.experiment("x", "missing", solve)


def test_a_row_sees_the_tokens_and_cost_of_its_llm_calls(store: Path) -> None:
    from clew.testing.llm_server import FakeLLMServer

    with FakeLLMServer() as fake:
        clew.configure(providers=fake.providers(), gateway={"cache_url": None})
        try:

            def ask(question: str) -> str:
                request = {
                    "llm_configuration": {
                        "provider": "openai",
                        "model": "gpt-4o-mini",
                        "messages": [{"role": "user", "content": question}],
                    },
                    "cache": False,
                }
                return clew.completion(request).content

            result = clew.experiment("llm", ROWS[:2], ask).run()
        finally:
            clew.configure(providers={}, gateway={})
    for row in result.rows:
        assert row.input_tokens > 0 and row.output_tokens > 0 and (row.cost or 0) > 0
        assert row.latency > 0
    assert result.summary.input_tokens == sum(r.input_tokens for r in result.rows)
    assert result.summary.cost == pytest.approx(sum(r.cost or 0 for r in result.rows))


def test_bad_arguments_say_what_to_do(store: Path) -> None:
    with pytest.raises(ConfigurationError, match="n_trials"):
        clew.experiment("x", ROWS, _solve, n_trials=0)
    with pytest.raises(ConfigurationError, match="concurrency"):
        clew.experiment("x", ROWS, _solve, concurrency=0)
    with pytest.raises(ConfigurationError, match="data is"):
        clew.experiment("x", {"inputs": {}}, _solve)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="name"):
        clew.experiment(" ", ROWS, _solve)
    with pytest.raises(ConfigurationError, match="inputs"):
        clew.experiment("x", [{"question": "2+2"}], _solve)


_INTERRUPTED = """
import json, sys, time, clew
clew.configure(exporter="none", store_path=sys.argv[1])
marks = sys.argv[2]

def slow(n):
    with open(marks, "a") as f:
        f.write("x")
    time.sleep(0.05)
    return n

rows = [{"inputs": {"n": i}, "target": i} for i in range(400)]
result = clew.experiment("long", rows, slow, evals=[clew.evals.exact_match], concurrency=2).run()
print(json.dumps({"status": result.status, "rows": len(result.rows)}))
"""


def test_ctrl_c_stops_and_keeps_the_finished_rows(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.write_text("")
    process = subprocess.Popen(
        [sys.executable, "-c", _INTERRUPTED, str(tmp_path / "t.db"), str(marks)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while len(marks.read_text()) < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    reported = json.loads(out)
    assert reported["status"] == "interrupted" and 8 <= reported["rows"] < 400
    stored = results.load("long", store=tmp_path / "t.db")
    assert stored.status == "interrupted" and len(stored.rows) == reported["rows"]
    assert all(row.scores == {"exact_match": 1.0} for row in stored.rows)


def test_compare_finds_what_got_worse_and_the_cli_prints_it(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = clew.experiment("v1", ROWS, _solve, evals=[clew.evals.exact_match]).run()
    bad = clew.experiment("v2", ROWS, _sloppy, evals=[clew.evals.exact_match]).run()
    found = compare(good, bad)
    (diff,) = found.evals
    assert (diff.mean_a, diff.mean_b, diff.pairs) == (0.75, 0.5, 4)
    assert diff.diff == pytest.approx(-0.25) and diff.ci_low <= diff.diff <= diff.ci_high
    assert [r.index for r in found.worse] == [1, 2]  # 3+3 and 5+5 now answer 4
    assert found.rows[-1].diff == 1.0  # boom: the sloppy one answers "?", which matches
    argv = ["--store", str(store)]
    assert main(["experiments", "compare", "v1", "v2", *argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["evals"][0]["diff"] == pytest.approx(-0.25)
    assert [r["index"] for r in out["rows"]][:2] == [1, 2]
    assert main(["experiments", "compare", "v1", "v2", *argv]) == 0
    text = capsys.readouterr().out
    assert "exact_match" in text and "-0.2500" in text and "rows that got worse (2)" in text
    assert main(["experiments", "compare", "v1", "v2", *argv, "--csv"]) == 0
    table = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert table[0][0] == "EVAL" and table[1][0] == "exact_match"
    assert main(["experiments", "list", *argv]) == 0
    listed = capsys.readouterr().out
    assert "v1" in listed and "v2" in listed and "exact_match=0.750" in listed
    assert main(["experiments", "show", bad.uuid[:8], *argv, "--csv"]) == 0
    shown = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert shown[0][:3] == ["ROW", "TRIAL", "exact_match"] and len(shown) == 5
    assert main(["experiments", "show", "v1", *argv]) == 0
    assert "4 rows · 1 errors" in capsys.readouterr().out
    assert main(["experiments", "show", "nope", *argv]) == 1
    assert "no experiment named 'nope'" in capsys.readouterr().err


def _run(name: str, scores: list[float]) -> ExperimentResult:
    rows = [
        RowResult(i, 0, {"i": i}, None, None, None, {"s": v}, {}, None, 0.0, 0, 0, None)
        for i, v in enumerate(scores)
    ]
    return ExperimentResult(name, name, "", "finished", None, None, Summary.of(rows, 0), rows)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([0.0, 0.5, 1.0]), st.sampled_from([0.0, 0.5, 1.0])),
        min_size=1,
        max_size=30,
    )
)
def test_the_bootstrap_interval_holds_the_difference(pairs: list[tuple[float, float]]) -> None:
    first = _run("a", [x for x, _ in pairs])
    second = _run("b", [y for _, y in pairs])
    (forward,) = compare(first, second).evals
    (backward,) = compare(second, first).evals
    assert forward.ci_low <= forward.diff <= forward.ci_high
    assert forward.diff == pytest.approx(-backward.diff)
    assert forward.pairs == len(pairs)
    (same,) = compare(first, first).evals
    assert same.diff == same.ci_low == same.ci_high == 0 and not same.significant
    assert compare(first, first).worse == []
    worse = compare(first, second).worse
    assert [r.index for r in worse] == sorted(
        (i for i, (x, y) in enumerate(pairs) if y < x), key=lambda i: (pairs[i][1] - pairs[i][0], i)
    )
