"""`clew traces` and `clew show` against a real store; exit codes and messages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from clew.cli import main
from clew.exporters.sqlite import SqliteSpanExporter
from span_factory import SpanFactory, root_id


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("CLEW_STORE", raising=False)
    return tmp_path / "traces.db"


@pytest.fixture
def spans(store: Path) -> Iterator[SpanFactory]:
    factory = SpanFactory(SqliteSpanExporter(store))
    yield factory
    factory.shutdown()


@pytest.fixture
def two_traces(spans: SpanFactory) -> tuple[str, str]:
    """An older clean trace tagged "rag" for user u-1, and a newer failing one with an LLM call."""
    with spans.span("retrieve-answer", tags=["rag"], user="u-1", session="s-1") as older:
        pass
    with spans.span("answer") as newer:
        with spans.span(
            "chat gpt-4o-mini",
            model="gpt-4o-mini",
            input_tokens=1200,
            output_tokens=56,
            cost=0.0012,
        ):
            pass
        with spans.span("tool", error="ValueError: boom"):
            pass
    return root_id(older), root_id(newer)  # fmt: skip


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_traces_lists_the_latest_traces_as_a_table(
    capsys: pytest.CaptureFixture[str], store: Path, two_traces: tuple[str, str]
) -> None:
    older, newer = two_traces

    code, out, err = _run(capsys, "traces", "--store", str(store))

    assert (code, err) == (0, "")
    header, first, second = out.splitlines()
    assert header.split()[:4] == ["START", "ROOT", "TRACE", "ID"]
    assert newer in first and "answer" in first and "✗ error" in first
    assert "1,200 → 56" in first and "$0.0012" in first
    assert " 3 " in first, "span count"
    assert older in second and "retrieve-answer" in second and "✓ ok" in second


def test_traces_json_is_a_list_of_summaries(
    capsys: pytest.CaptureFixture[str], store: Path, two_traces: tuple[str, str]
) -> None:
    code, out, _ = _run(capsys, "traces", "--json", "--store", str(store))

    traces = json.loads(out)
    assert code == 0
    assert [t["root_trace_id"] for t in traces] == list(reversed(two_traces))
    assert traces[0]["span_count"] == 3
    assert traces[0]["total_tokens"] == 1256
    assert traces[0]["status"] == "error"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--tag", "rag"], ["retrieve-answer"]),
        (["--user", "u-1"], ["retrieve-answer"]),
        (["--session", "s-1"], ["retrieve-answer"]),
        (["--status", "error"], ["answer"]),
        (["--limit", "1"], ["answer"]),
        (["--tag", "nope"], []),
    ],
)
def test_traces_filters(
    capsys: pytest.CaptureFixture[str],
    store: Path,
    two_traces: tuple[str, str],
    options: list[str],
    expected: list[str],
) -> None:
    code, out, _ = _run(capsys, "traces", "--json", "--store", str(store), *options)

    assert code == 0
    assert [t["name"] for t in json.loads(out)] == expected


def test_traces_says_when_nothing_matches(
    capsys: pytest.CaptureFixture[str], store: Path, two_traces: tuple[str, str]
) -> None:
    code, out, _ = _run(capsys, "traces", "--tag", "nope", "--store", str(store))

    assert code == 0
    assert out.startswith("No traces match these filters in ")


def test_the_store_path_comes_from_clew_store_when_not_given(
    capsys: pytest.CaptureFixture[str],
    store: Path,
    two_traces: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLEW_STORE", str(store))

    code, out, _ = _run(capsys, "traces", "--json")

    assert code == 0
    assert len(json.loads(out)) == 2


def test_the_default_store_is_in_the_working_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLEW_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    spans = SpanFactory(SqliteSpanExporter(tmp_path / ".clew" / "traces.db"))
    with spans.span("here"):
        pass
    spans.shutdown()

    code, out, _ = _run(capsys, "traces", "--json")

    assert code == 0
    assert [t["name"] for t in json.loads(out)] == ["here"]


def test_show_prints_the_tree(
    capsys: pytest.CaptureFixture[str], store: Path, two_traces: tuple[str, str]
) -> None:
    _, newer = two_traces

    code, out, err = _run(capsys, "show", newer, "--store", str(store))

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith(f"trace {newer}")
    assert lines[1].startswith("answer ")
    assert lines[2].startswith("├─ chat gpt-4o-mini ")
    assert lines[3].startswith("└─ tool ") and lines[3].endswith("ValueError: boom")
    assert lines[4].startswith("total: 3 spans")


def test_show_accepts_a_short_prefix_of_the_id(
    capsys: pytest.CaptureFixture[str], store: Path, two_traces: tuple[str, str]
) -> None:
    _, newer = two_traces

    code, out, _ = _run(capsys, "show", newer[:8].upper(), "--store", str(store))

    assert code == 0
    assert out.startswith(f"trace {newer}")


def test_show_json_is_the_records(
    capsys: pytest.CaptureFixture[str], store: Path, two_traces: tuple[str, str]
) -> None:
    _, newer = two_traces

    code, out, _ = _run(capsys, "show", newer, "--json", "--store", str(store))

    records = json.loads(out)
    assert code == 0
    assert [r["name"] for r in records] == ["answer", "chat gpt-4o-mini", "tool"]
    assert {r["root_trace_id"] for r in records} == {newer}


def test_an_unknown_id_exits_1_and_points_to_clew_traces(
    capsys: pytest.CaptureFixture[str], store: Path, two_traces: tuple[str, str]
) -> None:
    code, out, err = _run(capsys, "show", "0123456789abcdef", "--store", str(store))

    assert (code, out) == (1, "")
    assert err.startswith("clew: error: no trace with id '0123456789abcdef'")
    assert "clew traces" in err


@pytest.mark.parametrize("command", [["traces"], ["show", "0af76519"]])
def test_a_missing_store_exits_1_and_says_what_to_do(
    capsys: pytest.CaptureFixture[str], store: Path, command: list[str]
) -> None:
    code, out, err = _run(capsys, *command, "--store", str(store))

    assert (code, out) == (1, "")
    assert f"no trace store at '{store}'" in err
    assert "Run a program traced with clew first" in err
    assert not store.exists()


@pytest.mark.parametrize(
    "argv",
    [[], ["nope"], ["traces", "--limit", "0"], ["traces", "--limit", "x"], ["show"]],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = _run(capsys, *argv)

    assert code == 2
    assert out == ""
    assert "usage: clew" in err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--help")

    assert code == 0
    assert "traces" in out and "show" in out
