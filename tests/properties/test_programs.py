"""Random programs behave the same with clew, export whole trees, and leak no omitted content.

Each example is a random :class:`~properties.programs.Program`, run twice from the same source:
undecorated, then with clew (configured with the program's ``sample_rate`` and
``capture_content``, exporting to a jsonl file, a sqlite store and an OTLP receiver, and
captured in memory). Per example:

1. nothing escapes but the program's own exception: the result (or the exception's type and
   message) and the log of what ran equal the undecorated run's, and nothing goes to the
   unraisable or thread exception hooks or to clew's error log;
2. and 3. the in-memory records hold the expected tree and content
   (:mod:`properties.expectations`).

After all examples, the jsonl file, the sqlite store and the OTLP receiver must hold exactly
the spans the memory captures held, and no omitted content in their raw bytes.

The budget is the hypothesis profile: ``ci`` (tests/conftest.py: 300 derandomized examples) by
default, ``pytest tests/properties --hypothesis-profile=long`` for a longer random search.
A failure prints the program as a standalone script (``clew.configure(...)`` + the program).
"""

from __future__ import annotations

import itertools
import os
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, note
from hypothesis import strategies as st

import clew
from clew.testing import capture_spans
from clew.testing.otlp_receiver import OtlpHttpReceiver
from properties.expectations import CANARY_BYTES, Ledger, check_records
from properties.outputs import differences, jsonl_spans, otlp_spans, sqlite_spans
from properties.programs import GENERATORS, HOPS, REPORTED_CRASH, TRACED, Program, programs
from properties.runner import PlainClew, Run, compile_program, run
from properties.source import program_source, script


@dataclass
class Outputs:
    jsonl: Path
    store: Path
    receiver: OtlpHttpReceiver


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpHttpReceiver]:
    with OtlpHttpReceiver() as r:
        yield r


@pytest.fixture
def exporting(
    receiver: OtlpHttpReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Outputs]:
    """clew exporting to a jsonl file, a sqlite store and ``receiver`` (OTLP/HTTP)."""
    for name in list(os.environ):
        if name.startswith(("OTEL_", "CLEW_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.url)
    outputs = Outputs(tmp_path / "traces.jsonl", tmp_path / "traces.db", receiver)
    clew.configure(
        exporter="jsonl,sqlite,otlp",
        jsonl_path=outputs.jsonl,
        store_path=outputs.store,
        sample_rate=1.0,
        capture_content=True,
    )
    yield outputs
    clew.configure(exporter="none")


class Programs:
    """Runs programs with and without clew and checks them (properties 1 to 3)."""

    def __init__(self) -> None:
        self.ledger = Ledger()
        self._pids = itertools.count(1)
        self._passes: Counter[str] = Counter()
        self._settings: tuple[float, bool] | None = None
        self.coverage: Counter[str] = Counter()  # programs that passed, by feature

    def check(self, program: Program) -> None:
        pid = next(self._pids)
        note(script(program, pid))
        code = compile_program(program_source(program, pid), pid)
        plain = run(code, pid, PlainClew)
        assert not plain.problems, plain.problems  # the harness itself is sound
        # Hypothesis gives every example the same `random` state, and clew draws its ids from
        # it: seed from the program (a replay behaves the same) and from how often it passed
        # (programs that passed never share ids in the exporters' outputs).
        fingerprint = repr(program)
        random.seed(f"{fingerprint}#{self._passes[fingerprint]}")
        traced, records = self._run_traced(program, pid, code)
        exercised = features(program, traced, records)
        for feature in sorted(exercised):
            event(feature)

        assert not traced.problems, "property 1: " + "\n".join(traced.problems)
        assert traced.outcome == plain.outcome, (
            f"property 1: with clew the program gave {traced.outcome}, without {plain.outcome}"
            f"\n{traced.traceback or ''}"
        )
        assert traced.log == plain.log, (
            f"property 1: the program ran differently with clew:\n{traced.log}\n{plain.log}"
        )
        self.ledger.add(check_records(program, pid, traced.log, records))
        self._passes[fingerprint] += 1
        self.coverage.update(exercised)

    def _run_traced(
        self, program: Program, pid: int, code: Any
    ) -> tuple[Run, list[dict[str, Any]]]:
        settings = (program.sample_rate, program.capture_content)
        if settings != self._settings:
            clew.configure(sample_rate=settings[0], capture_content=settings[1])
            self._settings = settings
        with capture_spans() as captured:
            traced = run(code, pid, clew)
        return traced, captured.records()


def features(program: Program, traced: Run, records: list[dict[str, Any]]) -> set[str]:
    """What a program exercised, to show that the search covers what it should."""
    found = {f"kind {n.kind}" for n in program.nodes()}
    found.add("exported spans" if records else "exported nothing")
    found.add(f"program {traced.outcome[0]}")
    if records and len(records) < sum(n.traced for n in program.nodes()):
        found.add("exported part of a trace")
    if any(r["status"] == "error" for r in records):
        found.add("exported an error")
    if any(r["inputs"] is None for r in records):
        found.add("exported omitted inputs")
    if any(n.kind in GENERATORS and n.take is not None for n in program.nodes()):
        found.add("broke off a generator")
    return found


REQUIRED_COVERAGE = {f"kind {k}" for k in TRACED + HOPS} | {
    "exported spans",
    "exported nothing",
    "program returned",
    "program raised",
    "exported part of a trace",
    "exported an error",
    "exported omitted inputs",
    "broke off a generator",
}


def check_exports(ledger: Ledger, outputs: Outputs) -> None:
    """The exporters hold exactly what the memory captures held, and no omitted content."""
    assert clew.flush(30), "clew.flush timed out"
    outputs.receiver.wait_for_spans(len(ledger.spans), timeout=30)
    for name, (spans, raw) in (
        ("jsonl", jsonl_spans(outputs.jsonl)),
        ("sqlite", sqlite_spans(outputs.store)),
        ("otlp", otlp_spans(outputs.receiver)),
    ):
        assert spans == ledger.spans, f"property 2: {name}: {differences(spans, ledger.spans)}"
        found = {c.decode() for c in CANARY_BYTES.findall(raw)}
        leaked = sorted(ledger.forbidden & found)
        assert not leaked, f"property 3: {name} holds omitted or unexported content: {leaked}"
        missing = sorted(ledger.required - found)
        assert not missing, f"property 3: {name} lacks captured content: {missing}"


def test_random_programs(exporting: Outputs) -> None:
    programs_run = Programs()

    @given(programs())
    def random_program(program: Program) -> None:
        programs_run.check(program)

    random_program()
    print(sorted(programs_run.coverage.items()))
    missing = REQUIRED_COVERAGE - programs_run.coverage.keys()
    assert not missing, f"the search never covered {missing}"
    check_exports(programs_run.ledger, exporting)


def test_the_reported_program(exporting: Outputs) -> None:
    """The crash that no test covered: a span in a traced function, with sample_rate 0."""
    programs_run = Programs()

    @given(st.just(REPORTED_CRASH))
    def reported_program(program: Program) -> None:
        programs_run.check(program)

    reported_program()
