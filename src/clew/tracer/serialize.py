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
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import functools
import json
import math
import re
import sys
import uuid
from collections.abc import Collection, Iterable, Iterator, Sized
from json.encoder import encode_basestring
from typing import Any

from pydantic_core import SchemaSerializer, core_schema

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_DEPTH",
    "MIN_MAX_BYTES",
    "REDACTED",
    "is_secret_name",
    "to_json",
]

REDACTED = "[REDACTED]"
"""What replaces a secret: the value of a secret-named key, or a credential inside a string."""

DEFAULT_MAX_BYTES = 65536
"""Default bound, in UTF-8 bytes, of :func:`to_json`'s output."""

MIN_MAX_BYTES = 128
"""Smallest bound honoured: a smaller ``max_bytes`` is raised to this, so a marker fits."""

MAX_DEPTH = 64
"""Containers nested deeper than this are written as the string ``"<max depth>"``."""

# Bytes of JSON text kept past the bound before redacting a prefix, so that a secret which
# starts inside the kept prefix is always seen whole enough to match.
_WINDOW_SLACK = 1024
# Texts up to Python's default int digit limit cannot hold an int json.loads refuses (a lower
# limit set with sys.set_int_max_str_digits is not checked for shorter texts).
_INT_DIGITS_CHECK = sys.int_info.default_max_str_digits
# Objects with ``.tolist()`` (numpy arrays, array.array, ...) are listed up to this size;
# bigger ones fall back to their (summarising) repr.
_TOLIST_MAX_ITEMS = 100_000

_REDACTED_JSON = '"[REDACTED]"'
_CYCLE_JSON = '"<cycle>"'
_MAX_DEPTH_JSON = '"<max depth>"'

# --------------------------------------------------------------------------------------------
# Secret names

