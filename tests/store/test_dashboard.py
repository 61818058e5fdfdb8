"""The dashboard's numbers, summed by SQLite, against a plain reading of the records stored."""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clew.store import TraceStore
from clew.store.dashboard import dashboard

T0 = datetime(2026, 12, 1, tzinfo=UTC)
NS = 10**9
SINCE = int(T0.timestamp()) * NS
OUTSIDE = {"start": -50, "latency": 1, "root": True, "error": False, "project": None, "llm": None}

spans = st.lists(
    st.fixed_dictionaries(
        {
            "start": st.integers(-20, 120),  # seconds after T0; the window is [0, 100)
            "latency": st.integers(0, 9),
            "root": st.booleans(),
            "error": st.booleans(),
            "project": st.sampled_from(["billing", "support", None]),
            "llm": st.none()
            | st.tuples(
                st.sampled_from(["gpt-4o-mini", "claude-3-5-haiku"]),
                st.sampled_from(["openai", "anthropic"]),
                st.integers(0, 500),
                st.integers(0, 500),
                st.floats(0, 1),
            ),
        }
    ),
    max_size=30,
)


def _record(spec: dict[str, Any]) -> dict[str, Any]:
    own = str(uuid.uuid4())
    record: dict[str, Any] = {
        "trace_id": own,
        "root_trace_id": own if spec["root"] else str(uuid.uuid4()),
        "parent_trace_id": None if spec["root"] else str(uuid.uuid4()),
        "name": "step",
        "start_timestamp": (T0 + timedelta(seconds=spec["start"])).isoformat(),
        "latency": spec["latency"],
        "status": "error" if spec["error"] else "success",
        "project_name": spec["project"],
    }
    if spec["llm"] is not None:
        model, provider, tokens_in, tokens_out, cost = spec["llm"]
        record.update(
            model=model,
            provider=provider,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost=cost,
        )
    return record


def _plain(specs: list[dict[str, Any]], buckets: int) -> dict[str, Any]:
    """The dashboard of [T0, T0 + 100 s) read straight from the specs."""
    width = -(-100 * NS // buckets)
    inside = [s for s in specs if 0 <= s["start"] < 100]
    series = []
    for i in range(buckets):
        here = [s for s in inside if min(s["start"] * NS // width, buckets - 1) == i]
        roots = [s for s in here if s["root"]]
        latencies = sorted(float(s["latency"]) for s in roots)
        llm = [s["llm"] for s in here if s["llm"] is not None]
        series.append(
            {
                "requests": len(roots),
                "errors": sum(s["error"] for s in roots),
                "latency_p50": latencies[int(0.5 * len(latencies))] if latencies else None,
                "latency_p95": latencies[int(0.95 * len(latencies))] if latencies else None,
                "input_tokens": sum(c[2] for c in llm),
                "output_tokens": sum(c[3] for c in llm),
                "cost": pytest.approx(sum(c[4] for c in llm)),
            }
        )
    models: dict[tuple[str, str], list[int | float]] = {}
    projects: dict[str, list[int | float]] = {}
    for s in inside:
        project = projects.setdefault(s["project"] or "default", [0, 0, 0.0])
        project[0] += s["root"]
        project[1] += s["root"] and s["error"]
        if s["llm"] is not None:
            model, provider, tokens_in, tokens_out, cost = s["llm"]
            project[2] += cost
            found = models.setdefault((model, provider), [0, 0, 0, 0.0])
            found[0] += 1
            found[1] += tokens_in
            found[2] += tokens_out
            found[3] += cost
    return {
        "series": series,
        "by_model": sorted(
            (
                {
                    "model": model,
                    "provider": provider,
                    "requests": n,
                    "input_tokens": tokens_in,
                    "output_tokens": tokens_out,
                    "cost": pytest.approx(cost),
                }
                for (model, provider), (n, tokens_in, tokens_out, cost) in models.items()
            ),
            key=lambda m: (-m["requests"], m["model"]),
        ),
        "by_project": sorted(
            (
                {"project": name, "requests": n, "errors": e, "cost": pytest.approx(c)}
                for name, (n, e, c) in projects.items()
                if n or c  # a project only some spans name (not a request's) is not listed
            ),
            key=lambda p: (-p["requests"], p["project"]),
        ),
    }


@settings(max_examples=60, deadline=None)
@given(specs=spans, buckets=st.integers(1, 7))
def test_the_dashboard_sums_what_the_records_say(
    tmp_path_factory: pytest.TempPathFactory, specs: list[dict[str, Any]], buckets: int
) -> None:
    """Read from llm_calls (a store this version wrote), the long way (an older store, without
    them), and from llm_calls filled from the spans stored before them (the older store once
    this version writes to it)."""
    path = tmp_path_factory.mktemp("dashboard") / "traces.db"
    TraceStore(path).write_records([_record(spec) for spec in [OUTSIDE, *specs]])
    expected = _plain(specs, buckets)
    _check(dashboard(path, SINCE, SINCE + 100 * NS, buckets), expected)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("DROP TABLE llm_calls")
        conn.execute("DROP INDEX spans_roots")
    _check(dashboard(path, SINCE, SINCE + 100 * NS, buckets), expected)
    TraceStore(path).write_records([_record({**OUTSIDE, "llm": ("m", "p", 1, 1, 1.0)})])  # new
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM llm_calls").fetchone()[0] == 1 + sum(
            spec["llm"] is not None for spec in specs
        )
    _check(dashboard(path, SINCE, SINCE + 100 * NS, buckets), expected)


def _check(found: dict[str, Any], expected: dict[str, Any]) -> None:
    assert [{k: v for k, v in b.items() if k != "start"} for b in found["series"]] == expected[
        "series"
    ]
    by_model = sorted(found["by_model"], key=lambda m: (-m["requests"], m["model"], m["provider"]))
    assert by_model == sorted(
        expected["by_model"], key=lambda m: (-m["requests"], m["model"], m["provider"])
    )
    assert sorted(found["by_project"], key=lambda p: p["project"]) == sorted(
        expected["by_project"], key=lambda p: p["project"]
    )


def test_a_store_not_made_yet_has_an_empty_dashboard(tmp_path: Any) -> None:
    found = dashboard(tmp_path / "none.db", 0, 10 * NS, 2)
    assert [b["requests"] for b in found["series"]] == [0, 0]
    assert found["by_model"] == [] and found["by_project"] == []
