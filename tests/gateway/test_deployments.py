"""Deployed prompts: versions in the local store, errors that name the field, concurrent adds,
the trace store left intact, and ``clew deployments add/list/show``."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from clew import setup
from clew.cli import main
from clew.errors import ConfigurationError, InvalidRequestError, StoreError
from clew.exporters.sqlite import SqliteSpanExporter
from clew.gateway import deployments
from clew.gateway.schemas import ProviderName
from clew.store import TraceStore
from clew.store import deployments as stored
from clew.store.schema import PAGE_SIZE, SCHEMA_VERSION
from span_factory import SpanFactory, root_id

SUPPORT: dict[str, Any] = {
    "id": "support-answer",
    "provider": "openai",
    "model": "gpt-4o-mini",
    "model_params": {"temp": 0.2},
    "messages": [
        {"role": "system", "content": "You answer questions about {{ product }}."},
        {"role": "user", "content": "{{question}}"},
    ],
    "fallbacks": ["anthropic/claude-3-5-haiku-latest", "gpt-4o"],
}

SUPPORT_YAML = """\
id: support-answer
provider: openai
model: gpt-4o-mini
model_params:
  temp: 0.2
messages:
  - role: system
    content: |
      You answer questions about {{ product }}.
      Be brief.
  - content: "{{question}}"
