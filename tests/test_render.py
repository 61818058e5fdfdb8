"""render_tree: the text of `clew show` and of the console exporter."""

from __future__ import annotations

from typing import Any

import pytest

from clew.render import format_cost, format_duration, format_tokens, render_tree

ROOT = "0af76519-16cd-43dd-8448-eb211c80319c"


def _record(
    trace_id: str, name: str, parent: str | None, start: str, latency: float, **fields: Any
) -> dict[str, Any]:
    end_seconds = float(start[-2:]) + latency
    return {
        "trace_id": trace_id,
        "parent_trace_id": parent,
        "root_trace_id": ROOT,
        "name": name,
        "start_timestamp": f"2024-05-01T12:00:{start[-2:]}+00:00",
        "end_timestamp": f"2024-05-01T12:00:{end_seconds:09.6f}+00:00",
        "latency": latency,
        "status": "success",
        "error": None,
        "project_name": "support-bot",
        **fields,
    }


def _trace() -> list[dict[str, Any]]:
    child = "0af76519-16cd-43dd-0000-000000000001"
    llm = "0af76519-16cd-43dd-0000-000000000002"
    tool = "0af76519-16cd-43dd-0000-000000000003"
    nested = "0af76519-16cd-43dd-0000-000000000004"
    # Deliberately out of order: the tree is ordered by start time, not by input order.
    return [
        _record(tool, "tool", ROOT, "03", 0.5, status="error", error="ValueError:\n boom"),
        _record(
            llm, "chat gpt-4o-mini", ROOT, "01", 1.05, model="gpt-4o-mini",
            input_tokens=1200, output_tokens=56, cost=0.0012,
        ),
        _record(ROOT, "answer", None, "00", 4.0),
        _record(nested, "embed", child, "00", 0.0004, input_tokens=7, cost=0.00001),
        _record(child, "retrieve", ROOT, "00", 0.012),
    ]  # fmt: skip


def test_a_trace_renders_as_an_ordered_tree_with_totals() -> None:
    assert render_tree(_trace()) == "\n".join(
        [
            f"trace {ROOT} · support-bot · 2024-05-01T12:00:00+00:00",
            "answer               4.00 s  ✓",
            "├─ retrieve           12 ms  ✓",
            "│  └─ embed          400 µs  ✓                    7 → ?  $0.00001",
            "├─ chat gpt-4o-mini  1.05 s  ✓  gpt-4o-mini  1,200 → 56   $0.0012",
            "└─ tool              500 ms  ✗                                     ValueError: boom",
            "total: 5 spans · 4.00 s · 1,207 → 56 tokens · $0.00121 · 1 error",
        ]
    )


def test_spans_whose_parent_is_missing_are_shown_as_roots() -> None:
    records = [r for r in _trace() if r["name"] != "answer"]

    lines = render_tree(records).splitlines()

    assert [line.split()[0] for line in lines[1:-1]] == [
        "retrieve",
        "└─",
        "chat",
        "tool",
    ]
    assert lines[-1].startswith("total: 4 spans · 3.50 s · ")


def test_several_traces_render_oldest_first_separated_by_a_blank_line() -> None:
    later = {**_trace()[2], "root_trace_id": "later", "trace_id": "later"}
    later["start_timestamp"] = "2024-05-01T13:00:00+00:00"

    text = render_tree([later, *_trace()])

    first, second = text.split("\n\n")
    assert first.startswith(f"trace {ROOT}")
    assert second.startswith("trace later")


def test_no_records_render_as_nothing() -> None:
    assert render_tree([]) == ""


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0.000042, "42 µs"),
        (0.0042, "4.2 ms"),
        (0.25, "250 ms"),
        (1.234, "1.23 s"),
        (125, "2m 05s"),
    ],
)
def test_durations(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_tokens_and_cost() -> None:
    assert format_tokens(None, None) == ""
    assert format_tokens(1200, None) == "1,200 → ?"
    assert format_cost(None) == ""
    assert format_cost(0) == "$0.00"
    assert format_cost(0.000042) == "$0.000042"
    assert format_cost(12.5) == "$12.5000"
