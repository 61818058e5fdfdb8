"""clew end to end through configure(): every exporter at once, several processes, OTLP."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import clew
from clew.exporters.console import ConsoleSpanExporter
from clew.testing.otlp_receiver import OtlpHttpReceiver

CANARY = "canary-91b2-must-not-leave"


@clew.trace
def leaf(text: str) -> str:
    return text.upper()


@clew.trace(log_omit=True)
def private(text: str) -> str:
    with clew.span("inside", inputs={"q": text}) as s:
        s.set_output(text)
    return leaf(text)


@clew.trace
def public(text: str) -> str:
    return leaf(text)


def _exported_bytes(tmp_path: Path, console: io.StringIO) -> bytes:
    chunks = [console.getvalue().encode()]
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file():
            chunks.append(path.read_bytes())
    return b"\n".join(chunks)


@pytest.mark.parametrize("omit", [True, False])
def test_omitted_content_reaches_no_exporter(tmp_path: Path, omit: bool) -> None:
    console = io.StringIO()
    clew.configure(
        exporter=["sqlite", "jsonl", ConsoleSpanExporter(stream=console)],
        store_path=tmp_path / "traces.db",
        jsonl_path=tmp_path / "traces.jsonl",
    )
    text = CANARY.lower()
    (private if omit else public)(text)
    assert clew.flush(10)
    data = _exported_bytes(tmp_path, console)
    spans = [json.loads(line) for line in (tmp_path / "traces.jsonl").read_text().splitlines()]
    assert len(spans) == (3 if omit else 2)
    with sqlite3.connect(tmp_path / "traces.db") as db:
        stored = db.execute("select count(*) from spans").fetchone()[0]
    db.close()
    assert stored == len(spans)
    # the control run proves the search can find the canary when it is not omitted
    assert (CANARY.lower().encode() in data) is not omit
    assert (CANARY.upper().encode() in data) is not omit


_WRITER = """
import sys, clew
clew.configure(exporter="sqlite", store_path=sys.argv[1], project=sys.argv[2])

@clew.trace
def step(i: int) -> int:
    return i

@clew.trace
def job(n: int) -> int:
    return sum(step(i) for i in range(n))

for _ in range(100):
    job(4)
assert clew.flush(30)
print(clew.stats()["sqlite"]["exported"])
"""


def test_two_processes_write_one_store(tmp_path: Path) -> None:
    store = tmp_path / "shared.db"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(store), f"writer-{i}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert [int(o.strip()) for o in outputs] == [500, 500]
    with sqlite3.connect(store) as db:
        per_project = dict(
            db.execute("select project_name, count(*) from spans group by project_name")
        )
    db.close()
    assert per_project == {"writer-0": 500, "writer-1": 500}
    listing = subprocess.run(
        [sys.executable, "-m", "clew.cli", "traces", "--store", str(store), "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert len(json.loads(listing.stdout)) == 20


def test_otlp_exporter_delivers_clew_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    with OtlpHttpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        clew.configure(exporter="otlp")
        with clew.span("parent", tags=["x"]) as parent:
            leaf("hi")
        assert clew.flush(10)
        assert receiver.wait_for_spans(2, timeout=10)
        spans = {s.name: s for s in receiver.spans()}
        stats = clew.stats()["otlp"]
    assert set(spans) == {"parent", "leaf"}
    assert spans["leaf"].parent_span_id == spans["parent"].span_id
    attrs = {kv.key: kv.value for kv in spans["leaf"].attributes}
    assert attrs["clew.inputs"].string_value == '{"text":"hi"}'
    assert attrs["clew.output"].string_value == '"HI"'
    assert parent.root_trace_id.replace("-", "") == spans["parent"].trace_id.hex()
    assert stats["exported"] == 2 and stats["dropped"] == 0 and stats["failed"] == 0


def test_otlp_endpoint_variable_adds_otlp_to_the_defaults() -> None:
    from clew.config import load_config

    config = load_config(env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert config.exporters == ("sqlite", "otlp")
    explicit = load_config(
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "CLEW_EXPORTER": "console"}
    )
    assert explicit.exporters == ("console",)
