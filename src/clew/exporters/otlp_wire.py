"""The OTLP ``ExportTraceServiceRequest``, written in the protobuf wire format straight from spans.

The official encoder (``encode_spans`` of ``opentelemetry-exporter-otlp-proto-common``) builds
a protobuf object per span, attribute and value, then serializes them: about 100 µs per typical
LLM span on the 2-core dev machine, which capped an export worker near 10,000 spans/s. This
module writes the same bytes directly, about ten times faster (``benchmarks/export.py``):

- a message is a list of ``bytes`` parts joined once, each length computed from its parts;
- an attribute key's ``KeyValue`` prefix is encoded once, and so is a whole attribute whose value
  is a short string or a one-string tuple (models, providers, operation names, finish reasons
  recur from span to span);
- a resource or instrumentation scope is encoded once per object (both are immutable);
- the SDK's span classes are read through their fields rather than their properties, which copy
  attributes, events and links on every read; only classes that override none of those
  properties, and this module is the only place clew's export path does it.

The bytes equal the official ``encode_spans(spans).SerializePartialToString()`` (the property
tests in ``tests/exporters/test_otlp_wire.py`` compare them), quirks included: spans are grouped
by equal resource, then equal scope, in order of first appearance; a ``None`` value is an empty
``AnyValue``; an attribute that cannot be encoded (an unsupported type, an integer outside int64,
a lone surrogate) is logged and left out; ``flags`` has the HAS_IS_REMOTE bit, and IS_REMOTE for
a remote parent or link; a link's trace state is not written; the status message is whatever the
status's description is (the API keeps one for ``ERROR`` only).

Field numbers are those of opentelemetry-proto's ``trace/v1/trace.proto``,
``common/v1/common.proto`` and ``resource/v1/resource.proto``, written in field-number order
as protobuf writes them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from operator import index
from struct import Struct
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, _Span
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.span import DEFAULT_TRACE_STATE

__all__ = ["encode_trace_request"]

_logger = logging.getLogger(__name__)

_FIXED64 = Struct("<Q").pack
_TIMES = Struct("<BQBQ").pack  # Span.start_time_unix_nano (7) and end_time_unix_nano (8)
_DOUBLE = Struct("<d").pack
_IDS = Struct(">2sQQ2sQ").pack  # trace_id (1) and span_id (2) of a Span or a Link
_LOW64 = 2**64 - 1
_INT64 = range(-(2**63), 2**63)
_CACHE_LIMIT = 4096
"""Entries a cache (keys, short attributes, resources, scopes) holds before it starts over."""
_SHORT = 128
"""String values shorter than this (in characters) are cached with their key."""
_CLASSES_KEPT = 256
"""Classes a per-class decision is kept for (clew makes span classes per tracer set-up)."""


def _slow_varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_VARINTS = tuple(_slow_varint(n) for n in range(4096))  # ~180 kB; most lengths hit it


def _varint(n: int) -> bytes:
    """``n`` (0 ≤ n < 2**64) as a protobuf varint."""
    return _VARINTS[n] if 0 <= n < 4096 else _slow_varint(n)


def _int64(n: int) -> bytes:
    """An int64 varint: a negative ``n`` is its 64-bit two's complement, ten bytes."""
    if n not in _INT64:
        raise ValueError(f"Value out of range: {n}")
    return _varint(n & _LOW64)


def _uint32(n: int) -> bytes:
    if not 0 <= n < 2**32:
        raise ValueError(f"Value out of range: {n}")
    return _varint(n)


def _utf8(text: str | bytes) -> bytes:
    """A string field's bytes: protobuf takes a ``str``, or ``bytes`` that are valid UTF-8."""
    if isinstance(text, bytes):
        text.decode()
        return text
    return str.encode(text)


def _field(tag: bytes, body: bytes) -> bytes:
    """A length-delimited field: ``tag``, the length of ``body``, ``body``."""
    size = len(body)
    return tag + (_VARINTS[size] if size < 4096 else _slow_varint(size)) + body


def _string(tag: bytes, text: str | None) -> bytes:
    """A string field, or nothing for ``None`` and ``""`` (proto3 leaves defaults out)."""
    if text is None:
        return b""
    data = _utf8(text)
    return _field(tag, data) if data else b""


class _IsSubclass(dict[type, bool]):
    """Whether a class derives from ``base``, decided once per class: ABC checks are slow."""

    def __init__(self, base: type) -> None:
        super().__init__()
        self.base = base

    def __missing__(self, cls: type) -> bool:
        if len(self) >= _CLASSES_KEPT:  # classes made per tracer come and go
            self.clear()
        result = self[cls] = issubclass(cls, self.base)
        return result


