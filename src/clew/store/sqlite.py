"""The local trace store: one SQLite file that exporters write and the CLI and UI read.

Spans are stored as their attributes (JSON) and their own fields (columns), and records are
rebuilt from those when read (see :mod:`clew.store.rows` and :mod:`clew.store.schema`). The
file is in WAL mode so
readers never block the writer, and every batch is one ``BEGIN IMMEDIATE`` transaction retried
on ``SQLITE_BUSY`` until a deadline, so several processes can write one store at once without
losing a span.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import Any

import pydantic_core
from opentelemetry.sdk.trace import ReadableSpan

from clew.errors import AmbiguousIdError, StoreError
from clew.store import queries, rows, schema
from clew.store.schema import SCHEMA_VERSION

__all__ = ["DEFAULT_STORE_PATH", "SCHEMA_VERSION", "TraceStore"]

_logger = logging.getLogger(__name__)

DEFAULT_STORE_PATH = Path(".clew") / "traces.db"
"""Where the store lives unless told otherwise (relative to the working directory)."""


_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)

# Connections inherited over fork are abandoned, never used or closed, in the child (SQLite
# forbids both); keeping a reference stops garbage collection from closing them.
_abandoned: list[sqlite3.Connection] = []
_stores: weakref.WeakSet[TraceStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # Another thread may have held a store's lock or connection at the moment of the fork.
    for store in list(_stores):
        store._forget_parent_state()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _BUSY_CODES
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite may already have rolled back (e.g. after SQLITE_FULL): nothing left to undo then.
    with suppress(sqlite3.Error):
        if conn.in_transaction:
            conn.execute("ROLLBACK")


def _insert(
    conn: sqlite3.Connection,
    span_rows: list[tuple[Any, ...]],
    tag_rows: list[tuple[Any, ...]],
    score_rows: list[tuple[Any, ...]],
    call_rows: list[tuple[Any, ...]],
) -> None:
    """Insert rows in the open transaction, replacing spans already stored."""
    conn.executemany(schema.DELETE_SPAN, [row[:4] for row in span_rows])
    conn.executemany(schema.INSERT_SPAN, span_rows)
    if tag_rows:
        conn.executemany(schema.INSERT_TAG, tag_rows)
    if score_rows:
        conn.executemany(schema.INSERT_SCORE, score_rows)
    if call_rows:
        conn.executemany(schema.INSERT_CALL, call_rows)


def _add_tables(conn: sqlite3.Connection) -> None:
    """Create the tables added to the schema since its version was set, if missing (filling
    ``llm_calls`` from the spans stored before it)."""
    if not schema.has_table(conn, "span_scores"):
        for statement in schema.ADDITIONS:
            conn.execute(statement)
    if not schema.has_table(conn, "llm_calls"):
        for statement in schema.CALLS:
            conn.execute(statement)
        conn.execute(schema.FILL_CALLS)


class TraceStore:
    """Writes span records to one SQLite file and answers the CLI's and UI's queries.

    Safe to share between threads; several processes may write the same file. The file and its
    schema are created on the first write; queries never create it.

    Example:
        >>> store = TraceStore(".clew/traces.db")  # doctest: +SKIP
        >>> store.write_records(records)  # doctest: +SKIP
        >>> [t["name"] for t in store.list_traces(limit=5)]  # doctest: +SKIP

    Args:
        path: the database file. Parent directories are created on the first write.
        timeout: how long, in seconds, a write keeps retrying while other processes hold the
            write lock before it gives up with :class:`~clew.errors.StoreError`.
    """

    def __init__(
        self, path: str | os.PathLike[str] = DEFAULT_STORE_PATH, timeout: float = 30.0
    ) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        _stores.add(self)

    def __repr__(self) -> str:
        return f"TraceStore({str(self.path)!r})"

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- writing -------------------------------------------------------------------------

    def write_spans(self, spans: Iterable[ReadableSpan], project_name: str | None = None) -> None:
        """Insert finished spans in one transaction, replacing spans with the same ``trace_id``.

        What :meth:`write_records` does with their records, for a fraction of the cost: the
        records are rebuilt from the spans' attributes when read.

        Args:
            spans: finished spans.
            project_name: recorded on every span; defaults to each one's ``service.name``.

        Raises:
            StoreError: as :meth:`write_records`.
        """
        self._write(rows.rows_of_spans(spans, project_name))

    def write_records(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Insert span records in one transaction, replacing records with the same ``trace_id``.

        A trace is listed under every tag ever written for one of its spans. A record is read
        back with every field of :data:`~clew.log_record.RECORD_FIELDS`, ``None`` for
        those it lacked.

        Args:
            records: records as built by :func:`clew.log_record.span_to_record`.

        Raises:
            StoreError: the file cannot be created or written, or the write lock stayed busy
                for longer than ``timeout`` seconds.
        """
        self._write(rows.rows_of_records(records))

    def _write(self, batch: rows.Rows) -> None:
        span_rows = batch[0]
        if not span_rows:
            return
        with self._lock:
            conn = self._writer()

            def insert() -> None:
                _insert(conn, *batch)

            self._retry_busy(conn, insert)

    def close(self) -> None:
        """Close the write connection (a later write opens a new one)."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    def _forget_parent_state(self) -> None:
        self._lock = threading.Lock()
        if self._conn is not None:
            _abandoned.append(self._conn)
            self._conn = None

    def _writer(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(
                    self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
                )
            except (OSError, sqlite3.Error) as exc:
                raise StoreError(f"cannot open the trace store {str(self.path)!r}: {exc}") from exc
            try:
                self._prepare(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        # SQLite's busy handler waits up to 5 s per attempt; _retry_busy retries until the
        # timeout, including the SQLITE_BUSY cases that do not call the handler.
        busy_ms = max(1, int(min(self.timeout, 5.0) * 1000))
        conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
        conn.execute(f"PRAGMA page_size = {schema.PAGE_SIZE}")  # only a new file takes it
        self._retry_busy(conn, lambda: conn.execute("PRAGMA journal_mode = WAL"), begin=False)
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across app crashes
        # Batches of random trace ids touch index pages all over the file: checkpointing every
        # 40 MiB rather than 4 MiB (an index page is then copied once, not ten times) and a
        # 16 MiB page cache each made batch writes measurably faster (15-40%).
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.execute(f"PRAGMA wal_autocheckpoint = {schema.WAL_CHECKPOINT_BYTES // page_size}")
        conn.execute("PRAGMA journal_size_limit = 67108864")  # shrink the WAL back to 64 MiB
        conn.execute("PRAGMA cache_size = -16384")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            self._retry_busy(conn, lambda: _add_tables(conn))
            return
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the trace store {str(self.path)!r} has schema version {version}, newer than this"
                f" clew understands ({SCHEMA_VERSION}); upgrade clew or use another --store path"
            )

        def create() -> None:
            # Re-read inside the write lock: another process may have created it meanwhile.
            found = conn.execute("PRAGMA user_version").fetchone()[0]
            if found == SCHEMA_VERSION:
                return
            if found == 1:
                for statement in schema.FROM_VERSION_1:
                    conn.execute(statement)
            for statement in schema.SCHEMA:
                conn.execute(statement)
            _add_tables(conn)
            if found == 1:
                self._copy_version_1(conn)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

        self._retry_busy(conn, create)

    def _copy_version_1(self, conn: sqlite3.Connection) -> None:
        """Copy the records of a version 1 store (moved to ``spans_v1``) into the schema."""
        stored = conn.execute("SELECT record FROM spans_v1")
        records = [pydantic_core.from_json(text) for (text,) in stored]
        _insert(conn, *rows.rows_of_records(records))
        conn.execute("DROP TABLE spans_v1")
        _logger.warning(
            "clew: upgraded the trace store %s from schema version 1 to %d (%d spans copied);"
            " its pages stay %d bytes, so it writes slower than a new store file",
            self.path,
            SCHEMA_VERSION,
            len(records),
            conn.execute("PRAGMA page_size").fetchone()[0],
        )

    def _retry_busy(
        self, conn: sqlite3.Connection, work: Callable[[], object], *, begin: bool = True
    ) -> None:
        """Run ``work`` (in a write transaction if ``begin``), retrying while the file is busy."""
        deadline = time.monotonic() + self.timeout
        delay = 0.001
        while True:
            try:
                if begin:
                    conn.execute("BEGIN IMMEDIATE")
                work()
                if begin:
                    conn.execute("COMMIT")
                return
            except sqlite3.Error as exc:
                _rollback(conn)
                busy = isinstance(exc, sqlite3.OperationalError) and _is_busy(exc)
                if not busy or time.monotonic() >= deadline:
                    raise StoreError(
                        f"cannot write to the trace store {str(self.path)!r}: {exc}"
                    ) from exc
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.1)

    # --- reading -------------------------------------------------------------------------

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection | None]:
        """A read-only connection, or None when the store exists but has no schema yet."""
        if not self.path.is_file():
            raise StoreError(
                f"no trace store at {str(self.path)!r}. Run a program traced with clew first"
                " (clew.configure() writes there by default), or point to the store with"
                " --store PATH or the CLEW_STORE environment variable."
            )
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the trace store {str(self.path)!r}: {exc}") from exc
        with closing(conn):
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"the trace store {str(self.path)!r} has schema version {version}, newer"
                        f" than this clew understands ({SCHEMA_VERSION}); upgrade clew"
                    )
                if 0 < version < SCHEMA_VERSION:
                    raise StoreError(
                        f"the trace store {str(self.path)!r} has schema version {version}, from an"
                        " older clew; the next program traced with clew that writes to it"
                        " upgrades it"
                    )
                conn.execute("BEGIN")  # one snapshot for all the queries of one call
                yield conn if version == SCHEMA_VERSION else None
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the trace store {str(self.path)!r}: {exc}") from exc

    def list_traces(
        self,
        limit: int = 20,
        tag: str | None = None,
        user: str | None = None,
        session: str | None = None,
        status: str | None = None,
        score: queries.ScoreFilter | None = None,
        extra: queries.TraceFilter | None = None,
        window: queries.Window | None = None,
    ) -> list[dict[str, Any]]:
        """The traces of :meth:`trace_page` (the same filters), searched to the end."""
        return self.trace_page(limit, tag, user, session, status, score, extra, window).traces

    def trace_page(
        self,
        limit: int = 20,
        tag: str | None = None,
        user: str | None = None,
        session: str | None = None,
        status: str | None = None,
        score: queries.ScoreFilter | None = None,
        extra: queries.TraceFilter | None = None,
        window: queries.Window | None = None,
        budget: float | None = None,
    ) -> queries.TracePage:
        """A page of the newest traces first, one summary per ``root_trace_id``.

        A trace matches a filter when any of its spans does; it starts with its earliest
        span. Tokens and cost are summed over the trace's spans (``None`` when no span carries
        them); the status is ``"error"`` if any span failed. A trace whose root span was never
        stored is listed under its earliest span's name.

        Args:
            limit: at most this many traces.
            tag: only traces with a span carrying this tag.
            user: only traces with a span for this ``end_user_identifier``.
            session: only traces with a span in this ``session_id``.
            status: ``"error"`` or ``"success"`` to keep only failed or only clean traces.
            score: only traces with a score of this name, ``(name, None, None)``, or whose
                value compares so: ``("accuracy", "<", 0.5)``.
            extra: the project, model and text to filter on.
            window: only traces that started since a time, or before a page's last (the next
                page).
            budget: seconds to search for, about: past them, the page holds what was found
                (see :class:`~clew.store.queries.TracePage`). None searches to the end.

        Returns:
            The page: its ``traces`` are dicts with ``root_trace_id``, ``name``,
            ``start_timestamp`` (ISO, UTC), ``start_ns`` (the same in integer nanoseconds: with
            the id, the next page's cursor), ``latency`` (seconds), ``span_count``, ``status``,
            ``input_tokens``, ``output_tokens``, ``total_tokens``, ``cost``, ``project_name``,
            ``end_user_identifier``, ``session_id``, ``tags`` (its root's), ``model`` (its
            first LLM call's), ``scores`` (name → the mean of the trace's scores of that name).

        Raises:
            StoreError: the store file does not exist or cannot be read.
            ValueError: ``limit`` is negative or ``status`` is not "error" or "success".
        """
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        if status not in (None, "error", "success"):
            raise ValueError(f"status must be 'error' or 'success', got {status!r}")
        with self._reader() as conn:
            if conn is None:
                return queries.TracePage([], None)
            return queries.trace_page(
                conn,
                limit,
                tag=tag,
                user=user,
                session=session,
                status=status,
                score=score,
                extra=extra,
                window=window,
                budget=budget,
            )

    def get_trace(self, root_trace_id: str) -> list[dict[str, Any]]:
        """Every stored record of one trace, in start order.

        Args:
            root_trace_id: the trace's ``root_trace_id``, with or without dashes, in any case;
                a unique prefix of at least 8 hex digits; or the ``trace_id`` of any of its
                spans.

        Raises:
            StoreError: the store is missing, the id matches no trace, or a prefix matches
                several.
        """
        with self._reader() as conn:
            try:
                root = None if conn is None else queries.resolve_root(conn, root_trace_id)
            except AmbiguousIdError as exc:
                raise StoreError(
                    f"the id prefix {root_trace_id.strip()!r} matches several traces ({exc});"
                    " give more characters."
                ) from None
            if conn is None or root is None:
                raise StoreError(
                    f"no trace with id {root_trace_id!r} in {str(self.path)!r}."
                    " Run `clew traces` to list the stored trace ids."
                )
            return queries.trace_records(conn, root)

    def root_of(self, trace_id: str) -> str | None:
        """The ``root_trace_id`` of the trace holding the span ``trace_id`` (None: not stored).

        Raises:
            StoreError: the store cannot be read.
        """
        with self._reader() as conn:
            if conn is None:
                return None
            try:
                return queries.resolve_root(conn, trace_id)
            except AmbiguousIdError:
                return None

    def count_spans(self) -> int:
        """How many span records the store holds (0 for a store without schema).

        Raises:
            StoreError: the store file does not exist or cannot be read.
        """
        with self._reader() as conn:
            if conn is None:
                return 0
            return int(conn.execute("SELECT count(*) FROM spans").fetchone()[0])
