"""The root spans of stored traces, for datasets built from traces
(:func:`clew.evals.datasets.from_traces`).

A trace matches a filter as :meth:`~clew.store.TraceStore.list_traces` has it: when any of its
spans carries the tag or the user, and it started (its earliest span did) at or after
``since``. The matching traces are found through the index that leads with the most selective
filter, then each one's root span is read by its lookup key (see :mod:`clew.store.schema`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from clew.errors import StoreError
from clew.store import tables
from clew.store.rows import READ_COLUMNS, record_of_row
from clew.store.schema import SCHEMA_VERSION, root_key

__all__ = ["Roots", "root_records"]

_OF_TRACE = "root_key = ? AND root_trace_id = ?"
_FIRST_START = f"SELECT min(start_ns) FROM spans WHERE {_OF_TRACE}"
# The unary + keeps SQLite on the id index (the trace's spans), as in clew.store.queries.
_HAS_USER = f"SELECT 1 FROM spans WHERE {_OF_TRACE} AND +end_user_identifier = ? LIMIT 1"
# A root span's trace_id is its root_trace_id (clew.log_record); a record written whole under
# other ids is a root when it has no parent.
_ROOT = (
    f"SELECT {', '.join(READ_COLUMNS)} FROM spans WHERE {_OF_TRACE}"
    " AND (trace_id = root_trace_id OR parent_trace_id IS NULL)"
    " ORDER BY trace_id = root_trace_id DESC, start_ns, depth LIMIT 1"
)
_START = READ_COLUMNS.index("start_ns")


class Roots(NamedTuple):
    """What :func:`root_records` found."""

    records: list[dict[str, Any]]
    """The root span's record of each matching trace, oldest trace first."""
    rootless: int
    """Matching traces whose root span is not stored (yet: it is written when it ends)."""


def _candidates(
    tag: str | None, user: str | None, since_ns: int | None
) -> tuple[str, tuple[object, ...]]:
    """The query for the root ids of traces with a span that passes the most selective filter
    (and started at or after ``since_ns``), and its parameters."""
    after = "" if since_ns is None else " AND start_ns >= ?"
    later: tuple[object, ...] = () if since_ns is None else (since_ns,)
    if tag is not None:
        return f"SELECT DISTINCT root_trace_id FROM span_tags WHERE tag = ?{after}", (tag, *later)
    if user is not None:
        sql = f"SELECT DISTINCT root_trace_id FROM spans WHERE end_user_identifier = ?{after}"
        return sql, (user, *later)
    if since_ns is not None:
        return "SELECT DISTINCT root_trace_id FROM spans WHERE start_ns >= ?", later
    return "SELECT DISTINCT root_trace_id FROM spans", ()


def root_records(
    path: Path,
    *,
    tag: str | None = None,
    user: str | None = None,
    since_ns: int | None = None,
) -> Roots:
    """The root span records of the stored traces that match every filter given.

    Args:
        path: the trace store file.
        tag: only traces with a span carrying this tag.
        user: only traces with a span for this ``end_user_identifier``.
        since_ns: only traces that started at or after this time (Unix nanoseconds).

    Raises:
        StoreError: the store file does not exist, cannot be read, or has a trace schema this
            clew does not read.
    """
    if not path.is_file():
        raise StoreError(
            f"no trace store at {str(path)!r}. Run a program traced with clew first, or point"
            " to the store with --store PATH (store= in Python) or CLEW_STORE."
        )
    with tables.reader(path, "spans") as conn:
        if conn is None:
            return Roots([], 0)
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version != SCHEMA_VERSION:
            raise StoreError(
                f"the trace store {str(path)!r} has schema version {version}, this clew reads"
                f" version {SCHEMA_VERSION}; write a trace to it with this clew to upgrade an"
                " older store, or upgrade clew for a newer one"
            )
        checks: list[Callable[[tuple[int, str]], bool]] = []
        if tag is not None and user is not None:
            checks.append(lambda key: conn.execute(_HAS_USER, (*key, user)).fetchone() is not None)
        if since_ns is not None:
            checks.append(lambda key: conn.execute(_FIRST_START, key).fetchone()[0] >= since_ns)
        sql, params = _candidates(tag, user, since_ns)
        found: list[tuple[int, str, dict[str, Any]]] = []
        rootless = 0
        for (root,) in conn.execute(sql, params).fetchall():
            key = (root_key(root), root)
            if not all(check(key) for check in checks):
                continue
            row = conn.execute(_ROOT, key).fetchone()
            if row is None:
                rootless += 1
                continue
            found.append((row[_START] or 0, root, record_of_row(row)))
    found.sort(key=lambda item: (item[0], item[1]))
    return Roots([record for _, _, record in found], rootless)
