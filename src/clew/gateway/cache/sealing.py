"""Sealing of cache entries: each is encrypted and authenticated under its own request.

The caller's ``material`` (the canonical JSON of the normalized provider request plus its scope)
gives, by :func:`derive`, the entry's lookup id (SHA-256) and two keys (one keyed BLAKE2b-512
split in halves). A sealed value is ``nonce (16) || ciphertext || tag (16)``: the keystream is
SHAKE-128(encryption key || nonce), the tag a keyed BLAKE2b over nonce || ciphertext under the
MAC key (encrypt-then-MAC). A bad tag, a truncated value or a value sealed under other material
opens to None.

So an entry is unreadable without the request that made it: a cache file or a Redis server
holds no prompt or response in the clear. It is not a substitute for disk encryption, and it
does not hide *that* some request was cached, nor when. A change of this format must change the
domain strings below, so that old entries open to None (a miss) rather than to garbage.
"""

from __future__ import annotations

import hashlib
import hmac
import os

__all__ = ["OVERHEAD", "derive", "open_sealed", "seal", "seal_with", "unseal_with"]

_NONCE = 16
_TAG = 16
OVERHEAD = _NONCE + _TAG
"""Bytes a sealed value has beyond its plaintext."""

_ID_DOMAIN = b"clew-cache:"
_KEY_DOMAIN = b"clew-cache-seal"


def derive(material: bytes) -> tuple[str, bytes, bytes]:
    """The lookup id (64 hex digits), the encryption key and the MAC key of one request."""
    keys = hashlib.blake2b(material, key=_KEY_DOMAIN, digest_size=64).digest()
    return hashlib.sha256(_ID_DOMAIN + material).hexdigest(), keys[:32], keys[32:]


def seal_with(enc: bytes, mac: bytes, value: bytes) -> bytes:
    """``value`` sealed under the keys :func:`derive` gave."""
    nonce = os.urandom(_NONCE)
    n = len(value)
    stream = hashlib.shake_128(enc + nonce).digest(n)
    head = nonce + (int.from_bytes(value) ^ int.from_bytes(stream)).to_bytes(n)
    return head + hashlib.blake2b(head, key=mac, digest_size=_TAG).digest()


def unseal_with(enc: bytes, mac: bytes, sealed: bytes) -> bytes | None:
    """The value :func:`seal_with` sealed under these keys, or None."""
    n = len(sealed) - OVERHEAD
    if n < 0:
        return None
    view = memoryview(sealed)
    tag = hashlib.blake2b(view[:-_TAG], key=mac, digest_size=_TAG).digest()
    if not hmac.compare_digest(tag, view[-_TAG:]):
        return None
    stream = hashlib.shake_128(enc + view[:_NONCE]).digest(n)
    return (int.from_bytes(view[_NONCE:-_TAG]) ^ int.from_bytes(stream)).to_bytes(n)


def seal(material: bytes, value: bytes) -> bytes:
    """``value`` sealed under the request ``material`` (what a cache stores)."""
    _, enc, mac = derive(material)
    return seal_with(enc, mac, value)


def open_sealed(material: bytes, sealed: bytes) -> bytes | None:
    """The value :func:`seal` sealed under ``material``; None if it was sealed under other
    material, or altered, or truncated."""
    _, enc, mac = derive(material)
    return unseal_with(enc, mac, sealed)
