"""The read side of the trace store: the newest traces, one trace, and id resolution.

Each function takes an open connection to a store with the current schema (see
:mod:`clew.store.schema`) and raises ``sqlite3.Error`` as is; :class:`~clew.store.TraceStore`
turns those into :class:`~clew.errors.StoreError`.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Any

from clew.errors import AmbiguousIdError
from clew.log_record import iso_timestamp
from clew.store.rows import READ_COLUMNS, record_of_row
from clew.store.schema import has_table, root_key, root_key_range, span_key
from clew.store.walks import Check, Window, narrowed, newest_roots, up_to

__all__ = [
    "MIN_PREFIX",
    "ScoreFilter",
    "TraceFilter",
    "TracePage",
    "Window",
    "normalize_id",
    "prefix_bounds",
    "resolve_root",
    "trace_page",
    "trace_records",
]

MIN_PREFIX = 8
"""The fewest hex digits accepted as an id prefix."""

# Each walk yields (root_trace_id, start_ns) of matching spans, newest first, from an index
# that leads with the start time (or the filter value, then the start time).
_OVER_SPANS = "SELECT root_trace_id, start_ns FROM spans "  # a walk that can take prefilters
_WALK_ALL = f"{_OVER_SPANS}ORDER BY start_ns DESC"
_WALK_TAG = "SELECT root_trace_id, start_ns FROM span_tags WHERE tag = ? ORDER BY start_ns DESC"
_WALK_USER = (
    "SELECT root_trace_id, start_ns FROM spans WHERE end_user_identifier = ? ORDER BY start_ns DESC"
)
_WALK_SESSION = (
    "SELECT root_trace_id, start_ns FROM spans WHERE session_id = ? ORDER BY start_ns DESC"
)
_WALK_ERRORS = (
    "SELECT root_trace_id, start_ns FROM spans WHERE status = 'error' ORDER BY start_ns DESC"
)
# LLM calls (and other spans naming a model) whose answering or requested model is this one.
_WALK_MODEL = (
    "SELECT root_trace_id, start_ns FROM llm_calls WHERE (model = ? OR request_model = ?)"
    " ORDER BY start_ns DESC"
)
_SCORE_OPS = ("<", "<=", ">", ">=", "=")
# The spans of one trace: its key leads the id index, and the key is a hash for ids that are
# not UUIDs, so the id is compared as well. Every query below takes (root_key, root_trace_id).
_OF_TRACE = "root_key = ? AND root_trace_id = ?"
# The unary + keeps SQLite on the id index (the trace's spans) rather than the filter's
# index (every span of that user or session).
_HAS_USER = f"SELECT 1 FROM spans WHERE {_OF_TRACE} AND +end_user_identifier = ? LIMIT 1"
_HAS_SESSION = f"SELECT 1 FROM spans WHERE {_OF_TRACE} AND +session_id = ? LIMIT 1"
_HAS_ERROR = f"SELECT 1 FROM spans WHERE {_OF_TRACE} AND +status = 'error' LIMIT 1"
_HAS_PROJECT = f"SELECT 1 FROM spans WHERE {_OF_TRACE} AND +project_name = ? LIMIT 1"
# A span's model: in its attributes (a span from the exporter) or its record (written whole).
_HAS_MODEL = (
    f"SELECT 1 FROM spans WHERE {_OF_TRACE} AND ?"
    " IN (json_extract(attributes, '$.\"gen_ai.request.model\"'),"
    " json_extract(attributes, '$.\"gen_ai.response.model\"'),"
    " json_extract(fields, '$.model')) LIMIT 1"
)
# Text search: a span's name, inputs, output or messages contain it (not the attribute names).
_TEXT_IN = (
    "name",
    "json_extract(attributes, '$.\"clew.inputs\"')",
    "json_extract(attributes, '$.\"clew.output\"')",
    "json_extract(attributes, '$.\"gen_ai.input.messages\"')",
    "json_extract(attributes, '$.\"gen_ai.output.messages\"')",
    "json_extract(fields, '$.inputs')",
    "json_extract(fields, '$.output')",
)
_HAS_TEXT = (
    f"SELECT 1 FROM spans WHERE {_OF_TRACE} AND ("
    + " OR ".join(f"{place} LIKE ? ESCAPE '\\'" for place in _TEXT_IN)
    + ") LIMIT 1"
)
_AGGREGATE = (
    "SELECT count(*), max(status = 'error'), min(start_ns), max(end_ns),"
    f" sum(input_tokens), sum(output_tokens), sum(cost) FROM spans WHERE {_OF_TRACE}"
)
# The same without the trace's score spans, which end after the trace (an eval runs later).
_AGGREGATE_UNSCORED = (
    f"{_AGGREGATE} AND trace_id NOT IN (SELECT trace_id FROM span_scores WHERE root_trace_id = ?)"
)
# The span a trace is named after: its real root if it was stored, else the earliest span
# (whose parent is then missing from the store).
_HEAD = (
    "SELECT name, project_name, end_user_identifier, session_id,"
    " coalesce(json_extract(attributes, '$.\"clew.tags\"'), json_extract(fields, '$.tags'))"
    f" FROM spans WHERE {_OF_TRACE}"
    " ORDER BY trace_id = root_trace_id DESC, parent_trace_id IS NULL DESC, start_ns, depth"
    " LIMIT 1"
)
# The model of a trace: its first LLM call's (a span with tokens).
_MODEL = (
    "SELECT coalesce(json_extract(attributes, '$.\"gen_ai.response.model\"'),"
    " json_extract(attributes, '$.\"gen_ai.request.model\"'), json_extract(fields, '$.model'))"
    f" FROM spans WHERE {_OF_TRACE} AND input_tokens IS NOT NULL ORDER BY start_ns LIMIT 1"
)
_RECORDS = (
    f"SELECT {', '.join(READ_COLUMNS)} FROM spans WHERE {_OF_TRACE}"
    " ORDER BY start_ns, depth, trace_id"
)


def _of_trace(root: str) -> tuple[int, str]:
    return root_key(root), root


def _has(sql: str, value: str) -> Check:
    return lambda conn, root: conn.execute(sql, (*_of_trace(root), value)).fetchone() is not None


def _has_error(conn: sqlite3.Connection, root: str) -> bool:
    return conn.execute(_HAS_ERROR, _of_trace(root)).fetchone() is not None


@dataclass(frozen=True, slots=True)
class TraceFilter:
    """What the viewer filters the trace list on, besides tag, user, session, status and
    score: the project, a model (requested or answering), and text in a span's name, inputs,
    output or messages."""

    project: str | None = None
    model: str | None = None
    text: str | None = None


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# A run of the characters JSON text keeps as they are, however deeply it is nested (a value
# that is itself JSON text, like clew.inputs): printable ASCII but the quote and the
# backslash. A span whose decoded text contains such a run has it in its raw columns too.
_KEPT_IN_JSON = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]+")
_RAW_TEXT = (
    "(name LIKE ? ESCAPE '\\' OR attributes LIKE ? ESCAPE '\\' OR fields LIKE ? ESCAPE '\\')"
)


def _kept_run(text: str) -> str:
    """The longest run of ``text`` that JSON keeps as it is (empty if none)."""
    return max(_KEPT_IN_JSON.findall(text), key=len, default="")


def _prefilters(extra: TraceFilter) -> list[tuple[str, tuple[Any, ...]]]:
    """Conditions on a span that every span making its trace match ``extra`` meets (and most
    others fail): a walk over ``spans`` carries them, so SQLite skips the rest in C, reading
    raw columns, and the checks then decide exactly.
    """
    found: list[tuple[str, tuple[Any, ...]]] = []
    if extra.project is not None:
        found.append(("project_name = ?", (extra.project,)))
    for text in (extra.model, extra.text):
        run = _kept_run(text or "")
        if run:
            found.append((_RAW_TEXT, (_like(run),) * 3))
    return found


def _extra_checks(extra: TraceFilter, walked_model: bool) -> list[Check]:
    checks: list[Check] = []
    if extra.project is not None:
        checks.append(_has(_HAS_PROJECT, extra.project))
    if extra.model is not None and not walked_model:
        checks.append(_has(_HAS_MODEL, extra.model))
    if extra.text:
        patterns = (_like(extra.text),) * len(_TEXT_IN)
        checks.append(
            lambda conn, root: (
                conn.execute(_HAS_TEXT, (*_of_trace(root), *patterns)).fetchone() is not None
            )
        )
    return checks


ScoreFilter = tuple[str, str | None, float | None]
"""A score filter: its name, and optionally an operator (``<``, ``<=``, ``>``, ``>=``, ``=``)
and a value: traces with a score of that name (whose value compares so)."""


def _score_condition(score: ScoreFilter) -> tuple[str, tuple[Any, ...]]:
    name, op, value = score
    if op is None:
        return "name = ?", (name,)
    if op not in _SCORE_OPS:
        raise ValueError(f"a score filter compares with one of {' '.join(_SCORE_OPS)}; got {op!r}")
    return f"name = ? AND value {op} ?", (name, value)


def _plan(
    tag: str | None,
    user: str | None,
    session: str | None,
    status: str | None,
    score: ScoreFilter | None = None,
    model: str | None = None,
) -> tuple[str, tuple[Any, ...], list[Check]]:
    """The most selective walk for the filters, and checks for the filters it leaves out.

    A score filter leads the walk unless a tag, session or user does (scores are few); then a
    ``model`` (given only where the store has ``llm_calls``: a walk over them decides it, and
    the caller leaves out its check).
    """
    walk: str
    params: tuple[Any, ...] = ()
    checks: list[Check] = []
    if tag is not None:
        walk, params = _WALK_TAG, (tag,)
    elif session is not None:
        walk, params = _WALK_SESSION, (session,)
    elif user is not None:
        walk, params = _WALK_USER, (user,)
    elif score is not None:
        where, params = _score_condition(score)
        score = None  # the walk filters on it
        walk = (
            f"SELECT root_trace_id, start_ns FROM span_scores WHERE {where} ORDER BY start_ns DESC"
        )
    elif model is not None:
        walk, params = _WALK_MODEL, (model, model)
    else:
        walk = _WALK_ERRORS if status == "error" else _WALK_ALL
    if score is not None:
        where, values = _score_condition(score)
        has_score = f"SELECT 1 FROM span_scores WHERE root_trace_id = ? AND {where} LIMIT 1"
        checks.append(
            lambda conn, root: conn.execute(has_score, (root, *values)).fetchone() is not None
        )
    if user is not None and walk is not _WALK_USER:
        checks.append(_has(_HAS_USER, user))
    if session is not None and walk is not _WALK_SESSION:
        checks.append(_has(_HAS_SESSION, session))
    if status == "error" and walk is not _WALK_ERRORS:
        checks.append(_has_error)
    elif status == "success":
        checks.append(lambda conn, root: not _has_error(conn, root))
    return walk, params, checks


def _summary(conn: sqlite3.Connection, root: str, scored: bool) -> dict[str, Any]:
    key = _of_trace(root)
    aggregate, params = (_AGGREGATE_UNSCORED, (*key, root)) if scored else (_AGGREGATE, key)
    count, has_error, first, last, input_tokens, output_tokens, cost = conn.execute(
        aggregate, params
    ).fetchone()
    name, project, user, session, tags = conn.execute(_HEAD, key).fetchone()
    model = conn.execute(_MODEL, key).fetchone()
    total = None
    if input_tokens is not None or output_tokens is not None:
        total = (input_tokens or 0) + (output_tokens or 0)
    return {
        "root_trace_id": root,
        "name": name,
        "start_timestamp": iso_timestamp(first),
        "start_ns": first,
        "latency": None if first is None or last is None else round((last - first) / 1e9, 6),
        "span_count": count,
        "status": "error" if has_error else "success",
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": total,
        "cost": cost,
        "project_name": project,
        "end_user_identifier": user,
        "session_id": session,
        "tags": json.loads(tags) if tags else [],
        "model": model[0] if model is not None else None,
        "scores": _scores(conn, root) if scored else {},
    }


@dataclass(frozen=True, slots=True)
class TracePage:
    """A page of the trace list.

    ``next`` is the :attr:`Window.before` of the following page (None at the end): the last
    trace's ``(start_ns, root_trace_id)`` when the page is full, else ``(start_ns, "")`` when a
    time budget ended the search early (``partial``): the page then holds the matching traces
    that started at ``start_ns`` or later, maybe fewer than asked for, maybe none.
    """

    traces: list[dict[str, Any]]
    next: tuple[int, str] | None
    partial: bool = False


def trace_page(
    conn: sqlite3.Connection,
    limit: int,
    *,
    tag: str | None = None,
    user: str | None = None,
    session: str | None = None,
    status: str | None = None,
    score: ScoreFilter | None = None,
    extra: TraceFilter | None = None,
    window: Window | None = None,
    budget: float | None = None,
) -> TracePage:
    """Summaries of the ``limit`` matching traces that started last, newest first, each with
    its ``scores`` (name → mean value) when the store keeps scores; with a ``budget``
    (seconds), the search stops about then, and the page says where it got to."""
    if limit <= 0:
        return TracePage([], None)
    scored = has_table(conn, "span_scores")
    if score is not None and not scored:
        return TracePage([], None)  # no score was ever stored here
    model = extra.model if extra is not None and has_table(conn, "llm_calls") else None
    walk, params, checks = _plan(tag, user, session, status, score, model)
    prefiltered = False
    if extra is not None:
        checks.extend(_extra_checks(extra, walk is _WALK_MODEL))
        if walk.startswith(_OVER_SPANS):
            for condition, values in _prefilters(extra):
                walk, params = narrowed(walk, params, condition, values)
                prefiltered = True
    deadline = None if budget is None else time.monotonic() + budget
    sliced = prefiltered and deadline is not None
    if window is not None and window.before is not None and not sliced:
        walk, params = up_to(walk, params, window.before[0])
    roots, stopped = newest_roots(conn, limit, walk, params, checks, window, deadline, sliced)
    found = [_summary(conn, root, scored) for root in roots]
    if len(found) == limit:
        return TracePage(found, (found[-1]["start_ns"], found[-1]["root_trace_id"]))
    if stopped is not None:
        return TracePage(found, (stopped, ""), partial=True)
    return TracePage(found, None)


def _scores(conn: sqlite3.Connection, root: str) -> dict[str, float]:
    rows = conn.execute(
        "SELECT name, avg(value) FROM span_scores WHERE root_trace_id = ? AND value IS NOT NULL"
        " GROUP BY name ORDER BY name",
        (root,),
    )
    return {str(name): float(value) for name, value in rows}


def trace_records(conn: sqlite3.Connection, root: str) -> list[dict[str, Any]]:
    """Every record of the trace ``root``, in start order."""
    return [record_of_row(row) for row in conn.execute(_RECORDS, _of_trace(root))]


def normalize_id(text: str) -> str:
    """The canonical text of a UUID-like id; other text comes back stripped, else unchanged."""
    text = text.strip()
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return text


def prefix_bounds(text: str) -> tuple[str, str] | None:
    """The range of canonical UUID texts starting with the hex digits ``text``, if it is some."""
    digits = text.strip().replace("-", "").lower()
    if not MIN_PREFIX <= len(digits) < 32 or any(c not in "0123456789abcdef" for c in digits):
        return None
    groups = ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))
    dashed = "-".join(digits[a:b] for a, b in groups if digits[a:b])
    return dashed, dashed[:-1] + chr(ord(dashed[-1]) + 1)


def resolve_root(conn: sqlite3.Connection, text: str) -> str | None:
    """The ``root_trace_id`` that ``text`` names, or None.

    ``text`` may be a root id in any spelling, a span's ``trace_id``, or a unique prefix.

    Raises:
        AmbiguousIdError: ``text`` is a prefix of several root ids.
    """
    wanted = normalize_id(text)
    if conn.execute(f"SELECT 1 FROM spans WHERE {_OF_TRACE} LIMIT 1", _of_trace(wanted)).fetchone():
        return wanted
    # A span's trace_id shares its root's high 64 bits (clew.log_record), so both its keys are
    # those of its own id.
    if prefix_bounds(wanted.replace("-", "")[:16]) is not None:
        found = conn.execute(
            "SELECT root_trace_id FROM spans WHERE root_key = ? AND span_key = ? AND trace_id = ?",
            (root_key(wanted), span_key(wanted), wanted),
        ).fetchone()
        if found is not None:
            return str(found[0])
    bounds = prefix_bounds(wanted)
    if bounds is None:
        return None
    matches = [
        str(root)
        for (root,) in conn.execute(
            "SELECT DISTINCT root_trace_id FROM spans WHERE root_key BETWEEN ? AND ?"
            " AND root_trace_id >= ? AND root_trace_id < ? LIMIT 6",
            (*root_key_range(wanted.replace("-", "").lower()), *bounds),
        )
    ]
    if len(matches) > 1:
        raise AmbiguousIdError(", ".join(matches[:5]) + (", …" if len(matches) > 5 else ""))
    return matches[0] if matches else None
