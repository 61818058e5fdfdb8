"""The seed's log record: its three ids, its fields, and how a finished span becomes one.

This is the vocabulary the tracer, the exporters and the store share (with
:mod:`clew.attributes`); it imports nothing else of clew.

The seed names three ids per log, and they map one-to-one onto OpenTelemetry ids:

- ``root_trace_id`` is the OpenTelemetry trace id written as a UUID.
- a span's ``trace_id`` is the UUID whose high 64 bits are the trace id's high 64 bits and whose
  low 64 bits are the span id. A root span gets span id = low 64 bits of the trace id, so for a
  root ``trace_id == root_trace_id``.
- ``parent_trace_id`` is the parent's ``trace_id``.

Every exporter that writes records (jsonl, sqlite, http, console) goes through
:func:`span_to_record`, so they agree field for field. It runs on the export thread, never on
the caller's.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode
from pydantic_core import from_json

from clew import attributes as a

__all__ = [
    "RECORD_FIELDS",
    "apply_attributes",
    "attributes_of",
    "iso_timestamp",
    "log_trace_id_of",
    "new_trace_id",
    "parse_uuid",
    "root_trace_id_of",
    "seed_provider",
    "span_id_from_log_trace_id",
    "span_to_record",
]

# -- ids --------------------------------------------------------------------------------------
_LOW64 = (1 << 64) - 1
_HIGH64 = _LOW64 << 64


def _uuid_text(value: int) -> str:
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def root_trace_id_of(otel_trace_id: int) -> str:
    """The seed ``root_trace_id`` for an OpenTelemetry trace id."""
    return _uuid_text(otel_trace_id)


def log_trace_id_of(otel_trace_id: int, otel_span_id: int) -> str:
    """The seed ``trace_id`` of the span ``otel_span_id`` in the trace ``otel_trace_id``."""
    return _uuid_text((otel_trace_id & _HIGH64) | otel_span_id)


def parse_uuid(value: str, field: str) -> int:
    """Parse a UUID-like id (with or without dashes, or 32 hex digits) into a 128-bit int.

    Raises:
        ValueError: naming ``field`` when the text is not a UUID.
    """
    try:
        return uuid.UUID(str(value)).int
    except (ValueError, TypeError, AttributeError):
        raise ValueError(
            f"{field} must be a UUID such as '0af76519-16cd-43dd-8448-eb211c80319c', got {value!r}"
        ) from None


def span_id_from_log_trace_id(otel_trace_id: int, log_trace_id: int) -> int | None:
    """The span id encoded in ``log_trace_id`` if it belongs to ``otel_trace_id``, else None."""
    if log_trace_id & _HIGH64 != otel_trace_id & _HIGH64:
        return None
    span_id = log_trace_id & _LOW64
    return span_id or None


def new_trace_id() -> int:
    """A random, valid trace id whose low 64 bits are non-zero (they become the root span id)."""
    while True:
        value = random.getrandbits(128)
        if value & _LOW64 and value >> 64:
            return value


# -- records ----------------------------------------------------------------------------------
_JSON_FIELDS = {
    a.CLEW_INPUTS: "inputs",
    a.CLEW_OUTPUT: "output",
    a.CLEW_METADATA: "metadata",
    a.CLEW_TARGET: "target",
}
_TEXT_FIELDS = {
    a.CLEW_END_USER_IDENTIFIER: "end_user_identifier",
    a.CLEW_SESSION_ID: "session_id",
    a.CLEW_DEPLOYMENT_ID: "deployment_id",
}
_INT_FIELDS = {
    a.GEN_AI_USAGE_INPUT_TOKENS: "input_tokens",
    a.GEN_AI_USAGE_OUTPUT_TOKENS: "output_tokens",
    a.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: "cache_read_input_tokens",
    # the convention's former name first, so the current one wins when a span has both
    a.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: "cache_creation_input_tokens",
    a.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: "cache_creation_input_tokens",
    a.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: "reasoning_tokens",
}
# The seed's provider name for each of the convention's well-known values clew writes.
_PROVIDER_NAMES = {value: name for name, value in a.GEN_AI_PROVIDER_NAMES.items()}
# Keys that become first-class record fields; everything else stays under "attributes".
_CONSUMED = {
    *_JSON_FIELDS,
    *_TEXT_FIELDS,
    *_INT_FIELDS,
    a.CLEW_TAGS,
    a.CLEW_DEPTH,
    a.CLEW_EXECUTION_ORDER,
    a.CLEW_TRACE_ID,
    a.CLEW_PARENT_TRACE_ID,
    a.CLEW_ROOT_TRACE_ID,
    *a.CONVENTION_KEYS,  # copies of the keys above, for other backends
}

RECORD_FIELDS = (
    "trace_id",
    "parent_trace_id",
    "root_trace_id",
    "name",
    "start_timestamp",
    "end_timestamp",
    "latency",
    "status",
    "error",
    "inputs",
    "output",
    "target",
    "tags",
    "metadata",
    "end_user_identifier",
    "session_id",
    "deployment_id",
    "project_name",
    "depth",
    "execution_order",
    "model",
    "provider",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
    "cost",
    "time_to_first_token",
    "attributes",
)
"""The keys of every record, in order."""


def iso_timestamp(ns: int | None) -> str | None:
    """Nanoseconds since the epoch as an ISO 8601 UTC timestamp with microseconds."""
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat()


def _loads(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return from_json(text)
    except ValueError:
        return text  # plain text: keep it as it was captured


_SCALARS = (str, int, float, bool)


def attributes_of(span: ReadableSpan) -> dict[str, Any]:
    """The span's attributes as a plain dict, cheaply.

    ``ReadableSpan.attributes`` is a read-only proxy over the SDK's ``BoundedAttributes``,
    whose every lookup runs Python code; reading its inner dict once is many times faster.
    """
    bounded = getattr(span, "_attributes", None)
    inner = getattr(bounded, "_dict", None)
    if type(inner) is dict:
        return dict(inner)
    return dict(span.attributes or {})


def _plain(value: Any) -> Any:
    if type(value) in _SCALARS:
        return value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def span_to_record(span: ReadableSpan, project_name: str | None = None) -> dict[str, Any]:
    """The log record of a finished span, with the seed's field names.

    Args:
        span: a finished span.
        project_name: recorded as ``project_name``; defaults to the resource's ``service.name``.
    """
    ctx = span.context
    attrs = attributes_of(span)
    trace_id_int = ctx.trace_id if ctx is not None else 0
    span_id = ctx.span_id if ctx is not None else 0
    parent = span.parent
    record: dict[str, Any] = dict.fromkeys(RECORD_FIELDS)
    record["trace_id"] = attrs.get(a.CLEW_TRACE_ID) or log_trace_id_of(trace_id_int, span_id)
    record["root_trace_id"] = attrs.get(a.CLEW_ROOT_TRACE_ID) or root_trace_id_of(trace_id_int)
    supplied_parent = attrs.get(a.CLEW_PARENT_TRACE_ID)
    if supplied_parent:
        record["parent_trace_id"] = supplied_parent
    elif parent is not None and parent.is_valid:
        record["parent_trace_id"] = log_trace_id_of(parent.trace_id, parent.span_id)
    record["name"] = span.name
    record["start_timestamp"] = iso_timestamp(span.start_time)
    record["end_timestamp"] = iso_timestamp(span.end_time)
    if span.start_time is not None and span.end_time is not None:
        record["latency"] = round((span.end_time - span.start_time) / 1e9, 9)
    is_error = span.status.status_code is StatusCode.ERROR
    record["status"] = "error" if is_error else "success"
    record["error"] = span.status.description if is_error else None
    if a.CLEW_PROJECT_NAME in attrs:  # a per-call project (a completion's project_name)
        project_name = str(attrs[a.CLEW_PROJECT_NAME])
    elif project_name is None:
        project_name = str(span.resource.attributes.get("service.name", "default"))
    record["project_name"] = project_name
    apply_attributes(record, attrs)
    return record


def seed_provider(value: Any) -> Any:
    """The seed's provider name (``azure``) for a span's ``gen_ai.provider.name``, which holds
    the convention's well-known value (``azure.ai.openai``), or clew's name in spans written
    before clew used them.

    Example:
        >>> seed_provider("azure.ai.openai"), seed_provider("azure"), seed_provider("openai")
        ('azure', 'azure', 'openai')
    """
    return _PROVIDER_NAMES.get(value, value) if type(value) is str else value


def apply_attributes(record: dict[str, Any], attrs: Mapping[str, Any]) -> None:
    """Fill the fields of ``record`` that come from span attributes.

    The trace store keeps a span's attributes rather than its record and rebuilds the record
    with this function when it is read, so both agree field for field.

    Args:
        record: a record with every key of :data:`RECORD_FIELDS`; the span's own fields (ids,
            name, timestamps, status, project) are already set and left alone.
        attrs: the span's attributes, or the same after a JSON round trip.
    """
    for key, field in _JSON_FIELDS.items():
        if key in attrs:
            record[field] = _loads(attrs[key])
    for key, field in _TEXT_FIELDS.items():
        if key in attrs:
            record[field] = attrs[key]
    for key, field in _INT_FIELDS.items():
        if key in attrs:
            record[field] = attrs[key]
    record["tags"] = list(attrs.get(a.CLEW_TAGS, ()))
    record["metadata"] = record["metadata"] or {}
    record["depth"] = attrs.get(a.CLEW_DEPTH, 0)
    record["execution_order"] = attrs.get(a.CLEW_EXECUTION_ORDER)
    record["model"] = attrs.get(a.GEN_AI_RESPONSE_MODEL) or attrs.get(a.GEN_AI_REQUEST_MODEL)
    record["provider"] = seed_provider(attrs.get(a.GEN_AI_PROVIDER_NAME))
    if record["input_tokens"] is not None or record["output_tokens"] is not None:
        record["total_tokens"] = (record["input_tokens"] or 0) + (record["output_tokens"] or 0)
    record["cost"] = attrs.get(a.GEN_AI_USAGE_COST_AMOUNT)
    first_chunk = attrs.get(a.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
    record["time_to_first_token"] = (
        attrs.get(a.CLEW_TIME_TO_FIRST_TOKEN) if first_chunk is None else first_chunk
    )
    kept = record["attributes"] = {k: _plain(v) for k, v in attrs.items() if k not in _CONSUMED}
    if a.CLEW_METADATA in attrs:  # Langfuse's copies of the metadata, one key each
        prefix = a.LANGFUSE_OBSERVATION_METADATA
        for key in [k for k in kept if k.startswith(prefix)]:
            del kept[key]
