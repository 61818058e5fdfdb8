"""Redaction of secrets in JSON text, and truncation of that text to its bound.

Works on the text that ``pydantic_core`` or the walker wrote: values of secret-named keys,
secret-named keys in JSON held by strings and in ``name=value`` text, credentials in known
formats. :func:`_bounded` then turns text over the bound into a JSON string holding a prefix
and a visible marker.
"""

from __future__ import annotations

import json
import re
from json.encoder import encode_basestring

from ._common import _json_string
from .secrets import _SECRET_SUFFIXES, is_secret_name

REDACTED = "[REDACTED]"
"""What replaces a secret: the value of a secret-named key, or a credential inside a string."""

# Bytes of JSON text kept past the bound before redacting a prefix, so that a secret which
# starts inside the kept prefix is always seen whole enough to match.
_WINDOW_SLACK = 1024

_REDACTED_JSON = '"[REDACTED]"'

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
