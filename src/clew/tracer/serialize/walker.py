"""The slow path: a pure-Python walker for what ``pydantic_core`` must not see.

It writes JSON for any value — iterators (as their repr, never consumed), cycles, deep
nesting, hostile objects, huge containers — redacting secret-named keys as it goes, and stops
once the output cannot be kept.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Iterable

from clew.errors import SerializationFull

from . import _common
from ._common import (
    _LEAF_TYPES,
    _SEQUENCE_TYPES,
    MAX_DEPTH,
    _fallback,
    _iterate,
    _json_string,
    _safe_repr,
    _type_name,
)
from .redaction import _REDACTED_JSON, _WINDOW_SLACK, REDACTED, _bounded, _redact_text
from .secrets import _dataclass_fields, _secret_positions, is_secret_name

# Bound by assignment, not imported: see the same line in __init__.py.
_SERIALIZER = _common._SERIALIZER

_CYCLE_JSON = '"<cycle>"'
_MAX_DEPTH_JSON = '"<max depth>"'


class _Walker:
    """Writes JSON for any value, redacting secret-named keys, up to ``capacity`` characters."""

    __slots__ = ("active", "capacity", "parts", "size")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.parts: list[str] = []
        self.size = 0
        self.active: set[int] = set()

    def put(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.size > self.capacity:
            raise SerializationFull

    def put_string(self, text: str) -> None:
        room = self.capacity - self.size
        if len(text) > room:
            text = text[: max(room, 0) + 1]
        self.put(_json_string(text))

    def put_bytes(self, data: bytes | bytearray) -> None:
        room = self.capacity - self.size
        self.put_string(bytes(data[: max(room, 0) + 1]).decode("utf-8", "backslashreplace"))

    def emit(self, value: object, depth: int) -> None:
        kind = type(value)
        if type(value) is str:
            self.put_string(value)
        elif value is None:
            self.put("null")
        elif kind is bool:
            self.put("true" if value else "false")
        elif type(value) is int or type(value) is float:
            self.put(_number(value))
        elif type(value) is bytes or type(value) is bytearray:
            self.put_bytes(value)
        elif kind in _LEAF_TYPES:
            self.put(_SERIALIZER.to_json(value).decode())
        elif depth >= MAX_DEPTH:
            self.put(_MAX_DEPTH_JSON)
        elif id(value) in self.active:
            self.put(_CYCLE_JSON)
        else:
            self.emit_compound(value, kind, depth)

    def emit_compound(self, value: object, kind: type, depth: int) -> None:
        mark = (len(self.parts), self.size)
        self.active.add(id(value))
        try:
            self.emit_by_kind(value, kind, depth)
        except Exception:  # foreign: a hostile object: replace just this node
            del self.parts[mark[0] :]
            self.size = mark[1]
            self.put_string(f"<unrepresentable {_type_name(value)}>")
        finally:
            self.active.discard(id(value))

    def emit_by_kind(self, value: object, kind: type, depth: int) -> None:
        fields = getattr(kind, "__pydantic_fields__", None)
        if hasattr(kind, "__next__"):
            self.put_string(_safe_repr(value))  # never consume an iterator
        elif isinstance(value, type):
            self.put_string(_safe_repr(value))
        elif isinstance(fields, dict):
            missing = object()
            items = [(name, getattr(value, name, missing)) for name in fields]
            extra = getattr(value, "__pydantic_extra__", None)
            if isinstance(extra, dict):
                items += dict.items(extra)
            self.emit_mapping([item for item in items if item[1] is not missing], depth)
        elif dataclasses.is_dataclass(value):
            names, _ = _dataclass_fields(kind)
            self.emit_mapping([(name, getattr(value, name)) for name in names], depth)
        elif isinstance(value, enum.Enum):
            self.emit(value.value, depth + 1)
        elif isinstance(value, dict):
            self.emit_mapping(dict.items(value), depth)
        elif isinstance(value, _SEQUENCE_TYPES):
            secret = _secret_positions(kind)
            elements = _iterate(value)
            if secret:  # a named tuple: its secret fields are unlabelled in the array
                elements = iter([REDACTED if i in secret else x for i, x in enumerate(elements)])
            self.emit_sequence(elements, depth)
        elif isinstance(value, str):
            self.put_string(str.__str__(value))
        elif isinstance(value, int | float):
            self.put(_number(value))
        elif isinstance(value, bytes | bytearray):
            self.put_bytes(value)
        elif hasattr(value, "__dataclass_fields__") or hasattr(value, "__pydantic_validator__"):
            self.put_string(_safe_repr(value))  # pretends to be a dataclass or model
        else:
            self.emit_other(value, depth)

    def emit_other(self, value: object, depth: int) -> None:
        if not callable(getattr(value, "tolist", None)):
            try:  # pydantic_core knows paths, IP addresses, URLs...; else it calls _fallback
                self.put(_SERIALIZER.to_json(value, fallback=_safe_repr, warnings=False).decode())
                return
            except Exception:  # foreign: pydantic_core cannot write it; the fallback can
                pass
        fallback = _fallback(value)
        if type(fallback) is list:
            self.emit_sequence(fallback, depth)  # walked, so that listed dicts are redacted
        else:
            self.emit(fallback, depth)

    def emit_mapping(self, items: Iterable[tuple[object, object]], depth: int) -> None:
        self.put("{")
        first = True
        for key, item in items:
            name = _key_text(key)
            self.put(("" if first else ",") + _json_string(name) + ":")
            first = False
            if is_secret_name(name):
                self.put(_REDACTED_JSON)
            else:
                self.emit(item, depth + 1)
        self.put("}")

    def emit_sequence(self, items: Iterable[object], depth: int) -> None:
        self.put("[")
        first = True
        for item in items:
            if not first:
                self.put(",")
            first = False
            self.emit(item, depth + 1)
        self.put("]")


def _number(value: int | float) -> str:
    if isinstance(value, float):
        if math.isfinite(value):
            return float.__repr__(value)
        return '"NaN"' if math.isnan(value) else '"Infinity"' if value > 0 else '"-Infinity"'
    try:
        return int.__repr__(value)
    except ValueError:  # more digits than int->str conversion allows
        return f'"<int of {value.bit_length()} bits>"'


def _key_text(key: object) -> str:
    if isinstance(key, str):
        return str.__str__(key)
    if key is None or isinstance(key, bool):
        return "None" if key is None else "true" if key else "false"  # as pydantic_core
    if isinstance(key, int | float):
        return _number(key).strip('"')
    return _safe_repr(key)


def _walk(value: object, limit: int) -> str:
    """Write ``value`` with the walker, then redact and bound the text as the fast path does."""
    walker = _Walker(limit + _WINDOW_SLACK)
    try:
        walker.emit(value, 0)
    except SerializationFull:
        text = _redact_text("".join(walker.parts), keys=False)
        return _bounded(text, limit, walker.size, exact=False)
    return _bounded(_redact_text("".join(walker.parts), keys=False), limit)
