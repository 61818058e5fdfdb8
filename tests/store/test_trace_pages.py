"""The trace list as the viewer pages and filters it: pages read one after another give the whole
list, and each filter keeps exactly the traces a plain reading of the data keeps."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext

from clew import attributes as a
from clew.store import TraceStore, queries, walks
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


WORDS = ["refund", "Refund policy", "50% off_now", 'say "hi"', "café crème", "naïve", "x"]


def _exported(specs: list[tuple[int, int, str, str | None, str]]) -> list[ReadableSpan]:
    """The same traces as :func:`_records`, as SDK spans (attributes kept as JSON)."""
    spans = []
    for number, (start, count, project, model, word) in enumerate(specs):
        trace_id = (number + 1) << 64 | 0xABC
        root_context = SpanContext(trace_id, number + 1, False)
        for i in range(count):
            at = int((T0 + timedelta(seconds=start)).timestamp() * 1e9) + i * 10_000_000
            attributes: dict[str, Any] = {}
            if i == 0:
                attributes[a.CLEW_INPUTS] = json.dumps({"question": f"about {word}"})
            elif model is not None:
                attributes[a.GEN_AI_REQUEST_MODEL] = model
                if (number + i) % 2:  # an answering model besides the requested one
                    attributes[a.GEN_AI_RESPONSE_MODEL] = f"{model}-2024"
                messages = [{"role": "user", "parts": [{"type": "text", "content": word}]}]
                attributes[a.GEN_AI_INPUT_MESSAGES] = json.dumps(messages, ensure_ascii=i % 2)
            spans.append(
                ReadableSpan(
                    name="answer" if i == 0 else "chat",
                    context=root_context if i == 0 else SpanContext(trace_id, 1000 + i, False),
                    parent=None if i == 0 else root_context,
                    resource=Resource.create({"service.name": project}),
                    attributes=attributes,
                    start_time=at,
                    end_time=at + 5_000_000,
                )
            )
    return spans


@settings(max_examples=60, deadline=None)
@given(
    specs=st.lists(
        st.tuples(
            st.integers(0, 30),
            st.integers(1, 3),
            st.sampled_from(["billing", "support"]),
            st.sampled_from(["gpt-4o-mini", "claude-3-5-haiku", None]),
            st.sampled_from(WORDS),
        ),
        min_size=1,
        max_size=20,
    ),
    exported=st.booleans(),
    project=st.none() | st.sampled_from(["billing", "nope"]),
    model=st.none() | st.sampled_from(["gpt-4o-mini", "gpt-4o-mini-2024", "claude"]),
    text=st.none() | st.sampled_from([*WORDS, "REFUND", "é", '"', 'hi"', "%", "_n"]),
    status=st.none() | st.sampled_from(["success", "error"]),
    page=st.integers(1, 5),
    slice_spans=st.integers(1, 4),
)
def test_searches_cut_short_and_resumed_find_what_a_whole_plain_search_finds(
    tmp_path_factory: pytest.TempPathFactory,
    specs: list[tuple[int, int, str, str | None, str]],
    exported: bool,
    project: str | None,
    model: str | None,
    text: str | None,
    status: str | None,
    page: int,
    slice_spans: int,
) -> None:
    """The fast path (raw-text prefilters in the walk, the model filter's walk over llm_calls,
    slices, a time budget that runs out at every chance) pages through exactly the traces of
    the general path (a check per trace)."""
    store = TraceStore(tmp_path_factory.mktemp("budget") / "traces.db")
    if exported:
        store.write_spans(_exported(specs))
    else:
        store.write_records(_records(specs))
    extra = TraceFilter(project, model, text)
    with pytest.MonkeyPatch.context() as plain:  # no prefilters, no walk over llm_calls
        plain.setattr(queries, "_prefilters", lambda extra: [])
        has_table = queries.has_table
        plain.setattr(
            queries, "has_table", lambda conn, name: name != "llm_calls" and has_table(conn, name)
        )
        whole = store.list_traces(limit=1000, status=status, extra=extra)
    assert store.list_traces(limit=1000, status=status, extra=extra) == whole
    with pytest.MonkeyPatch.context() as small:
        small.setattr(walks, "SLICE_SPANS", slice_spans)
        seen = _resumed(store, page, status, extra, len(specs))
    assert seen == whole


def _resumed(
    store: TraceStore, page: int, status: str | None, extra: TraceFilter, traces: int
) -> list[dict[str, Any]]:
    """Every page of a search whose time runs out at every chance, read in turn."""
    seen: list[dict[str, Any]] = []
    before = None
    for _ in range(10 * traces + 10):  # it ends: each page gets further back
        found = store.trace_page(
            page, status=status, extra=extra, window=Window(None, before), budget=0
        )
        seen.extend(found.traces)
        assert len(found.traces) <= page
        assert found.partial == (found.next is not None and len(found.traces) < page)
        if found.next is None:
            break
        assert before is None or found.next < before
        before = found.next
    else:
        pytest.fail("the resumed search did not end")
    return seen


def test_the_model_filter_finds_the_requested_and_the_answering_model(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "traces.db")
    # trace 1 asked for gpt-4o-mini and was answered by gpt-4o-mini-2024; trace 2 by itself
    store.write_spans(_exported([(1, 2, "billing", "gpt-4o-mini", "x"), (2, 2, "b", "o1", "y")]))
    [first, second] = [t["root_trace_id"] for t in store.list_traces()][::-1]

    def found(model: str) -> list[str]:
        return [t["root_trace_id"] for t in store.list_traces(extra=TraceFilter(model=model))]

    assert found("gpt-4o-mini") == [first]
    assert found("gpt-4o-mini-2024") == [first]
    assert found("o1") == [second] and found("o1-2024") == [] and found("gpt") == []
