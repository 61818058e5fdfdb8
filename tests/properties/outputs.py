"""What the jsonl file, the sqlite store and an OTLP receiver hold, as comparable summaries.

Each reader returns the spans by ``trace_id`` (see :data:`properties.expectations.Summary`) and
the raw bytes the exporter wrote, in which omitted content must not appear in any form.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Status

from clew.testing.otlp_receiver import OtlpHttpReceiver
from properties.expectations import Summary, summary

Spans = dict[str, Summary]


def _json_or_none(text: Any) -> Any:
    return None if text is None else json.loads(text)


def jsonl_spans(path: Path) -> tuple[Spans, bytes]:
    data = path.read_bytes() if path.exists() else b""
    records = [json.loads(line) for line in data.splitlines() if line.strip()]
    return {r["trace_id"]: summary(r) for r in records}, data


def sqlite_spans(path: Path) -> tuple[Spans, bytes]:
    """The store's rows (queried), and the bytes of the database and its write-ahead log."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT trace_id, name, parent_trace_id, root_trace_id, status, attributes FROM spans"
        ).fetchall()
    finally:
        conn.close()
    spans: Spans = {}
    for trace_id, name, parent, root, status, attributes in rows:
        attrs = json.loads(attributes or "{}")
        spans[trace_id] = (
            name,
            parent,
            root,
            status,
            _json_or_none(attrs.get("clew.inputs")),
            _json_or_none(attrs.get("clew.output")),
        )
    wal = path.with_name(path.name + "-wal")
    raw = path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    return spans, raw


def _log_id(trace_id: bytes, span_id: bytes) -> str:
    """clew's log id: the trace id's high 64 bits, then the span id (README, "Ids")."""
    return str(uuid.UUID(bytes=trace_id[:8] + span_id))


def otlp_spans(receiver: OtlpHttpReceiver) -> tuple[Spans, bytes]:
    spans: Spans = {}
    for span in receiver.spans():
        attrs = {kv.key: kv.value.string_value for kv in span.attributes}
        parent = _log_id(span.trace_id, span.parent_span_id) if span.parent_span_id else None
        status = "error" if span.status.code == Status.STATUS_CODE_ERROR else "success"
        spans[_log_id(span.trace_id, span.span_id)] = (
            span.name,
            parent,
            str(uuid.UUID(bytes=span.trace_id)),
            status,
            _json_or_none(attrs.get("clew.inputs")),
            _json_or_none(attrs.get("clew.output")),
        )
    raw = b"".join(request.message.SerializeToString() for request in receiver.requests)
    return spans, raw


def differences(found: Spans, expected: Spans, limit: int = 5) -> str:
    """A short account of how ``found`` differs from ``expected``."""
    missing = [expected[k] for k in expected.keys() - found.keys()]
    extra = [found[k] for k in found.keys() - expected.keys()]
    changed = [
        (expected[k], found[k]) for k in expected.keys() & found.keys() if expected[k] != found[k]
    ]
    return (
        f"{len(missing)} missing {missing[:limit]}, {len(extra)} unexpected {extra[:limit]},"
        f" {len(changed)} different (expected, found) {changed[:limit]}"
    )
