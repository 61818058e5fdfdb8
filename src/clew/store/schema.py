"""The SQLite schema of the local trace store, its lookup keys, and the statements that write it.

Schema version 2 (kept in ``PRAGMA user_version``):

- ``spans``: one row per span. A span written by the exporter keeps its attributes as JSON and
  its own fields (ids, name, times in integer nanoseconds, status, project) as columns; its
  record is rebuilt from those when read (see :mod:`clew.store.rows`). A record written whole
  (:meth:`~clew.store.TraceStore.write_records`) keeps the fields that no column holds exactly
  as JSON in ``fields``. Copies of the values that queries filter on and sum (user, session,
  depth, tokens, cost) sit in columns of their own.
- ``span_tags``: one row per (tag, span), clustered by tag then start time.
- ``span_scores``: one row per score span (see :mod:`clew.tracer.evaluation`), clustered by
  score name then start time, for filtering traces on their scores; added to a version 2 store
  on its next write (:data:`ADDITIONS`), so stores of either kind stay readable.
- ``llm_calls`` and the index ``spans_roots``: what the dashboard and the model filter read,
  added the same way (:data:`CALLS`).

Trace ids are random, so every index keyed by them costs one page write per trace per batch,
wherever the trace lands in the index. The schema keeps exactly one such index, and keeps it
small: it holds two 32-bit integer keys (:func:`root_key`, :func:`span_key`) rather than the
two 36-character ids, which made batch writes into a store of 100,000 spans 1.5-2x as
fast. Every other index leads with a start time or a filter value followed by a start time, so
a batch appends to the end of it. "The newest traces" is a walk backwards through these
time-ordered indexes (see :mod:`clew.store.queries`), so no per-trace summary table has to be
updated on each write.

Version 1 (whole records as JSON, times as REAL seconds, text primary key) is migrated on the
first write (see :class:`~clew.store.TraceStore`).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from typing import Final

SCHEMA_VERSION: Final = 2
"""The schema this module reads and writes, kept in ``PRAGMA user_version``."""

PAGE_SIZE: Final = 16384
"""The page size of new store files.

Rows of LLM spans (a prompt of a kilobyte or more) fit two to a 4 KiB page at best, and the
random-key index is rewritten a page at a time: 16 KiB pages made batch writes about twice as
fast as 4 KiB ones. It cannot change once a file is in WAL mode.
"""

WAL_CHECKPOINT_BYTES: Final = 40 * 1024 * 1024
"""Checkpoint the WAL once it holds this much (``wal_autocheckpoint`` counts pages)."""

SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS spans (
        root_key INTEGER NOT NULL,
        span_key INTEGER NOT NULL,
        root_trace_id TEXT NOT NULL,
        trace_id TEXT NOT NULL,
        parent_trace_id TEXT,
        name TEXT NOT NULL,
        start_ns INTEGER,
        end_ns INTEGER,
        status TEXT NOT NULL,
        error TEXT,
        project_name TEXT,
        attributes TEXT,
        fields TEXT,
        depth INTEGER,
        end_user_identifier TEXT,
        session_id TEXT,
        input_tokens INTEGER,
        output_tokens INTEGER,
        cost REAL
    )""",
    # Not unique: the keys are exact for ids clew makes but hashes for other text, so a write
    # deletes the span it replaces by key and id (DELETE_SPAN) before inserting it.
    "CREATE INDEX IF NOT EXISTS spans_id ON spans (root_key, span_key)",
    "CREATE INDEX IF NOT EXISTS spans_start ON spans (start_ns)",
    "CREATE INDEX IF NOT EXISTS spans_user ON spans (end_user_identifier, start_ns)"
    " WHERE end_user_identifier IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS spans_session ON spans (session_id, start_ns)"
    " WHERE session_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS spans_errors ON spans (start_ns) WHERE status = 'error'",
    # A trace is listed under every tag ever written for one of its spans: rewriting a span
    # with other tags adds rows and removes none (spans do not change once they ended).
    """CREATE TABLE IF NOT EXISTS span_tags (
        tag TEXT NOT NULL,
        start_ns INTEGER,
        root_trace_id TEXT NOT NULL,
        trace_id TEXT NOT NULL,
        PRIMARY KEY (tag, start_ns, root_trace_id, trace_id)
    ) WITHOUT ROWID""",
)