_BOUNDED_ATTRIBUTES = _IsSubclass(BoundedAttributes)
_BOUNDED_LIST = _IsSubclass(BoundedList)


# --- attributes: KeyValue and AnyValue ----------------------------------------------------------

_KEYS: dict[str, bytes] = {}
"""A key's ``KeyValue.key`` field followed by the ``KeyValue.value`` tag."""
_SHORT_STRINGS: dict[tuple[str, str], bytes] = {}
_SHORT_TUPLES: dict[tuple[str, tuple[str]], bytes] = {}


def _any_value(value: Any) -> bytes:
    """The body of an ``AnyValue``, types checked in the official encoder's order.

    Raises:
        ValueError, TypeError, UnicodeEncodeError: where the official encoder fails.
    """
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"  # a oneof member: False is written too
    if isinstance(value, str):
        return _field(b"\x0a", str.encode(value))
    if isinstance(value, int):
        return b"\x18" + _int64(index(value))
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join([_field(b"\x0a", _any_value(v)) for v in value]))
    if isinstance(value, Mapping):
        entries = [_field(b"\x0a", _key_value(str(k), v)) for k, v in value.items()]
        return _field(b"\x32", b"".join(entries))
    raise TypeError(f"Invalid type {type(value)} of value {value}")


_SMALL_INT = (b"\x02\x18", b"\x03\x18")
"""The length and tag of an ``AnyValue.int_value`` below 0x80, and below 0x4000."""


def _key(key: str) -> bytes:
    """Encode and keep a key's ``KeyValue.key`` field and the ``KeyValue.value`` tag."""
    prefix = _string(b"\x0a", key) + b"\x12"
    if len(_KEYS) >= _CACHE_LIMIT:
        _KEYS.clear()
    _KEYS[key] = prefix
    return prefix


def _key_value(key: str, value: Any) -> bytes:
    """The body of a ``KeyValue``."""
    prefix = _KEYS.get(key) or _key(key)
    kind = type(value)  # the common exact types first, then the official order
    body: bytes
    if kind is str:
        data = value.encode()
        size = len(data)
        body = b"\x0a" + (_VARINTS[size] if size < 4096 else _slow_varint(size)) + data
    elif kind is int:
        body = b"\x18" + (_VARINTS[value] if 0 <= value < 4096 else _int64(value))
    elif kind is float:
        body = b"\x21" + _DOUBLE(value)
    else:
        body = _any_value(value)
    size = len(body)
    return prefix + (_VARINTS[size] if size < 4096 else _slow_varint(size)) + body


def _remember(cache: dict[Any, bytes], key: str, value: Any) -> bytes:
    """A ``KeyValue`` with its length first, kept in ``cache``."""
    entry = _field(b"", _key_value(key, value))
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key, value] = entry
    return entry


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None, out: list[bytes]) -> None:
    """Append each attribute to ``out`` as a ``KeyValue`` field numbered by ``tag``.

    An attribute the official encoder cannot encode is logged and left out, as it does.
    """
    if _BOUNDED_ATTRIBUTES[type(attributes)]:
        attributes = attributes._dict  # type: ignore[union-attr]  # what items() reads
    if not attributes:
        return
    keys, strings, tuples, varints = _KEYS, _SHORT_STRINGS, _SHORT_TUPLES, _VARINTS
    for key, value in attributes.items():
        kind = type(value)
        try:
            # Equal values of these exact types have equal encodings (unlike 1 == 1.0 == True).
            if kind is str and len(value) < _SHORT:
                out += (tag, strings.get((key, value)) or _remember(strings, key, value))
                continue
            if (
                kind is tuple
                and len(value) == 1
                and type(value[0]) is str
                and len(value[0]) < _SHORT
            ):
                out += (tag, tuples.get((key, value)) or _remember(tuples, key, value))
                continue
            if kind is int and 0 <= value < 4096:  # token counts, orders, depths
                entry = (keys.get(key) or _key(key)) + _SMALL_INT[value >= 0x80] + varints[value]
            else:
                entry = _key_value(key, value)
        except Exception as error:  # foreign: a value the official encoder drops too, logged
            _logger.exception("Failed to encode key %s: %s", key, error)
            continue
        size = len(entry)
        out += (tag + (varints[size] if size < 4096 else _slow_varint(size)), entry)


# --- spans --------------------------------------------------------------------------------------

_READERS = (  # ReadableSpan's properties that _span and _grouped read through fields instead
    "context",
    "parent",
    "name",
    "kind",
    "start_time",
    "end_time",
    "status",
    "attributes",
    "events",
    "links",
    "dropped_attributes",
    "dropped_events",
    "dropped_links",
    "resource",
    "instrumentation_scope",
)


