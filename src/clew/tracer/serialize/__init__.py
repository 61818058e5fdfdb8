"""One bounded, never-raising JSON serializer for captured values, with secret redaction.

Every captured input and output goes through :func:`to_json`, on the caller's thread, so the
common case is kept close to the cost of ``pydantic_core``'s serializer alone:

1. A guard looks at what ``pydantic_core`` would walk (two C-level set checks for a dict or
   list of scalars). It finds what ``pydantic_core`` must not see — iterators it would
   consume, nesting deeper than :data:`MAX_DEPTH`, more items than the output can hold — and
   notes whether some key may be secret (or could not be vouched for).
2. ``pydantic_core`` writes the JSON, calling :func:`_fallback` for objects it does not know.
3. Secrets are redacted in the JSON text, each kind of search running only when the text
   holds a character that kind needs: values of secret-named keys (only when the guard asked
   for it), secret-named keys in stringified JSON and in ``name=value`` text, and credentials
   in known formats.
4. Text over the bound becomes a JSON string holding a prefix and a visible marker.

What the fast path cannot do (iterators, cycles, deep nesting, hostile objects, lone
surrogates, bytes that are not UTF-8, huge containers...) goes to a pure-Python walker that
stops at the output bound and marks cycles and excessive depth instead of failing.

This module holds the entry point and the fast path (steps 1 and 2). The rest lives in
``secrets`` (which names are secret), ``redaction`` (steps 3 and 4), ``walker`` (the slow
path) and ``_common`` (the ``pydantic_core`` serializer, :func:`_fallback` and the small
helpers both paths use); each imports only the ones listed before it.
"""

from __future__ import annotations

import enum
import logging
import re
import sys
from collections.abc import Collection, Iterable
from json.encoder import encode_basestring
from typing import Any

from clew.errors import SerializationHazard, internal_error

from . import _common
from ._common import _SEQUENCE_TYPES, MAX_DEPTH, _fallback, _iterate, _type_name
from .redaction import _WINDOW_SLACK, REDACTED, _bounded, _redact_text
from .secrets import _dataclass_fields, _secret_positions, is_secret_name
from .walker import _walk

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_DEPTH",
    "MIN_MAX_BYTES",
    "REDACTED",
    "is_secret_name",
    "redact_text",
    "to_json",
]

DEFAULT_MAX_BYTES = 65536
"""Default bound, in UTF-8 bytes, of :func:`to_json`'s output."""

MIN_MAX_BYTES = 128
"""Smallest bound honoured: a smaller ``max_bytes`` is raised to this, so a marker fits."""

# Texts up to Python's default int digit limit cannot hold an int json.loads refuses (a lower
# limit set with sys.set_int_max_str_digits is not checked for shorter texts).
_INT_DIGITS_CHECK = sys.int_info.default_max_str_digits
# Bound by assignment, not imported: CPython 3.11 compiles ``name.method(...)`` on a name
# bound by an import as an attribute load and a call, slower than its method call.
_SERIALIZER = _common._SERIALIZER
_LEAF_TYPES = _common._LEAF_TYPES

# --------------------------------------------------------------------------------------------
# Fast path: the guard

_TEXT_TYPES = (str, bytes, bytearray)
# Dict keys already known not to be secret; bounded so dynamic keys cannot grow it forever.
_SAFE_NAMES: set[str] = set()
_SAFE_NAMES_MAX = 8192
_SAFE_NAME_MAX_LENGTH = 64

_HAZARD = 1  # pydantic_core must not see the value: use the walker
_CHECK_KEYS = 2  # scan the JSON text for secret-named keys


def _check_keys(mapping: dict[object, object]) -> int:
    flags = 0
    for key in dict.keys(mapping):
        if type(key) is not str or is_secret_name(key):
            flags = _CHECK_KEYS
        elif len(_SAFE_NAMES) < _SAFE_NAMES_MAX and len(key) <= _SAFE_NAME_MAX_LENGTH:
            _SAFE_NAMES.add(key)
    return flags


def _classify(value: object, budget: int) -> int:
    """Look at what ``pydantic_core`` would walk, and return flags (_HAZARD, _CHECK_KEYS).

    ``budget`` bounds the items looked at: each costs at least a byte of output, so past it
    the output is truncated anyway, and the walker, which stops at the bound, is cheaper than
    a full serialization. The common shapes (a dict or list of scalars) cost two C-level set
    checks and no Python loop.
    """
    values: Collection[Any]
    flags = depth = 0
    try:
        if type(value) is dict:
            if len(value) > budget:
                return _HAZARD
            if not _SAFE_NAMES.issuperset(value):
                flags = _check_keys(value)
            values, depth = value.values(), 1
        elif type(value) is list or type(value) is tuple:
            values, depth = value, 1
        else:
            values, budget = (value,), budget + 1
        if len(values) > budget:
            return _HAZARD
        if _LEAF_TYPES.issuperset(map(type, values)):
            return flags
        state = [budget - len(values), flags]
        _scan(values, depth, state)
    except Exception:  # foreign: a hostile object (or SerializationHazard): the walker copes
        return _HAZARD
    return state[1]


