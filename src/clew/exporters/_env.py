"""Reading exporter settings from the environment. Bad values are logged and fall back."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

_logger = logging.getLogger("clew.exporters")

# The grammar of opentelemetry.util.re.parse_env_headers(liberal=True), which the official
# OTLP exporters use. It is restated here because the official parser logs a malformed entry
# verbatim, and header values carry API keys: clew logs the position of a bad entry only.
_OWS = r"[ \t]*"
_KEY = r"[\x21\x23-\x27\x2a\x2b\x2d\x2e\x30-\x39\x41-\x5a\x5e-\x7a\x7c\x7e]+"
_VALUE = r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*"
_LIBERAL_VALUE = r"[\x20\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*"
_STRICT = re.compile(rf"{_OWS}{_KEY}{_OWS}={_OWS}{_VALUE}{_OWS}")
_LIBERAL = re.compile(rf"{_OWS}{_KEY}{_OWS}={_OWS}{_LIBERAL_VALUE}{_OWS}")
_DELIMITER = re.compile(r"[ \t]*,[ \t]*")


def parse_headers(text: str, *, source: str) -> dict[str, str]:
    """Parse ``k=v,k=v`` headers (values URL-encoded, as the OTLP exporter spec says).

    Names are lower-cased; a value that is not URL-encoded but has no comma is accepted, as
    the official Python exporters do. Malformed entries are skipped with a warning that names
    ``source`` and the entry's position, never its text.

    Example:
        >>> parse_headers("Authorization=Bearer%20tok,x-team=ml", source="EXAMPLE")
        {'authorization': 'Bearer tok', 'x-team': 'ml'}
    """
    headers: dict[str, str] = {}
    for position, entry in enumerate(_DELIMITER.split(text), start=1):
        entry = entry.strip()
        if not entry:
            continue
        if _STRICT.fullmatch(entry):
            name, value = entry.split("=", 1)
            headers[unquote(name).strip().lower()] = unquote(value).strip()
        elif _LIBERAL.fullmatch(entry):
            name, value = entry.split("=", 1)
            headers[name.strip().lower()] = value.strip()
        else:
            _logger.warning("clew: ignoring malformed entry #%d in %s", position, source)
    return headers


def first_env(*names: str) -> tuple[str, str] | None:
    """The first of ``names`` set to a non-empty value, as ``(name, value)``."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return name, value
    return None


def env_float(*names: str, default: float, minimum: float = 0.0) -> float:
    """A float from the first variable set among ``names``; logged and defaulted when bad."""
    found = first_env(*names)
    if found is None:
        return default
    name, raw = found
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= minimum or value == float("inf"):
        _logger.warning("clew: %s=%r is not a number >= %s; using %s", name, raw, minimum, default)
        return default
    return value


def env_int(name: str, *, default: int, minimum: int = 1) -> int:
    """An int from ``name``; logged and defaulted when bad."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        _logger.warning(
            "clew: %s=%r is not an integer >= %s; using %s", name, raw, minimum, default
        )
        return default
    return value


def redact_url(url: str) -> str:
    """``url`` without user info or query string, safe to log.

    Example:
        >>> redact_url("https://user:secret@host:4318/v1/traces?key=abc")
        'https://host:4318/v1/traces'
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "<unparsable url>"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def merged_headers(*layers: Mapping[str, str] | None) -> dict[str, str]:
    """Later layers override earlier ones; names compared case-insensitively."""
    headers: dict[str, str] = {}
    for layer in layers:
        if layer:
            headers.update({k.lower(): v for k, v in layer.items()})
    return headers
