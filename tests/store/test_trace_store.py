"""The local trace store: what goes in comes out, trees, filters, errors, concurrent writers."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import Span

from clew.errors import StoreError
from clew.exporters.sqlite import SqliteSpanExporter
from clew.log_record import RECORD_FIELDS
from clew.store import TraceStore
from clew.store.schema import PAGE_SIZE, SCHEMA_VERSION
from span_factory import SpanFactory, root_id


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dir" / "traces.db"


@pytest.fixture
def spans(path: Path) -> Iterator[SpanFactory]:
    factory = SpanFactory(SqliteSpanExporter(path))
    yield factory
    factory.shutdown()


@pytest.fixture
def store(path: Path) -> Iterator[TraceStore]:
    with TraceStore(path) as store:
        yield store


def _by_id(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["trace_id"]: r for r in records}


def test_every_record_field_round_trips(spans: SpanFactory, store: TraceStore) -> None:
    with (
        spans.span(
            "answer",
            tags=["rag", "prod"],
            user="u-42",
            session="s-1",
            inputs={"question": "Capital of France?", "k": 3},
            output="Paris",
            attributes={
                "clew.metadata": '{"team": "search"}',
                "clew.target": '"Paris"',
                "clew.deployment_id": "d-7",
                "app.flag": True,
            },
        ) as root,
        spans.span(
            "chat gpt-4o-mini",
            model="gpt-4o-mini",
            input_tokens=1200,
            output_tokens=56,
            cost=0.00021,
            error="RateLimitError: slow down",
            attributes={
                "gen_ai.provider.name": "openai",
                "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.usage.cache_read.input_tokens": 1000,
                "gen_ai.usage.cache_creation.input_tokens": 10,
                "gen_ai.usage.reasoning.output_tokens": 20,
                "clew.time_to_first_token": 0.25,
                "gen_ai.response.finish_reasons": ("stop",),
            },
        ),
    ):
        pass

    stored = store.get_trace(root_id(root))

    expected = spans.records()
    assert _by_id(stored) == _by_id(expected)
    covered = {field for r in stored for field in RECORD_FIELDS if r[field] not in (None, [], {})}
    assert covered == set(RECORD_FIELDS)


def test_a_trace_comes_back_in_start_order(spans: SpanFactory, store: TraceStore) -> None:
    with spans.span("root") as root:
        for name in ("first", "second", "third"):
            with spans.span(name):
                pass

    names = [r["name"] for r in store.get_trace(root_id(root))]

    assert names == ["root", "first", "second", "third"]


def test_list_traces_summarizes_each_trace_newest_first(
    spans: SpanFactory, store: TraceStore
) -> None:
    with (
        spans.span("older") as older,
        spans.span("llm", model="m", input_tokens=10, output_tokens=2, cost=0.5),
    ):
        pass
    with spans.span("newer") as newer:
        with spans.span("llm-1", model="m", input_tokens=100, output_tokens=20, cost=0.25):
            pass
        with spans.span("llm-2", model="m", input_tokens=1, output_tokens=3, cost=0.125):
            pass

    traces = store.list_traces()

    assert [t["root_trace_id"] for t in traces] == [root_id(newer), root_id(older)]
    summary = traces[0]
    assert summary["name"] == "newer"
    assert summary["span_count"] == 3
    assert summary["status"] == "success"
    assert (summary["input_tokens"], summary["output_tokens"]) == (101, 23)
    assert summary["total_tokens"] == 124
    assert summary["cost"] == pytest.approx(0.375)
    root_record = next(r for r in spans.records() if r["name"] == "newer")
    assert summary["latency"] == pytest.approx(root_record["latency"], abs=1e-5)
    assert summary["start_timestamp"][:19] == root_record["start_timestamp"][:19]


def test_traces_are_ordered_by_when_they_started_not_by_their_latest_span(
    spans: SpanFactory, store: TraceStore
) -> None:
    long_running = spans.open_span("long-running")
    with spans.span("quick") as quick:
        pass
    with spans.under(long_running), spans.span("late step"):
        pass
    long_running.end()

    assert [t["name"] for t in store.list_traces()] == ["quick", "long-running"]
    assert [t["root_trace_id"] for t in store.list_traces(limit=1)] == [root_id(quick)]


def test_a_trace_without_llm_calls_has_no_token_or_cost_totals(
    spans: SpanFactory, store: TraceStore
) -> None:
    with spans.span("plain"):
        pass

    (summary,) = store.list_traces()

    assert (summary["input_tokens"], summary["total_tokens"], summary["cost"]) == (None,) * 3


def test_one_failed_span_makes_the_trace_an_error(spans: SpanFactory, store: TraceStore) -> None:
    with spans.span("clean"):
        pass
    with spans.span("failing") as failing, spans.span("tool", error="ValueError: boom"):
        pass

    statuses = {t["name"]: t["status"] for t in store.list_traces()}
    errors = store.list_traces(status="error")
    successes = store.list_traces(status="success")

    assert statuses == {"clean": "success", "failing": "error"}
    assert [t["root_trace_id"] for t in errors] == [root_id(failing)]
    assert [t["name"] for t in successes] == ["clean"]
    tool = next(r for r in store.get_trace(root_id(failing)) if r["name"] == "tool")
    assert (tool["status"], tool["error"]) == ("error", "ValueError: boom")


def test_filters_match_a_trace_when_any_of_its_spans_matches(
    spans: SpanFactory, store: TraceStore
) -> None:
    with spans.span("tagged-child") as tagged, spans.span("retrieve", tags=["rag"]):
        pass
    with spans.span("for-user", user="u-1", session="s-9", tags=["prod"]) as for_user:
        pass
    with spans.span("other", user="u-2", session="s-1"):
        pass

    def names(**filters: Any) -> list[str]:
        return [t["name"] for t in store.list_traces(**filters)]

    assert names(tag="rag") == ["tagged-child"]
    assert names(user="u-1") == ["for-user"]
    assert names(session="s-9") == ["for-user"]
    assert names(tag="prod", user="u-1") == ["for-user"]
    assert names(tag="prod", user="u-2") == []
    assert names(tag="missing") == []
    assert names(limit=2) == ["other", "for-user"]
    assert root_id(tagged) != root_id(for_user)


def test_spans_whose_parent_was_never_stored_still_form_a_listed_trace(
    spans: SpanFactory, store: TraceStore
) -> None:
    never_exported = spans.open_span("request")
    with (
        spans.under(never_exported),
        spans.span("handler", input_tokens=5, output_tokens=1),
        spans.span("llm"),
    ):
        pass

    (summary,) = store.list_traces()
    records = store.get_trace(summary["root_trace_id"])

    assert summary["root_trace_id"] == root_id(never_exported)
    assert (summary["name"], summary["span_count"], summary["total_tokens"]) == ("handler", 2, 6)
    assert [r["name"] for r in records] == ["handler", "llm"]


def test_get_trace_accepts_the_id_in_other_spellings(spans: SpanFactory, store: TraceStore) -> None:
    with spans.span("root") as root, spans.span("child"):
        pass
    wanted = root_id(root)
    child_id = next(r["trace_id"] for r in spans.records() if r["name"] == "child")

    for spelling in (
        wanted,
        wanted.upper(),
        wanted.replace("-", ""),
        f"  {wanted} ",
        wanted[:8],
        wanted.replace("-", "")[:13].upper(),
        child_id,
    ):
        assert [r["name"] for r in store.get_trace(spelling)] == ["root", "child"], spelling


def _record(trace_id: str) -> dict[str, Any]:
    return {
        "trace_id": trace_id,
        "root_trace_id": trace_id,
        "parent_trace_id": None,
        "name": f"t-{trace_id[:4]}",
        "start_timestamp": "2024-05-01T12:00:00+00:00",
        "end_timestamp": "2024-05-01T12:00:01+00:00",
        "status": "success",
        "tags": [],
    }


def test_an_ambiguous_id_prefix_is_refused(store: TraceStore) -> None:
    store.write_records(
        [
            _record("abcdef01-0000-4000-8000-000000000001"),
            _record("abcdef01-1111-4000-8000-000000000002"),
        ]
    )

    with pytest.raises(StoreError, match=r"matches several traces.*give more characters"):
        store.get_trace("abcdef01")
    (record,) = store.get_trace("ABCDEF011")
    assert record["trace_id"] == "abcdef01-1111-4000-8000-000000000002"


def test_short_prefixes_are_not_looked_up(store: TraceStore) -> None:
    store.write_records([_record("abcdef01-0000-4000-8000-000000000001")])

    with pytest.raises(StoreError, match="no trace with id"):
        store.get_trace("abcdef0")


def test_an_unknown_id_says_how_to_find_ids(spans: SpanFactory, store: TraceStore) -> None:
    with spans.span("root"):
        pass

    with pytest.raises(StoreError, match=r"no trace with id 'nope'.*Run `clew traces`"):
        store.get_trace("nope")
    with pytest.raises(StoreError, match="no trace with id"):
        store.get_trace("00000000-0000-4000-8000-000000000000")


def test_a_missing_store_says_how_to_create_one_and_is_not_created(path: Path) -> None:
    store = TraceStore(path)

    with pytest.raises(StoreError, match=r"no trace store at .*Run a program traced with clew"):
        store.list_traces()
    with pytest.raises(StoreError, match="no trace store at"):
        store.get_trace("anything")
    assert not path.exists()


def test_the_first_write_creates_a_wal_store_with_a_versioned_schema(
    path: Path, store: TraceStore
) -> None:
    store.write_records([_record("abcdef01-0000-4000-8000-000000000001")])

    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_store_written_by_a_newer_clew_is_refused(path: Path, store: TraceStore) -> None:
    store.write_records([_record("abcdef01-0000-4000-8000-000000000001")])
    store.close()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        conn.commit()

    with pytest.raises(StoreError, match="newer than this clew"):
        store.list_traces()
    with pytest.raises(StoreError, match="upgrade clew"):
        store.write_records([_record("abcdef01-0000-4000-8000-000000000002")])


def test_an_empty_store_file_lists_nothing(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.touch()

    assert TraceStore(path).list_traces() == []
    assert TraceStore(path).count_spans() == 0


def test_writing_a_span_again_replaces_it(spans: SpanFactory, store: TraceStore) -> None:
    with spans.span("root") as root:
        pass
    (record,) = spans.records()

    store.write_records([{**record, "name": "renamed"}])

    assert store.count_spans() == 1
    assert [r["name"] for r in store.get_trace(root_id(root))] == ["renamed"]


def _write_from_process(path: str, worker: int, start: Any) -> None:
    factory = SpanFactory(SqliteSpanExporter(path, timeout=60))
    start.wait(60)
    for t in range(20):
        with factory.span(f"w{worker}-t{t}"):
            for i in range(99):
                with factory.span(f"child-{i}"):
                    pass
    factory.shutdown()


def test_processes_writing_one_store_at_once_lose_no_span(path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    workers = [
        context.Process(target=_write_from_process, args=(str(path), worker, start))
        for worker in range(2)
    ]
    try:
        for process in workers:
            process.start()
        for process in workers:
            process.join(timeout=240)
    finally:
        for process in workers:
            if process.is_alive():
                process.kill()
                process.join()

    assert [p.exitcode for p in workers] == [0, 0]
    store = TraceStore(path)
    assert store.count_spans() == 2 * 2000
    traces = store.list_traces(limit=100)
    assert len(traces) == 40
    assert {t["span_count"] for t in traces} == {100}
    windows = []
    for worker in (0, 1):
        starts = [t["start_timestamp"] for t in traces if t["name"].startswith(f"w{worker}-")]
        windows.append((min(starts), max(starts)))
    (first_start, first_end), (second_start, second_end) = windows
    assert first_start < second_end and second_start < first_end, "the writers did not overlap"


def test_a_forked_child_writes_through_a_connection_of_its_own(path: Path) -> None:
    with TraceStore(path) as store:
        store.write_records([_record("abcdef01-0000-4000-8000-000000000001")])
        pid = os.fork()
        if pid == 0:  # the child: must not touch the parent's connection
            code = 1
            try:
                store.write_records([_record("abcdef01-0000-4000-8000-000000000002")])
                store.close()
                code = 0 if store.count_spans() == 2 else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        store.write_records([_record("abcdef01-0000-4000-8000-000000000003")])

    assert os.waitstatus_to_exitcode(status) == 0
    assert TraceStore(path).count_spans() == 3


def test_a_write_gives_up_when_another_writer_holds_the_lock_too_long(path: Path) -> None:
    with TraceStore(path) as first:
        first.write_records([_record("abcdef01-0000-4000-8000-000000000001")])
    with (
        closing(sqlite3.connect(path, isolation_level=None)) as other,
        TraceStore(path, timeout=0.2) as store,
    ):
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError, match=r"cannot write to the trace store.*locked"):
            store.write_records([_record("abcdef01-0000-4000-8000-000000000002")])
        other.execute("ROLLBACK")
        store.write_records([_record("abcdef01-0000-4000-8000-000000000002")])
    assert TraceStore(path).count_spans() == 2


def _all_fields_trace(spans: SpanFactory) -> Span:
    with (
        spans.span(
            "answer",
            tags=["rag"],
            user="u-42",
            inputs={"q": "x"},
            attributes={"clew.metadata": '{"a": 1}', "app.list": (1, 2)},
        ) as root,
        spans.span(
            "chat",
            model="m",
            input_tokens=3,
            cost=0.5,
            error="Boom: no",
            attributes={"clew.time_to_first_token": 0.25, "clew.deployment_id": "d"},
        ),
    ):
        pass
    return root


def test_records_written_whole_read_back_field_for_field(
    spans: SpanFactory, store: TraceStore, tmp_path: Path
) -> None:
    root = _all_fields_trace(spans)
    expected = spans.records()

    with TraceStore(tmp_path / "records.db") as other:
        other.write_records(expected)
        stored = other.get_trace(root_id(root))

    assert _by_id(stored) == _by_id(store.get_trace(root_id(root))) == _by_id(expected)
    assert all(tuple(r) == RECORD_FIELDS for r in stored)


def test_ids_given_as_attributes_are_stored_and_found(
    spans: SpanFactory, store: TraceStore
) -> None:
    ids = {"clew.root_trace_id": "my-run", "clew.trace_id": "my-step"}
    with spans.span("step", attributes={**ids, "clew.parent_trace_id": "outside"}):
        pass

    (record,) = store.get_trace("my-run")

    assert record == spans.records()[0]
    assert (record["root_trace_id"], record["trace_id"]) == ("my-run", "my-step")
    assert [t["root_trace_id"] for t in store.list_traces()] == ["my-run"]


def test_exporting_a_span_again_replaces_it(path: Path, spans: SpanFactory) -> None:
    with spans.span("root") as root:
        pass
    exporter = SqliteSpanExporter(path)
    exporter.export(spans.spans())
    exporter.shutdown()

    assert TraceStore(path).count_spans() == 1
    assert [r["name"] for r in TraceStore(path).get_trace(root_id(root))] == ["root"]


def test_a_new_store_file_has_large_pages(path: Path, store: TraceStore) -> None:
    store.write_records([_record("abcdef01-0000-4000-8000-000000000001")])

    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE


_VERSION_1 = (
    """CREATE TABLE spans (root_trace_id TEXT NOT NULL, trace_id TEXT NOT NULL,
    parent_trace_id TEXT, name TEXT NOT NULL, start_time REAL, end_time REAL,
    status TEXT NOT NULL, depth INTEGER, end_user_identifier TEXT, session_id TEXT,
    project_name TEXT, input_tokens INTEGER, output_tokens INTEGER, cost REAL,
    record TEXT NOT NULL, PRIMARY KEY (root_trace_id, trace_id))""",
    "CREATE INDEX spans_start ON spans (start_time)",
    "CREATE INDEX spans_errors ON spans (start_time) WHERE status = 'error'",
    """CREATE TABLE span_tags (tag TEXT NOT NULL, start_time REAL,
    root_trace_id TEXT NOT NULL, trace_id TEXT NOT NULL,
    PRIMARY KEY (tag, start_time, root_trace_id, trace_id)) WITHOUT ROWID""",
)


def _version_1_store(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        for statement in _VERSION_1:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO spans (root_trace_id, trace_id, name, start_time, status, record)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                record["root_trace_id"],
                record["trace_id"],
                record["name"],
                1.7e9,
                "success",
                json.dumps(record),
            ),
        )
        conn.execute(
            "INSERT INTO span_tags VALUES ('old', 1.7e9, ?, ?)",
            (record["root_trace_id"], record["trace_id"]),
        )
        conn.execute("PRAGMA user_version = 1")


def test_a_version_1_store_is_upgraded_on_the_first_write(
    path: Path, spans: SpanFactory, caplog: pytest.LogCaptureFixture
) -> None:
    old = {**_record("abcdef01-0000-4000-8000-000000000001"), "tags": ["old"]}
    _version_1_store(path, old)
    with pytest.raises(StoreError, match=r"older clew.*upgrades it"):
        TraceStore(path).list_traces()

    with caplog.at_level(logging.WARNING, logger="clew.store.sqlite"), spans.span("new") as new:
        pass

    assert "from schema version 1" in caplog.text
    store = TraceStore(path)
    assert store.count_spans() == 2
    (migrated,) = store.get_trace(old["trace_id"])
    assert {k: migrated[k] for k in old} == old
    assert [t["name"] for t in store.list_traces(tag="old")] == [old["name"]]
    assert [r["name"] for r in store.get_trace(root_id(new))] == ["new"]