def _scan(items: Iterable[Any], depth: int, state: list[int]) -> None:
    """Visit ``items`` (at ``depth``); ``state`` is [items left in the budget, flags]."""
    for item in items:
        kind = type(item)
        if kind in _LEAF_TYPES:
            continue
        if depth >= MAX_DEPTH:
            raise SerializationHazard
        children: Collection[Any]
        if kind is dict:
            children = item.values()
        elif kind is list or kind is tuple or kind is set or kind is frozenset:
            children = item
        else:
            children = _children(item, kind, state)
        state[0] -= len(children)
        if state[0] < 0:
            raise SerializationHazard
        if kind is dict and not _SAFE_NAMES.issuperset(item):
            state[1] |= _check_keys(item)
        if children and not _LEAF_TYPES.issuperset(map(type, children)):
            _scan(children, depth + 1, state)


def _children(value: object, kind: type, state: list[int]) -> Collection[Any]:
    """What ``pydantic_core`` would serialize inside ``value``; raises SerializationHazard
    when it must not serialize it."""
    # Same order as pydantic_core's type lookup: iterators, models, dataclasses, enums first.
    if hasattr(kind, "__next__"):
        raise SerializationHazard  # an iterator: pydantic_core would consume it
    if isinstance(value, type):
        if hasattr(value, "__dataclass_fields__") or hasattr(value, "__pydantic_validator__"):
            raise SerializationHazard
        return ()
    if hasattr(value, "__pydantic_validator__"):
        # Aliases, computed fields and custom serializers decide the keys: scan the text.
        state[1] |= _CHECK_KEYS
        state_dict = getattr(value, "__dict__", None)
        children = list(dict.values(state_dict)) if isinstance(state_dict, dict) else []
        extra = getattr(value, "__pydantic_extra__", None)
        if isinstance(extra, dict):
            children += dict.values(extra)
        return children
    if hasattr(value, "__dataclass_fields__"):
        names, secret = _dataclass_fields(kind)
        if secret:
            state[1] |= _CHECK_KEYS
        return [getattr(value, name) for name in names]
    if isinstance(value, enum.Enum):
        return (value.value,)
    if isinstance(value, dict):
        if len(value) > state[0]:
            raise SerializationHazard
        if not _SAFE_NAMES.issuperset(dict.keys(value)):
            state[1] |= _check_keys(value)
        return list(dict.values(value))
    if isinstance(value, _SEQUENCE_TYPES):
        if _secret_positions(kind):
            # a named tuple with a secret field: written as an array, unlabelled
            raise SerializationHazard
        return list(_iterate(value))
    if callable(getattr(value, "tolist", None)):
        state[1] |= _CHECK_KEYS  # an object array may list dicts
    return ()  # a scalar to pydantic_core, or something for _fallback


_DIGITS_AFTER = re.compile(r"[0-9]*")
_DIGITS_BEFORE = re.compile(r"[0-9]*\Z")


def _has_unparseable_int(text: str) -> bool:
    """Tell whether ``text`` has more digits in a row than Python's ``json.loads`` accepts.

    ``pydantic_core`` writes huge ints in full, but Python refuses to parse more digits than
    ``sys.get_int_max_str_digits()``. Any longer run covers a multiple of that limit, so only
    those positions are looked at.
    """
    limit = sys.get_int_max_str_digits()
    for index in range(limit, len(text) if limit else 0, limit):
        if "0" <= text[index] <= "9":
            before = _DIGITS_BEFORE.search(text, max(index - limit, 0), index)
            after = _DIGITS_AFTER.match(text, index)
            if before is not None and after is not None and after.end() - before.start() > limit:
                return True
    return False


# --------------------------------------------------------------------------------------------
# Entry point


def redact_text(text: str) -> str:
    """``text`` with anything that looks like a credential replaced by :data:`REDACTED` (the
    patterns :func:`to_json` redacts: ``sk-…`` keys, ``Bearer`` tokens, AWS and Google key
    ids, JWTs …).

    Example:
        >>> redact_text("Incorrect API key provided: sk-abcdefghijklmnopqrstuvwxyz")
        'Incorrect API key provided: [REDACTED]'
    """
    return _redact_text(text, keys=False)


