"""``clew serve``: the completion gateway over HTTP (FastAPI on uvicorn: ``pip install
'clew[gateway]'``).

Routes:

- ``POST /api/parea/v1/completion``: a ``CompletionsSchema`` body (seed 000) → the completion
  log (seed 002). A bad body is a 422 with FastAPI's ``HTTPValidationError``.
- ``POST /api/parea/v1/completion/stream``: the same, as server-sent events: one
  ``data: {"content": "<text>"}`` event per delta, then ``event: done`` with the whole
  response; an error after the first byte arrives as an ``event: error`` with the error body,
  then the stream ends.
- ``POST /v1/chat/completions``: the OpenAI chat API (the official ``openai`` SDK works with
  ``base_url=".../v1"``), streaming and not, with seed 004's ``provider``, ``models`` and
  ``native_finish_reason``; ``model`` may be ``provider/model``. Bad bodies are 400s in the
  error body below, as on OpenAI's API.
- ``POST /v1/completions``: legacy text completions (seeds 003, 004), a prompt served as one user
  message to the chat model; a list of prompts gives a choice each. What that cannot carry
  (token prompts, ``suffix``, ``echo``, ``logprobs``, ``best_of``, grammar / python formats)
  is a 400 naming the parameter.
- ``GET /v1/models``: the models the caller may use (:mod:`clew.gateway.access`).
- ``GET /metrics`` (Prometheus: requests by status, errors by code, latency, upstream latency,
  tokens, cost, cache hits, by route, provider, model and key; see
  :mod:`clew.gateway.metrics`), ``GET /healthz``; OpenAPI at ``/docs``.

Request bodies over ``CLEW_GATEWAY_MAX_BODY_BYTES`` (4 MiB) are refused with a 413. Errors
other than validation use seed 004's body ``{"error": {"code", "message", "param",
"type"}}`` with the error's status (400, 401, 403, 429, 502, 504).

Callers authenticate with a gateway key, in ``x-user-id`` (the seed's API-key header) or
``Authorization: Bearer``, when keys are configured (``CLEW_GATEWAY_KEYS``, or ``clew keys
create``: :mod:`clew.gateway.keys`); the key scopes the cache, and its limits (requests and
tokens per minute, dollars per day, models) are kept by :mod:`clew.gateway.limits`. Each
request is the library call, traced as one: under the caller's ids, else the W3C
``traceparent`` header, else a new trace, with the key's name as ``clew.gateway.key``.
Stateless per request: any number of workers and machines can serve behind a load balancer,
sharing the cache and the limits' counters through Redis (``CLEW_CACHE_URL``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from opentelemetry import context as otel_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from clew import __version__
from clew import attributes as a
from clew.config import handed_settings
from clew.errors import (
    AuthenticationError,
    BodyTooLarge,
    CompletionError,
    InvalidRequestError,
)
from clew.gateway import access, openai_api
from clew.gateway.cache import is_redis_url
from clew.gateway.call import Gate
from clew.gateway.completion import acompletion
from clew.gateway.keys import GatewayKey, KeyRing
from clew.gateway.limits import Limiter
from clew.gateway.metrics import CONTENT_TYPE_LATEST, GatewayMetrics
from clew.gateway.schemas import Completion, CompletionResponse
from clew.gateway.stream import AsyncCompletionStream, astream_completion
from clew.setup import configure, current_config

__all__ = ["app_factory", "create_app"]

logger = logging.getLogger(__name__)

_PROPAGATOR = TraceContextTextMapPropagator()


def _error(exc: CompletionError) -> JSONResponse:
    headers = {}
    if exc.retry_after is not None:
        headers["retry-after"] = str(max(int(exc.retry_after + 0.999), 0))
    return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=headers)


def _sse(event: str | None, value: Any) -> bytes:
    data = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is a 413, whether it says its length
    or arrives in chunks."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(send)
                return
        received = 0
        started = False

        async def counted() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        async def watched(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        error = CompletionError(
            f"the request body is over {self.limit} bytes (CLEW_GATEWAY_MAX_BODY_BYTES)",
            code="request_too_large",
            status_code=413,
        )
        body = json.dumps(error.to_dict()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


_NO_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI).parameters
    else {}
)
"""FastAPI's own OpenTelemetry (0.165 and later) off: clew traces each request itself, and
FastAPI's request spans (which clew's exporters drop) cost a tenth of a request's time."""

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
_DONE = b"data: [DONE]\n\n"