fallbacks: [anthropic/claude-3-5-haiku-latest, gpt-4o]
"""


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "traces.db"


def _version(fields: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**fields, **changes}


# --- versions ------------------------------------------------------------------------------


def test_adding_an_id_again_makes_a_new_version(store: Path) -> None:
    first = deployments.add(SUPPORT, store=store)
    second = deployments.add(_version(SUPPORT, model="gpt-4o"), store=store)

    assert (first.version, second.version) == (1, 2)
    assert deployments.get("support-answer", store=store).model == "gpt-4o"
    assert deployments.get("support-answer", store=store).version == 2
    old = deployments.get("support-answer", 1, store=store)
    assert (old.version, old.model) == (1, "gpt-4o-mini")
    assert old.created_at == first.created_at


def test_a_deployment_reads_back_as_it_was_added(store: Path) -> None:
    added = deployments.add(SUPPORT, store=store)

    got = deployments.get("support-answer", store=store)

    assert got == added
    assert got.provider is ProviderName.openai
    assert got.messages[0].content == "You answer questions about {{ product }}."
    assert got.fallbacks == ["anthropic/claude-3-5-haiku-latest", "gpt-4o"]
    assert got.model_params is not None
    assert got.model_params.given() == {"temp": 0.2}, "only the parameters given are sent"
    assert got.created_at.endswith("+00:00")


def test_version_and_created_at_given_are_ignored_so_a_shown_deployment_adds_back(
    store: Path,
) -> None:
    first = deployments.add(SUPPORT, store=store)
    shown = {**first.model_dump(mode="json"), "variables": ["product", "question"]}

    again = deployments.add({**shown, "version": 7}, store=store)
    from_model = deployments.add(first, store=store)

    assert (again.version, from_model.version) == (2, 3)
    assert again.created_at != first.created_at
    assert again.messages == first.messages


def test_list_gives_the_latest_version_of_each_by_id(store: Path) -> None:
    deployments.add(SUPPORT, store=store)
    deployments.add(_version(SUPPORT, model="gpt-4o"), store=store)
    deployments.add(_version(SUPPORT, id="a-first"), store=store)

    listed = deployments.list(store=store)

    assert [(d.id, d.version, d.model) for d in listed] == [
        ("a-first", 1, "gpt-4o-mini"),
        ("support-answer", 2, "gpt-4o"),
    ]
    assert [tuple(row)[:2] + tuple(row)[3:] for row in stored.list(store)] == [
        ("a-first", 1, 1),
        ("support-answer", 2, 2),
    ]


def test_a_missing_store_lists_nothing_and_is_not_created(store: Path) -> None:
    assert deployments.list(store=store) == []
    assert stored.list(store) == []
    assert not store.exists()


def test_the_default_store_is_the_configured_one() -> None:
    deployments.add(SUPPORT)

    assert [d.id for d in deployments.list(store=setup.store_path())] == ["support-answer"]
    assert deployments.get("support-answer").version == 1


# --- errors --------------------------------------------------------------------------------


def test_an_unknown_id_says_how_to_add_it(store: Path) -> None:
    deployments.add(SUPPORT, store=store)

    with pytest.raises(InvalidRequestError) as caught:
        deployments.get("nope", store=store)

    assert str(caught.value) == "unknown deployment 'nope'; add it with `clew deployments add FILE`"
    assert caught.value.param == "deployment_id"
    assert caught.value.status_code == 400


def test_an_unknown_id_in_a_missing_store_is_the_same_error(store: Path) -> None:
    with pytest.raises(InvalidRequestError, match="unknown deployment 'nope'"):
        deployments.get("nope", store=store)
    assert not store.exists()


def test_an_unknown_version_names_it_and_the_versions_there_are(store: Path) -> None:
    deployments.add(SUPPORT, store=store)
    deployments.add(SUPPORT, store=store)

    with pytest.raises(InvalidRequestError) as caught:
        deployments.get("support-answer", 3, store=store)

    assert "no version 3" in str(caught.value) and "1 to 2" in str(caught.value)
    assert caught.value.param == "deployment_id"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"model": None}, "model"),
        ({"id": "has space"}, "id"),
        ({"id": ""}, "id"),
        ({"provider": "opnai"}, "provider"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "usr", "content": "hi"}]}, "messages[0].role"),
        ({"fallbacks": [" gpt-4o"]}, "fallbacks"),
        ({"model_params": {"temperature": 0.5}}, "model_params.temperature"),
        ({"modle": "gpt-4o"}, "modle: unknown field (did you mean 'model'?)"),
    ],
)
def test_an_invalid_deployment_names_the_field(
    store: Path, change: dict[str, Any], named: str
) -> None:
    fields = {k: v for k, v in {**SUPPORT, **change}.items() if v is not None}

    with pytest.raises(ConfigurationError, match="invalid deployment") as caught:
        deployments.add(fields, store=store)

    assert named in str(caught.value)
    assert not store.exists(), "nothing is stored"


def test_a_store_that_is_not_a_database_is_a_store_error(store: Path) -> None:
    store.write_text("not sqlite" * 100)

    with pytest.raises(StoreError, match=r"traces\.db"):
        deployments.add(SUPPORT, store=store)
    with pytest.raises(StoreError, match=r"traces\.db"):
        deployments.get("support-answer", store=store)


def test_a_version_this_clew_cannot_read_is_a_store_error(store: Path) -> None:
    stored.add(store, "future", json.dumps({**SUPPORT, "id": "future", "retries": 3}))

    with pytest.raises(StoreError, match=r"'future' version 1 .*\(retries: unknown field\)"):
        deployments.get("future", store=store)


# --- files ---------------------------------------------------------------------------------


def test_a_yaml_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "support.yaml"
    path.write_text(SUPPORT_YAML)

    fields = deployments.load_file(path)

    assert fields["model"] == "gpt-4o-mini"
    assert fields["messages"][0]["content"] == (
        "You answer questions about {{ product }}.\nBe brief.\n"
    )


def test_a_json_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "support.json"
    path.write_text(json.dumps(SUPPORT))

    assert deployments.load_file(path) == SUPPORT


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("bad.yaml", "id: x\n  provider: [\n", r"bad\.yaml: not valid YAML: .*\(line 2, column"),
        ("bad.json", '{"id": "x",', r"bad\.json: not valid JSON: .*\(line 1, column"),
        (
            "no-model.yaml",
            SUPPORT_YAML.replace("model: gpt-4o-mini\n", ""),
            r"no-model\.yaml: invalid deployment: model: missing \(required\)",
        ),
        (
            "typo.yaml",
            SUPPORT_YAML.replace("fallbacks:", "fallback:"),
            r"typo\.yaml: invalid deployment: fallback: unknown field \(did you mean 'fallbacks'",
        ),
        ("list.yaml", "- id: x\n", r"list\.yaml: expected one deployment .*got list"),
        ("empty.yaml", "", r"empty\.yaml: empty"),
    ],
)
def test_a_bad_file_names_the_file_and_the_problem(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(text)

    with pytest.raises(ConfigurationError, match=expected):
        deployments.load_file(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"cannot read the deployment file .*nope\.yaml"):
        deployments.load_file(tmp_path / "nope.yaml")


# --- concurrency ---------------------------------------------------------------------------


def test_threads_adding_one_id_at_once_get_distinct_versions(store: Path) -> None:
    start = threading.Barrier(8)
    versions: list[int] = []
    lock = threading.Lock()

    def adder() -> None:
        start.wait(10)
        for _ in range(5):
            version = deployments.add(SUPPORT, store=store).version
            with lock:
                versions.append(version)

    threads = [threading.Thread(target=adder) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(versions) == list(range(1, 41))
    assert [row.versions for row in stored.list(store)] == [40]


def _add_from_process(path: str, start: Any, results: Any) -> None:
    start.wait(60)
    results.put([deployments.add(SUPPORT, store=path).version for _ in range(25)])


def test_processes_adding_one_id_at_once_get_distinct_versions(store: Path) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    results = context.Queue()
    workers = [
        context.Process(target=_add_from_process, args=(str(store), start, results))
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
    assert sorted(found[0] + found[1]) == list(range(1, 51))
    assert all(versions == sorted(versions) for versions in found)


# --- the trace store -----------------------------------------------------------------------


def test_a_trace_store_keeps_its_traces_and_gets_the_table(store: Path) -> None:
    spans = SpanFactory(SqliteSpanExporter(store))
    with spans.span("before") as before:
        pass

    deployments.add(SUPPORT, store=store)
    with spans.span("after") as after:
        pass
    spans.shutdown()

    traces = TraceStore(store)
    assert [r["name"] for r in traces.get_trace(root_id(before))] == ["before"]
    assert [r["name"] for r in traces.get_trace(root_id(after))] == ["after"]
    assert deployments.get("support-answer", store=store).version == 1
    with closing(sqlite3.connect(store)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_store_started_by_a_deployment_takes_traces(store: Path) -> None:
    deployments.add(SUPPORT, store=store)
    assert TraceStore(store).list_traces() == []

    spans = SpanFactory(SqliteSpanExporter(store))
    with spans.span("root") as root:
        pass
    spans.shutdown()

    assert [r["name"] for r in TraceStore(store).get_trace(root_id(root))] == ["root"]
    assert deployments.get("support-answer", store=store).version == 1
    with closing(sqlite3.connect(store)) as conn:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# --- the CLI -------------------------------------------------------------------------------


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def support_file(tmp_path: Path) -> Path:
    path = tmp_path / "support.yaml"
    path.write_text(SUPPORT_YAML)
    return path


def test_cli_add_makes_versions(
    capsys: pytest.CaptureFixture[str], store: Path, support_file: Path
) -> None:
    first = _run(capsys, "deployments", "add", str(support_file), "--store", str(store))
    second = _run(capsys, "deployments", "add", str(support_file), "--store", str(store))

    assert first == (0, "added support-answer version 1\n", "")
    assert second == (0, "added support-answer version 2\n", "")


def test_cli_list(capsys: pytest.CaptureFixture[str], store: Path, support_file: Path) -> None:
    deployments.add(SUPPORT, store=store)
    deployments.add(SUPPORT, store=store)
    deployments.add(_version(SUPPORT, id="billing", provider="anthropic"), store=store)

    code, out, err = _run(capsys, "deployments", "list", "--store", str(store))
    json_code, json_out, _ = _run(capsys, "deployments", "list", "--json", "--store", str(store))

    assert (code, err, json_code) == (0, "", 0)
    header, billing, support = out.splitlines()
    assert header.split() == ["ID", "VERSION", "VERSIONS", "PROVIDER", "MODEL", "CREATED"]
    assert billing.split()[:5] == ["billing", "1", "1", "anthropic", "gpt-4o-mini"]
    assert support.split()[:5] == ["support-answer", "2", "2", "openai", "gpt-4o-mini"]
    listed = json.loads(json_out)
    assert [(d["id"], d["version"], d["versions"]) for d in listed] == [
        ("billing", 1, 1),
        ("support-answer", 2, 2),
    ]
    assert listed[1]["variables"] == ["product", "question"]


def test_cli_list_of_an_empty_store(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    code, out, _ = _run(capsys, "deployments", "list", "--store", str(store))

    assert code == 0
    assert out.startswith("No deployments in ") and "clew deployments add FILE" in out


def test_cli_show_prints_yaml_that_adds_back(
    capsys: pytest.CaptureFixture[str], store: Path, support_file: Path, tmp_path: Path
) -> None:
    main(["deployments", "add", str(support_file), "--store", str(store)])
    capsys.readouterr()

    code, out, err = _run(capsys, "deployments", "show", "support-answer", "--store", str(store))

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[:2] == ["# deployment support-answer version 1", "# variables: product, question"]
    assert "id: support-answer" in lines and "model: gpt-4o-mini" in lines
    assert "  content: |" in out or "- content: |" in out, "multi-line text is a block"
    shown = tmp_path / "shown.yaml"
    shown.write_text(out)
    assert _run(capsys, "deployments", "add", str(shown), "--store", str(store))[1] == (
        "added support-answer version 2\n"
    )
    first, second = (deployments.get("support-answer", v, store=store) for v in (1, 2))
    assert second.model_dump(exclude={"version", "created_at"}) == first.model_dump(
        exclude={"version", "created_at"}
    )


def test_cli_show_json_and_version(
    capsys: pytest.CaptureFixture[str], store: Path, support_file: Path
) -> None:
    deployments.add(SUPPORT, store=store)
    deployments.add(_version(SUPPORT, model="gpt-4o"), store=store)

    code, out, _ = _run(
        capsys, "deployments", "show", "support-answer", "--version", "1", "--json",
        "--store", str(store),
    )  # fmt: skip

    shown = json.loads(out)
    assert code == 0
    assert (shown["version"], shown["model"]) == (1, "gpt-4o-mini")
    assert shown["variables"] == ["product", "question"]
    assert shown["model_params"] == {"temp": 0.2}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "nope"], "clew: error: unknown deployment 'nope'"),
        (["show", "support-answer", "--version", "5"], "has no version 5"),
    ],
)
def test_cli_unknown_deployment_exits_1(
    capsys: pytest.CaptureFixture[str], store: Path, argv: list[str], message: str
) -> None:
    deployments.add(SUPPORT, store=store)

    code, out, err = _run(capsys, "deployments", *argv, "--store", str(store))

    assert (code, out) == (1, "")
    assert err.startswith(message) or message in err


def test_cli_a_bad_file_exits_1_naming_file_and_field(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(SUPPORT_YAML.replace("model:", "modle:"))

    code, out, err = _run(capsys, "deployments", "add", str(path), "--store", str(store))

    assert (code, out) == (1, "")
    assert "typo.yaml: invalid deployment:" in err
    assert "model: missing (required)" in err and "modle: unknown field" in err
    assert not store.exists()


@pytest.mark.parametrize(
    "argv",
    [["deployments"], ["deployments", "nope"], ["deployments", "show"],
     ["deployments", "show", "x", "--version", "0"], ["deployments", "add"]],
)  # fmt: skip
def test_cli_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = _run(capsys, *argv)

    assert (code, out) == (2, "")
    assert "usage: clew deployments" in err


def test_cli_in_a_real_process(store: Path, support_file: Path) -> None:
    def clew(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "clew.cli", "deployments", *argv, "--store", str(store)],
            capture_output=True,
            text=True,
            timeout=60,
        )

    added = clew("add", str(support_file))
    listed = clew("list", "--json")
    missing = clew("show", "nope")

    assert (added.returncode, added.stdout) == (0, "added support-answer version 1\n")
    assert [d["id"] for d in json.loads(listed.stdout)] == ["support-answer"]
    assert missing.returncode == 1
    assert "unknown deployment 'nope'" in missing.stderr