def to_json(value: object, max_bytes: int = DEFAULT_MAX_BYTES, *, plain: bool = False) -> str:
    """Serialize any value to JSON text for a span attribute: bounded, redacted, never raising.

    Handles what ``pydantic_core`` handles (models, dataclasses, datetimes and dates as ISO
    8601, UUIDs, decimals, enums as their value, bytes as UTF-8 text, sets and tuples as
    arrays); numpy-like objects with ``.tolist()`` become arrays (up to 100,000 items, else
    their repr); any other object becomes its ``repr``, or ``"<unrepresentable TypeName>"``
    when that raises. NaN and infinities become the strings ``"NaN"``, ``"Infinity"`` and
    ``"-Infinity"``; ints too long for Python's ``json.loads`` become ``"<int of N bits>"``.
    Bytes that are not UTF-8 keep their bad bytes as ``\\xNN`` text; dict keys that are not
    strings are written as strings.
    Generators, files and other iterators are written as their repr and never consumed.
    Cycles become ``"<cycle>"``; containers nested deeper than :data:`MAX_DEPTH` become
    ``"<max depth>"``; an object whose serialization raises becomes
    ``"<unrepresentable TypeName>"``.

    Secrets never appear in the output: the value of any key or field named as a secret
    (see :func:`is_secret_name`) becomes :data:`REDACTED` — at any depth, in dicts, models,
    dataclasses and named tuples, in JSON held by strings (two levels deep) and in
    ``name=value`` text such as query strings and reprs — and so does any text that looks
    like a credential (OpenAI ``sk-``, Anthropic ``sk-ant-``, ``Bearer`` tokens, AWS
    ``AKIA``/``ASIA`` key ids, GitHub ``ghp_``/``github_pat_``..., Slack ``xox?-``, Google
    ``AIza``, JWTs), also inside longer strings and escaped JSON. Redaction happens before
    truncation, so no piece of a secret survives a cut.

    When the JSON text is longer than ``max_bytes`` UTF-8 bytes, the result is instead a JSON
    string holding a prefix of that text followed by ``…[clew: truncated, N bytes in all]``
    (``at least N`` when serialization stopped early); it is never longer than ``max_bytes``.

    Only ``KeyboardInterrupt``, ``SystemExit`` and other non-``Exception`` errors propagate.

    Args:
        value: Anything.
        max_bytes: Bound on the UTF-8 size of the result; values below
            :data:`MIN_MAX_BYTES` are raised to it.
        plain: The caller vouches that ``value`` is made only of dicts whose keys are not
            secret names, lists, and str / int / bool / None values, nested less than
            :data:`MAX_DEPTH` deep (clew's own text messages), so the look for objects, cycles
            and secret-named keys is skipped. Credentials in text are still redacted.

    Returns:
        Valid JSON text of at most ``max(max_bytes, MIN_MAX_BYTES)`` UTF-8 bytes.

    Example:
        >>> to_json({"prompt": "hi", "api_key": "sk-abc"})
        '{"prompt":"hi","api_key":"[REDACTED]"}'
    """
    try:
        limit = max_bytes if max_bytes >= MIN_MAX_BYTES else MIN_MAX_BYTES
        at_least = 0
        if isinstance(value, _TEXT_TYPES):
            flags = 0
            if len(value) > limit + _WINDOW_SLACK:  # do not serialize what cannot be kept
                at_least = len(value) + 2
                value = value[: limit + _WINDOW_SLACK]
        elif plain:
            flags = 0
        else:
            flags = _classify(value, limit)
            if flags & _HAZARD:
                return _walk(value, limit)
        try:
            raw = _SERIALIZER.to_json(value, fallback=_fallback, warnings=False)
        except Exception:  # foreign: an object pydantic_core cannot write; the walker can
            return _walk(value, limit)
        if len(raw) > limit:
            window = raw[: limit + _WINDOW_SLACK].decode("utf-8", "ignore")
            text = _redact_text(window, keys=bool(flags))
            if at_least:
                return _bounded(text, limit, at_least, exact=False)
            return _bounded(text, limit, len(raw))
        text = raw.decode()
        if len(text) > _INT_DIGITS_CHECK and _has_unparseable_int(text):
            return _walk(value, limit)
        # Each kind of redaction needs one of these characters: without any, nothing to search.
        if (
            flags
            or "-" in text
            or "_" in text
            or "=" in text
            or "\\" in text
            or "A" in text
            or "B" in text
            or "J" in text
        ):
            return _bounded(_redact_text(text, keys=bool(flags)), limit)
        return text
    except Exception:  # the walker copes with any object: reaching here is a bug in clew
        internal_error(logger, "serializing a %s failed", _type_name(value))
        return _bounded(encode_basestring(f"<unserializable {_type_name(value)}>"), MIN_MAX_BYTES)
