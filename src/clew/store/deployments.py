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
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import NamedTuple, TypeVar

from clew.errors import StoreError
from clew.store import schema
from clew.store.sqlite import _is_busy, _rollback

__all__ = ["Latest", "Listed", "Stored", "add", "get", "latest", "list"]

_logger = logging.getLogger(__name__)

_T = TypeVar("_T")

TIMEOUT = 30.0
"""Seconds a write keeps retrying while other processes hold the write lock."""

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

    with _writer(path, timeout) as conn:
        version = _retry_busy(path, conn, timeout, lambda: insert(conn))
    _logger.debug("clew: stored deployment %r version %d in %s", id, version, path)
    return version


def get(path: str | Path, id: str, version: int | None = None) -> Stored | None:
    """A version of deployment ``id`` (the latest when ``version`` is None), or None if the
    store, the id or that version does not exist.

    Raises:
        StoreError: the store exists but cannot be read.
    """
    with _reader(Path(path)) as conn:
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
    with _reader(Path(path)) as conn:
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
    with _reader(Path(path)) as conn:
        if conn is None:
            return []
        rows = conn.execute(
            "SELECT d.id, d.version, d.body, d.created FROM deployments AS d"
            " JOIN (SELECT id, max(version) AS latest FROM deployments GROUP BY id) AS n"
            " ON d.id = n.id AND d.version = n.latest ORDER BY d.id"
        ).fetchall()
    return [Latest(str(i), int(v), str(b), float(c)) for i, v, b, c in rows]


# --- connections ---------------------------------------------------------------------------


def _busy_ms(timeout: float) -> int:
    return max(1, int(min(timeout, 5.0) * 1000))


@contextmanager
def _writer(path: Path, timeout: float) -> Iterator[sqlite3.Connection]:
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
        _retry_busy(
            path, conn, timeout, lambda: conn.execute("PRAGMA journal_mode = WAL"), begin=False
        )
        yield conn


@contextmanager
def _reader(path: Path) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection, or None when the file or the ``deployments`` table is missing."""
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
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'deployments'"
            ).fetchone()
            yield conn if found else None
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the store {str(path)!r}: {exc}") from exc


def _retry_busy(
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
