"""Gateway keys: who may call ``clew serve``, and within which limits.

Two sources, used together:

- ``CLEW_GATEWAY_KEYS`` (comma-separated): keys without limits, named by their hash;
- keys made with ``clew keys create NAME [--rpm N] [--tpm N] [--budget-usd-per-day X]
  [--models a,b]`` (or :func:`create`), kept hashed in the local store (``CLEW_STORE``), each
  with a name and its limits, until ``clew keys revoke NAME``.

A key is looked up by its SHA-256 hash, so the server never holds a stored key in the clear.
The server rereads the stored keys at most once a second (:class:`KeyRing`): a key created or
revoked while it runs counts within that second, in every worker.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from clew.errors import ConfigurationError, StoreError
from clew.store import keys as stored

__all__ = ["GatewayKey", "KeyRing", "create", "hash_key", "key_scope", "list", "revoke"]

logger = logging.getLogger(__name__)

PREFIX = "clew-"
"""How a key made by :func:`create` starts."""


def hash_key(key: str) -> str:
    """The SHA-256 of a key, in hex: what the store keeps instead of the key."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_scope(key: str) -> str:
    """The cache scope (and the name in logs) of a gateway key: a hash, never the key."""
    return hash_key(key)[:16]


@dataclass(frozen=True, slots=True)
class GatewayKey:
    """A key's name and limits (None: no limit)."""

    name: str
    scope: str
    """The cache scope and counter key: the first 16 hex digits of the key's hash."""
    rpm: int | None = None
    tpm: int | None = None
    budget_usd_per_day: float | None = None
    models: tuple[str, ...] | None = None
    """The models it may call, as ``model`` (any provider) or ``provider/model``."""
    prefix: str = ""
    created: float = 0.0

    @property
    def limited(self) -> bool:
        """Whether any of rpm, tpm and the budget is set (then its use is counted)."""
        return self.rpm is not None or self.tpm is not None or self.budget_usd_per_day is not None

    def limits(self) -> dict[str, object]:
        """The limits that are set, as ``clew keys list --json`` prints them."""
        found = {
            "rpm": self.rpm,
            "tpm": self.tpm,
            "budget_usd_per_day": self.budget_usd_per_day,
            "models": builtins.list(self.models) if self.models is not None else None,
        }
        return {name: value for name, value in found.items() if value is not None}


def _checked(
    name: str,
    rpm: int | None,
    tpm: int | None,
    budget_usd_per_day: float | None,
    models: Iterable[str] | None,
) -> tuple[str, ...] | None:
    if not name or not name.strip() or any(c.isspace() or c == "," for c in name):
        raise ConfigurationError(f"a key's name has no spaces or commas; got {name!r}")
    for label, value in (("rpm", rpm), ("tpm", tpm)):
        if value is not None and (isinstance(value, bool) or value < 1):
            raise ConfigurationError(f"--{label} is a whole number of at least 1; got {value!r}")
    if budget_usd_per_day is not None and not budget_usd_per_day > 0:
        raise ConfigurationError(
            f"--budget-usd-per-day is a number of dollars above 0; got {budget_usd_per_day!r}"
        )
    if models is None:
        return None
    listed = tuple(m.strip() for m in models if m.strip())
    if not listed:
        raise ConfigurationError("--models names at least one model, such as gpt-4o-mini")
    return listed


def create(
    name: str,
    *,
    rpm: int | None = None,
    tpm: int | None = None,
    budget_usd_per_day: float | None = None,
    models: Sequence[str] | None = None,
    store: str | Path,
) -> tuple[str, GatewayKey]:
    """Make a new key named ``name``; returns the key (shown this once, then only its hash is
    kept) and its record.

    Args:
        rpm: requests per minute; tpm: tokens (input and output) per minute.
        budget_usd_per_day: cost per UTC day, from each answer's cost.
        models: the models it may call (``gpt-4o-mini`` or ``openai/gpt-4o-mini``).
        store: the store file (``clew keys --store``; the server reads ``CLEW_STORE``).

    Raises:
        ConfigurationError: a bad name or limit.
        StoreError: a key in use has that name, or the store cannot be written.
    """
    listed = _checked(name, rpm, tpm, budget_usd_per_day, models)
    key = PREFIX + secrets.token_urlsafe(32)
    digest = hash_key(key)
    record = GatewayKey(name, digest[:16], rpm, tpm, budget_usd_per_day, listed, key[:12])
    stored.add(
        store, hash=digest, name=name, prefix=record.prefix, limits=json.dumps(record.limits())
    )
    return key, record


def _record(row: stored.StoredKey) -> GatewayKey:
    limits = json.loads(row.limits)
    models = limits.get("models")
    return GatewayKey(
        row.name,
        row.hash[:16],
        limits.get("rpm"),
        limits.get("tpm"),
        limits.get("budget_usd_per_day"),
        tuple(models) if models is not None else None,
        row.prefix,
        row.created,
    )


def list(store: str | Path) -> builtins.list[GatewayKey]:
    """The keys in use, by name."""
    return [_record(row) for row in stored.list(store)]


def revoke(name: str, *, store: str | Path) -> bool:
    """Revoke the key named ``name``; False when no key in use has that name."""
    return stored.revoke(store, name)


class KeyRing:
    """The keys a server lets in: the configured ones and the store's, reread at most every
    ``refresh`` seconds. A store that cannot be read keeps the keys last read (and logs)."""

    def __init__(self, configured: Sequence[str], store: Path, refresh: float = 1.0) -> None:
        self._configured = {
            hash_key(key): GatewayKey(key_scope(key), key_scope(key)) for key in configured
        }
        self._store = store
        self._refresh = refresh
        self._keys = dict(self._configured)
        self._read_at = -float("inf")
        self._lock = threading.Lock()

    def _current(self) -> dict[str, GatewayKey]:
        now = time.monotonic()
        if now - self._read_at < self._refresh:
            return self._keys
        with self._lock:
            if now - self._read_at >= self._refresh:
                try:
                    rows = stored.list(self._store)
                except StoreError as exc:
                    logger.warning("clew: cannot read the gateway keys, keeping the last: %s", exc)
                else:
                    self._keys = {**self._configured, **{row.hash: _record(row) for row in rows}}
                self._read_at = now
        return self._keys

    def any(self) -> bool:
        """Whether any key is configured or stored (else the server lets every caller in)."""
        return bool(self._current())

    def find(self, given: str) -> GatewayKey | None:
        """The key ``given`` is, or None."""
        return self._current().get(hash_key(given))
