"""Talking to the providers over HTTP (httpx2): one attempt, what its failure means, and when
to try again.

Connection errors, timeouts, 408, 429 and 5xx are retried with exponential backoff and full
jitter, honouring ``Retry-After``, as long as the call's one deadline allows; 400 and 401 are
not retried. Connections are pooled per process (and per event loop for async), so a call
pays for a connection only once.
"""

from __future__ import annotations

import asyncio
import atexit
import email.utils
import random
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import httpx2

from clew.errors import (
    AuthenticationError,
    CompletionError,
    CompletionTimeoutError,
    InvalidRequestError,
    ProviderError,
    RateLimitError,
)
from clew.providers.wire import Wire, loads
from clew.tracer.serialize import redact_text

__all__ = [
    "STREAM_BROKEN",
    "async_client",
    "backoff",
    "error_of_response",
    "error_of_transport",
    "retryable",
    "sync_client",
]

_BASE_DELAY = 0.25
_MAX_DELAY = 8.0
_LIMITS = httpx2.Limits(max_connections=512, max_keepalive_connections=64)
_lock = threading.Lock()
_sync: httpx2.Client | None = None
_async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx2.AsyncClient] = (
    weakref.WeakKeyDictionary()
)
_keepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = (
    weakref.WeakKeyDictionary()
)


def sync_client() -> httpx2.Client:
    """The process's pooled client (made on first use, closed at exit)."""
    global _sync
    client = _sync
    if client is None:
        with _lock:
            if _sync is None:
                _sync = httpx2.Client(limits=_LIMITS, timeout=None, follow_redirects=False)
                atexit.register(_sync.close)
            client = _sync
    return client


async def async_client() -> httpx2.AsyncClient:
    """The running event loop's pooled client (made on first use, closed with the loop)."""
    loop = asyncio.get_running_loop()
    client = _async.get(loop)
    if client is None:
        client = httpx2.AsyncClient(limits=_LIMITS, timeout=None, follow_redirects=False)
        _async[loop] = client
        # An async generator parked in the loop: the loop's shutdown (asyncio.run does it)
        # closes every such generator, and this one closes the client's connections then.
        keeper = _keep(client)
        _keepers[loop] = keeper
        await keeper.__anext__()
    return client


async def _keep(client: httpx2.AsyncClient) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await client.aclose()


# -- what a failure means -----------------------------------------------------------------
def retryable(error: CompletionError) -> bool:
    """Whether trying the same model again may help: a connection error, a timeout, 408, 429
    or 5xx (not an error inside a stream that had begun)."""
    if isinstance(error, CompletionTimeoutError | RateLimitError):
        return True
    return isinstance(error, ProviderError) and error.provider_error != STREAM_BROKEN


STREAM_BROKEN = "the stream broke after it began"
"""``provider_error`` of a stream that failed midway (never retried: text was delivered)."""


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds a ``Retry-After`` (or ``retry-after-ms``) header asks to wait, if any."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if value else None
        if when is None:
            return None
        return max(when.timestamp() - time.time(), 0.0)


def backoff(attempt: int, error: CompletionError, remaining: float) -> float | None:
    """How long to wait before retry number ``attempt`` (1 = the first retry), or None when
    the deadline does not leave time for it."""
    if error.retry_after is not None:
        delay = error.retry_after
    else:
        delay = random.uniform(0, min(_MAX_DELAY, _BASE_DELAY * 2 ** (attempt - 1)))
    return delay if delay < remaining else None


def error_of_response(
    status: int, headers: Mapping[str, str], body: bytes, wire: Wire, provider: str
) -> CompletionError:
    """The error an HTTP error response stands for, with the provider's own text."""
    try:
        parsed: Any = loads(body) if body else None
    except ValueError:
        parsed = body.decode("utf-8", "replace")
    text = redact_text(wire.error_message(status, parsed))  # providers echo keys back
    message = f"{provider} answered {status}: {text}"
    if status in (401, 403):
        return AuthenticationError(
            message, status_code=status, provider=provider, provider_error=text
        )
    if status == 429:
        return RateLimitError(
            message, provider=provider, provider_error=text, retry_after=retry_after(headers)
        )
    if status in (408, 504):
        return CompletionTimeoutError(message, provider=provider, provider_error=text)
    if status >= 500:
        return ProviderError(
            message, provider=provider, provider_error=text, retry_after=retry_after(headers)
        )
    return InvalidRequestError(message, status_code=400, provider=provider, provider_error=text)


def error_of_transport(exc: Exception, provider: str, deadline_passed: bool) -> CompletionError:
    """The error a failed connection or a timeout stands for."""
    if deadline_passed or isinstance(exc, httpx2.TimeoutException):
        return CompletionTimeoutError(
            f"{provider} did not answer in time ({type(exc).__name__})", provider=provider
        )
    return ProviderError(
        f"could not reach {provider}: {type(exc).__name__}: {redact_text(str(exc))}",
        provider=provider,
    )


def may_help(error: CompletionError, failed: str, candidate: str) -> bool:
    """Whether moving on to a model of provider ``candidate`` can help after ``error`` from
    ``failed``: a rejected key only helps with another provider's key; a rejected request
    (a model that does not exist, a prompt too long for it) may suit another model."""
    if isinstance(error, AuthenticationError):
        return candidate != failed
    return True
