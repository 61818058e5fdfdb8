"""The Redis completion cache: entries shared by every process that uses one server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from clew.gateway.cache.base import CompletionCache

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["REDIS_PREFIX", "RedisCache"]

REDIS_PREFIX = "clew:cache:"
"""What the keys of :class:`RedisCache` start with, before the lookup id."""


def _import_redis() -> Any:
    try:
        import redis
        import redis.asyncio
    except ImportError as exc:
        raise ImportError(
            "a Redis completion cache needs the redis package: pip install 'clew[redis]'"
        ) from exc
    return redis


async def _closer(client: redis.asyncio.Redis) -> AsyncGenerator[None, None]:
    """Started on the loop ``client`` is bound to, and parked: the loop closes it when it shuts
    down its async generators (``asyncio.run`` does, before it closes the loop), and closing
    it closes ``client``'s connections, on that loop."""
    try:
        yield
    finally:
        with suppress(Exception):  # foreign: a broken connection has nothing left to close
            await client.aclose()


async def _finish(closer: AsyncGenerator[None, None]) -> None:
    await closer.aclose()


class RedisCache(CompletionCache):
    """Entries in Redis under ``clew:cache:<lookup id>``, shared by every process using it.

    Each entry expires after ``ttl`` (``SET PX``). The total is bounded by the server's own
    ``maxmemory`` and its eviction policy (``allkeys-lru`` suits a cache), not by this class;
    ``max_bytes`` only keeps a value larger than it out. Sockets time out fast and redis-py's
    own retries are off, so a dead server costs one failed call, then nothing for ``backoff``
    seconds.

    Async calls use a :mod:`redis.asyncio` client per event loop, closed when that loop shuts
    down its async generators (``asyncio.run`` does), by :meth:`aclose` on it, or by
    :meth:`close` while it is open.

    Example:
        >>> cache = RedisCache("redis://localhost:6379/0", 3600, 1 << 20)  # doctest: +SKIP

    Args:
        url: a ``redis://``, ``rediss://`` or ``unix://`` URL (as ``redis.Redis.from_url``).
        ttl: seconds an entry lives; None for no expiry.
        max_bytes: a sealed value larger than this is not stored.
        connect_timeout: seconds to wait for a connection.
        timeout: seconds to wait for an answer.
        backoff: seconds the server is left alone after a connection failure.
        prefix: what every key starts with.

    Raises:
        ImportError: the ``redis`` package is not installed (``pip install 'clew[redis]'``).
    """

    def __init__(
        self,
        url: str,
        ttl: float | None,
        max_bytes: int,
        *,
        connect_timeout: float = 0.5,
        timeout: float = 1.0,
        backoff: float = 5.0,
        prefix: str = REDIS_PREFIX,
    ) -> None:
        super().__init__(ttl, max_bytes, backoff)
        module = _import_redis()
        self._module = module
        self._foreign = (module.RedisError, OSError)
        self.url = url
        self.prefix = prefix
        self._px = None if ttl is None else max(1, round(ttl * 1000))
        self._options: dict[str, Any] = {
            "socket_connect_timeout": connect_timeout,
            "socket_timeout": timeout,
        }
        retry = module.retry.Retry(module.backoff.NoBackoff(), 0)
        self._client: redis.Redis = module.Redis.from_url(url, retry=retry, **self._options)
        self._aclients: dict[asyncio.AbstractEventLoop, redis.asyncio.Redis] = {}
        self._closers: dict[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = {}
        self._orphans: list[AsyncGenerator[None, None]] = []
        self._aclients_lock = threading.Lock()

    def describe(self) -> str:
        scheme, sep, rest = self.url.partition("://")
        return f"{scheme}{sep}***@{rest.rpartition('@')[2]}" if "@" in rest else self.url

    def _is_lasting(self, exc: BaseException) -> bool:
        m = self._module
        return isinstance(exc, m.ConnectionError | m.TimeoutError | OSError)

    def _load(self, ident: str) -> bytes | None:
        value = self._client.get(self.prefix + ident)
        return value if isinstance(value, bytes) else None

    def _store(self, ident: str, sealed: bytes) -> None:
        self._client.set(self.prefix + ident, sealed, px=self._px)

    async def _aclient(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        client = self._aclients.get(loop)
        if client is not None:
            return client
        with self._aclients_lock:  # loops in other threads may be here too
            for gone in [gone for gone in self._aclients if gone.is_closed()]:
                del self._aclients[gone], self._closers[gone]
            retry = self._module.asyncio.retry.Retry(self._module.backoff.NoBackoff(), 0)
            created: redis.asyncio.Redis = self._module.asyncio.Redis.from_url(
                self.url, retry=retry, **self._options
            )
            client, closer = created, _closer(created)
            self._aclients[loop], self._closers[loop] = client, closer
        await anext(closer)  # now the loop knows it: it closes it when it shuts down
        return client

    async def _aload(self, ident: str) -> bytes | None:
        value = await (await self._aclient()).get(self.prefix + ident)
        return value if isinstance(value, bytes) else None

    async def _astore(self, ident: str, sealed: bytes) -> None:
        await (await self._aclient()).set(self.prefix + ident, sealed, px=self._px)

    def _clear(self) -> None:
        batch: list[Any] = []
        for key in self._client.scan_iter(match=self.prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                self._client.unlink(*batch)
                batch = []
        if batch:
            self._client.unlink(*batch)

    def _close(self) -> None:
        self._client.close()
        with self._aclients_lock:
            closers, self._closers, self._aclients = self._closers, {}, {}
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for loop, closer in closers.items():  # closing a closer closes its loop's client
            if loop is running:
                task = loop.create_task(_finish(closer))
                _closing.add(task)
                task.add_done_callback(_closing.discard)
            elif loop.is_running():
                asyncio.run_coroutine_threadsafe(_finish(closer), loop)
            elif running is None and not loop.is_closed():
                loop.run_until_complete(_finish(closer))
            elif not loop.is_closed():  # the loop closes it when it shuts down
                self._orphans.append(closer)

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        self._aclients.pop(loop, None)
        closer = self._closers.pop(loop, None)
        if closer is not None:
            await closer.aclose()
        self.close()


_closing: set[asyncio.Task[None]] = set()
