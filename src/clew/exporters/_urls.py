"""Small helpers for exporters' settings: URLs safe to log, and merged headers."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit


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