@contextlib.contextmanager
def _traced(request: Request) -> Iterator[None]:
    """The caller's W3C ``traceparent`` (if any) as the current context, for a completion."""
    token = otel_context.attach(_PROPAGATOR.extract(dict(request.headers)))
    try:
        yield
    finally:
        otel_context.detach(token)


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise InvalidRequestError("the body is not JSON") from None


_END = object()


async def _coalesced(batches: AsyncIterator[list[str]]) -> AsyncGenerator[list[str], None]:
    """``batches`` merged into as few as possible: what arrived from the provider while the
    last write went out is written at once.

    A provider sends each event as an HTTP chunk of its own, read one at a time; each written
    on its own costs a send through the ASGI stack and a system call (tens of microseconds,
    times every token). A reader task runs ahead into a bounded queue (so a slow client still
    slows the reading), and each write takes everything queued.
    """
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=256)

    async def read() -> None:
        try:
            async for batch in batches:
                await queue.put(batch)
        except Exception as exc:  # handed to the writer, which raises it in order
            await queue.put(exc)
        else:
            await queue.put(_END)

    reader = asyncio.create_task(read())
    try:
        while True:
            item = await queue.get()
            merged: list[str] = []
            while True:
                if isinstance(item, Exception):
                    if merged:
                        yield merged
                    raise item
                if item is _END:
                    if merged:
                        yield merged
                    return
                merged.extend(item)
                if queue.empty():
                    break
                item = queue.get_nowait()
            yield merged
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


