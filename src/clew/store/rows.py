"""Rows of the trace store: made from finished spans or from records, read back as records.

A span's row holds its attributes as JSON and its own fields as columns (see
:mod:`clew.store.schema`); :func:`record_of_row` rebuilds its record with the code that
:func:`~clew.log_record.span_to_record` runs, so the two agree field for field. Making
the row straight from the span skips building, and then storing, a record that repeats most of
its attributes: the exporter's path costs a fraction of ``span_to_record`` and the row is about
a third smaller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from operator import itemgetter
from typing import Any, TypeAlias

import pydantic_core
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from clew import attributes as a
from clew.log_record import (
    RECORD_FIELDS,
    apply_attributes,
    attributes_of,
    iso_timestamp,
    log_trace_id_of,
    root_trace_id_of,
)
from clew.store.schema import KEY_OFFSET, SPAN_COLUMNS, root_key, span_key

__all__ = ["READ_COLUMNS", "Rows", "record_of_row", "rows_of_records", "rows_of_spans"]

Rows: TypeAlias = tuple[
    list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]
]
"""The ``spans`` rows (in :data:`~clew.store.schema.SPAN_COLUMNS` order), ``span_tags`` rows
and ``span_scores`` rows of a batch."""


def _score_row(
    attrs: Mapping[str, Any], start: int | None, root: str, trace: str, parent: str | None
) -> tuple[Any, ...]:
    """The ``span_scores`` row of a score span (its attributes name the score)."""
    return (
        str(attrs[a.CLEW_SCORE_NAME]),
        start,
        root,
        trace,
        parent,
        _number(attrs.get(a.CLEW_SCORE_VALUE)),
        _text(attrs.get(a.CLEW_SCORE_SOURCE)),
    )


READ_COLUMNS = SPAN_COLUMNS[SPAN_COLUMNS.index("root_trace_id") : SPAN_COLUMNS.index("fields") + 1]
"""The columns :func:`record_of_row` takes, in order."""


def _number(value: Any) -> float | None:
    # type() rather than isinstance(): bool is an int, and this runs five times per span.
    return value if type(value) in (int, float) else None


def _text(value: Any) -> str | None:
    return value if value is None or type(value) is str else str(value)


_NOT_STORED: set[str] = set(a.CONVENTION_KEYS)


def _json(value: Any, exclude: set[str] | None = None) -> str:
    return pydantic_core.to_json(value, inf_nan_mode="null", fallback=str, exclude=exclude).decode()


def _stored_attributes(attrs: dict[str, Any]) -> str:
    """The JSON of a span's attributes as the store keeps them: without the copies made for
    other backends (``input.value``, ``langfuse.*``…: see :data:`clew.attributes.CONVENTION_KEYS`),
    which would double the content on disk; the record read back leaves them out anyway."""
    if a.CLEW_METADATA in attrs:  # Langfuse's copies of the metadata, one key each
        prefix = a.LANGFUSE_OBSERVATION_METADATA
        for key in [k for k in attrs if k.startswith(prefix)]:
            del attrs[key]
    return _json(attrs, _NOT_STORED)


def _first(*values: Any) -> Any:
    """The first value that is not None (SQL's ``coalesce``)."""
    return next((value for value in values if value is not None), None)


# What an llm_calls row copies from its spans row (the other columns come from attributes).
_CALL_COLUMNS = itemgetter(
    *(
        SPAN_COLUMNS.index(name)
        for name in (
            "start_ns",
            "root_trace_id",
            "trace_id",
            "project_name",
            "input_tokens",
            "output_tokens",
            "cost",
        )
    )
)


def _call_row(
    row: tuple[Any, ...], model: Any, request_model: Any, provider: Any
) -> tuple[Any, ...] | None:
    """The ``llm_calls`` row of a ``spans`` row (see :data:`~clew.store.schema.CALLS`), if the
    span names a model or carries tokens or a cost."""
    start, root, trace, project, tokens_in, tokens_out, cost = _CALL_COLUMNS(row)
    if start is None or (
        model is None and tokens_in is None and tokens_out is None and cost is None
    ):
        return None
    model, request_model, provider = _text(model), _text(request_model), _text(provider)
    return start, root, trace, project, model, request_model, provider, tokens_in, tokens_out, cost


def rows_of_spans(spans: Iterable[ReadableSpan], project_name: str | None = None) -> Rows:
    """The rows of finished spans, as :func:`~clew.log_record.span_to_record` sees them.

    Ids given as attributes (``clew.trace_id`` and the like) are stored as text.

    Args:
        spans: finished spans.
        project_name: recorded as ``project_name``; defaults to each span's ``service.name``.
    """
    span_rows: list[tuple[Any, ...]] = []
    tag_rows: list[tuple[Any, ...]] = []
    score_rows: list[tuple[Any, ...]] = []
    call_rows: list[tuple[Any, ...]] = []
    error_code = StatusCode.ERROR
    resource: object = None
    project = project_name
    for span in spans:
        attrs = attributes_of(span)  # a copy: the ids, held by columns, are popped from it
        ctx = span.context
        trace_int = ctx.trace_id if ctx is not None else 0
        span_int = ctx.span_id if ctx is not None else 0
        root = attrs.pop(a.CLEW_ROOT_TRACE_ID, None)
        if root:
            root = str(root)
            rkey = root_key(root)
        else:
            root = root_trace_id_of(trace_int)
            rkey = (trace_int >> 96) - KEY_OFFSET  # == root_key(root), without parsing it
        trace = attrs.pop(a.CLEW_TRACE_ID, None)
        if trace:
            trace = str(trace)
            skey = span_key(trace)
        else:
            trace = log_trace_id_of(trace_int, span_int)
            skey = (span_int & 0xFFFFFFFF) - KEY_OFFSET
        parent = attrs.pop(a.CLEW_PARENT_TRACE_ID, None)
        if parent:
            parent = str(parent)
        elif (up := span.parent) is not None and up.is_valid:
            parent = log_trace_id_of(up.trace_id, up.span_id)
        else:
            parent = None
        if project_name is None and span.resource is not resource:
            resource = span.resource
            project = str(span.resource.attributes.get("service.name", "default"))
        status = span.status
        failed = status.status_code is error_code
        start = span.start_time
        span_rows.append(
            (
                rkey,
                skey,
                root,
                trace,
                parent,
                span.name,
                start,
                span.end_time,
                "error" if failed else "success",
                status.description if failed else None,
                _text(attrs.get(a.CLEW_PROJECT_NAME)) or project,
                _stored_attributes(attrs),
                None,
                _number(attrs.get(a.CLEW_DEPTH, 0)),
                _text(attrs.get(a.CLEW_END_USER_IDENTIFIER)),
                _text(attrs.get(a.CLEW_SESSION_ID)),
                _number(attrs.get(a.GEN_AI_USAGE_INPUT_TOKENS)),
                _number(attrs.get(a.GEN_AI_USAGE_OUTPUT_TOKENS)),
                _number(attrs.get(a.GEN_AI_USAGE_COST_AMOUNT)),
            )
        )
        requested = attrs.get(a.GEN_AI_REQUEST_MODEL)
        call = _call_row(
            span_rows[-1],
            _first(attrs.get(a.GEN_AI_RESPONSE_MODEL), requested),
            requested,
            attrs.get(a.GEN_AI_PROVIDER_NAME),
        )
        if call is not None:
            call_rows.append(call)
        tags = attrs.get(a.CLEW_TAGS)
        if tags:
            for tag in tags:
                tag_rows.append((str(tag), start, root, trace))
        if a.CLEW_SCORE_NAME in attrs:
            score_rows.append(_score_row(attrs, start, root, trace, parent))
    return span_rows, tag_rows, score_rows, call_rows


def _ns(timestamp: Any) -> int | None:
    if not isinstance(timestamp, str):
        return None
    try:
        # Microseconds are exact in a float of seconds since the epoch; nanoseconds are not.
        return round(datetime.fromisoformat(timestamp).timestamp() * 1e6) * 1000
    except ValueError:
        return None


def rows_of_records(records: Iterable[Mapping[str, Any]]) -> Rows:
    """The rows of span records (see :func:`~clew.log_record.span_to_record`).

    Every field that no column holds exactly is kept as JSON, so :func:`record_of_row` gives
    the record back as it was (with ``None`` for the fields it did not have).
    """
    span_rows: list[tuple[Any, ...]] = []
    tag_rows: list[tuple[Any, ...]] = []
    score_rows: list[tuple[Any, ...]] = []
    call_rows: list[tuple[Any, ...]] = []
    for record in records:
        trace = str(record["trace_id"])
        root = str(record.get("root_trace_id") or trace)
        parent = record.get("parent_trace_id")
        columns = {
            "trace_id": trace,
            "root_trace_id": root,
            "parent_trace_id": str(parent) if parent else None,
            "name": str(record.get("name") or ""),
            "status": "error" if record.get("status") == "error" else "success",
            "error": _text(record.get("error")),
            "project_name": _text(record.get("project_name")),
        }
        fields = {k: v for k, v in record.items() if k not in columns}
        for field, column in columns.items():
            value = record.get(field)
            if type(value) is not type(column) or value != column:
                fields[field] = value
        start = _ns(record.get("start_timestamp"))
        latency = _number(record.get("latency"))
        end: int | None
        if start is not None and latency is not None:
            end = start + round(latency * 1e9)  # as exact as parsing end_timestamp, and cheaper
        else:
            end = _ns(record.get("end_timestamp"))
        span_rows.append(
            (
                root_key(root),
                span_key(trace),
                root,
                trace,
                columns["parent_trace_id"],
                columns["name"],
                start,
                end,
                columns["status"],
                columns["error"],
                columns["project_name"],
                None,
                _json(fields),
                _number(record.get("depth")),
                _text(record.get("end_user_identifier")),
                _text(record.get("session_id")),
                _number(record.get("input_tokens")),
                _number(record.get("output_tokens")),
                _number(record.get("cost")),
            )
        )
        model = fields.get("model")
        call = _call_row(span_rows[-1], model, model, fields.get("provider"))
        if call is not None:
            call_rows.append(call)
        for tag in record.get("tags") or ():
            tag_rows.append((str(tag), start, root, trace))
        attrs = record.get("attributes")
        if isinstance(attrs, Mapping) and a.CLEW_SCORE_NAME in attrs:
            score_rows.append(_score_row(attrs, start, root, trace, columns["parent_trace_id"]))
    return span_rows, tag_rows, score_rows, call_rows


def record_of_row(row: tuple[Any, ...]) -> dict[str, Any]:
    """The record of a ``spans`` row selected as :data:`READ_COLUMNS`."""
    root, trace, parent, name, start, end, status, error, project, attributes, fields = row
    record: dict[str, Any] = dict.fromkeys(RECORD_FIELDS)
    record["trace_id"] = trace
    record["parent_trace_id"] = parent
    record["root_trace_id"] = root
    record["name"] = name
    record["status"] = status
    record["error"] = error
    record["project_name"] = project
    if fields is not None:  # a record written whole
        record.update(pydantic_core.from_json(fields))
        return record
    record["start_timestamp"] = iso_timestamp(start)
    record["end_timestamp"] = iso_timestamp(end)
    if start is not None and end is not None:
        record["latency"] = round((end - start) / 1e9, 9)
    apply_attributes(record, pydantic_core.from_json(attributes))
    return record