_WORD_BOUNDARY = re.compile(r"[^0-9A-Za-z]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
# fmt: off
# A name ending in one of these words names a secret, whatever comes before.
_ALWAYS_SECRET = (
    "password", "passwords", "passwd", "passphrase", "secret", "secrets", "authorization", "auth",
    "cookie", "cookies", "credential", "credentials", "bearer",
)
# "...key" names a secret only after one of these ("api_key", "privateKey", "OPENAI_KEY"),
# not in "key", "cache_key" or "monkey".
_KEY_QUALIFIERS = (
    "api", "private", "secret", "access", "signing", "encryption", "decryption", "master",
    "session", "client", "auth", "ssh", "license", "service", "account", "subscription", "admin",
    "app", "bot", "hmac", "jwt", "openai", "anthropic", "cohere", "mistral", "groq", "gemini",
    "google", "azure", "aws", "hf", "huggingface", "together", "fireworks", "replicate",
    "pinecone", "deepseek", "xai", "perplexity", "voyage", "openrouter", "langfuse", "langsmith",
    "stripe", "github", "slack",
)
# "...token" names a secret ("token", "access_token", "csrftoken") unless it counts or
# names LLM tokens ("max_token", "eos_token", "next_token" for paging).
_TOKEN_NOT_SECRET = (
    "max", "min", "input", "output", "prompt", "completion", "total", "num", "next", "prev",
    "previous", "page", "continuation", "stop", "eos", "bos", "pad", "unk", "sep", "cls", "mask",
    "special", "start", "end", "first", "last", "new", "cached", "reasoning", "added", "image",
    "audio", "text", "word",
)
# fmt: on
_SECRET_SUFFIXES = (*_ALWAYS_SECRET, "key", "keys", "token")


def is_secret_name(name: str) -> bool:
    """Tell whether a parameter, field, header or dict key name designates a secret.

    The name is split into words at separators and camelCase boundaries and compared
    case-insensitively. It is secret when it *ends* with one of: ``password(s)``, ``passwd``,
    ``passphrase``, ``secret(s)``, ``authorization``, ``auth``, ``cookie(s)``,
    ``credential(s)``, ``bearer``; with ``key(s)`` right after a word such as ``api``,
    ``private``, ``secret``, ``access`` or a provider name; or with ``token`` unless that
    follows a word that counts or names LLM tokens (``max``, ``input``, ``eos``, ``next``...).
    Names ending in something else — ``max_tokens``, ``token_count``, ``secret_santa_list``,
    ``cache_key``, or a trailing digit or separator such as ``api_key2`` — are not secret.

    Args:
        name: The name to check.

    Returns:
        True if values under this name must be replaced by :data:`REDACTED`.

    Example:
        >>> is_secret_name("X-Api-Key"), is_secret_name("refresh_token")
        (True, True)
        >>> is_secret_name("max_tokens"), is_secret_name("secret_santa_list")
        (False, False)
    """
    if type(name) is not str:
        if not isinstance(name, str):
            return False
        name = str.__str__(name)
    return _is_secret_name(name) if len(name) <= 100 else _name_is_secret(name)


@functools.lru_cache(maxsize=4096)
def _is_secret_name(name: str) -> bool:
    return _name_is_secret(name)


def _name_is_secret(name: str) -> bool:
    # The name must end with the secret word itself, so that the scan of JSON text
    # (_KEY_CANDIDATE) finds every key this function calls secret.
    end = name[-1:]
    if not (end.isascii() and end.isalpha()):
        return False
    words = [word.lower() for word in _WORD_BOUNDARY.split(name) if word]
    last = words[-1]
    if last.endswith(_ALWAYS_SECRET):
        return True
    for suffix, qualifiers, secret_when_qualified in (
        ("keys", _KEY_QUALIFIERS, True),
        ("key", _KEY_QUALIFIERS, True),
        ("token", _TOKEN_NOT_SECRET, False),
    ):
        if last.endswith(suffix):
            qualifier = last[: -len(suffix)] or (words[-2] if len(words) > 1 else "")
            qualified = bool(qualifier) and qualifier.endswith(qualifiers)
            return qualified == secret_when_qualified
    return False


# --------------------------------------------------------------------------------------------
# Redaction in JSON text

# Credential formats. Every character class excludes '"' and '\\', so a match never leaves a
# JSON string nor swallows an escape sequence.
_OPENAI_ANTHROPIC = re.compile(r"sk-[A-Za-z0-9_\-]{20,}")  # also sk-proj-, sk-ant-api03-
_SLACK = re.compile(r"xox[abprs]-[A-Za-z0-9\-]{10,}")
_GITHUB = re.compile(r"gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}")
_AWS_GOOGLE = re.compile(r"A(?:KIA|SIA)[0-9A-Z]{16,}|AIza[0-9A-Za-z_\-]{30,}")
_BEARER = re.compile(r"B(?:earer|EARER) +([A-Za-z0-9\-._~+/]{16,}=*)")  # group 1 is replaced
_JWT = re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*")
# Each family is tried only when text holds a character all its formats need, and then only
# when a detector that starts at that (rarer) character matches; the detector may also match
# where nothing is redacted, which only costs a second search.
_SECRET_FAMILIES: tuple[tuple[str, re.Pattern[str], tuple[re.Pattern[str], ...]], ...] = (
    (
        "-",
        re.compile(r"-(?:(?<=sk-)[A-Za-z0-9_\-]{20}|(?<=xox[abprs]-)[A-Za-z0-9\-]{10})"),
        (
            _OPENAI_ANTHROPIC,
            _SLACK,
        ),
    ),
    (
        "_",
        re.compile(r"_(?:(?<=gh[pousr]_)[A-Za-z0-9]{20}|(?<=github_pat_)[A-Za-z0-9_]{20})"),
        (_GITHUB,),
    ),
    ("A", _AWS_GOOGLE, (_AWS_GOOGLE,)),
    ("B", _BEARER, (_BEARER,)),
    ("J", re.compile(r"J(?<=eyJ)[A-Za-z0-9_\-]{8,}\.eyJ"), (_JWT,)),
)
_HEX = frozenset("0123456789abcdefABCDEF")

# A key's closing quote, for keys whose text ends with a secret word (checked exactly later).
_KEY_CANDIDATE = re.compile(
    '":(?:' + "|".join(f'(?<={word}":)' for word in sorted(set(_SECRET_SUFFIXES))) + ")",
    re.IGNORECASE,
)
# Secret-named keys inside strings: stringified JSON ("{\\"password\\": \\"x\\"}") and
# assignments in query strings, reprs and env files ("api_key=x", "token='x'").
_EMBEDDED_KEY = re.compile(  # JSON in a string, or in a string in JSON in a string
    r'\\":(?:'
    + "|".join(
        f'(?<={word}\\\\":)|(?<={word}\\\\\\\\\\\\":)' for word in sorted(set(_SECRET_SUFFIXES))
    )
    + ")",
    re.IGNORECASE,
)
_ASSIGNMENT = re.compile(
    "=(?:"
    + "|".join(f"(?<={word}=)|(?<={word} =)" for word in sorted(set(_SECRET_SUFFIXES)))
    + r""") ?(?:'|\\")?([^\s'"\\&,;:)\]}>]+)""",
    re.IGNORECASE,
)
_NAME_BEFORE = re.compile(r"[A-Za-z0-9_.\-]*\Z")
# JSON tokens; a string may be cut off by the end of a truncation window.
_STRING_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_STRUCTURE_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)
_SCALAR_TOKEN = re.compile(r"[^,\]}]*")
_SPACES = re.compile(r"[ \t\n\r]*")


