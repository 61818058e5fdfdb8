"""The SQLite completion cache: one file in WAL mode, shared by threads and processes."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from clew.gateway.cache.base import CompletionCache

__all__ = ["SqliteCache"]

_TABLE = "completion_cache"
_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {_TABLE} (id TEXT PRIMARY KEY, value BLOB NOT NULL,"
    " size INTEGER NOT NULL, created REAL NOT NULL, expires REAL, used REAL NOT NULL)",
    # No index on `used`: eviction (rare, and batched down to 90 %) sorts the table itself, so
    # that every write does not pay for an index it would seldom read.
    # Running totals, kept exact by triggers inside every process's own transactions: reading
    # them is one row where SUM(size) would scan the table on every put.
    f"CREATE TABLE IF NOT EXISTS {_TABLE}_total (one INTEGER PRIMARY KEY CHECK (one = 0),"
    " entries INTEGER NOT NULL, bytes INTEGER NOT NULL)",
    f"INSERT OR IGNORE INTO {_TABLE}_total VALUES (0, 0, 0)",
    f"CREATE TRIGGER IF NOT EXISTS {_TABLE}_ins AFTER INSERT ON {_TABLE} BEGIN UPDATE"
    f" {_TABLE}_total SET entries = entries + 1, bytes = bytes + new.size; END",
    f"CREATE TRIGGER IF NOT EXISTS {_TABLE}_del AFTER DELETE ON {_TABLE} BEGIN UPDATE"
    f" {_TABLE}_total SET entries = entries - 1, bytes = bytes - old.size; END",
    # the last one created: its presence says the schema is complete
    f"CREATE TRIGGER IF NOT EXISTS {_TABLE}_upd AFTER UPDATE OF size ON {_TABLE} BEGIN UPDATE"
    f" {_TABLE}_total SET bytes = bytes + new.size - old.size; END",
)
_HAS_SCHEMA = f"SELECT 1 FROM sqlite_schema WHERE name = '{_TABLE}_upd'"
_SELECT = f"SELECT CAST(value AS BLOB), expires FROM {_TABLE} WHERE id = ?"
_DELETE_EXPIRED = f"DELETE FROM {_TABLE} WHERE id = ? AND expires <= ?"
_UPSERT = (
    f"INSERT INTO {_TABLE} VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
    " value = excluded.value, size = excluded.size, created = excluded.created,"
    " expires = excluded.expires, used = excluded.used"
)
_TOTAL = f"SELECT entries, bytes FROM {_TABLE}_total"
_TOUCH = f"UPDATE {_TABLE} SET used = ? WHERE id = ? AND used < ?"
_TOUCH_EVERY = 256  # hits whose use times are written together
_CHECK_EVERY = 64  # writes between two reads of the exact total
# Failures that pass: the file stays usable (other failures leave it alone for `backoff` s).
_TRANSIENT = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_FULL", "SQLITE_INTERRUPT"})

# Connections inherited over fork are abandoned in the child, never used or closed (SQLite
# forbids both); keeping a reference stops garbage collection from closing them.
_abandoned: list[sqlite3.Connection] = []


class SqliteCache(CompletionCache):
    """Entries in one SQLite file, safe to share between threads and processes.

    The file is in WAL mode, so reads never wait for a writer; writes wait for another
    writer's lock up to ``timeout`` seconds, then are dropped. Connections are pooled, one per
    concurrent caller. An expired entry is a miss (and deleted). When the stored total passes
    ``max_bytes``, expired and then least recently used entries are evicted down to 90 % of
    it. A hit's use time is written later, in a batch (every :data:`_TOUCH_EVERY` hits and with
    the next write), so a hit is one ``SELECT``; a read skips such bookkeeping rather than wait
    for another writer.

    Example:
        >>> cache = SqliteCache(".clew/cache.db", ttl=3600, max_bytes=256 << 20)  # doctest: +SKIP
        >>> cache.put(material, response_bytes)  # doctest: +SKIP

    Args:
        path: the database file; its parent folder is created.
        ttl: seconds an entry lives; None for no expiry.
        max_bytes: the bound on the stored (sealed) values' total size.
        timeout: seconds a write waits for another writer.
        backoff: seconds the file is left alone after it could not be opened or read.
        clock: the wall clock (``time.time``); tests pass their own.
    """

    _foreign = (sqlite3.Error, OSError)

    def __init__(
        self,
        path: str | os.PathLike[str],
        ttl: float | None,
        max_bytes: int,
        *,
        timeout: float = 1.0,
        backoff: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(ttl, max_bytes, backoff)
        self.path = Path(path)
        self.timeout = timeout
        self._busy_ms = max(1, int(timeout * 1000))
        self._clock = clock
        self._idle: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        self._touched: dict[str, float] = {}
        self._estimate = max_bytes  # the stored total, as this process last knew it (unknown)
        self._writes = 0

    def describe(self) -> str:
        return str(self.path)

    def _kind(self, exc: BaseException) -> str:
        return getattr(exc, "sqlite_errorname", None) or type(exc).__name__

    def _is_lasting(self, exc: BaseException) -> bool:
        return self._kind(exc) not in _TRANSIENT

    def _after_fork(self) -> None:
        super()._after_fork()
        _abandoned.extend(self._idle)
        self._idle = []
        self._pool_lock = threading.Lock()

    # --- connections -----------------------------------------------------------------------

    def _acquire(self) -> sqlite3.Connection:
        with self._pool_lock:
            if self._idle:
                return self._idle.pop()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: no fsync per commit
            if conn.execute(_HAS_SCHEMA).fetchone() is None:
                conn.execute("BEGIN IMMEDIATE")
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        return conn

    def _release(self, conn: sqlite3.Connection, exc: BaseException | None) -> None:
        """Put ``conn`` back in the pool, or close it after a lasting failure or a close."""
        keep = exc is None or (isinstance(exc, sqlite3.Error) and not self._is_lasting(exc))
        if keep and conn.in_transaction:  # a write that failed half-way
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                keep = False
        with self._pool_lock:
            if keep and not self._closed:
                self._idle.append(conn)
                return
        conn.close()

    # --- the backend -----------------------------------------------------------------------

    def _load(self, ident: str) -> bytes | None:
        conn = self._acquire()
        failure: BaseException | None = None
        try:
            row = conn.execute(_SELECT, (ident,)).fetchone()
            if row is None:
                return None
            now = self._clock()
            if row[1] is not None and row[1] <= now:
                self._write_if_free(conn, lambda: conn.execute(_DELETE_EXPIRED, (ident, now)))
                return None
            self._touched[ident] = now
            if len(self._touched) >= _TOUCH_EVERY:
                self._write_if_free(conn, lambda: self._touch(conn))
            # _SELECT casts: a value altered into text comes back as bytes, and fails to open.
            return row[0] if isinstance(row[0], bytes) else b""
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self._release(conn, failure)

    def _write_if_free(self, conn: sqlite3.Connection, work: Callable[[], object]) -> None:
        """Do ``work`` in a write transaction if no other writer holds the lock, else skip it:
        a read never waits (what it writes is bookkeeping a later write or eviction redoes)."""
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            conn.execute("BEGIN IMMEDIATE")
            work()
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if self._is_lasting(exc):
                raise
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        finally:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")

    def _touch(self, conn: sqlite3.Connection) -> None:
        """Write the use times of the hits since the last write (in the open transaction)."""
        touched, self._touched = self._touched, {}
        if touched:
            conn.executemany(_TOUCH, [(t, ident, t) for ident, t in touched.items()])

    def _store(self, ident: str, sealed: bytes) -> None:
        now = self._clock()
        expires = None if self.ttl is None else now + self.ttl
        conn = self._acquire()
        failure: BaseException | None = None
        try:
            # The exact total (kept by the triggers) is read only when this process's estimate
            # nears the bound, and every _CHECK_EVERY writes for what other processes wrote.
            self._estimate += len(sealed)
            self._writes += 1
            check = self._estimate > self.max_bytes * 0.95 or self._writes % _CHECK_EVERY == 0
            row = (ident, sealed, len(sealed), now, expires, now)
            # BEGIN IMMEDIATE even for one statement: an autocommit upsert starts as a read and
            # can fail at once (SQLITE_BUSY) when another writer moved on meanwhile.
            conn.execute("BEGIN IMMEDIATE")
            self._touch(conn)
            conn.execute(_UPSERT, row)
            if check:
                self._estimate = conn.execute(_TOTAL).fetchone()[1]
                if self._estimate > self.max_bytes:
                    self._evict(conn, ident, now)
                    self._estimate = conn.execute(_TOTAL).fetchone()[1]
            conn.execute("COMMIT")
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self._release(conn, failure)

    async def _astore(self, ident: str, sealed: bytes) -> None:
        # A write may wait up to `timeout` for another process's lock: not on the event loop.
        # Reads (the inherited _aload) run inline: a hit is one indexed SELECT of a few µs,
        # far less than a hop to a thread, and in WAL mode a read never waits for a writer.
        await asyncio.to_thread(self._store, ident, sealed)

    def _evict(self, conn: sqlite3.Connection, keep: str, now: float) -> None:
        """Delete expired, then least recently used entries (never ``keep``) down to 90 %."""
        evicted = conn.execute(f"DELETE FROM {_TABLE} WHERE expires <= ?", (now,)).rowcount
        excess = conn.execute(_TOTAL).fetchone()[1] - self.max_bytes * 9 // 10
        victims: list[tuple[str]] = []
        cursor = conn.execute(f"SELECT id, size FROM {_TABLE} WHERE id != ? ORDER BY used", (keep,))
        try:
            while excess > 0 and (rows := cursor.fetchmany(64)):
                for ident, size in rows:
                    victims.append((ident,))
                    excess -= size
                    if excess <= 0:
                        break
        finally:
            cursor.close()
        conn.executemany(f"DELETE FROM {_TABLE} WHERE id = ?", victims)
        self._count("evictions", evicted + len(victims))

    def _clear(self) -> None:
        conn = self._acquire()
        failure: BaseException | None = None
        try:
            self._touched = {}
            conn.execute(f"DELETE FROM {_TABLE}")
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self._release(conn, failure)

    def _close(self) -> None:
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            if self._touched:
                with suppress(sqlite3.Error):  # the last hits' use times: best effort
                    conn.execute("BEGIN IMMEDIATE")
                    self._touch(conn)
                    conn.execute("COMMIT")
            conn.close()

    def stats(self) -> dict[str, int]:
        counts = super().stats()
        if self._closed or self._left_alone() or not self.path.is_file():
            return counts
        try:
            conn = self._acquire()
        except (sqlite3.Error, OSError):  # a broken file has no sizes to add
            return counts
        failure: BaseException | None = None
        try:
            entries, size = conn.execute(_TOTAL).fetchone()
            counts.update(entries=entries, bytes=size)
        except sqlite3.Error as exc:
            failure = exc
        finally:
            self._release(conn, failure)
        return counts
