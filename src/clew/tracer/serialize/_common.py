"""Low-level pieces shared by the fast path, the walker and redaction.

The ``pydantic_core`` serializer and its fallback for objects it does not know, the types it
writes whole, and helpers that turn any value into text without raising.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import uuid
from collections.abc import Iterator, Sized
from json.encoder import encode_basestring

from pydantic_core import SchemaSerializer, core_schema

MAX_DEPTH = 64
"""Containers nested deeper than this are written as the string ``"<max depth>"``."""

# Objects with ``.tolist()`` (numpy arrays, array.array, ...) are listed up to this size;
# bigger ones fall back to their (summarising) repr.
_TOLIST_MAX_ITEMS = 100_000

_SERIALIZER = SchemaSerializer(
    core_schema.any_schema(), core_schema.CoreConfig(ser_json_inf_nan="strings")
)
# Values pydantic_core writes without looking inside (and that cannot hide a secret key).
_LEAF_TYPES: frozenset[type] = frozenset(
    {str, int, float, bool, type(None), bytes, bytearray, decimal.Decimal, uuid.UUID}
    | {datetime.datetime, datetime.date, datetime.time, datetime.timedelta}
)
_SEQUENCE_TYPES = (list, tuple, set, frozenset, collections.deque)


def _fallback(value: object) -> object:
    """What ``pydantic_core`` writes for a value it does not know: a list or a repr."""
    try:
        tolist = getattr(value, "tolist", None)
        if callable(tolist) and _list_size(value) <= _TOLIST_MAX_ITEMS:
            listed = tolist()
            if type(listed) in (list, int, float, bool, str):
                return listed
    except Exception:  # foreign: a broken tolist() or size
        pass
    return _safe_repr(value)


def _list_size(value: object) -> int:
    size = getattr(value, "size", None)
    if type(size) is int:
        return size
    return len(value) if isinstance(value, Sized) else _TOLIST_MAX_ITEMS + 1


def _safe_repr(value: object) -> str:
    try:
        text = repr(value)
        return str.__str__(text)
    except Exception:  # foreign: a broken __repr__
        return f"<unrepresentable {_type_name(value)}>"


def _type_name(value: object) -> str:
    try:
        name = type(value).__qualname__
        return str.__str__(name)[:100] if isinstance(name, str) else "object"
    except Exception:  # foreign: a hostile type
        return "object"


def _iterate(value: object) -> Iterator[object]:
    """Iterate a builtin container (or subclass) the C way, ignoring overridden methods."""
    if isinstance(value, list):
        return list.__iter__(value)
    if isinstance(value, tuple):
        return tuple.__iter__(value)
    if isinstance(value, set):
        return set.__iter__(value)
    if isinstance(value, frozenset):
        return frozenset.__iter__(value)
    if isinstance(value, collections.deque):
        return collections.deque.__iter__(value)
    raise TypeError(type(value))


def _json_string(text: str) -> str:
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:  # lone surrogates: keep them visible as \\udXXX
            text = text.encode("utf-8", "backslashreplace").decode()
    return encode_basestring(text)
