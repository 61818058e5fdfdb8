"""The store keeps clew's own keys, not the copies made for other backends."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import clew
from clew import attributes as a
from clew.store import TraceStore


def test_the_copies_for_other_backends_stay_out_of_the_store(tmp_path: Path) -> None:
    store_path = tmp_path / "traces.db"
    clew.configure(exporter="sqlite", store_path=store_path, otel_conventions="all")

    @clew.trace(tags=["t"], metadata={"tier": "gold"}, end_user_identifier="u-1", kind="tool")
    def lookup(order: str) -> dict[str, str]:
        return {"order": order, "status": "shipped"}

    lookup("A-1")
    clew.flush()
    with closing(sqlite3.connect(store_path)) as conn:
        (stored,) = [json.loads(text) for (text,) in conn.execute("SELECT attributes FROM spans")]
    assert not set(stored) & a.CONVENTION_KEYS
    assert not [key for key in stored if key.startswith(a.LANGFUSE_OBSERVATION_METADATA)]
    assert stored[a.CLEW_INPUTS] and stored[a.CLEW_OUTPUT] and stored[a.CLEW_METADATA]
    (record,) = TraceStore(store_path).get_trace(
        TraceStore(store_path).list_traces()[0]["root_trace_id"]
    )
    assert record["inputs"] == {"order": "A-1"} and record["metadata"] == {"tier": "gold"}
    assert record["tags"] == ["t"] and record["end_user_identifier"] == "u-1"
