"""Experiments in the local store: the SQL side of :mod:`clew.evals.experiments`.

Two tables in the same SQLite file as the traces::

    experiments (uuid TEXT PRIMARY KEY, name TEXT, created REAL, dataset TEXT,
                 dataset_version INTEGER, status TEXT, summary TEXT (JSON), metadata TEXT (JSON))
    experiment_rows (uuid, idx, trial, trace_id, inputs, target, output (JSON texts), error,
                     scores TEXT (JSON), latency REAL, input_tokens, output_tokens, cost,
                     PRIMARY KEY (uuid, idx, trial))

An experiment is written once, when its run ends (or is interrupted), in one transaction. Like
the other side tables (:mod:`clew.store.tables`), they are created on the first write and reads
never create anything.
"""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from clew.store import tables
from clew.store.tables import TIMEOUT

__all__ = ["StoredExperiment", "StoredRow", "find", "list", "rows", "write"]

CREATE = (
    """CREATE TABLE IF NOT EXISTS experiments (
    uuid TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    dataset TEXT,
    dataset_version INTEGER,
    status TEXT NOT NULL,
    summary TEXT NOT NULL,
    metadata TEXT NOT NULL
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS experiments_name ON experiments (name, created)",
    """CREATE TABLE IF NOT EXISTS experiment_rows (
    uuid TEXT NOT NULL,
    idx INTEGER NOT NULL,
    trial INTEGER NOT NULL,
    trace_id TEXT,
    inputs TEXT NOT NULL,
    target TEXT,
    output TEXT,
    error TEXT,
    scores TEXT NOT NULL,
    latency REAL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cost REAL,
    PRIMARY KEY (uuid, idx, trial)
) WITHOUT ROWID""",
)

_COLUMNS = "uuid, name, created, dataset, dataset_version, status, summary, metadata"
_ROW_COLUMNS = (
    "idx, trial, trace_id, inputs, target, output, error, scores, latency, input_tokens,"
    " output_tokens, cost"
)


class StoredExperiment(NamedTuple):
    """An experiment as stored (its summary and metadata as JSON text)."""

    uuid: str
    name: str
    created: float
    dataset: str | None
    dataset_version: int | None
    status: str
    summary: str
    metadata: str


class StoredRow(NamedTuple):
    """One row of an experiment (inputs, target, output and scores as JSON text)."""

    idx: int
    trial: int
    trace_id: str | None
    inputs: str
    target: str | None
    output: str | None
    error: str | None
    scores: str
    latency: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost: float | None


def write(
    path: str | Path,
    experiment: StoredExperiment,
    rows: Sequence[StoredRow],
    *,
    timeout: float = TIMEOUT,
) -> None:
    """Store an experiment and its rows (replacing an experiment with the same uuid).

    Raises:
        StoreError: the store cannot be written.
    """
    path = Path(path)

    def insert(conn: sqlite3.Connection) -> None:
        for statement in CREATE:
            conn.execute(statement)
        conn.execute("DELETE FROM experiment_rows WHERE uuid = ?", (experiment.uuid,))
        conn.execute(
            f"INSERT OR REPLACE INTO experiments ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            experiment,
        )
        conn.executemany(
            f"INSERT INTO experiment_rows (uuid, {_ROW_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(experiment.uuid, *row) for row in rows],
        )

    with tables.writer(path, timeout) as conn:
        tables.retry_busy(path, conn, timeout, lambda: insert(conn))


def list(path: str | Path, name: str | None = None) -> builtins.list[StoredExperiment]:
    """Every experiment (or those named ``name``), newest first; empty without a store.

    Raises:
        StoreError: the store exists but cannot be read.
    """
    with tables.reader(Path(path), "experiments") as conn:
        if conn is None:
            return []
        where, params = ("WHERE name = ?", (name,)) if name is not None else ("", ())
        found = conn.execute(
            f"SELECT {_COLUMNS} FROM experiments {where} ORDER BY created DESC, uuid", params
        ).fetchall()
    return [StoredExperiment(*row) for row in found]


def find(path: str | Path, text: str) -> builtins.list[StoredExperiment]:
    """The experiments ``text`` names: the newest of that name, else every one whose uuid
    starts with it (several: an ambiguous prefix).

    Raises:
        StoreError: the store exists but cannot be read.
    """
    with tables.reader(Path(path), "experiments") as conn:
        if conn is None:
            return []
        named = conn.execute(
            f"SELECT {_COLUMNS} FROM experiments WHERE name = ? ORDER BY created DESC LIMIT 1",
            (text,),
        ).fetchall()
        if named:
            return [StoredExperiment(*named[0])]
        prefix = text.strip().lower()
        found = conn.execute(
            f"SELECT {_COLUMNS} FROM experiments WHERE uuid >= ? AND uuid < ? ORDER BY uuid"
            " LIMIT 6",
            (prefix, prefix + "\uffff"),
        ).fetchall()
    return [StoredExperiment(*row) for row in found] if prefix else []


def rows(path: str | Path, uuid: str) -> builtins.list[StoredRow]:
    """The rows of experiment ``uuid`` by index then trial.

    Raises:
        StoreError: the store exists but cannot be read.
    """
    with tables.reader(Path(path), "experiment_rows") as conn:
        if conn is None:
            return []
        found = conn.execute(
            f"SELECT {_ROW_COLUMNS} FROM experiment_rows WHERE uuid = ? ORDER BY idx, trial",
            (uuid,),
        ).fetchall()
    return [StoredRow(*row) for row in found]
