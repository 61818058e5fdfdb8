"""The response cache of :func:`clew.completion`: sealed entries in SQLite or Redis.

An entry is found by a hash of its request (``material``: the canonical JSON of the normalized
provider request plus its scope) and stored **sealed**, encrypted and authenticated under a key
derived from that same material (:mod:`clew.gateway.cache.sealing`): a cache file or a Redis
server never holds a prompt or a response in the clear, and an entry is unreadable without the
request that made it. That keeps content out of files for a user who set ``log_omit``; it is not
a substitute for disk encryption.

A failing backend never raises to the caller: a read is a miss, a write is dropped (see
:class:`CompletionCache`).
"""

from __future__ import annotations

from pathlib import Path

from clew.errors import ConfigurationError
from clew.gateway.cache.base import CompletionCache
from clew.gateway.cache.memory import MemoryFront
from clew.gateway.cache.redis import REDIS_PREFIX, RedisCache
from clew.gateway.cache.sealing import open_sealed, seal
from clew.gateway.cache.sqlite import SqliteCache

__all__ = [
    "REDIS_PREFIX",
    "CompletionCache",
    "MemoryFront",
    "RedisCache",
    "SqliteCache",
    "is_redis_url",
    "open_cache",
    "open_sealed",
    "seal",
]


def is_redis_url(url: str | None) -> bool:
    """Whether ``url`` names a Redis server (``redis://``, ``rediss://``, ``unix://``)."""
    scheme, sep, _ = (url or "").partition("://")
    return bool(sep) and scheme.lower() in ("redis", "rediss", "unix")


def open_cache(
    url: str | None, default_path: Path, ttl: float | None, max_bytes: int
) -> CompletionCache:
    """The cache ``url`` names.

    ``redis://``, ``rediss://`` and ``unix://`` URLs name a :class:`RedisCache`;
    ``sqlite:///relative/path``, ``sqlite:////absolute/path`` and a plain file path a
    :class:`SqliteCache`; None the SQLite file ``default_path``.

    Raises:
        ConfigurationError: ``url`` is none of these, or ``ttl`` or ``max_bytes`` is not
            positive.
        ImportError: a Redis URL, and the redis package is not installed.
    """
    if url is None:
        return SqliteCache(default_path, ttl, max_bytes)
    if is_redis_url(url):
        return RedisCache(url, ttl, max_bytes)
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() == "sqlite" and rest.startswith("/") and rest.strip("/"):
        return SqliteCache(Path(rest[1:]), ttl, max_bytes)
    if url.strip() and not sep:
        return SqliteCache(Path(url).expanduser(), ttl, max_bytes)
    raise ConfigurationError(
        f"cannot use {url!r} as the completion cache: give a Redis URL (redis://host:6379/0,"
        " rediss://..., unix:///path/to/redis.sock), sqlite:///path/to/cache.db, or a file path"
    )
