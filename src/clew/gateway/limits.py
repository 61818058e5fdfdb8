"""Per-key limits of ``clew serve``: requests and tokens per minute, and a budget in USD per day.

A request is let in while its key's counters are under every limit, and counted then; its
tokens (input and output, of answers the provider made: cache hits are free) and its cost are
added when it is answered. Over a limit, the request is a 429 whose ``Retry-After`` says when
the window turns: minutes and days are fixed UTC windows (``time() // 60``,
``time() // 86400``).

The counters live in the Redis of ``CLEW_CACHE_URL`` when it is ``redis://…`` (every worker and
machine shares them; a Lua script checks and counts in one step), else in the process. If Redis
fails, the process's own counters stand in (and a warning is logged once a minute): a broken
Redis never stops the gateway.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from clew.errors import RateLimitError
from clew.gateway.keys import GatewayKey

__all__ = ["Limiter"]

logger = logging.getLogger(__name__)

MINUTE = 60
DAY = 86400

_ADMIT = """
local limits = {tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])}
for i = 1, 3 do
  if limits[i] > 0 and tonumber(redis.call('GET', KEYS[i]) or '0') >= limits[i] then
    return i
  end
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], 120)
return 0
"""
"""KEYS: the minute's requests, the minute's tokens, the day's cost; ARGV: their limits (0:
none). Returns 0 (let in and counted) or the index of the limit that is reached."""

_KINDS = ("requests", "tokens", "cost")


def _windows(now: float) -> tuple[int, int, int]:
    minute = int(now // MINUTE)
    return minute, minute, int(now // DAY)


def _refusal(key: GatewayKey, which: int, now: float) -> RateLimitError:
    """The 429 for limit ``which`` (1 requests, 2 tokens, 3 budget)."""
    if which == 3:
        wait = DAY - now % DAY
        return RateLimitError(
            f"key {key.name!r} has spent its budget of ${key.budget_usd_per_day:g} for today"
            " (UTC); it renews at midnight UTC",
            code="budget_exceeded",
            retry_after=math.ceil(wait),
        )
    limit, unit = (key.rpm, "requests") if which == 1 else (key.tpm, "tokens")
    wait = MINUTE - now % MINUTE
    return RateLimitError(
        f"key {key.name!r} is over its limit of {limit} {unit} per minute;"
        f" retry in {math.ceil(wait)} s",
        retry_after=math.ceil(wait),
    )


class _Memory:
    """Counters of this process: (scope, kind) → (window, value)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], tuple[int, float]] = {}

    def _value(self, scope: str, kind: str, window: int) -> float:
        found = self._counts.get((scope, kind))
        return found[1] if found is not None and found[0] == window else 0.0

    def _add(self, scope: str, kind: str, window: int, amount: float) -> None:
        self._counts[(scope, kind)] = (window, self._value(scope, kind, window) + amount)

    def admit(self, key: GatewayKey, limits: tuple[float, float, float], now: float) -> int:
        windows = _windows(now)
        for i, (kind, window, limit) in enumerate(zip(_KINDS, windows, limits, strict=True)):
            if limit > 0 and self._value(key.scope, kind, window) >= limit:
                return i + 1
        self._add(key.scope, "requests", windows[0], 1)
        return 0

    def spend(self, key: GatewayKey, tokens: int, cost: float, now: float) -> None:
        _, minute, day = _windows(now)
        self._add(key.scope, "tokens", minute, tokens)
        self._add(key.scope, "cost", day, cost)


class Limiter:
    """The counters of every limited key, in Redis (``redis_url``) or in this process.

    ``clock`` gives the time in Unix seconds (windows are UTC minutes and days).
    """

    def __init__(
        self, redis_url: str | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._clock = clock
        self._memory = _Memory()
        self._redis_url = redis_url
        self._redis: Any = None
        self._script: Any = None
        self._warned = -float("inf")

    def _client(self) -> Any:
        if self._redis is None:
            from redis import asyncio as redis

            assert self._redis_url is not None
            self._redis = redis.Redis.from_url(self._redis_url, socket_timeout=1.0)
            self._script = self._redis.register_script(_ADMIT)
        return self._redis

    def _names(self, key: GatewayKey, now: float) -> list[str]:
        return [
            f"clew:limits:{key.scope}:{kind}:{window}"
            for kind, window in zip(_KINDS, _windows(now), strict=True)
        ]

    def _redis_failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned >= 60:
            self._warned = now
            logger.warning("clew: the limits' Redis failed, counting in this process: %s", exc)

    async def admit(self, key: GatewayKey) -> None:
        """Let a request of ``key`` in and count it.

        Raises:
            RateLimitError: a limit is reached (its ``retry_after`` says for how long).
        """
        if not key.limited:
            return
        now = self._clock()
        limits = (float(key.rpm or 0), float(key.tpm or 0), float(key.budget_usd_per_day or 0))
        which = None
        if self._redis_url:
            try:
                self._client()
                which = int(await self._script(keys=self._names(key, now), args=limits))
            except Exception as exc:  # a Redis outage must not stop the gateway
                self._redis_failed(exc)
        if which is None:
            which = self._memory.admit(key, limits, now)
        if which:
            raise _refusal(key, which, now)

    async def spend(self, key: GatewayKey, tokens: int, cost: float) -> None:
        """Add an answer's tokens and cost to ``key``'s counters."""
        if not key.limited or (tokens <= 0 and cost <= 0):
            return
        now = self._clock()
        if self._redis_url:
            try:
                _, minute, day = self._names(key, now)
                pipe = self._client().pipeline(transaction=False)
                pipe.incrby(minute, tokens).expire(minute, 120)
                pipe.incrbyfloat(day, cost).expire(day, 2 * DAY)
                await pipe.execute()
                return
            except Exception as exc:
                self._redis_failed(exc)
        self._memory.spend(key, tokens, cost, now)

    async def aclose(self) -> None:
        """Close the Redis connections, if any."""
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