class _Plain(dict[type, bool]):
    """Whether a span class reads its fields as the SDK's spans do (no reader overridden)."""

    def __missing__(self, cls: type) -> bool:
        if len(self) >= _CLASSES_KEPT:
            self.clear()
        plain = issubclass(cls, ReadableSpan) and all(
            getattr(cls, name) is getattr(ReadableSpan, name) for name in _READERS
        )
        plain = plain and getattr(cls, "get_span_context", None) in (
            ReadableSpan.get_span_context,
            _Span.get_span_context,
        )
        self[cls] = plain
        return plain


_PLAIN = _Plain()

# Span.kind (6): SpanKind's value plus one, SPAN_KIND_INTERNAL = 1 ... SPAN_KIND_CONSUMER = 5.
# Keyed by identity: an Enum hashes in Python.
_KINDS = {id(kind): b"\x30" + _VARINTS[kind.value + 1] for kind in SpanKind}
_STATUSES = {  # the status field of a status without a message
    id(code): _field(b"\x7a", b"\x18" + _VARINTS[code.value] if code.value else b"")
    for code in StatusCode
}
# Span.flags (16) and Link.flags (6) are fixed32: SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK (0x100),
# plus SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK (0x200) when the parent or linked context is remote.
_SPAN_FLAGS, _SPAN_FLAGS_REMOTE = b"\x85\x01\x00\x01\x00\x00", b"\x85\x01\x00\x03\x00\x00"
_LINK_FLAGS, _LINK_FLAGS_REMOTE = b"\x35\x00\x01\x00\x00", b"\x35\x00\x03\x00\x00"


def _span(span: ReadableSpan) -> bytes:
    """The body of one ``Span`` message."""
    if _PLAIN[type(span)]:  # what the properties return, without their copies
        context, parent, name, kind = span._context, span._parent, span._name, span._kind
        start, end, status = span._start_time, span._end_time, span._status
        attributes, events, links = span._attributes, span._events, span._links
        dropped_attributes = dropped_events = dropped_links = 0
        if _BOUNDED_ATTRIBUTES[type(attributes)]:
            dropped_attributes = attributes.dropped  # type: ignore[union-attr]
        if _BOUNDED_LIST[type(events)]:
            events, dropped_events = events._dq, events.dropped  # type: ignore[attr-defined]
        if _BOUNDED_LIST[type(links)]:
            links, dropped_links = links._dq, links.dropped  # type: ignore[attr-defined]
    else:
        context, parent, name, kind = span.get_span_context(), span.parent, span.name, span.kind
        start, end, status = span.start_time, span.end_time, span.status
        attributes, events, links = span.attributes, span.events, span.links
        dropped_attributes = span.dropped_attributes
        dropped_events, dropped_links = span.dropped_events, span.dropped_links
    if context is None:  # the official encoder fails on it too
        raise ValueError(f"span {name!r} has no span context")
    trace_id = context.trace_id
    out = [_IDS(b"\x0a\x10", trace_id >> 64, trace_id & _LOW64, b"\x12\x08", context.span_id)]
    trace_state = context.trace_state
    if trace_state is not DEFAULT_TRACE_STATE and trace_state:
        text = ",".join([f"{key}={value}" for key, value in trace_state.items()])
        out.append(_string(b"\x1a", text))
    if parent:
        out.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
    if type(name) is not str:
        out.append(_string(b"\x2a", name))
    elif name:
        out.append(_field(b"\x2a", name.encode()))
    out.append(_KINDS[id(kind)])
    if start and end:
        out.append(_TIMES(0x39, start, 0x41, end))
    elif start:
        out.append(b"\x39" + _FIXED64(start))
    elif end:
        out.append(b"\x41" + _FIXED64(end))
    _attributes(b"\x4a", attributes, out)
    if dropped_attributes:
        out.append(b"\x50" + _uint32(dropped_attributes))
    for event in events:
        out.append(_field(b"\x5a", _event(event)))
    if dropped_events:
        out.append(b"\x60" + _uint32(dropped_events))
    for link in links:
        out.append(_field(b"\x6a", _link(link)))
    if dropped_links:
        out.append(b"\x70" + _uint32(dropped_links))
    if status is not None:
        out.append(_status(status))
    out.append(_SPAN_FLAGS_REMOTE if parent and parent.is_remote else _SPAN_FLAGS)
    return b"".join(out)


def _event(event: Event) -> bytes:
    out = [b"\x09" + _FIXED64(event.timestamp)] if event.timestamp else []
    out.append(_string(b"\x12", event.name))
    _attributes(b"\x1a", event.attributes, out)
    if dropped := event.dropped_attributes:
        out.append(b"\x20" + _uint32(dropped))
    return b"".join(out)


