"""Gateway keys in the local store: the SQL side of :mod:`clew.gateway.keys`.

One table, ``gateway_keys``, in the same SQLite file as the traces::

    hash TEXT PRIMARY KEY (SHA-256 of the key, hex), name TEXT, prefix TEXT (the key's first
    characters, to recognise it), limits TEXT (JSON), created REAL, revoked REAL (NULL: in use)

A key itself is never stored: only its hash. A name is unique among the keys in use, so a
revoked key's name can be given to a new key. Like the deployments table, it is created on the
first :func:`add` and leaves the trace schema's version alone; reads never create anything.
"""

from __future__ import annotations

import builtins
import sqlite3
import time
from pathlib import Path
from typing import NamedTuple

from clew.errors import StoreError
from clew.store import tables
from clew.store.tables import TIMEOUT

__all__ = ["StoredKey", "add", "list", "revoke"]

CREATE = (
    """CREATE TABLE IF NOT EXISTS gateway_keys (
    hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    limits TEXT NOT NULL,
    created REAL NOT NULL,
    revoked REAL
) WITHOUT ROWID""",
    "CREATE UNIQUE INDEX IF NOT EXISTS gateway_keys_in_use ON gateway_keys (name)"
    " WHERE revoked IS NULL",
)


class StoredKey(NamedTuple):
    """One key as stored: never the key, only its hash."""

    hash: str
    name: str
    prefix: str
    limits: str
    """Its limits as JSON text."""
    created: float
    revoked: float | None


def add(
    path: str | Path, *, hash: str, name: str, prefix: str, limits: str, timeout: float = TIMEOUT
) -> None:
    """Store a new key.

    Raises:
        StoreError: a key in use has that name, or the store cannot be written.
    """
    path = Path(path)

    def insert(conn: sqlite3.Connection) -> bool:
        for statement in CREATE:
            conn.execute(statement)
        taken = conn.execute(
            "SELECT 1 FROM gateway_keys WHERE name = ? AND revoked IS NULL", (name,)
        ).fetchone()
        if not taken:
            conn.execute(
                "INSERT INTO gateway_keys (hash, name, prefix, limits, created)"
                " VALUES (?, ?, ?, ?, ?)",
                (hash, name, prefix, limits, time.time()),
            )
        return not taken

    with tables.writer(path, timeout) as conn:
        added = tables.retry_busy(path, conn, timeout, lambda: insert(conn))
    if not added:
        raise StoreError(
            f"a key named {name!r} is in use; revoke it first (clew keys revoke {name})"
            " or choose another name"
        )


def revoke(path: str | Path, name: str, *, timeout: float = TIMEOUT) -> bool:
    """Revoke the key in use named ``name``; False when there is none.

    Raises:
        StoreError: the store cannot be written.
    """
    path = Path(path)
    if not path.is_file():
        return False

    def update(conn: sqlite3.Connection) -> bool:
        for statement in CREATE:
            conn.execute(statement)
        cursor = conn.execute(
            "UPDATE gateway_keys SET revoked = ? WHERE name = ? AND revoked IS NULL",
            (time.time(), name),
        )
        return cursor.rowcount > 0

    with tables.writer(path, timeout) as conn:
        return tables.retry_busy(path, conn, timeout, lambda: update(conn))


def list(path: str | Path, *, revoked: bool = False) -> builtins.list[StoredKey]:
    """The keys in use by name (with ``revoked``, the revoked ones too, after them); empty
    when the store or the table does not exist.

    Raises:
        StoreError: the store exists but cannot be read.
    """
    where = "" if revoked else " WHERE revoked IS NULL"
    with tables.reader(Path(path), "gateway_keys") as conn:
        if conn is None:
            return []
        rows = conn.execute(
            "SELECT hash, name, prefix, limits, created, revoked FROM gateway_keys"
            f"{where} ORDER BY revoked IS NOT NULL, name, created"
        ).fetchall()
    return [StoredKey(*row) for row in rows]
