"""Connections to the tables that live beside the traces in the local store file
(deployments, gateway keys): a writer that creates the file with the trace store's page size and
switches it to WAL, a read-only reader in one snapshot, and writes in ``BEGIN IMMEDIATE``
transactions retried while another process holds the write lock."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TypeVar

from clew.errors import StoreError
from clew.store import schema
from clew.store.sqlite import _is_busy, _rollback

__all__ = ["TIMEOUT", "reader", "retry_busy", "writer"]

_T = TypeVar("_T")

TIMEOUT = 30.0
"""Seconds a write keeps retrying while other processes hold the write lock."""


def _busy_ms(timeout: float) -> int:
    return max(1, int(min(timeout, 5.0) * 1000))


@contextmanager
def writer(path: Path, timeout: float) -> Iterator[sqlite3.Connection]:
    """A connection for writing (autocommit; use :func:`retry_busy` for transactions); the file
    and its directory are created if missing."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the store {str(path)!r}: {exc}") from exc
    with closing(conn):
        try:
            conn.execute(f"PRAGMA busy_timeout = {_busy_ms(timeout)}")
            conn.execute(f"PRAGMA page_size = {schema.PAGE_SIZE}")  # only a new file takes it
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store {str(path)!r}: {exc}") from exc
        retry_busy(
            path, conn, timeout, lambda: conn.execute("PRAGMA journal_mode = WAL"), begin=False
        )
        yield conn


@contextmanager
def reader(path: Path, table: str) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection in one snapshot, or None when the file or ``table`` is missing."""
    if not path.is_file():
        yield None
        return
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=TIMEOUT, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store {str(path)!r}: {exc}") from exc
    with closing(conn):
        try:
            conn.execute(f"PRAGMA busy_timeout = {_busy_ms(TIMEOUT)}")
            conn.execute("BEGIN")  # one snapshot for every query of the call
            found = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()
            yield conn if found else None
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the store {str(path)!r}: {exc}") from exc


def retry_busy(
    path: Path,
    conn: sqlite3.Connection,
    timeout: float,
    work: Callable[[], _T],
    *,
    begin: bool = True,
) -> _T:
    """Run ``work`` (in a ``BEGIN IMMEDIATE`` transaction if ``begin``), retrying while the
    file is locked by another writer, until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            if begin:
                conn.execute("BEGIN IMMEDIATE")
            result = work()
            if begin:
                conn.execute("COMMIT")
            return result
        except sqlite3.Error as exc:
            _rollback(conn)
            busy = isinstance(exc, sqlite3.OperationalError) and _is_busy(exc)
            if not busy or time.monotonic() >= deadline:
                raise StoreError(f"cannot write to the store {str(path)!r}: {exc}") from exc
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.1)
