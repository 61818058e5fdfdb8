"""Deployed prompts in the local store: the SQL side of :mod:`clew.gateway.deployments`.

One table, ``deployments``, in the same SQLite file as the traces::

    id TEXT, version INTEGER, body TEXT (JSON), created REAL (Unix seconds),
    PRIMARY KEY (id, version)

The table lives beside the trace schema without being part of it: it is created with ``CREATE
TABLE IF NOT EXISTS`` on the first :func:`add`, and ``PRAGMA user_version`` (the trace schema's
version, see :mod:`clew.store.schema`) is left alone. So a store written by any clew keeps
working, a trace store gets the table on its first deployment, and a file that holds only
deployments is still a store whose trace schema is created on the first span written to it.
A new file gets the trace store's page size before it is switched to WAL, as the trace store
would have given it.

:func:`add` numbers versions inside one ``BEGIN IMMEDIATE`` transaction, retried while another
process holds the write lock, so writers adding the same id at once get consecutive versions,
never the same one. Reads never create the file or the table.
"""

from __future__ import annotations

import builtins
import logging
import sqlite3
import time
from pathlib import Path
from typing import NamedTuple

from clew.store import tables
from clew.store.tables import TIMEOUT

__all__ = ["Latest", "Listed", "Stored", "add", "get", "latest", "list"]

_logger = logging.getLogger(__name__)

CREATE: str = """CREATE TABLE IF NOT EXISTS deployments (
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (id, version)
) WITHOUT ROWID"""


class Stored(NamedTuple):
    """One stored version of a deployment."""

    version: int
    body: str
    """The deployment as JSON text, as it was given to :func:`add`."""
    created: float
    """When the version was added (Unix seconds)."""


class Listed(NamedTuple):
    """A deployment in :func:`list`: its id, latest version, and how many versions it has."""

    id: str
    version: int
    created: float
    versions: int


class Latest(NamedTuple):
    """The latest version of a deployment, in :func:`latest`."""

    id: str
    version: int
    body: str
    created: float


def add(
    path: str | Path,
    id: str,
    body_json: str,
    *,
    created: float | None = None,
    timeout: float = TIMEOUT,
) -> int:
    """Store a new version of deployment ``id``; returns its version (1 for a new id).

    Args:
        path: the store file; it and its directory are created if missing.
        id: the deployment's id.
        body_json: the deployment, as JSON text.
        created: when it was added (Unix seconds); default: now.
        timeout: how long to keep retrying while other processes hold the write lock.

    Raises:
        StoreError: the file cannot be created or written, or stayed locked for ``timeout``.
    """
    path = Path(path)

    def insert(conn: sqlite3.Connection) -> int:
        conn.execute(CREATE)
        (latest_version,) = conn.execute(
            "SELECT coalesce(max(version), 0) FROM deployments WHERE id = ?", (id,)
        ).fetchone()
        version = int(latest_version) + 1
        conn.execute(
            "INSERT INTO deployments (id, version, body, created) VALUES (?, ?, ?, ?)",
            (id, version, body_json, time.time() if created is None else created),
        )
        return version

    with tables.writer(path, timeout) as conn:
        version = tables.retry_busy(path, conn, timeout, lambda: insert(conn))
    _logger.debug("clew: stored deployment %r version %d in %s", id, version, path)
    return version


def get(path: str | Path, id: str, version: int | None = None) -> Stored | None:
    """A version of deployment ``id`` (the latest when ``version`` is None), or None if the
    store, the id or that version does not exist.

    Raises:
        StoreError: the store exists but cannot be read.
    """
    with tables.reader(Path(path), "deployments") as conn:
        if conn is None:
            return None
        if version is None:
            row = conn.execute(
                "SELECT version, body, created FROM deployments WHERE id = ?"
                " ORDER BY version DESC LIMIT 1",
                (id,),
            ).fetchone()
        else:
            row = conn.execute(
                "SELECT version, body, created FROM deployments WHERE id = ? AND version = ?",
                (id, version),
            ).fetchone()
    return None if row is None else Stored(int(row[0]), str(row[1]), float(row[2]))


def list(path: str | Path) -> builtins.list[Listed]:
    """Every deployment, by id: its latest version, when that was added, and how many
    versions it has. Empty when the store or the table does not exist.

    Raises:
        StoreError: the store exists but cannot be read.
    """
    with tables.reader(Path(path), "deployments") as conn:
        if conn is None:
            return []
        rows = conn.execute(
            "SELECT d.id, d.version, d.created, n.versions FROM deployments AS d"
            " JOIN (SELECT id, max(version) AS latest, count(*) AS versions"
            "       FROM deployments GROUP BY id) AS n"
            " ON d.id = n.id AND d.version = n.latest ORDER BY d.id"
        ).fetchall()
    return [Listed(str(i), int(v), float(c), int(n)) for i, v, c, n in rows]


def latest(path: str | Path) -> builtins.list[Latest]:
    """The latest version of every deployment, by id, with its body (one read).

    Raises:
        StoreError: the store exists but cannot be read.
    """
    with tables.reader(Path(path), "deployments") as conn:
        if conn is None:
            return []
        rows = conn.execute(
            "SELECT d.id, d.version, d.body, d.created FROM deployments AS d"
            " JOIN (SELECT id, max(version) AS latest FROM deployments GROUP BY id) AS n"
            " ON d.id = n.id AND d.version = n.latest ORDER BY d.id"
        ).fetchall()
    return [Latest(str(i), int(v), str(b), float(c)) for i, v, b, c in rows]
