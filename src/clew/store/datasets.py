"""Datasets in the local store: the SQL side of :mod:`clew.evals.datasets`.

Two tables, in the same SQLite file as the traces::

    datasets:     name TEXT, version INTEGER, created REAL (Unix seconds), row_count INTEGER,
                  PRIMARY KEY (name, version)
    dataset_rows: name TEXT, version INTEGER, idx INTEGER (0, 1, ... within the version),
                  inputs TEXT (JSON object), target TEXT (JSON, NULL: none),
                  metadata TEXT (JSON object), PRIMARY KEY (name, version, idx)

Like the deployments table (see :mod:`clew.store.deployments`), they live beside the trace
schema without being part of it: they are created with ``CREATE TABLE IF NOT EXISTS`` on the
first :func:`add`, and ``PRAGMA user_version`` is left alone, so a trace store gets them on its
first dataset and a file that holds only datasets still takes traces.

:func:`add` numbers versions and writes a version's rows inside one ``BEGIN IMMEDIATE``
transaction, retried while another process holds the write lock: writers adding the same name
at once get consecutive versions, never the same one, and a reader sees a version whole or not
at all. A version is never changed once written, so a row's ``idx`` names it for good. Reads
never create the file or the tables.
"""

from __future__ import annotations

import builtins
import logging
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from clew.store import tables
from clew.store.tables import TIMEOUT

__all__ = ["Listed", "Stored", "StoredRow", "add", "get", "latest_version", "list"]

_logger = logging.getLogger(__name__)

CREATE = (
    """CREATE TABLE IF NOT EXISTS datasets (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    created REAL NOT NULL,
    row_count INTEGER NOT NULL,
    PRIMARY KEY (name, version)
) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS dataset_rows (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    inputs TEXT NOT NULL,
    target TEXT,
    metadata TEXT NOT NULL,
    PRIMARY KEY (name, version, idx)
) WITHOUT ROWID""",
)


class StoredRow(NamedTuple):
    """One row as stored: its fields as JSON text."""

    inputs: str
    """A JSON object."""
    target: str | None
    """JSON, or None when the row has no target."""
    metadata: str
    """A JSON object."""


class Stored(NamedTuple):
    """One stored version of a dataset, with its rows in index order."""

    version: int
    created: float
    """When the version was added (Unix seconds)."""
    rows: builtins.list[StoredRow]


class Listed(NamedTuple):
    """A dataset in :func:`list`: its latest version, and how many versions it has."""

    name: str
    version: int
    created: float
    row_count: int
    """The rows of the latest version."""
    versions: int


def add(
    path: str | Path,
    name: str,
    rows: Sequence[StoredRow],
    *,
    created: float | None = None,
    timeout: float = TIMEOUT,
) -> int:
    """Store a new version of dataset ``name`` with ``rows`` (indexed 0, 1, ... in the order
    given); returns its version (1 for a new name).

    Args:
        path: the store file; it and its directory are created if missing.
        name: the dataset's name.
        rows: the rows, their fields as JSON text.
        created: when it was added (Unix seconds); default: now.
        timeout: how long to keep retrying while other processes hold the write lock.

    Raises:
        StoreError: the file cannot be created or written, or stayed locked for ``timeout``.
    """
    path = Path(path)

    def insert(conn: sqlite3.Connection) -> int:
        for statement in CREATE:
            conn.execute(statement)
        (latest,) = conn.execute(
            "SELECT coalesce(max(version), 0) FROM datasets WHERE name = ?", (name,)
        ).fetchone()
        version = int(latest) + 1
        conn.execute(
            "INSERT INTO datasets (name, version, created, row_count) VALUES (?, ?, ?, ?)",
            (name, version, time.time() if created is None else created, len(rows)),
        )
        conn.executemany(
            "INSERT INTO dataset_rows (name, version, idx, inputs, target, metadata)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(name, version, idx, *row) for idx, row in enumerate(rows)],
        )
        return version

    with tables.writer(path, timeout) as conn:
        version = tables.retry_busy(path, conn, timeout, lambda: insert(conn))
    _logger.debug(
        "clew: stored dataset %r version %d (%d rows) in %s", name, version, len(rows), path
    )
    return version


def get(path: str | Path, name: str, version: int | None = None) -> Stored | None:
    """A version of dataset ``name`` (the latest when ``version`` is None) with its rows, or
    None if the store, the name or that version does not exist.

    Raises:
        StoreError: the store exists but cannot be read.
    """
    with tables.reader(Path(path), "datasets") as conn:
        if conn is None:
            return None
        if version is None:
            head = conn.execute(
                "SELECT version, created FROM datasets WHERE name = ?"
                " ORDER BY version DESC LIMIT 1",
                (name,),
            ).fetchone()
        else:
            head = conn.execute(
                "SELECT version, created FROM datasets WHERE name = ? AND version = ?",
                (name, version),
            ).fetchone()
        if head is None:
            return None
        found = conn.execute(
            "SELECT inputs, target, metadata FROM dataset_rows WHERE name = ? AND version = ?"
            " ORDER BY idx",
            (name, head[0]),
        ).fetchall()
    rows = [StoredRow(str(i), None if t is None else str(t), str(m)) for i, t, m in found]
    return Stored(int(head[0]), float(head[1]), rows)


def latest_version(path: str | Path, name: str) -> int | None:
    """The latest version of dataset ``name``, or None if there is none.

    Raises:
        StoreError: the store exists but cannot be read.
    """
    with tables.reader(Path(path), "datasets") as conn:
        if conn is None:
            return None
        (latest,) = conn.execute(
            "SELECT max(version) FROM datasets WHERE name = ?", (name,)
        ).fetchone()
    return None if latest is None else int(latest)


def list(path: str | Path) -> builtins.list[Listed]:
    """Every dataset, by name: its latest version, when that was added, its row count, and how
    many versions it has. Empty when the store or the tables do not exist.

    Raises:
        StoreError: the store exists but cannot be read.
    """
    with tables.reader(Path(path), "datasets") as conn:
        if conn is None:
            return []
        found = conn.execute(
            "SELECT d.name, d.version, d.created, d.row_count, n.versions FROM datasets AS d"
            " JOIN (SELECT name, max(version) AS latest, count(*) AS versions"
            "       FROM datasets GROUP BY name) AS n"
            " ON d.name = n.name AND d.version = n.latest ORDER BY d.name"
        ).fetchall()
    return [Listed(str(n), int(v), float(c), int(r), int(k)) for n, v, c, r, k in found]
