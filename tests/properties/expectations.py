"""What clew must record for a program, given what ran; checked against span records.

Properties 2 and 3 for one program (property 1 compares two runs, in the test):

2. A kept trace is exported whole, except the subtrees under a nested rate 0 and under a nested
   rate 0.5 that was dropped (decided per subtree from what was exported, all or nothing); a
   dropped trace is not exported at all; every span hangs under its nearest traced ancestor,
   and a program has one ``root_trace_id``. A span's status is ``error`` exactly when its body
   raised.
3. Omitted content (cascading to the subtree, and everything without ``capture_content``) and
   the content of spans that were not exported appear nowhere; content that is not omitted is
   captured.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from properties.programs import GENERATORS, Node, Program
from properties.source import canary_in, canary_out, span_name

CANARY = re.compile(r"CANARY-(?:IN|OUT)-\d+-\d+!")
CANARY_BYTES = re.compile(CANARY.pattern.encode())

Summary = tuple[Any, ...]
"""``(name, parent_trace_id, root_trace_id, status, inputs, output)`` of one span."""


def summary(record: dict[str, Any]) -> Summary:
    return (
        record["name"],
        record["parent_trace_id"],
        record["root_trace_id"],
        record["status"],
        record["inputs"],
        record["output"],
    )


@dataclass
class Ledger:
    """What every passing program exported, for checking the exporters' outputs in bulk."""

    spans: dict[str, Summary] = field(default_factory=dict)  # by trace_id
    forbidden: set[str] = field(default_factory=set)  # canaries no output may hold
    required: set[str] = field(default_factory=set)  # canaries every output must hold

    def add(self, other: Ledger) -> None:
        self.spans.update(other.spans)
        self.forbidden |= other.forbidden
        self.required |= other.required


def _must_export(
    program: Program, node: Node, parent: Node | None, called: set[int], kept: set[int]
) -> tuple[bool | None, str]:
    """Whether ``node`` must be exported (None: either, all or nothing), and why."""
    if node.nid not in called:
        return False, "it never ran"
    if parent is None:
        rate = program.sample_rate if node.rate is None else node.rate
        why = f"the root's rate is {rate} (log_sample_rate={node.rate}, sample_rate="
        why += f"{program.sample_rate})"
        return {1.0: True, 0.0: False}.get(rate), why
    if parent.nid not in kept:
        return False, f"its nearest traced ancestor n{parent.nid} was not exported"
    if node.rate is None or node.rate == 1.0:
        return True, f"its nearest traced ancestor n{parent.nid} was exported"
    return (False if node.rate == 0.0 else None), f"it is nested with rate {node.rate}"


def _omitted(program: Program, node: Node) -> tuple[bool, bool]:
    """Whether ``node``'s inputs and outputs are omitted (by a flag above it, or globally)."""
    if not program.capture_content:
        return True, True
    chain = program.chain(node)
    return (
        any(n.omit_inputs or n.omit for n in chain),
        any(n.omit_outputs or n.omit for n in chain),
    )


def _produced_output(node: Node, log: list[tuple[str, int]]) -> bool:
    """Whether the span ended with an output: its body succeeded (a generator: it was not
    failed and handed out at least one item)."""
    if node.kind in GENERATORS:
        return ("error", node.nid) not in log and ("yield", node.nid) in log
    return ("ok", node.nid) in log


def check_records(
    program: Program, pid: int, log: list[tuple[str, int]], records: list[dict[str, Any]]
) -> Ledger:
    """Assert properties 2 and 3 on one program's records; returns its ledger."""
    traced = {span_name(pid, n.nid): n for n in program.nodes() if n.traced}
    by_nid: dict[int, dict[str, Any]] = {}
    for record in records:
        node = traced.get(record["name"])
        assert node is not None, f"property 2: unknown span {record['name']!r} exported"
        assert node.nid not in by_nid, f"property 2: {record['name']} exported twice"
        by_nid[node.nid] = record

    called = {nid for event, nid in log if event == "call"}
    parents = program.traced_parents()
    kept: set[int] = set()
    for node in traced.values():  # preorder: parents first
        must, why = _must_export(program, node, parents[node.nid], called, kept)
        exported = node.nid in by_nid
        if must is not None:
            assert exported == must, (
                f"property 2: n{node.nid} ({node.kind}) was {'' if exported else 'not '}"
                f"exported, but {why}"
            )
        if exported:
            kept.add(node.nid)

    roots = {r["root_trace_id"] for r in records}
    assert len(roots) <= 1, f"property 2: one program, several root_trace_ids: {roots}"
    ledger = Ledger()
    for nid in kept:
        record = by_nid[nid]
        parent = parents[nid]
        if parent is None:
            assert record["parent_trace_id"] is None, "property 2: the root has a parent"
            assert record["trace_id"] == record["root_trace_id"], "property 2: root's trace_id"
        else:
            assert record["parent_trace_id"] == by_nid[parent.nid]["trace_id"], (
                f"property 2: n{nid} does not hang under its nearest traced ancestor"
                f" n{parent.nid}: parent_trace_id {record['parent_trace_id']}"
            )
        status = "error" if ("error", nid) in log else "success"
        assert record["status"] == status, f"property 2: n{nid} has status {record['status']}"
        ledger.spans[record["trace_id"]] = summary(record)

    for node in traced.values():
        cin, cout = canary_in(pid, node.nid), canary_out(pid, node.nid)
        omit_in, omit_out = _omitted(program, node)
        if node.nid in kept:
            record = by_nid[node.nid]
            if not omit_in:
                assert record["inputs"] == {"x": cin}, (
                    f"property 3: n{node.nid}'s inputs were not captured: {record['inputs']!r}"
                )
                ledger.required.add(cin)
            if not omit_out and _produced_output(node, log):
                assert cout in str(record["output"]), (
                    f"property 3: n{node.nid}'s output was not captured: {record['output']!r}"
                )
                ledger.required.add(cout)
        if omit_in or node.nid not in kept:
            ledger.forbidden.add(cin)
        if omit_out or node.nid not in kept:
            ledger.forbidden.add(cout)

    leaked = sorted(ledger.forbidden & set(CANARY.findall(json.dumps(records))))
    assert not leaked, f"property 3: omitted or unexported content was captured: {leaked}"
    return ledger
