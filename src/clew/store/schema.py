"""The SQLite schema of the local trace store and the statements that write it.

Schema version 1 (kept in ``PRAGMA user_version``):

- ``spans``: one row per span, keyed by ``(root_trace_id, trace_id)``, holding the whole record
  as JSON plus the columns that queries filter and sort on.
- ``span_tags``: one row per (tag, span), clustered by tag then start time.

Trace ids are random, so every index keyed by them costs one page write per trace per batch,
wherever the trace lands in the index. The schema keeps exactly one such index, the primary
key (spans of one trace sit together in it); every other index leads with a start time or a
filter value followed by a start time, so a batch appends to the end of it. "The newest
traces" is a walk backwards through these time-ordered indexes (see
:mod:`clew.store.queries`), so no per-trace summary table has to be updated on each write.

A later version adds a migration step keyed by the old ``user_version``.
"""

from __future__ import annotations

from typing import Final

SCHEMA_VERSION: Final = 1
"""The schema this module reads and writes, kept in ``PRAGMA user_version``."""

SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS spans (
        root_trace_id TEXT NOT NULL,
        trace_id TEXT NOT NULL,
        parent_trace_id TEXT,
        name TEXT NOT NULL,
        start_time REAL,
        end_time REAL,
        status TEXT NOT NULL,
        depth INTEGER,
        end_user_identifier TEXT,
        session_id TEXT,
        project_name TEXT,
        input_tokens INTEGER,
        output_tokens INTEGER,
        cost REAL,
        record TEXT NOT NULL,
        PRIMARY KEY (root_trace_id, trace_id)
    )""",
    # Not covering (no root_trace_id): the walks read it from the row, and rows of recent
    # spans are adjacent. Adding it makes every insert about a quarter slower.
    "CREATE INDEX IF NOT EXISTS spans_start ON spans (start_time)",
    "CREATE INDEX IF NOT EXISTS spans_user ON spans (end_user_identifier, start_time)"
    " WHERE end_user_identifier IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS spans_session ON spans (session_id, start_time)"
    " WHERE session_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS spans_errors ON spans (start_time) WHERE status = 'error'",
    # A trace is listed under every tag ever written for one of its spans: rewriting a span
    # with other tags adds rows and removes none (spans do not change once they ended).
    """CREATE TABLE IF NOT EXISTS span_tags (
        tag TEXT NOT NULL,
        start_time REAL,
        root_trace_id TEXT NOT NULL,
        trace_id TEXT NOT NULL,
        PRIMARY KEY (tag, start_time, root_trace_id, trace_id)
    ) WITHOUT ROWID""",
)

INSERT_SPAN: Final = (
    "INSERT OR REPLACE INTO spans (root_trace_id, trace_id, parent_trace_id, name, start_time,"
    " end_time, status, depth, end_user_identifier, session_id, project_name, input_tokens,"
    " output_tokens, cost, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_TAG: Final = (
    "INSERT OR IGNORE INTO span_tags (tag, start_time, root_trace_id, trace_id) VALUES (?, ?, ?, ?)"
)
