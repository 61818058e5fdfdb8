"""Datasets: versions in the local store, CSV/JSON/JSONL files whose errors name the line and
the field, rows made from real traced calls, concurrent creators, and ``clew datasets``."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clew
from clew import cli, setup
from clew.cli.datasets import add_datasets
from clew.errors import ConfigurationError, StoreError
from clew.evals import datasets
from clew.evals.datasets import Dataset, Row
from clew.store import TraceStore
from clew.store.schema import SCHEMA_VERSION

ROWS: list[dict[str, Any]] = [
    {"inputs": {"country": "France"}, "target": "Paris"},
    {"inputs": {"country": "Japan", "hints": ["island"]}, "target": "Tokyo", "metadata": {"n": 2}},
]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "traces.db"


def _write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode())
    return path


# --- versions ------------------------------------------------------------------------------


def test_create_stores_version_1_and_get_reads_it_back(store: Path) -> None:
    created = datasets.create("capitals", ROWS, store=store)

    got = datasets.get("capitals", store=store)

    assert got == created
    assert (got.name, got.version) == ("capitals", 1)
    assert got.rows == (
        Row({"country": "France"}, "Paris", {}),
        Row({"country": "Japan", "hints": ["island"]}, "Tokyo", {"n": 2}),
    )
    assert datetime.fromisoformat(got.created).tzinfo is not None


def test_creating_a_name_again_stores_the_next_version_and_keeps_the_old(store: Path) -> None:
    first = datasets.create("capitals", ROWS, store=store)
    second = datasets.create("capitals", ROWS[:1], store=store)
    third = datasets.create("capitals", [Row({"country": "Peru"}, "Lima")], store=store)

    assert [d.version for d in (first, second, third)] == [1, 2, 3]
    assert datasets.get("capitals", store=store).rows == (Row({"country": "Peru"}, "Lima"),)
    assert datasets.get("capitals", 1, store=store) == first
    assert datasets.get("capitals", 2, store=store).rows == (Row({"country": "France"}, "Paris"),)


def test_rows_keep_their_order_so_an_index_names_a_row(store: Path) -> None:
    rows = [{"inputs": {"i": i}} for i in range(50)]

    dataset = datasets.create("numbers", rows, store=store)

    assert [row.inputs["i"] for row in datasets.get("numbers", 1, store=store).rows] == list(
        range(50)
    )
    assert dataset.rows[17] == Row({"i": 17})


def test_values_are_stored_as_json(store: Path) -> None:
    created = datasets.create(
        "shapes", [Row({"pair": (1, 2)}, target={"nested": {"k": [None, True, 1.5]}})], store=store
    )

    assert created.rows[0].inputs == {"pair": [1, 2]}, "a tuple reads back as a list"
    assert datasets.get("shapes", store=store) == created


def test_list_gives_each_name_with_its_latest_version_versions_and_rows(store: Path) -> None:
    datasets.create("b-second", ROWS, store=store)
    datasets.create("a-first", ROWS, store=store)
    datasets.create("a-first", ROWS[:1], store=store)

    listed = datasets.list(store=store)

    assert [(d.name, d.version, d.versions, d.row_count) for d in listed] == [
        ("a-first", 2, 2, 1),
        ("b-second", 1, 1, 2),
    ]
    assert listed[0].created == datasets.get("a-first", store=store).created


def test_a_missing_store_lists_nothing_and_is_not_created(store: Path) -> None:
    assert datasets.list(store=store) == []
    with pytest.raises(StoreError):
        datasets.get("capitals", store=store)
    assert not store.exists()


def test_the_default_store_is_the_configured_one() -> None:
    datasets.create("capitals", ROWS)

    assert [d.name for d in datasets.list(store=setup.store_path())] == ["capitals"]
    assert datasets.get("capitals").version == 1


def test_an_unknown_name_says_how_to_create_one(store: Path) -> None:
    datasets.create("capitals", ROWS, store=store)

    with pytest.raises(StoreError, match=r"no dataset named 'nope' in .*clew datasets create"):
        datasets.get("nope", store=store)


def test_an_unknown_version_names_the_versions_there_are(store: Path) -> None:
    datasets.create("capitals", ROWS, store=store)
    datasets.create("capitals", ROWS, store=store)

    with pytest.raises(StoreError, match=r"'capitals' has no version 3; its versions are 1 to 2"):
        datasets.get("capitals", 3, store=store)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"inputs": {}}, {"question": "hi"}], r"rows\[1\]: unknown field 'question'.*\"inputs\""),
        ([{"target": 1}], r"rows\[0\]: inputs: missing"),
        ([{"inputs": ["a"]}], r"rows\[0\]: inputs: expected an object, got a list"),
        ([{"inputs": {1: "a"}}], r"rows\[0\]: inputs: keys must be text, got 1"),
        ([{"inputs": {}, "metadata": "x"}], r"rows\[0\]: metadata: expected an object, got text"),
        ([{"inputs": {"s": {1, 2}}}], r"rows\[0\]: inputs: cannot be stored as JSON"),
        ([{"inputs": {}, "target": float("nan")}], r"rows\[0\]: target: cannot be stored as JSON"),
        (["hi"], r"rows\[0\]: expected a row object"),
        ([], r"rows: none given"),
        ({"inputs": {}}, r"rows: expected a list of rows, got an object"),
    ],
)
def test_bad_rows_are_refused_naming_the_row_and_the_field(
    store: Path, rows: Any, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        datasets.create("bad", rows, store=store)
    assert not store.exists(), "nothing is stored"


def test_rows_checks_rows_without_storing_them(store: Path) -> None:
    checked = datasets.rows([ROWS[0], Row({"n": 1})])

    assert checked == [Row({"country": "France"}, "Paris"), Row({"n": 1})]
    with pytest.raises(ConfigurationError, match=r"rows\[0\]: unknown field 'question'"):
        datasets.rows([{"question": "2+2"}])
    with pytest.raises(ConfigurationError, match=r"rows: none given"):
        datasets.rows([])
    assert datasets.list() == []


@pytest.mark.parametrize("name", ["", "has space", "a/b", None])
def test_a_bad_name_is_refused(store: Path, name: Any) -> None:
    with pytest.raises(ConfigurationError, match="is not a dataset name"):
        datasets.create(name, ROWS, store=store)


# --- the store file ------------------------------------------------------------------------


def test_a_trace_store_keeps_its_traces_and_gets_the_tables(store: Path) -> None:
    clew.configure(exporter="sqlite", store_path=store)
    _answer("before")
    clew.flush()

    datasets.create("capitals", ROWS, store=store)
    _answer("after")
    clew.flush()

    assert [t["name"] for t in TraceStore(store).list_traces()] == ["answer", "answer"]
    assert datasets.get("capitals", store=store).version == 1
    with closing(sqlite3.connect(store)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_store_started_by_a_dataset_takes_traces(store: Path) -> None:
    datasets.create("capitals", ROWS, store=store)

    clew.configure(exporter="sqlite", store_path=store)
    _answer("hi")
    clew.flush()

    assert len(TraceStore(store).list_traces()) == 1
    with closing(sqlite3.connect(store)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _create_from_process(path: str, start: Any, results: Any) -> None:
    start.wait(60)
    results.put([datasets.create("shared", ROWS, store=path).version for _ in range(20)])


def test_processes_creating_one_name_at_once_get_distinct_versions(store: Path) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    results = context.Queue()
    workers = [
        context.Process(target=_create_from_process, args=(str(store), start, results))
        for _ in range(2)
    ]
    try:
        for process in workers:
            process.start()
        found = [results.get(timeout=120) for _ in workers]
        for process in workers:
            process.join(timeout=60)
    finally:
        for process in workers:
            if process.is_alive():
                process.kill()
                process.join()

    assert [p.exitcode for p in workers] == [0, 0]
    assert sorted(found[0] + found[1]) == list(range(1, 41))
    assert all(versions == sorted(versions) for versions in found)
    rows = tuple(Row(r["inputs"], r["target"], r.get("metadata", {})) for r in ROWS)
    assert all(datasets.get("shared", v, store=store).rows == rows for v in (1, 20, 40))


# --- files ---------------------------------------------------------------------------------


def test_a_jsonl_file_loads_one_row_per_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "rows.jsonl",
        '{"inputs": {"q": "Où est la gare ?"}, "target": "là-bas"}\r\n'
        "\n"
        '{"inputs": {"q": "line\\u2028sep \u2028 raw \x85"}, "metadata": {"src": "🚉"}}\n'
        "   \n",
    )

    assert datasets.load_file(path) == [
        Row({"q": "Où est la gare ?"}, "là-bas"),
        Row({"q": "line\u2028sep \u2028 raw \x85"}, None, {"src": "🚉"}),
    ]


@pytest.mark.parametrize("wrapped", [False, True])
def test_a_json_file_loads_a_list_of_rows_or_a_rows_object(tmp_path: Path, wrapped: bool) -> None:
    path = tmp_path / "rows.json"
    path.write_text(json.dumps({"rows": ROWS} if wrapped else ROWS, indent=2), encoding="utf-8")

    assert datasets.load_file(path) == [
        Row({"country": "France"}, "Paris"),
        Row({"country": "Japan", "hints": ["island"]}, "Tokyo", {"n": 2}),
    ]


def test_a_csv_file_loads_inputs_target_and_metadata(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "rows.csv",
        "\ufeffquestion,context,target,metadata\r\n"
        '"Hello, ""world""?",plain,"Bonjour, le monde",\r\n'
        '"two\nlines",ünïcödé 日本,,"{""source"": ""faq"", ""n"": 3}"\r\n'
        ",empty question,0,\r\n",
    )

    assert datasets.load_file(path) == [
        Row({"question": 'Hello, "world"?', "context": "plain"}, "Bonjour, le monde"),
        Row({"question": "two\nlines", "context": "ünïcödé 日本"}, None, {"source": "faq", "n": 3}),
        Row({"question": "", "context": "empty question"}, "0"),
    ]


def test_a_csv_file_may_have_only_inputs(tmp_path: Path) -> None:
    path = _write(tmp_path / "rows.csv", "a,b\n1,2\n")

    assert datasets.load_file(path) == [Row({"a": "1", "b": "2"})]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "bad.jsonl",
            '{"inputs": {}}\n{"inputs": {}}\n{"inputs": {"q": "x"},\n',
            r"bad\.jsonl line 3: not valid JSON: .*\(column \d+\)",
        ),
        (
            "list.jsonl",
            '{"inputs": {}}\n\n["not", "a", "row"]\n',
            r"list\.jsonl line 3: expected a row object .*got a list",
        ),
        (
            "noinputs.jsonl",
            '{"inputs": {}}\n{"target": "Paris"}\n',
            r"noinputs\.jsonl line 2: inputs: missing; give the keyword arguments",
        ),
        (
            "flat.jsonl",
            '{"question": "hi", "target": "x"}\n',
            r"flat\.jsonl line 1: unknown field 'question'.*put the arguments .* under \"inputs\"",
        ),
        (
            "bad.json",
            '[\n  {"inputs": {}},\n  {"inputs": {}\n]',
            r"bad\.json: not valid JSON: .*\(line 4, column 1\)",
        ),
        (
            "noinputs.json",
            json.dumps([{"inputs": {}}, {"inputs": {}}, {"target": 1}]),
            r"noinputs\.json \[2\]: inputs: missing",
        ),
        (
            "wrapped.json",
            json.dumps({"rows": [{"inputs": {}, "metadata": [1]}]}),
            r"wrapped\.json rows\[0\]: metadata: expected an object, got a list",
        ),
        ("object.json", json.dumps({"inputs": {}}), r"object\.json: expected a list of row"),
        ("empty.json", "[]", r"empty\.json: no rows"),
        (
            "meta.csv",
            'q,metadata\nfine,"{""a"": 1}"\nbad,{not json}\n',
            r"meta\.csv line 3: metadata: not valid JSON: .*leave the cell empty",
        ),
        (
            "metalist.csv",
            'q,metadata\nx,"[1, 2]"\n',
            r"metalist\.csv line 2: metadata: expected an object, got a list",
        ),
        (
            "after-multiline.csv",
            'q,metadata\n"a\nb\nc",\n"d\ne",nope\n',
            r"after-multiline\.csv line 5: metadata: not valid JSON",
        ),
        (
            "cells.csv",
            "q,target\nHello, world,Hi\n",
            r"cells\.csv line 2: 3 cells, but the header names 2 columns; put cells .* quotes",
        ),
        ("header.csv", "q,,target\nx,y,z\n", r"header\.csv line 1: every column .* own"),
        ("twice.csv", "q,q\nx,y\n", r"twice\.csv line 1: every column .* own"),
        ("quote.csv", 'q\n"open\n', r"quote\.csv line \d: not valid CSV"),
        ("only-header.csv", "question,target\n\n", r"only-header\.csv: no rows"),
        ("empty.jsonl", "", r"empty\.jsonl: empty"),
        ("blank.csv", "\n \n", r"blank\.csv: empty"),
        ("rows.txt", "a,b\n", r"rows\.txt: give a \.csv, \.json or \.jsonl file"),
    ],
)
def test_a_bad_file_is_refused_naming_the_line_and_the_field(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = _write(tmp_path / name, text)

    with pytest.raises(ConfigurationError, match=message):
        datasets.load_file(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"cannot read the dataset file .*nope\.csv"):
        datasets.load_file(tmp_path / "nope.csv")


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("q\ncafé\n".encode("latin-1"))

    with pytest.raises(ConfigurationError, match=r"cannot read the dataset file .*latin1\.csv"):
        datasets.load_file(path)


_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_JSON = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
_ROWS = st.lists(
    st.builds(
        Row,
        st.dictionaries(st.text(), _JSON, max_size=4),
        _JSON,
        st.dictionaries(st.text(max_size=5), _JSON, max_size=2),
    ),
    min_size=1,
    max_size=4,
)


@pytest.fixture(scope="module")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("datasets")


@settings(max_examples=50)  # each example writes two versions, a disk sync each
@given(rows=_ROWS)
def test_any_rows_written_as_jsonl_and_json_read_back_equal(
    shared_dir: Path, rows: list[Row]
) -> None:
    objects = [{"inputs": r.inputs, "target": r.target, "metadata": r.metadata} for r in rows]
    jsonl = shared_dir / "rows.jsonl"
    jsonl.write_bytes("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects).encode())
    whole = shared_dir / "rows.json"
    whole.write_bytes(json.dumps(objects, ensure_ascii=False, indent=1).encode())
    store = shared_dir / "traces.db"

    for path in (jsonl, whole):
        loaded = datasets.load_file(path)
        created = datasets.create("property", loaded, store=store)

        assert loaded == rows
        assert datasets.get("property", created.version, store=store).rows == tuple(rows)


# --- from traces ---------------------------------------------------------------------------


@clew.trace(name="answer", tags=["faq"])
def _answer(question: str, polite: bool = True) -> dict[str, str]:
    return {"answer": question.upper()}


@clew.trace(end_user_identifier="bob")
def _lookup_for_bob(term: str) -> list[str]:
    return [term]


@clew.trace(name="for_bob")
def _for_bob(term: str) -> list[str]:
    return _lookup_for_bob(term)


@clew.trace(name="tagged_below")
def _tagged_below(term: str) -> list[str]:
    with clew.span("inner", tags=["deep"]):
        return [term, term]


@clew.trace(name="secret", log_omit_inputs=True)
def _secret(password: str) -> int:
    return len(password)


@pytest.fixture
def traced(store: Path) -> Iterator[Path]:
    """A trace store filled by real traced calls, oldest first: two "faq" answers, one for user
    bob and one tagged "deep" (each only on a span below the root), one whose inputs are
    omitted."""
    clew.configure(exporter="sqlite", store_path=store)
    _answer("hi")
    _answer("yo", polite=False)
    _for_bob("cheese")
    _tagged_below("x")
    _secret("hunter2")
    clew.flush()
    yield store


def test_from_traces_makes_a_row_per_trace_with_inputs_oldest_first(traced: Path) -> None:
    dataset = datasets.from_traces("seen", store=traced)

    listed = {t["root_trace_id"]: t["name"] for t in TraceStore(traced).list_traces()}
    assert [(r.inputs, r.target) for r in dataset.rows] == [
        ({"question": "hi", "polite": True}, {"answer": "HI"}),
        ({"question": "yo", "polite": False}, {"answer": "YO"}),
        ({"term": "cheese"}, ["cheese"]),
        ({"term": "x"}, ["x", "x"]),
    ]
    names = ["answer", "answer", "for_bob", "tagged_below"]
    assert [r.metadata["name"] for r in dataset.rows] == names
    assert all(listed[r.metadata["root_trace_id"]] == r.metadata["name"] for r in dataset.rows)
    assert datasets.get("seen", store=traced) == dataset


def test_rows_from_traces_counts_the_traces_left_out(traced: Path) -> None:
    found = datasets.rows_from_traces(store=traced)

    assert (len(found.rows), found.matched, found.skipped) == (4, 5, 1)


@pytest.mark.parametrize(
    ("filters", "names"),
    [
        ({"tag": "faq"}, ["answer", "answer"]),
        ({"tag": "deep"}, ["tagged_below"]),
        ({"user": "bob"}, ["for_bob"]),
        ({"tag": "faq", "user": "bob"}, None),
        ({"limit": 2}, ["for_bob", "tagged_below"]),
    ],
)
def test_from_traces_filters_by_tag_user_and_limit(
    traced: Path, filters: dict[str, Any], names: list[str] | None
) -> None:
    if names is None:
        with pytest.raises(StoreError, match=r"makes a row: none matches"):
            datasets.from_traces("picked", store=traced, **filters)
        return

    dataset = datasets.from_traces("picked", store=traced, **filters)

    assert [r.metadata["name"] for r in dataset.rows] == names


def _questions(store: Path, since: datetime | timedelta | None) -> list[Any]:
    return [r.inputs["question"] for r in datasets.rows_from_traces(since=since, store=store).rows]


def test_from_traces_since_keeps_the_traces_started_then_or_later(store: Path) -> None:
    TraceStore(store).write_records(
        [
            {
                "trace_id": "imported-trace",
                "root_trace_id": "imported-trace",
                "name": "imported",
                "start_timestamp": (datetime.now(UTC) - timedelta(days=3)).isoformat(),
                "inputs": {"question": "three days ago"},
                "output": "then",
            }
        ]
    )
    clew.configure(exporter="sqlite", store_path=store)
    cutoff: list[datetime] = []

    @clew.trace(name="across")
    def across(question: str) -> list[str]:
        cutoff.append(datetime.now(UTC))
        return _lookup_for_bob(question)  # a span after the cutoff, in a trace started before

    _answer("earlier")
    across("across")
    _answer("later")
    clew.flush()

    assert _questions(store, None) == ["three days ago", "earlier", "across", "later"]
    assert _questions(store, timedelta(days=1)) == ["earlier", "across", "later"]
    assert _questions(store, cutoff[0]) == ["later"]


@pytest.fixture
def india_time() -> Iterator[None]:
    """Local time is UTC+05:30 (a POSIX TZ rule: no time zone database needed)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "IST-05:30"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.mark.usefixtures("india_time")