def _given_key(request: Request) -> str:
    """The key the caller sent: ``x-user-id``, else ``Authorization: Bearer``."""
    given = request.headers.get("x-user-id")
    if given:
        return given
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def create_app(keys: Sequence[str] | None = None) -> FastAPI:
    """The gateway's ASGI app.

    Args:
        keys: the gateway keys callers must present; None reads ``CLEW_GATEWAY_KEYS`` (none
            configured: every caller is let in, as on a developer's machine).
    """
    app = FastAPI(title="clew gateway", version=__version__, **_NO_TELEMETRY)
    config = current_config()
    settings = config.gateway
    ring = KeyRing(list(keys) if keys is not None else settings.key_list(), config.store_path)
    limiter = Limiter(settings.cache_url if is_redis_url(settings.cache_url) else None)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    metrics = GatewayMetrics(settings.metrics_dir)

    def identify(request: Request) -> GatewayKey | None:
        """The caller's key (None when no key is configured: every caller is let in); raises
        AuthenticationError for a missing or wrong key. Also starts the request's clock."""
        request.state.started = time.perf_counter()
        request.state.key = ""
        if not ring.any():
            return None
        given = _given_key(request)
        found = ring.find(given) if given else None
        if found is None:
            raise AuthenticationError(
                "a gateway key is required: send it in x-user-id or Authorization: Bearer",
                code="invalid_api_key",
            )
        request.state.key = found.name
        return found

    class Caller:
        """An admitted request's key, and what it adds to the completion."""

        __slots__ = ("gate", "key", "scope")

        def __init__(self, key: GatewayKey | None) -> None:
            self.key = key
            self.scope = key.scope if key is not None else ""
            restricted = settings.models is not None or (key is not None and key.models)
            self.gate = Gate(
                {a.CLEW_GATEWAY_KEY: key.name} if key is not None else {},
                (lambda plan: access.check(plan, key, settings.models)) if restricted else None,
                metrics.upstream,
            )

        @property
        def name(self) -> str:
            return self.key.name if self.key is not None else ""

        async def answered(self, request: Request, response: CompletionResponse) -> None:
            """Count an answer in the metrics and the key's limits."""
            metrics.answered(request.url.path, self.name, elapsed(request), response)
            if self.key is not None and not response.cache_hit:
                await limiter.spend(self.key, response.total_tokens, response.cost or 0.0)

    async def admit(request: Request) -> Caller:
        """The caller, let in within its key's limits (RateLimitError when over one)."""
        key = identify(request)
        if key is not None:
            await limiter.admit(key)
        return Caller(key)

    def elapsed(request: Request) -> float:
        started = getattr(request.state, "started", None)
        return 0.0 if started is None else time.perf_counter() - started

    @app.exception_handler(CompletionError)
    async def _completion_error(request: Request, exc: CompletionError) -> JSONResponse:
        key = getattr(request.state, "key", "")
        metrics.failed(request.url.path, key, elapsed(request), exc)
        return _error(exc)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/metrics")
    async def prometheus(request: Request) -> Response:
        identify(request)
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        return access.listed(current_config(), identify(request))

    def relay(
        request: Request,
        caller: Caller,
        stream: AsyncCompletionStream,
        piece: Callable[[str], dict[str, Any]],
        done: Callable[[CompletionResponse], list[bytes]],
        error_event: str | None,
        first: bytes = b"",
        end: bytes = b"",
    ) -> StreamingResponse:
        """Relay ``stream`` as server-sent events: ``first``, a ``piece`` per delta, what
        ``done`` makes of the response, then ``end``; an error midway is one event named
        ``error_event`` with the error body. Counted in the metrics either way."""

        async def events() -> AsyncIterator[bytes]:
            merged = _coalesced(stream.batches())
            try:
                if first:
                    yield first
                async for texts in merged:
                    yield b"".join([_sse(None, piece(text)) for text in texts])
                response = stream.response
                if response is not None:
                    await caller.answered(request, response)
                    for event in done(response):
                        yield event
            except CompletionError as exc:
                metrics.failed(request.url.path, caller.name, elapsed(request), exc)
                yield _sse(error_event, exc.to_dict())
            finally:
                await merged.aclose()  # its reader first: it may still be reading the stream
                await stream.aclose()
            if end:
                yield end

        return StreamingResponse(events(), media_type="text/event-stream", headers=_SSE_HEADERS)

    @app.post("/api/parea/v1/completion", response_model=CompletionResponse)
    async def completion(body: Completion, request: Request) -> CompletionResponse:
        caller = await admit(request)
        with _traced(request):
            reply = await acompletion(body, scope=caller.scope, gate=caller.gate)
        await caller.answered(request, reply)
        return reply

    @app.post("/api/parea/v1/completion/stream")
    async def completion_stream(body: Completion, request: Request) -> StreamingResponse:
        caller = await admit(request)
        with _traced(request):  # errors before the first byte: a JSON error response
            stream = await astream_completion(body, scope=caller.scope, gate=caller.gate)
        return relay(
            request,
            caller,
            stream,
            lambda text: {"content": text},
            lambda response: [_sse("done", response.model_dump(mode="json"))],
            "error",
        )

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        caller = await admit(request)
        chat = openai_api.parse(await _json_body(request))
        completion = openai_api.to_completion(chat)
        with _traced(request):
            if not chat.stream:
                reply = await acompletion(completion, scope=caller.scope, gate=caller.gate)
                await caller.answered(request, reply)
                return openai_api.chat_response(reply)
            stream = await astream_completion(completion, scope=caller.scope, gate=caller.gate)
        include_usage = bool((chat.stream_options or {}).get("include_usage"))
        chunk_id = f"chatcmpl-{stream.trace_id}"

        def done(response: CompletionResponse) -> list[bytes]:
            events = [_sse(None, openai_api.chat_chunk(chunk_id, response.model, None, response))]
            if include_usage:
                usage = openai_api.chat_chunk(chunk_id, response.model, None, None, response)
                events.append(_sse(None, usage))
            return events

        return relay(
            request,
            caller,
            stream,
            lambda text: openai_api.chat_chunk(chunk_id, chat.model, {"content": text}),
            done,
            None,  # OpenAI sends an error midway as a plain data event
            first=_sse(None, openai_api.chat_chunk(chunk_id, chat.model, {"role": "assistant"})),
            end=_DONE,
        )

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        caller = await admit(request)
        text = openai_api.parse_text(await _json_body(request))
        requests = [openai_api.text_completion(text, p) for p in openai_api.text_prompts(text)]
        with _traced(request):
            if not text.stream:
                replies = await asyncio.gather(
                    *(acompletion(r, scope=caller.scope, gate=caller.gate) for r in requests)
                )
                for reply in replies:
                    await caller.answered(request, reply)
                return openai_api.text_response(list(replies))
            if len(requests) != 1:
                raise InvalidRequestError("a stream takes one prompt", param="prompt")
            stream = await astream_completion(requests[0], scope=caller.scope, gate=caller.gate)
        chunk_id = f"cmpl-{stream.trace_id}"
        return relay(
            request,
            caller,
            stream,
            lambda piece: openai_api.text_chunk(chunk_id, text.model, piece),
            lambda done: [_sse(None, openai_api.text_chunk(chunk_id, done.model, None, done))],
            None,
            end=_DONE,
        )

    return app


def app_factory() -> FastAPI:
    """For ``uvicorn --factory clew.gateway.server:app_factory`` (what ``clew serve`` runs):
    the settings of ``clew serve --config FILE`` over the environment's, then the app."""
    handed = handed_settings()
    if handed:
        configure(**handed)
    return create_app()