ADDITIONS: Final = (
    """CREATE TABLE IF NOT EXISTS span_scores (
        name TEXT NOT NULL,
        start_ns INTEGER,
        root_trace_id TEXT NOT NULL,
        trace_id TEXT NOT NULL,
        scored_trace_id TEXT,
        value REAL,
        source TEXT,
        PRIMARY KEY (name, start_ns, root_trace_id, trace_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS span_scores_root ON span_scores (root_trace_id)",
)
"""Tables added to schema version 2 since it was made: created on the first write of a process
(``IF NOT EXISTS``), and read only where they exist."""

CALLS: Final = (
    """CREATE TABLE IF NOT EXISTS llm_calls (
        start_ns INTEGER,
        root_trace_id TEXT NOT NULL,
        trace_id TEXT NOT NULL,
        project_name TEXT,
        model TEXT,
        request_model TEXT,
        provider TEXT,
        input_tokens INTEGER,
        output_tokens INTEGER,
        cost REAL,
        PRIMARY KEY (start_ns, root_trace_id, trace_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS spans_roots ON spans (start_ns, end_ns, status, project_name)"
    " WHERE parent_trace_id IS NULL",
)
"""Added to schema version 2 like :data:`ADDITIONS`, for the dashboard and the model filter:

- ``llm_calls``: a copy of what they read of each span that names a model or carries tokens
  or a cost (an LLM call, its attempts), in start order, a few dozen bytes a span; rather
  than parsing each span's attributes (kilobytes of messages) for its model.
- ``spans_roots``: the requests (root spans) with their end, status and project, in start
  order.

Filled from the spans already stored when it is made (:data:`FILL_CALLS`).
"""

# A span's model: the answering one, else the requested one (a span from the exporter), else
# its record's (a record written whole); its requested model, likewise.
_MODEL = (
    "coalesce(json_extract(attributes, '$.\"gen_ai.response.model\"'),"
    " json_extract(attributes, '$.\"gen_ai.request.model\"'), json_extract(fields, '$.model'))"
)
_REQUEST_MODEL = (
    "coalesce(json_extract(attributes, '$.\"gen_ai.request.model\"'),"
    " json_extract(fields, '$.model'))"
)
_PROVIDER = (
    "coalesce(json_extract(attributes, '$.\"gen_ai.provider.name\"'),"
    " json_extract(fields, '$.provider'))"
)
FILL_CALLS: Final = f"""INSERT OR REPLACE INTO llm_calls
    SELECT * FROM (SELECT start_ns, root_trace_id, trace_id, project_name, {_MODEL} AS model,
        {_REQUEST_MODEL}, {_PROVIDER}, input_tokens, output_tokens, cost FROM spans)
    WHERE start_ns IS NOT NULL AND (model IS NOT NULL OR input_tokens IS NOT NULL
        OR output_tokens IS NOT NULL OR cost IS NOT NULL)"""
INSERT_CALL: Final = (
    "INSERT OR REPLACE INTO llm_calls (start_ns, root_trace_id, trace_id, project_name, model,"
    " request_model, provider, input_tokens, output_tokens, cost)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

SPAN_COLUMNS: Final = (
    "root_key",
    "span_key",
    "root_trace_id",
    "trace_id",
    "parent_trace_id",
    "name",
    "start_ns",
    "end_ns",
    "status",
    "error",
    "project_name",
    "attributes",
    "fields",
    "depth",
    "end_user_identifier",
    "session_id",
    "input_tokens",
    "output_tokens",
    "cost",
)
"""The columns of a ``spans`` row, in the order :data:`INSERT_SPAN` takes them."""

DELETE_SPAN: Final = (
    "DELETE FROM spans WHERE root_key = ? AND span_key = ? AND root_trace_id = ? AND trace_id = ?"
)
"""Takes the first four values of a row: deletes the span that row replaces, if stored."""
INSERT_SPAN: Final = (
    f"INSERT INTO spans ({', '.join(SPAN_COLUMNS)}) VALUES ({', '.join('?' * len(SPAN_COLUMNS))})"
)
INSERT_TAG: Final = (
    "INSERT OR IGNORE INTO span_tags (tag, start_ns, root_trace_id, trace_id) VALUES (?, ?, ?, ?)"
)
INSERT_SCORE: Final = (
    "INSERT OR REPLACE INTO span_scores"
    " (name, start_ns, root_trace_id, trace_id, scored_trace_id, value, source)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)

FROM_VERSION_1: Final = (
    # Version 1's indexes have the names version 2 uses, and its tags are rebuilt from its
    # records.
    "DROP INDEX IF EXISTS spans_start",
    "DROP INDEX IF EXISTS spans_user",
    "DROP INDEX IF EXISTS spans_session",
    "DROP INDEX IF EXISTS spans_errors",
    "DROP TABLE IF EXISTS span_tags",
    "ALTER TABLE spans RENAME TO spans_v1",
)
"""Moves a version 1 store out of the way of version 2's schema; its records stay in
``spans_v1`` until they are copied."""

KEY_OFFSET: Final = 1 << 31
"""Subtracted from 32-bit unsigned keys so SQLite stores them in 4 bytes, keeping their order."""

_UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _hashed(text: str) -> int:
    digest = hashlib.blake2b(text.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def root_key(root_trace_id: str) -> int:
    """The lookup key of a ``root_trace_id``: its first 32 bits when it is a canonical UUID.

    32 bits tell apart the traces of any local store but a few, and keep the index small (it is
    rewritten a page at a time). Keys of UUIDs sort like the ids, so a prefix of eight hex
    digits or more is one key. Other text gets a stable hash. A lookup compares the id itself
    as well.
    """
    if _UUID_TEXT.fullmatch(root_trace_id):
        return int(root_trace_id[:8], 16) - KEY_OFFSET
    return _hashed(root_trace_id)


def span_key(trace_id: str) -> int:
    """The lookup key of a span's ``trace_id``: its last 32 bits (of the span id) if a UUID."""
    if _UUID_TEXT.fullmatch(trace_id):
        return int(trace_id[28:], 16) - KEY_OFFSET
    return _hashed(trace_id)


def root_key_range(hex_prefix: str) -> tuple[int, int]:
    """The smallest and largest :func:`root_key` of UUIDs whose hex digits start with a prefix.

    Args:
        hex_prefix: lowercase hex digits, without dashes.
    """
    head = hex_prefix[:8]
    return int(head.ljust(8, "0"), 16) - KEY_OFFSET, int(head.ljust(8, "f"), 16) - KEY_OFFSET


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the store has the table (or index) ``name``: those of :data:`ADDITIONS` and
    :data:`CALLS` are missing from a store no write of this version has reached yet."""
    return (
        conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone() is not None
    )