def test_a_naive_since_is_local_time(store: Path) -> None:
    clew.configure(exporter="sqlite", store_path=store)
    _answer("earlier")
    clew.flush()
    cutoff = datetime.now()
    _answer("later")
    clew.flush()

    assert cutoff.astimezone().utcoffset() == timedelta(hours=5, minutes=30)
    assert _questions(store, cutoff) == ["later"]
    assert _questions(store, cutoff - timedelta(hours=1)) == ["earlier", "later"]


def test_from_traces_of_a_missing_store_says_where_it_looked(store: Path) -> None:
    with pytest.raises(StoreError, match=r"no trace store at .*traces\.db"):
        datasets.from_traces("none", store=store)


def test_from_traces_when_no_trace_has_inputs_says_why(store: Path) -> None:
    clew.configure(exporter="sqlite", store_path=store)
    _secret("a")
    _secret("b")
    clew.flush()

    with pytest.raises(StoreError, match=r"the 2 that match have no recorded inputs"):
        datasets.from_traces("none", store=store)
    assert datasets.list(store=store) == []


def test_from_traces_refuses_a_since_that_is_not_a_time(store: Path) -> None:
    with pytest.raises(ConfigurationError, match="since: give a datetime or a timedelta"):
        datasets.from_traces("x", since="7d", store=store)  # type: ignore[arg-type]


