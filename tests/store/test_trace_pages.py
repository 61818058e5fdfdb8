"""The trace list as the viewer pages and filters it: pages read one after another give the whole
list, and each filter keeps exactly the traces a plain reading of the data keeps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clew.store import TraceStore
from clew.store.queries import TraceFilter, Window

T0 = datetime(2026, 12, 1, tzinfo=UTC)

trace_specs = st.lists(
    st.tuples(
        st.integers(0, 40),  # start, in seconds after T0 (ties happen)
        st.integers(1, 3),  # spans
        st.sampled_from(["billing", "support"]),  # project
        st.sampled_from(["gpt-4o-mini", "claude-3-5-haiku", None]),  # model of the child
        st.sampled_from(["refund", "hello", "50% off_now"]),  # a word in the inputs
    ),
    min_size=1,
    max_size=25,
)


def _records(specs: list[tuple[int, int, str, str | None, str]]) -> list[dict[str, Any]]:
    records = []
    for start, count, project, model, word in specs:
        root = str(uuid.uuid4())
        for i in range(count):
            at = T0 + timedelta(seconds=start, milliseconds=10 * i)
            records.append(
                {
                    "trace_id": root if i == 0 else str(uuid.uuid4()),
                    "root_trace_id": root,
                    "parent_trace_id": None if i == 0 else root,
                    "name": "answer" if i == 0 else "chat",
                    "start_timestamp": at.isoformat(),
                    "latency": 0.005,
                    "status": "success",
                    "project_name": project,
                    "model": model if i else None,
                    "inputs": {"question": f"about {word}"} if i == 0 else None,
                }
            )
    return records


def _expected(
    specs: list[tuple[int, int, str, str | None, str]],
    records: list[dict[str, Any]],
    keep: Any,
) -> list[str]:
    roots = [r for r in records if r["parent_trace_id"] is None]
    kept = [
        (spec[0], root["root_trace_id"])
        for spec, root in zip(specs, roots, strict=True)
        if keep(spec)
    ]
    return [root for _, root in sorted(kept, reverse=True)]


@settings(max_examples=40, deadline=None)
@given(specs=trace_specs, page=st.integers(1, 6), since=st.none() | st.integers(0, 40))
def test_pages_read_in_turn_give_the_whole_list(
    tmp_path_factory: pytest.TempPathFactory,
    specs: list[tuple[int, int, str, str | None, str]],
    page: int,
    since: int | None,
) -> None:
    store = TraceStore(tmp_path_factory.mktemp("pages") / "traces.db")
    records = _records(specs)
    store.write_records(records)
    since_ns = None if since is None else (T0 + timedelta(seconds=since)).timestamp() * 1e9
    whole = [t["root_trace_id"] for t in store.list_traces(limit=1000, window=Window(since_ns))]
    assert whole == _expected(specs, records, lambda spec: since is None or spec[0] >= since)
    seen: list[str] = []
    before = None
    while True:
        found = store.list_traces(limit=page, window=Window(since_ns, before))
        if not found:
            break
        seen.extend(t["root_trace_id"] for t in found)
        last = found[-1]
        before = (last["start_ns"], last["root_trace_id"])
    assert seen == whole


@settings(max_examples=40, deadline=None)
@given(
    specs=trace_specs,
    project=st.none() | st.sampled_from(["billing", "support", "nope"]),
    model=st.none() | st.sampled_from(["gpt-4o-mini", "claude-3-5-haiku"]),
    text=st.none() | st.sampled_from(["refund", "REFUND", "50%", "off_now", "_", "absent"]),
)
def test_each_filter_keeps_exactly_the_matching_traces(
    tmp_path_factory: pytest.TempPathFactory,
    specs: list[tuple[int, int, str, str | None, str]],
    project: str | None,
    model: str | None,
    text: str | None,
) -> None:
    store = TraceStore(tmp_path_factory.mktemp("filters") / "traces.db")
    records = _records(specs)
    store.write_records(records)
    found = store.list_traces(limit=1000, extra=TraceFilter(project, model, text))

    def keep(spec: tuple[int, int, str, str | None, str]) -> bool:
        _, count, its_project, its_model, word = spec
        return (
            (project is None or its_project == project)
            and (model is None or (its_model == model and count > 1))
            and (text is None or text.lower() in f"about {word}".lower())
        )

    assert [t["root_trace_id"] for t in found] == _expected(specs, records, keep)


def test_the_first_page_of_a_store_is_named_by_its_newest(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "traces.db")
    store.write_records(_records([(1, 1, "billing", None, "refund"), (5, 2, "support", None, "x")]))
    (newest,) = store.list_traces(limit=1)
    assert newest["project_name"] == "support"


def test_text_search_reads_inputs_and_outputs_of_exported_spans(tmp_path: Path) -> None:
    import clew

    store_path = tmp_path / "traces.db"
    clew.configure(exporter="sqlite", store_path=store_path)

    @clew.trace
    def answer(question: str) -> str:
        return {"shoes": "Returns take 30 days"}.get(question, "no idea")

    answer("shoes")
    answer("hats")
    clew.flush()
    store = TraceStore(store_path)

    def names(text: str) -> int:
        return len(store.list_traces(extra=TraceFilter(text=text)))

    assert names("shoes") == 1 and names("30 DAYS") == 1 and names("no idea") == 1
    assert names("answer") == 2  # the span's name
    assert names("clew.inputs") == 0 and names("gen_ai") == 0  # attribute names are not text