def _redact_text(text: str, keys: bool) -> str:
    """Redact secrets in JSON text (or a prefix of it), keeping it valid JSON."""
    if keys:
        text = _redact_keys(text)
    if "\\" in text and _EMBEDDED_KEY.search(text) is not None:
        text = _redact_embedded_json(text)
    if "=" in text and _ASSIGNMENT.search(text) is not None:
        text = _redact_assignments(text)
    if "-" in text or "_" in text or "A" in text or "B" in text or "J" in text:
        for anchor, detector, patterns in _SECRET_FAMILIES:
            if anchor in text and detector.search(text) is not None:
                for pattern in patterns:
                    text = _redact_matches(pattern, text)
    return text


def _redact_embedded_json(text: str) -> str:
    """Redact secret-named keys in JSON held by strings, re-encoding those strings."""
    parts: list[str] = []
    done = 0
    position = 0
    while (match := _EMBEDDED_KEY.search(text, position)) is not None:
        start = _key_start(text, match.start())  # the opening quote of the holding string
        token = _STRING_TOKEN.match(text, start)
        end = position = len(text) if token is None else token.end()
        try:
            inner = json.loads(text[start:end])
        except ValueError:  # cut off by a truncation window: drop the rest
            parts += (text[done : match.end()], REDACTED)
            done = end
            continue
        redacted = _redact_text(inner, keys=True) if isinstance(inner, str) else inner
        if redacted != inner:
            parts += (text[done:start], _json_string(redacted))
            done = end
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


def _redact_assignments(text: str) -> str:
    parts: list[str] = []
    done = 0
    for match in _ASSIGNMENT.finditer(text):
        name_end = match.start() - (text[match.start() - 1] == " ")
        name = _NAME_BEFORE.search(text, max(name_end - 100, 0), name_end)
        if name is not None and is_secret_name(name.group()):
            parts += (text[done : match.start(1)], REDACTED)
            done = match.end(1)
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


def _redact_matches(pattern: re.Pattern[str], text: str) -> str:
    parts: list[str] = []
    done = 0
    position = 0
    while (match := pattern.search(text, position)) is not None:
        start = match.start()
        if _inside_escape(text, start) or (
            pattern is _OPENAI_ANTHROPIC and _glued(text, start) and not _mixed(match.group())
        ):
            position = start + 1
            continue
        group = 1 if match.re.groups else 0
        parts += (text[done : match.start(group)], REDACTED)
        done = position = match.end(group)
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


def _backslashes_before(text: str, index: int) -> int:
    count = 0
    while index > count and text[index - count - 1] == "\\":
        count += 1
    return count


def _inside_escape(text: str, index: int) -> bool:
    """Tell whether ``text[index]`` is part of a JSON escape sequence, not a character."""
    if _backslashes_before(text, index) % 2:
        return True
    for back in range(2, 6):  # the hex digits of \\uXXXX
        start = index - back
        if start < 0:
            break
        if (
            text[start] == "\\"
            and text[start + 1] == "u"
            and _HEX.issuperset(text[start + 2 : index])
            and _backslashes_before(text, start) % 2 == 0
        ):
            return True
    return False


def _mixed(token: str) -> bool:
    """Tell whether a token has digits and capitals, as keys do and prose slugs do not."""
    return any(char.isdigit() for char in token) and any(char.isupper() for char in token)


def _glued(text: str, index: int) -> bool:
    """Tell whether a match starts inside a word ("task-..."), not at a key's start."""
    if index == 0 or not text[index - 1].isalnum():
        return False
    # A letter that ends an escape sequence (\n, \t, \u000b...) is not part of a word.
    return not _inside_escape(text, index - 1)


