"""``clew.completion`` and ``clew.acompletion``: one request shape for every provider.

A call validates and plans everything first (:mod:`clew.gateway.request`), then looks in the
cache, then tries the requested model and its fallbacks in order, retrying each on connection
errors, timeouts, 408, 429 and 5xx within one deadline, and answers with a
:class:`~clew.gateway.schemas.CompletionResponse`. Each call is an LLM span with one child span
per upstream attempt.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx2

from clew import __version__
from clew.config import Config
from clew.errors import CompletionError, ProviderError
from clew.gateway.answer import Answer
from clew.gateway.cache import MemoryFront, open_cache
from clew.gateway.call import CompletionCall, Gate
from clew.gateway.request import Candidate, plan, validate
from clew.gateway.schemas import Completion, CompletionResponse
from clew.gateway.upstream import (
    async_client,
    error_of_response,
    error_of_transport,
    sync_client,
)
from clew.providers.engine import Outcome
from clew.providers.wire import loads
from clew.setup import current_config
from clew.tracer.live import LiveSpan

__all__ = [
    "acompletion",
    "aconnect",
    "completion",
    "completion_cache",
    "connect",
    "read_answer",
    "start",
]

_caches: dict[tuple[Any, ...], MemoryFront] = {}
_caches_lock = threading.Lock()


def completion_cache(config: Config) -> MemoryFront:
    """The cache the configuration names (``CLEW_CACHE_URL``; by default ``cache.db`` beside
    the trace store), opened once per process."""
    gateway = config.gateway
    key = (gateway.cache_url, config.store_path, gateway.cache_ttl, gateway.cache_max_bytes)
    cache = _caches.get(key)
    if cache is None:
        with _caches_lock:
            cache = _caches.get(key)
            if cache is None:
                default = config.store_path.parent / "cache.db"
                cache = MemoryFront(
                    open_cache(
                        gateway.cache_url, default, gateway.cache_ttl, gateway.cache_max_bytes
                    )
                )
                _caches[key] = cache
    return cache


def start(
    request: Completion | Mapping[str, Any],
    *,
    stream: bool,
    scope: str = "",
    gate: Gate | None = None,
) -> CompletionCall:
    """Validate and plan a completion and open its span.

    Args:
        gate: what a gateway adds (the key's name on the span, its allowed models, metrics).

    Raises:
        CompletionError: the request cannot be served (nothing was sent).
    """
    validated = validate(request)
    config = current_config()
    planned = plan(validated, config, stream=stream, scope=scope)
    upstream = None
    if gate is not None:
        planned.extra.update(gate.attributes)
        if gate.admit is not None:
            gate.admit(planned)
        upstream = gate.upstream
    cache = completion_cache(config) if validated.cache else None
    return CompletionCall(planned, config, cache, upstream)


def completion(
    request: Completion | Mapping[str, Any],
    *,
    scope: str = "",
    gate: Gate | None = None,
) -> CompletionResponse:
    """Complete a prompt with any of the twelve providers.

    Args:
        request: a :class:`~clew.Completion` (the seed's ``CompletionsSchema``) or the same
            as a dict.
        scope: the cache's scope (the gateway passes the caller's key; empty in a library).

    Returns:
        The response: content, tool calls, tokens, cost, the model and provider that served.

    Raises:
        InvalidRequestError: the request is invalid (400); nothing was sent.
        AuthenticationError: no key, or the provider refused it (401).
        RateLimitError: the provider kept answering 429 (429).
        ProviderError: the provider failed (5xx).
        CompletionTimeoutError: the deadline (``CLEW_COMPLETION_TIMEOUT``) passed (504).

    Example:
        >>> import clew
        >>> reply = clew.completion({"llm_configuration": {  # doctest: +SKIP
        ...     "provider": "openai", "model": "gpt-4o-mini",
        ...     "messages": [{"role": "user", "content": "Say hi"}]}})
        >>> reply.content, reply.cost  # doctest: +SKIP
    """
    call = start(request, stream=False, scope=scope, gate=gate)
    try:
        hit = call.cached()
        if hit is not None:
            return call.finish(hit, cache_hit=True)
        answer = _run(call)
        call.store(answer)
        return call.finish(answer)
    except BaseException as exc:
        call.fail(exc)
        raise


async def acompletion(
    request: Completion | Mapping[str, Any],
    *,
    scope: str = "",
    gate: Gate | None = None,
) -> CompletionResponse:
    """:func:`completion`, for ``await``."""
    call = start(request, stream=False, scope=scope, gate=gate)
    try:
        hit = await call.acached()
        if hit is not None:
            return call.finish(hit, cache_hit=True)
        answer = await _arun(call)
        await call.astore(answer)
        return call.finish(answer)
    except BaseException as exc:
        call.fail(exc)
        raise


def read_answer(candidate: Candidate, index: int, body: bytes) -> Answer:
    """The answer in a 200 response's body, read by the provider's shared parser."""
    try:
        parsed = loads(body)
    except ValueError:
        raise ProviderError(
            f"{candidate.provider} sent a response that is not JSON",
            provider=candidate.provider,
            provider_error=body[:200].decode("utf-8", "replace"),
        ) from None
    outcome: Outcome = candidate.wire.route.response(parsed)
    return Answer(candidate.provider, candidate.model, outcome, index)


Connected = tuple[int, Candidate, LiveSpan | None, httpx2.Response]
"""The model that answered 200 (its fallback index), its attempt span, its open response."""


def connect(call: CompletionCall) -> Connected:
    """Send the request to each model in turn, with retries, until one answers 200.

    Raises:
        CompletionError: every model failed, or the deadline passed.
    """
    client = sync_client()
    while (step := call.next_attempt()) is not None:
        index, candidate = step
        span = call.begin_attempt(candidate, index)
        status: int | None = None
        try:
            response = client.send(_built(client, call, candidate), stream=True)
            status = response.status_code
            if status < 300:
                return index, candidate, span, response
            try:
                body = response.read()
            finally:
                response.close()
            error = error_of_response(
                status, response.headers, body, candidate.wire, candidate.provider
            )
        except CompletionError as exc:
            error = exc
        except httpx2.HTTPError as exc:
            error = error_of_transport(exc, candidate.provider, call.remaining() <= 0)
        call.end_attempt(span, status, error)
        delay = call.after_failure(error)
        if delay:
            time.sleep(delay)
    raise call.failure()


async def aconnect(call: CompletionCall) -> Connected:
    """:func:`connect`, for async callers."""
    client = await async_client()
    while (step := call.next_attempt()) is not None:
        index, candidate = step
        span = call.begin_attempt(candidate, index)
        status: int | None = None
        try:
            response = await client.send(_built(client, call, candidate), stream=True)
            status = response.status_code
            if status < 300:
                return index, candidate, span, response
            try:
                body = await response.aread()
            finally:
                await response.aclose()
            error = error_of_response(
                status, response.headers, body, candidate.wire, candidate.provider
            )
        except CompletionError as exc:
            error = exc
        except httpx2.HTTPError as exc:
            error = error_of_transport(exc, candidate.provider, call.remaining() <= 0)
        call.end_attempt(span, status, error)
        delay = call.after_failure(error)
        if delay:
            await asyncio.sleep(delay)
    raise call.failure()


def _built(
    client: httpx2.Client | httpx2.AsyncClient, call: CompletionCall, candidate: Candidate
) -> httpx2.Request:
    """The HTTP request of one attempt: prepared (signed) now, bounded by the deadline.

    Built directly rather than by ``client.build_request``: the client has no base URL, no
    cookies and no default parameters to merge, so only its headers are added here.
    """
    assert candidate.request is not None  # a candidate without one is never tried
    request = candidate.wire.prepare(candidate.request, candidate.target)
    remaining = max(call.remaining(), 0.001)
    return httpx2.Request(
        "POST",
        request.url,
        content=request.content,
        headers={**_HEADERS, **request.headers},
        extensions={
            "timeout": {
                "connect": remaining,
                "read": remaining,
                "write": remaining,
                "pool": remaining,
            }
        },
    )


_HEADERS = {
    "accept": "*/*",
    "accept-encoding": "gzip, deflate",
    "connection": "keep-alive",
    "user-agent": f"clew/{__version__}",
}


def _body_failed(
    call: CompletionCall, candidate: Candidate, exc: httpx2.HTTPError
) -> CompletionError:
    return error_of_transport(exc, candidate.provider, call.remaining() <= 0)


def _run(call: CompletionCall) -> Answer:
    index, candidate, span, response = connect(call)
    try:
        body = response.read()
    except httpx2.HTTPError as exc:
        error = _body_failed(call, candidate, exc)
        call.end_attempt(span, 200, error)
        raise error from None
    finally:
        response.close()
    answer = read_answer(candidate, index, body)
    call.end_attempt(span, 200, None)
    return answer


async def _arun(call: CompletionCall) -> Answer:
    index, candidate, span, response = await aconnect(call)
    try:
        body = await response.aread()
    except httpx2.HTTPError as exc:
        error = _body_failed(call, candidate, exc)
        call.end_attempt(span, 200, error)
        raise error from None
    finally:
        await response.aclose()
    answer = read_answer(candidate, index, body)
    call.end_attempt(span, 200, None)
    return answer
