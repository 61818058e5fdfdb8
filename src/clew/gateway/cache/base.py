"""What every completion cache does: seal, count, and never raise on a backend failure."""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from abc import ABC, abstractmethod
from typing import Self

from clew.errors import ConfigurationError, internal_error
from clew.gateway.cache.sealing import OVERHEAD, derive, seal_with, unseal_with

__all__ = ["CompletionCache"]

logger = logging.getLogger(__name__)

_caches: weakref.WeakSet[CompletionCache] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for cache in list(_caches):
        cache._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


class CompletionCache(ABC):
    """A store of completion responses, found and sealed by their request's ``material``.

    Values are sealed (see :mod:`clew.gateway.cache.sealing`) before they reach the backend.
    A failing backend (Redis down, disk full, a corrupt file) never raises to the caller: a
    read is a miss, a write is dropped, the failure is counted in :meth:`stats` and logged at
    warning once per kind (then at debug). After a failure that looks lasting (no connection,
    no readable file) the backend is left alone for ``backoff`` seconds: calls are then misses
    and dropped writes at no cost.

    Args:
        ttl: seconds an entry lives; None for no expiry.
        max_bytes: a sealed value (the value + 32 bytes) larger than this is not stored.
        backoff: seconds the backend is left alone after a lasting failure.

    Raises:
        ConfigurationError: ``ttl`` or ``max_bytes`` is not positive.
    """

    #: the backend's own failures: counted and logged, never raised
    _foreign: tuple[type[BaseException], ...] = (OSError,)

    def __init__(self, ttl: float | None, max_bytes: int, backoff: float) -> None:
        if ttl is not None and not ttl > 0:
            raise ConfigurationError(f"the cache ttl must be > 0 seconds or None, got {ttl!r}")
        if max_bytes <= 0:
            raise ConfigurationError(f"the cache max_bytes must be > 0, got {max_bytes!r}")
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.backoff = backoff
        self._counts = dict.fromkeys(
            ("hits", "misses", "errors", "evictions", "skipped", "too_big"), 0
        )
        self._count_lock = threading.Lock()
        self._reported: set[str] = set()
        self._down_until = 0.0  # time.monotonic() before which the backend is left alone
        self._closed = False
        _caches.add(self)

    # --- what a backend implements ---------------------------------------------------------

    @abstractmethod
    def describe(self) -> str:
        """Where the entries are, for log lines (never a password)."""

    @abstractmethod
    def _load(self, ident: str) -> bytes | None:
        """The sealed value stored under ``ident``, or None."""

    @abstractmethod
    def _store(self, ident: str, sealed: bytes) -> None:
        """Store ``sealed`` (at most ``max_bytes`` long) under ``ident``."""

    async def _aload(self, ident: str) -> bytes | None:
        return self._load(ident)

    async def _astore(self, ident: str, sealed: bytes) -> None:
        self._store(ident, sealed)

    @abstractmethod
    def _clear(self) -> None:
        """Delete every entry."""

    @abstractmethod
    def _close(self) -> None:
        """Release connections."""

    def _is_lasting(self, exc: BaseException) -> bool:
        """Whether a failure means the backend is gone for a while (then it is left alone)."""
        return True

    def _kind(self, exc: BaseException) -> str:
        """The kind of a failure: each kind is logged at warning once."""
        return type(exc).__name__

    def _after_fork(self) -> None:
        """In a forked child: drop what belongs to the parent (locks, connections)."""
        self._count_lock = threading.Lock()

    # --- the public calls ------------------------------------------------------------------

    def get(self, material: bytes) -> bytes | None:
        """The cached response of the request ``material``, or None (a miss)."""
        ident, enc, mac = derive(material)
        if self._unavailable():
            return None
        try:
            sealed = self._load(ident)
        except self._foreign as exc:
            self._failed("read", exc)
            return None
        except Exception:
            internal_error(logger, "reading the completion cache %s failed", self.describe())
            self._count("misses")
            return None
        return self._opened(enc, mac, sealed)

    def put(self, material: bytes, value: bytes) -> None:
        """Cache ``value`` as the response of the request ``material``; dropped on failure."""
        ident, enc, mac = derive(material)
        sealed = self._sealed(enc, mac, value)
        if sealed is None:
            return
        try:
            self._store(ident, sealed)
        except self._foreign as exc:
            self._failed("write", exc)
        except Exception:
            internal_error(logger, "writing the completion cache %s failed", self.describe())
        else:
            self._recovered()

    async def aget(self, material: bytes) -> bytes | None:
        """:meth:`get` for async callers."""
        ident, enc, mac = derive(material)
        if self._unavailable():
            return None
        try:
            sealed = await self._aload(ident)
        except self._foreign as exc:
            self._failed("read", exc)
            return None
        except Exception:
            internal_error(logger, "reading the completion cache %s failed", self.describe())
            self._count("misses")
            return None
        return self._opened(enc, mac, sealed)

    async def aput(self, material: bytes, value: bytes) -> None:
        """:meth:`put` for async callers."""
        ident, enc, mac = derive(material)
        sealed = self._sealed(enc, mac, value)
        if sealed is None:
            return
        try:
            await self._astore(ident, sealed)
        except self._foreign as exc:
            self._failed("write", exc)
        except Exception:
            internal_error(logger, "writing the completion cache %s failed", self.describe())
        else:
            self._recovered()

    def clear(self) -> None:
        """Delete every entry (for Redis: every key with this cache's prefix); never raises."""
        if self._closed:
            return
        try:
            self._clear()
        except self._foreign as exc:
            self._failed("clear", exc)
        except Exception:
            internal_error(logger, "clearing the completion cache %s failed", self.describe())

    def close(self) -> None:
        """Release connections; later calls are misses and dropped writes. Idempotent."""
        self._closed = True
        try:
            self._close()
        except self._foreign:  # a broken backend: nothing left to release
            logger.debug("clew: closing the completion cache failed", exc_info=True)

    async def aclose(self) -> None:
        """:meth:`close`, from an event loop whose async connections it closes too."""
        self.close()

    def stats(self) -> dict[str, int]:
        """Counters since this object was made: ``hits``; ``misses`` (with unreadable entries
        and the calls ``skipped`` while the backend was left alone); ``errors`` (backend
        failures and unreadable entries); ``evictions``; ``too_big`` (values not stored);
        ``skipped``; and, where cheap, ``entries`` and ``bytes`` the backend holds."""
        with self._count_lock:
            return dict(self._counts)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()!r})"

    # --- bookkeeping -----------------------------------------------------------------------

    def _count(self, name: str, n: int = 1) -> None:
        with self._count_lock:
            self._counts[name] += n

    def _left_alone(self) -> bool:
        return self._closed or (self._down_until != 0.0 and time.monotonic() < self._down_until)

    def _unavailable(self) -> bool:
        if not self._left_alone():
            return False
        with self._count_lock:
            self._counts["misses"] += 1
            if not self._closed:
                self._counts["skipped"] += 1
        return True

    def _sealed(self, enc: bytes, mac: bytes, value: bytes) -> bytes | None:
        if self._left_alone():
            if not self._closed:
                self._count("skipped")
            return None
        if len(value) + OVERHEAD > self.max_bytes:
            self._count("too_big")
            return None
        return seal_with(enc, mac, value)

    def _recovered(self) -> None:
        if self._down_until != 0.0:
            self._down_until = 0.0
            logger.info("clew: the completion cache %s works again", self.describe())

    def _opened(self, enc: bytes, mac: bytes, sealed: bytes | None) -> bytes | None:
        self._recovered()
        if sealed is None:
            self._count("misses")
            return None
        value = unseal_with(enc, mac, sealed)
        if value is None:
            with self._count_lock:
                self._counts["misses"] += 1
                self._counts["errors"] += 1
            self._report("unseal", "an entry failed authentication (altered or corrupt)")
            return None
        self._count("hits")
        return value

    def _failed(self, action: str, exc: BaseException) -> None:
        with self._count_lock:
            self._counts["errors"] += 1
            if action == "read":
                self._counts["misses"] += 1
        what = f"cannot {action}: {type(exc).__name__}: {exc}"
        if self._is_lasting(exc):
            self._down_until = time.monotonic() + self.backoff
            what += f"; left alone for {self.backoff:g} s"
        self._report(f"{action}:{self._kind(exc)}", what)

    def _report(self, kind: str, what: str) -> None:
        first = kind not in self._reported
        self._reported.add(kind)
        logger.log(
            logging.WARNING if first else logging.DEBUG,
            "clew: completion cache %s: %s (the completion goes on uncached%s)",
            self.describe(),
            what,
            "; further failures of this kind are logged at debug level" if first else "",
        )
