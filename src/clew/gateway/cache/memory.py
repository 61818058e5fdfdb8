"""A small in-process front for a completion cache: a repeat in the same process is answered
from memory, without a file read, a network round trip to Redis, or unsealing.

An entry is not changed once stored (one request, one answer), so a copy in memory is the
same answer; it is kept for at most ``lifetime`` seconds (60 by default, or the cache's TTL if
shorter), so a ``clear()`` in another process, or an expiry, reaches this process within that
time. The front is bounded by count and bytes (least recently used first out) and holds
answers in process memory only, never in a file.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from clew.gateway.cache.base import CompletionCache

__all__ = ["MemoryFront"]


class MemoryFront:
    """``inner`` with the most recently used answers kept in memory.

    Args:
        inner: the shared cache (SQLite or Redis).
        max_items: answers kept in memory at most.
        max_bytes: their total size at most.
        lifetime: seconds an answer stays in memory at most.
        clock: the wall clock (tests pass their own).
    """

    def __init__(
        self,
        inner: CompletionCache,
        max_items: int = 1024,
        max_bytes: int = 16 * 1024 * 1024,
        lifetime: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.inner = inner
        self.lifetime = lifetime if inner.ttl is None else min(lifetime, inner.ttl)
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._memory_hits = 0

    def get(self, material: bytes) -> bytes | None:
        """The cached answer of ``material``: from memory, else from ``inner``."""
        value = self._recall(material)
        if value is not None:
            return value
        value = self.inner.get(material)
        if value is not None:
            self._keep(material, value)
        return value

    async def aget(self, material: bytes) -> bytes | None:
        """:meth:`get` for async callers."""
        value = self._recall(material)
        if value is not None:
            return value
        value = await self.inner.aget(material)
        if value is not None:
            self._keep(material, value)
        return value

    def put(self, material: bytes, value: bytes) -> None:
        """Store ``value`` in ``inner``, and keep it in memory."""
        self.inner.put(material, value)
        self._keep(material, value)

    async def aput(self, material: bytes, value: bytes) -> None:
        """:meth:`put` for async callers."""
        await self.inner.aput(material, value)
        self._keep(material, value)

    def _recall(self, material: bytes) -> bytes | None:
        entry = self._entries.get(material)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._clock():
            with self._lock:
                if self._entries.get(material) is entry:
                    del self._entries[material]
                    self._bytes -= len(material) + len(value)
            return None
        with self._lock:
            if material in self._entries:
                self._entries.move_to_end(material)
            self._memory_hits += 1
        return value

    def _keep(self, material: bytes, value: bytes) -> None:
        size = len(material) + len(value)
        if size > self.max_bytes or self.max_items <= 0:
            return
        expires = self._clock() + self.lifetime
        with self._lock:
            old = self._entries.pop(material, None)
            if old is not None:
                self._bytes -= len(material) + len(old[1])
            self._entries[material] = (expires, value)
            self._bytes += size
            while len(self._entries) > self.max_items or self._bytes > self.max_bytes:
                gone, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= len(gone) + len(dropped)

    def clear(self) -> None:
        """Forget every answer, in memory and in ``inner``."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0
        self.inner.clear()

    def close(self) -> None:
        """Forget the answers in memory and close ``inner``."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0
        self.inner.close()

    def stats(self) -> dict[str, int]:
        """``inner``'s counters, plus ``memory_hits``, ``memory_entries``, ``memory_bytes``."""
        counts = self.inner.stats()
        counts["memory_hits"] = self._memory_hits
        counts["memory_entries"] = len(self._entries)
        counts["memory_bytes"] = self._bytes
        return counts

    def describe(self) -> str:
        """Where the shared entries are."""
        return self.inner.describe()