def _link(link: Link) -> bytes:
    """A ``Span.Link``: the official encoder writes no trace state for it."""
    context = link.context
    trace_id = context.trace_id
    out = [_IDS(b"\x0a\x10", trace_id >> 64, trace_id & _LOW64, b"\x12\x08", context.span_id)]
    _attributes(b"\x22", link.attributes, out)
    if dropped := link.dropped_attributes:
        out.append(b"\x28" + _uint32(dropped))
    out.append(_LINK_FLAGS_REMOTE if context and context.is_remote else _LINK_FLAGS)
    return b"".join(out)


def _status(status: Status) -> bytes:
    """The ``Span.status`` field: ``message`` (2), then ``code`` (3)."""
    code, message = status.status_code, status.description
    if (message is None or message == "") and id(code) in _STATUSES:
        return _STATUSES[id(code)]
    value = index(code.value)
    return _field(b"\x7a", _string(b"\x12", message) + (b"\x18" + _int64(value) if value else b""))


# --- resources, scopes and the request ----------------------------------------------------------

_RESOURCES: dict[int, tuple[Resource, bytes]] = {}
_SCOPES: dict[int, tuple[InstrumentationScope | None, bytes, bytes]] = {}


def _resource(resource: Resource) -> bytes:
    """The ``ResourceSpans.resource`` field, kept per resource object."""
    cached = _RESOURCES.get(id(resource))
    if cached is not None and cached[0] is resource:
        return cached[1]
    parts: list[bytes] = []
    _attributes(b"\x0a", resource.attributes, parts)
    encoded = _field(b"\x0a", b"".join(parts))
    if len(_RESOURCES) >= _CACHE_LIMIT:
        _RESOURCES.clear()
    _RESOURCES[id(resource)] = (resource, encoded)  # holding the object keeps its id its own
    return encoded


def _scope(scope: InstrumentationScope | None) -> tuple[bytes, bytes]:
    """The ``ScopeSpans.scope`` and ``ScopeSpans.schema_url`` fields, kept per scope object."""
    cached = _SCOPES.get(id(scope))
    if cached is not None and cached[0] is scope:
        return cached[1], cached[2]
    if scope is None:
        head, tail = b"\x0a\x00", b""
    else:
        parts = [_string(b"\x0a", scope.name), _string(b"\x12", scope.version)]
        _attributes(b"\x1a", scope.attributes, parts)
        head, tail = _field(b"\x0a", b"".join(parts)), _string(b"\x1a", scope.schema_url)
    if len(_SCOPES) >= _CACHE_LIMIT:
        _SCOPES.clear()
    _SCOPES[id(scope)] = (scope, head, tail)
    return head, tail


_Groups = dict[Resource, dict[InstrumentationScope | None, list[ReadableSpan]]]


def _grouped(spans: Sequence[ReadableSpan]) -> _Groups:
    """Spans by equal resource, then by equal scope, each in order of first appearance.

    As the official encoder groups them (dicts keyed by the SDK objects, which compare by
    value). Hashing a resource serializes its attributes, so it is done once per object.
    """
    groups: _Groups = {}
    by_identity: dict[tuple[int, int], list[ReadableSpan]] = {}
    for span in spans:
        if _PLAIN[type(span)]:
            resource, scope = span._resource, span._instrumentation_scope or None
        else:
            resource, scope = span.resource, span.instrumentation_scope or None
        members = by_identity.get((id(resource), id(scope)))
        if members is None:
            members = groups.setdefault(resource, {}).setdefault(scope, [])
            by_identity[id(resource), id(scope)] = members
        members.append(span)
    return groups


def encode_trace_request(spans: Sequence[ReadableSpan]) -> bytes:
    """The serialized OTLP ``ExportTraceServiceRequest`` carrying ``spans``.

    Equal, byte for byte, to the official ``encode_spans(spans).SerializePartialToString()``.

    Example:
        >>> encode_trace_request([])
        b''
    """
    out: list[bytes] = []
    for resource, scopes in _grouped(spans).items():
        resource_parts = [_resource(resource)]
        for scope, members in scopes.items():
            head, tail = _scope(scope)
            scope_parts = [head]
            for span in members:
                body = _span(span)
                size = len(body)
                scope_parts += (b"\x12" + (_VARINTS[size] if size < 4096 else _varint(size)), body)
            scope_parts.append(tail)
            resource_parts += (b"\x12" + _varint(sum(map(len, scope_parts))), *scope_parts)
        resource_parts.append(_string(b"\x1a", resource.schema_url))
        out.append(b"\x0a" + _varint(sum(map(len, resource_parts))))
        out += resource_parts
    return b"".join(out)