def _redact_keys(text: str) -> str:
    """Replace the values of secret-named object keys with ``"[REDACTED]"``."""
    parts: list[str] = []
    done = 0
    position = 0
    while (match := _KEY_CANDIDATE.search(text, position)) is not None:
        close = match.start()
        position = match.end()
        start = _key_start(text, close)
        name = text[start + 1 : close]
        if "\\" in name:
            try:
                name = json.loads(text[start : close + 1])
            except ValueError:
                continue
        if isinstance(name, str) and is_secret_name(name):
            spaces = _SPACES.match(text, position)
            value_start = position if spaces is None else spaces.end()
            parts += (text[done:value_start], _REDACTED_JSON)
            done = position = _value_end(text, value_start)
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


def _key_start(text: str, close: int) -> int:
    start = close
    while (start := text.rfind('"', 0, start)) > 0 and _backslashes_before(text, start) % 2:
        pass
    return max(start, 0)


def _value_end(text: str, start: int) -> int:
    if start >= len(text):
        return start
    first = text[start]
    if first == '"':
        string = _STRING_TOKEN.match(text, start)
        return len(text) if string is None else string.end()
    if first in "[{":
        depth = 0
        for token in _STRUCTURE_TOKEN.finditer(text, start):
            char = text[token.start()]
            if char != '"':
                depth += 1 if char in "[{" else -1
                if depth == 0:
                    return token.end()
        return len(text)
    scalar = _SCALAR_TOKEN.match(text, start)
    return len(text) if scalar is None else scalar.end()


# --------------------------------------------------------------------------------------------
# Truncation


def _bounded(text: str, limit: int, total: int | None = None, exact: bool = True) -> str:
    """Return ``text`` if it fits in ``limit`` UTF-8 bytes, else a truncated JSON string.

    Args:
        text: Redacted JSON text, or a redacted prefix of it.
        limit: The output bound in bytes.
        total: Size in bytes of the whole JSON text, when ``text`` is only a prefix.
        exact: Whether ``total`` is exact or a lower bound.
    """
    if total is None and len(text) * 4 <= limit:
        return text
    data = text.encode("utf-8", "surrogatepass")
    if total is None:
        if len(data) <= limit:
            return text
        total = len(data)
    marker = f"…[clew: truncated, {'' if exact else 'at least '}{total} bytes in all]"
    budget = max(limit - 2 - len(marker.encode()), 0)
    cut = min(len(data), budget)
    # Quoting the prefix doubles each '"' and '\\' (the only characters JSON text has that a
    # JSON string must escape); shrink the cut until the quoted prefix fits.
    while (over := cut + data.count(b'"', 0, cut) + data.count(b"\\", 0, cut) - budget) > 0:
        cut -= over
    while 0 < cut < len(data) and data[cut] & 0xC0 == 0x80:  # not inside a UTF-8 sequence
        cut -= 1
    return encode_basestring(data[:cut].decode("utf-8", "replace") + marker)


# --------------------------------------------------------------------------------------------
# Fast path: guard + pydantic_core

_SERIALIZER = SchemaSerializer(
    core_schema.any_schema(), core_schema.CoreConfig(ser_json_inf_nan="strings")
)
# Values pydantic_core writes without looking inside (and that cannot hide a secret key).
_LEAF_TYPES: frozenset[type] = frozenset(
    {str, int, float, bool, type(None), bytes, bytearray, decimal.Decimal, uuid.UUID}
    | {datetime.datetime, datetime.date, datetime.time, datetime.timedelta}
)
_SEQUENCE_TYPES = (list, tuple, set, frozenset, collections.deque)
_TEXT_TYPES = (str, bytes, bytearray)
# Dict keys already known not to be secret; bounded so dynamic keys cannot grow it forever.
_SAFE_NAMES: set[str] = set()
_SAFE_NAMES_MAX = 8192
_SAFE_NAME_MAX_LENGTH = 64

_HAZARD = 1  # pydantic_core must not see the value: use the walker
_CHECK_KEYS = 2  # scan the JSON text for secret-named keys


class _Hazard(Exception):
    """Raised inside the guard to stop at the first hazard."""


def _fallback(value: object) -> object:
    """What ``pydantic_core`` writes for a value it does not know: a list or a repr."""
    try:
        tolist = getattr(value, "tolist", None)
        if callable(tolist) and _list_size(value) <= _TOLIST_MAX_ITEMS:
            listed = tolist()
            if type(listed) in (list, int, float, bool, str):
                return listed
    except Exception:
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
    except Exception:
        return f"<unrepresentable {_type_name(value)}>"