# --- the CLI -------------------------------------------------------------------------------


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Runs ``clew`` with ``datasets`` among its commands, as ``clew.cli.main`` does."""
    if add_datasets not in cli.COMMANDS:
        monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, add_datasets])

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    yield run


@pytest.fixture
def rows_file(tmp_path: Path) -> Path:
    return _write(
        tmp_path / "capitals.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS)
    )


def test_cli_create_makes_versions(run: Any, store: Path, rows_file: Path) -> None:
    first = run("datasets", "create", "capitals", str(rows_file), "--store", str(store))
    second = run("datasets", "create", "capitals", str(rows_file), "--store", str(store), "--json")

    assert first == (0, "created capitals version 1 (2 rows)\n", "")
    shown = json.loads(second[1])
    assert (shown["name"], shown["version"], shown["row_count"]) == ("capitals", 2, 2)
    first, again = (datasets.get("capitals", v, store=store) for v in (1, 2))
    assert again.rows == first.rows


def test_cli_list(run: Any, store: Path) -> None:
    datasets.create("capitals", ROWS, store=store)
    datasets.create("capitals", ROWS[:1], store=store)
    datasets.create("animals", ROWS, store=store)

    code, out, err = run("datasets", "list", "--store", str(store))
    json_code, json_out, _ = run("datasets", "list", "--store", str(store), "--json")

    assert (code, err, json_code) == (0, "", 0)
    header, animals, capitals = out.splitlines()
    assert header.split() == ["NAME", "VERSION", "VERSIONS", "ROWS", "CREATED"]
    assert animals.split()[:4] == ["animals", "1", "1", "2"]
    assert capitals.split()[:4] == ["capitals", "2", "2", "1"]
    listed = json.loads(json_out)
    assert [(d["name"], d["version"], d["versions"], d["row_count"]) for d in listed] == [
        ("animals", 1, 1, 2),
        ("capitals", 2, 2, 1),
    ]


def test_cli_list_of_an_empty_store(run: Any, store: Path) -> None:
    code, out, _ = run("datasets", "list", "--store", str(store))

    assert code == 0
    assert out.startswith("No datasets in ") and "clew datasets create NAME FILE" in out


def test_cli_show_prints_the_rows_with_their_index(run: Any, store: Path) -> None:
    datasets.create("capitals", ROWS, store=store)
    datasets.create("capitals", [{"inputs": {"long": "x" * 200}}], store=store)

    code, out, err = run("datasets", "show", "capitals", "--version", "1", "--store", str(store))

    assert (code, err) == (0, "")
    title, header, first, second = out.splitlines()
    assert title.startswith("# dataset capitals version 1: 2 rows, created ")
    assert header.split() == ["INDEX", "INPUTS", "TARGET", "METADATA"]
    assert first.split() == ["0", '{"country":', '"France"}', '"Paris"', "-"]
    assert second.split()[0] == "1" and second.endswith('{"n": 2}')
    latest = run("datasets", "show", "capitals", "--store", str(store))[1]
    assert "version 2" in latest and "…" in latest and "x" * 200 not in latest


def test_cli_show_json_prints_every_row_whole(run: Any, store: Path) -> None:
    datasets.create("capitals", ROWS, store=store)

    code, out, _ = run("datasets", "show", "capitals", "--json", "--store", str(store))

    shown = json.loads(out)
    assert code == 0
    assert (shown["name"], shown["version"], shown["row_count"]) == ("capitals", 1, 2)
    assert shown["rows"] == [
        {"index": 0, "inputs": {"country": "France"}, "target": "Paris", "metadata": {}},
        {"index": 1, **ROWS[1]},
    ]


def test_cli_from_traces(run: Any, traced: Path) -> None:
    code, out, err = run("datasets", "from-traces", "seen", "--store", str(traced))

    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "created seen version 1 (4 rows) from 5 matching traces",
        "left out 1 trace without recorded inputs on the root span (inputs omitted, content"
        " capture off, or the root span not ended yet)",
    ]


def test_cli_from_traces_filters_and_prints_json(run: Any, traced: Path) -> None:
    code, out, _ = run(
        "datasets", "from-traces", "faq", "--tag", "faq", "--since", "1h", "--json",
        "--store", str(traced),
    )  # fmt: skip
    long_ago = datetime.now(UTC).replace(year=2000).isoformat()
    user = run(
        "datasets", "from-traces", "bob", "--user", "bob", "--since", long_ago,
        "--store", str(traced),
    )  # fmt: skip

    shown = json.loads(out)
    assert code == 0
    counts = [shown[k] for k in ("name", "version", "row_count", "matched", "skipped")]
    assert counts == ["faq", 1, 2, 2, 0]
    assert user[:2] == (0, "created bob version 1 (1 row) from 1 matching trace\n")
    assert datasets.get("bob", store=traced).rows[0].inputs == {"term": "cheese"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "nope"], "clew: error: no dataset named 'nope'"),
        (["show", "capitals", "--version", "5"], "has no version 5; its versions are 1 to 1"),
        (["from-traces", "x", "--tag", "nope"], "makes a row: none matches"),
    ],
)
def test_cli_errors_exit_1_saying_what_to_do(
    run: Any, store: Path, argv: list[str], message: str
) -> None:
    datasets.create("capitals", ROWS, store=store)

    code, out, err = run("datasets", *argv, "--store", str(store))

    assert (code, out) == (1, "")
    assert message in err


def test_cli_a_bad_file_exits_1_naming_the_line_and_field(
    run: Any, store: Path, tmp_path: Path
) -> None:
    path = _write(tmp_path / "bad.csv", "q,metadata\nok,\nbad,{oops}\n")

    code, out, err = run("datasets", "create", "x", str(path), "--store", str(store))

    assert (code, out) == (1, "")
    assert "bad.csv line 3: metadata: not valid JSON" in err
    assert not store.exists()


@pytest.mark.parametrize(
    "argv",
    [["datasets"], ["datasets", "nope"], ["datasets", "show"], ["datasets", "create", "x"],
     ["datasets", "show", "x", "--version", "0"],
     ["datasets", "from-traces", "x", "--since", "last tuesday"],
     ["datasets", "from-traces", "x", "--limit", "0"]],
)  # fmt: skip
def test_cli_usage_errors_exit_2(run: Any, argv: list[str]) -> None:
    code, out, err = run(*argv)

    assert (code, out) == (2, "")
    assert "usage: clew datasets" in err


def test_a_dataset_is_a_frozen_value() -> None:
    dataset = Dataset("d", 1, "2024-01-01T00:00:00+00:00", (Row({"a": 1}),))

    with pytest.raises(AttributeError):
        dataset.version = 2  # type: ignore[misc]
