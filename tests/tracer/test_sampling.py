"""log_sample_rate: whole traces kept or dropped, decided from the trace id at the root."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections import Counter

import pytest

import clew
from clew.testing import SpanCapture


class CountingRepr:
    """Counts how often clew looks at it: a sampled-out call must never capture."""

    looked = 0

    def __repr__(self) -> str:
        CountingRepr.looked += 1
        return "CountingRepr()"


@clew.trace
def leaf(value: object) -> object:
    return value


@clew.trace(log_sample_rate=0.0)
def never(value: object) -> object:
    return leaf(value)


def test_rate_zero_drops_the_whole_trace_and_captures_nothing(clew_spans: SpanCapture) -> None:
    CountingRepr.looked = 0
    value = CountingRepr()
    assert never(value) is value
    assert clew_spans.records() == []
    assert CountingRepr.looked == 0
    # the ids still exist inside a dropped trace, so other processes can decide the same
    with clew.span("dropped", log_sample_rate=0.0) as s:
        assert clew.get_root_trace_id() == s.root_trace_id
        s.set_output("ignored")
    assert clew_spans.records() == []


def test_half_rate_keeps_whole_traces_or_nothing(clew_spans: SpanCapture) -> None:
    @clew.trace(log_sample_rate=0.5)
    def root(i: int) -> int:
        return leaf(i) + leaf(i)  # type: ignore[operator]

    for i in range(400):
        root(i)
    per_trace = Counter(r["root_trace_id"] for r in clew_spans.records())
    assert set(per_trace.values()) == {3}  # complete trees only
    assert 120 < len(per_trace) < 280  # about half of 400


def test_global_sample_rate_applies_to_roots(clew_spans: SpanCapture) -> None:
    clew.configure(sample_rate=0.0)
    leaf(1)
    assert clew_spans.records() == []
    clew.configure(sample_rate=1.0)
    leaf(1)
    assert len(clew_spans.records()) == 1


def test_nested_rate_drops_only_its_subtree(clew_spans: SpanCapture) -> None:
    @clew.trace(log_sample_rate=0.0)
    def noisy() -> object:
        return leaf("inside noisy")

    @clew.trace
    def root() -> object:
        noisy()
        return leaf("kept")

    root()
    names = sorted(r["name"] for r in clew_spans.records())
    assert names == ["leaf", "root"]
    assert clew_spans.by_name("leaf")["inputs"] == {"value": "kept"}


def test_decision_follows_the_trace_id_arithmetic(clew_spans: SpanCapture) -> None:
    rate = 0.3
    bound = round(rate * (1 << 56))  # the rightmost 56 bits: random in W3C and UUID4 ids
    decisions = []
    for _ in range(300):
        root = uuid.uuid4()
        with clew.span("stitched", root_trace_id=str(root), log_sample_rate=rate):
            pass
        kept = any(r["root_trace_id"] == str(root) for r in clew_spans.records())
        assert kept == ((root.int & ((1 << 56) - 1)) < bound)
        decisions.append(kept)
    assert 45 < sum(decisions) < 135  # about 30 % of 300 UUID4 roots are kept


_CHILD = """
import json, sys, clew
from clew.testing import capture_spans
clew.configure(exporter="none")
kept = []
with capture_spans() as cap:
    for root in json.loads(sys.argv[1]):
        with clew.span("job", root_trace_id=root, log_sample_rate=0.5):
            pass
    kept = sorted({r["root_trace_id"] for r in cap.records()})
print(json.dumps(kept))
"""


@pytest.mark.parametrize("run", [1])
def test_two_processes_decide_the_same(run: int) -> None:
    roots = [str(uuid.uuid4()) for _ in range(60)]
    outputs = [
        subprocess.run(
            [sys.executable, "-c", _CHILD, json.dumps(roots)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        for _ in range(2)
    ]
    first, second = (json.loads(o) for o in outputs)
    assert first == second
    assert 0 < len(first) < 60