def _type_name(value: object) -> str:
    try:
        name = type(value).__qualname__
        return str.__str__(name)[:100] if isinstance(name, str) else "object"
    except Exception:
        return "object"


def _check_keys(mapping: dict[object, object]) -> int:
    flags = 0
    for key in dict.keys(mapping):
        if type(key) is not str or is_secret_name(key):
            flags = _CHECK_KEYS
        elif len(_SAFE_NAMES) < _SAFE_NAMES_MAX and len(key) <= _SAFE_NAME_MAX_LENGTH:
            _SAFE_NAMES.add(key)
    return flags


@functools.lru_cache(maxsize=1024)
def _secret_positions(cls: type) -> frozenset[int]:
    """Positions of secret-named fields, if ``cls`` is a named tuple."""
    fields = getattr(cls, "_fields", None)
    if not (isinstance(fields, tuple) and all(isinstance(name, str) for name in fields)):
        return frozenset()
    return frozenset(index for index, name in enumerate(fields) if is_secret_name(name))


@functools.lru_cache(maxsize=1024)
def _dataclass_fields(cls: type) -> tuple[tuple[str, ...], bool]:
    names = tuple(field.name for field in dataclasses.fields(cls))
    return names, any(is_secret_name(name) for name in names)


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
    except Exception:  # _Hazard, or a hostile object: let the walker deal with it
        return _HAZARD
    return state[1]


def _scan(items: Iterable[Any], depth: int, state: list[int]) -> None:
    """Visit ``items`` (at ``depth``); ``state`` is [items left in the budget, flags]."""
    for item in items:
        kind = type(item)
        if kind in _LEAF_TYPES:
            continue
        if depth >= MAX_DEPTH:
            raise _Hazard
        children: Collection[Any]
        if kind is dict:
            children = item.values()
        elif kind is list or kind is tuple or kind is set or kind is frozenset:
            children = item
        else:
            children = _children(item, kind, state)
        state[0] -= len(children)
        if state[0] < 0:
            raise _Hazard
        if kind is dict and not _SAFE_NAMES.issuperset(item):
            state[1] |= _check_keys(item)
        if children and not _LEAF_TYPES.issuperset(map(type, children)):
            _scan(children, depth + 1, state)


def _children(value: object, kind: type, state: list[int]) -> Collection[Any]:
    """What ``pydantic_core`` would serialize inside ``value``; raise _Hazard if it must not."""
    # Same order as pydantic_core's type lookup: iterators, models, dataclasses, enums first.
    if hasattr(kind, "__next__"):
        raise _Hazard  # an iterator: pydantic_core would consume it
    if isinstance(value, type):
        if hasattr(value, "__dataclass_fields__") or hasattr(value, "__pydantic_validator__"):
            raise _Hazard
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
            raise _Hazard
        if not _SAFE_NAMES.issuperset(dict.keys(value)):
            state[1] |= _check_keys(value)
        return list(dict.values(value))
    if isinstance(value, _SEQUENCE_TYPES):
        if _secret_positions(kind):
            raise _Hazard  # a named tuple with a secret field: written as an array, unlabelled
        return list(_iterate(value))
    if callable(getattr(value, "tolist", None)):
        state[1] |= _CHECK_KEYS  # an object array may list dicts
    return ()  # a scalar to pydantic_core, or something for _fallback


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


# --------------------------------------------------------------------------------------------
# Slow path: the walker


class _Full(BaseException):
    """Raised inside the walker when the output budget is spent (not an error)."""


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
            raise _Full

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
        except Exception:  # a hostile object: replace just this node
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
            except Exception:
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


def _json_string(text: str) -> str:
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:  # lone surrogates: keep them visible as \\udXXX
            text = text.encode("utf-8", "backslashreplace").decode()
    return encode_basestring(text)


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
    walker = _Walker(limit + _WINDOW_SLACK)
    try:
        walker.emit(value, 0)
    except _Full:
        text = _redact_text("".join(walker.parts), keys=False)
        return _bounded(text, limit, walker.size, exact=False)
    return _bounded(_redact_text("".join(walker.parts), keys=False), limit)


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
        except Exception:
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
    except Exception:
        return _bounded(encode_basestring(f"<unserializable {_type_name(value)}>"), MIN_MAX_BYTES)
