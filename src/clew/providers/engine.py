"""The one LLM instrumentation engine every provider SDK goes through.

The ``openai`` and ``anthropic`` SDKs send every API call through one method,
``SyncAPIClient.request`` / ``AsyncAPIClient.request``. clew wraps that method (on the class,
or on one client), so every endpoint, ``with_raw_response`` and ``with_streaming_response``
included, passes the same few lines of code. A provider module only says, per request path,
what to read from the request and from the response (a :class:`Route`), and how to follow a
stream (a :class:`StreamState`).

Life of a call:

1. :func:`begin` decides: not an LLM route, or a sampled-out parent → no span, nothing
   captured. Otherwise it opens a CLIENT span with the request attributes, and the content
   (messages, tools) unless the omit rules drop it.
2. The SDK call runs with the span current (so HTTP spans nest under it).
3. A plain response ends the span at once. A stream ends it exactly once: on exhaustion, an
   error, ``close()``, an early ``break``, leaving ``with``, or garbage collection. A raw
   response ends it when parsed (or closed, or collected).

Nothing here raises into the user's call: a failure inside clew is logged and swallowed, and
the SDK's own result or exception reaches the caller unchanged.
"""

from __future__ import annotations

import inspect
import logging
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import wrapt
from opentelemetry.trace import SpanKind

from clew import attributes as a
from clew.providers.pricing import cost_of
from clew.providers.registry import Endpoint
from clew.providers.usage import Usage
from clew.tracer.entry import open_span
from clew.tracer.live import LIVE_KEY, LiveSpan, current_context
from clew.tracer.options import SpanSpec
from clew.tracer.serialize import to_json

__all__ = [
    "Adapter",
    "Call",
    "Instrumentation",
    "Outcome",
    "Route",
    "StreamState",
]

logger = logging.getLogger(__name__)

_IN_CALL: ContextVar[bool] = ContextVar("clew_in_llm_call", default=False)
"""True while an instrumented request runs: a second wrapper on the same call stands aside."""

_specs: dict[str, SpanSpec] = {}


def _spec(name: str) -> SpanSpec:
    spec = _specs.get(name)
    if spec is None:
        spec = SpanSpec(name)
        if len(_specs) < 2048:
            _specs[name] = spec
    return spec


@dataclass(slots=True)
class Outcome:
    """What a response said, for the engine to record and price.

    Attributes:
        usage: the token (None when the response carried none).
        model: the model that answered (None: the requested one).
        reported_cost: a cost the provider reported (OpenRouter), which wins over prices.
    """

    usage: Usage | None = None
    model: str | None = None
    reported_cost: float | None = None


class StreamState:
    """Follows one stream: sees every chunk, then tells what the whole stream said.

    A provider subclasses it per streaming route. ``record`` runs on the user's thread for
    each chunk, so it keeps only what it needs (no copies of chunks, no summing of usage: the
    usage is taken from the chunk that carries it).
    """

    __slots__ = ()

    def record(self, chunk: Any) -> None:
        """Take note of one chunk (called for every chunk the user receives)."""

    def outcome(self, call: Call) -> Outcome:
        """Set the response attributes on ``call`` and return the usage (at the stream's end)."""
        return Outcome()


@dataclass(frozen=True, slots=True)
class Route:
    """How to trace one API path (logfire's "endpoint config").

    Attributes:
        operation: ``gen_ai.operation.name`` (``chat``, ``text_completion``, ``embeddings``).
        request: the request attributes (parameters) from the JSON body; always recorded.
        content: the content attributes (messages, system instructions, tool definitions)
            from the body and the span's byte limit; only called when inputs are captured.
        response: sets the response attributes on the call and returns the outcome.
        stream_state: makes the :class:`StreamState` of a streamed response.
    """

    operation: str
    request: Callable[[Mapping[str, Any]], dict[str, Any]]
    content: Callable[[Mapping[str, Any], int], dict[str, Any]]
    response: Callable[[Call, Any], Outcome]
    stream_state: Callable[[Mapping[str, Any]], StreamState] | None = None


class Adapter:
    """One SDK's differences from the others; a provider module makes one instance.

    Attributes:
        name: the SDK name (``openai``), used in instrumentation keys.
        routes: the route of each request path (``/chat/completions`` ...).
        stream_types: the SDK's stream classes.
        raw_types: the SDK's raw-response classes (``with_raw_response`` and
            ``with_streaming_response``).
        endpoint_of: the provider, host and port a client talks to.
        prepare: adjusts the SDK's request options of a call clew traces (e.g. turns off the
            SDK's own span of the same call, so there is one span per call).
    """

    def __init__(
        self,
        name: str,
        routes: Mapping[str, Route],
        stream_types: tuple[type, ...],
        raw_types: tuple[type, ...],
        endpoint_of: Callable[[Any], Endpoint],
        prepare: Callable[[Any], None] | None = None,
    ) -> None:
        self.name = name
        self.routes = dict(routes)
        self._by_length = sorted(self.routes, key=len, reverse=True)
        self.stream_types = stream_types
        self.raw_types = raw_types
        self.endpoint_of = endpoint_of
        self.prepare = prepare

    def route(self, url: str) -> Route | None:
        """The route for a request path, or None when it is not an LLM call.

        Paths are matched exactly, then by suffix, longest first, so Azure's
        ``/deployments/<name>/chat/completions`` is a chat call, not a legacy completion.
        """
        found = self.routes.get(url)
        if found is None:
            for path in self._by_length:
                if url.endswith(path):
                    return self.routes[path]
        return found


# -- one call ------------------------------------------------------------------------------
class Call:
    """One traced LLM request: its span and what the end of the call needs."""

    __slots__ = (
        "__weakref__",
        "body",
        "busy",
        "endpoint",
        "first_chunk",
        "live",
        "request_model",
        "route",
        "started",
        "state",
    )

    def __init__(
        self, live: LiveSpan, route: Route, body: Mapping[str, Any], endpoint: Endpoint
    ) -> None:
        self.live = live
        self.route = route
        self.body = body
        self.endpoint = endpoint
        model = body.get("model")
        self.request_model = model if isinstance(model, str) else None
        self.started = time.perf_counter()
        self.first_chunk: float | None = None
        self.state: StreamState | None = None
        self.busy = False

    @property
    def ended(self) -> bool:
        """True once the span has ended."""
        return self.live.ended

    @property
    def omit_outputs(self) -> bool:
        """True when output messages must not be recorded."""
        return self.live.omit_outputs

    @property
    def max_bytes(self) -> int:
        """The byte limit of one JSON attribute."""
        return self.live.max_bytes

    def set(self, key: str, value: Any) -> None:
        """Set an attribute, recorded when the span ends (None values are skipped)."""
        if value is not None:
            self.live.set_attribute(key, value)

    def set_json(self, key: str, value: Any, plain: bool = False) -> None:
        """Set an attribute to the JSON text of ``value`` (bounded and redacted).

        ``plain``: ``value`` is clew's own text messages (see :func:`to_json`).
        """
        if value is not None:
            self.live.set_attribute(key, to_json(value, self.live.max_bytes, plain=plain))

    # -- endings (each safe to call more than once; the span ends once) -------------------
    def finish(self, response: Any) -> None:
        """End the span with a complete response."""
        if self.live.ended:
            return
        try:
            self._record(self.route.response(self, response))
        except Exception:
            logger.exception("clew: reading the %s response failed", self.route.operation)
        self.live.end()

    def finish_stream(self, how: str = "closed") -> None:
        """End the span of a stream with what it said so far.

        Args:
            how: ``exhausted``, ``closed`` (close, break, leaving ``with``) or ``dropped``
                (garbage-collected), recorded as ``clew.stream.end``.
        """
        if self.live.ended:
            return
        try:
            if self.state is not None:
                self.live.set_attribute(a.CLEW_STREAM_END, how)
            if self.first_chunk is not None:
                self.live.set_attribute(a.CLEW_TIME_TO_FIRST_TOKEN, self.first_chunk - self.started)
            if self.state is not None:
                self._record(self.state.outcome(self))
        except Exception:
            logger.exception("clew: reading the %s stream failed", self.route.operation)
        self.live.end()

    def fail(self, exc: BaseException) -> None:
        """End the span with status error (the exception itself goes on to the caller)."""
        if self.live.ended:
            return
        try:
            status = getattr(exc, "status_code", None)
            if isinstance(status, int):
                self.live.set_attribute(a.HTTP_RESPONSE_STATUS_CODE, status)
            if self.state is not None:
                self.live.set_attribute(a.CLEW_STREAM_END, "error")
                if self.first_chunk is not None:
                    ttft = self.first_chunk - self.started
                    self.live.set_attribute(a.CLEW_TIME_TO_FIRST_TOKEN, ttft)
                self._record(self.state.outcome(self))
        except Exception:
            logger.exception("clew: recording an LLM error failed")
        self.live.fail(exc)

    def chunk(self, item: Any) -> None:
        """Note one stream chunk (on the user's thread)."""
        if self.first_chunk is None:
            self.first_chunk = time.perf_counter()
        state = self.state
        if state is not None and not self.live.ended:
            try:
                state.record(item)
            except Exception:
                logger.exception("clew: reading a stream chunk failed")
                self.state = None

    def _record(self, outcome: Outcome) -> None:
        live = self.live
        model = outcome.model or self.request_model
        if outcome.model:
            live.set_attribute(a.GEN_AI_RESPONSE_MODEL, outcome.model)
        usage = outcome.usage
        if usage is None:
            live.set_attribute(a.CLEW_COST_ERROR, "no usage reported")
            return
        attrs = usage.attributes()
        attrs.update(
            cost_of(usage, model, self.endpoint.provider, outcome.reported_cost).attributes()
        )
        live.update_attributes(attrs)

    def __del__(self) -> None:
        # A stream or raw response dropped before it ended: the span ends now.
        try:
            if not self.live.ended:
                self.finish_stream("dropped")
        except Exception:
            pass


def begin(
    adapter: Adapter, client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Call | None:
    """Open the span of one SDK request, or return None when it is not traced.

    ``args`` / ``kwargs`` are those of ``request(cast_to, options, *, stream, stream_cls)``.
    """
    context = current_context()
    parent: Any = context.get(LIVE_KEY)  # a LiveSpan or None
    if parent is not None and not parent.recording:
        return None  # a sampled-out trace: no span, nothing captured
    options = args[1] if len(args) > 1 else kwargs.get("options")
    url = getattr(options, "url", None)
    if not isinstance(url, str):
        return None
    route = adapter.route(url)
    if route is None:
        return None
    body = getattr(options, "json_data", None)
    if type(body) is not dict and not isinstance(body, Mapping):  # the ABC check costs more
        body = {}
    extra = getattr(options, "extra_json", None)
    if extra and isinstance(extra, Mapping):
        body = {**body, **extra}
    endpoint = adapter.endpoint_of(client)
    attrs = route.request(body)
    attrs[a.GEN_AI_OPERATION_NAME] = route.operation
    attrs[a.GEN_AI_PROVIDER_NAME] = endpoint.provider
    if endpoint.host:
        attrs[a.SERVER_ADDRESS] = endpoint.host
    if endpoint.port:
        attrs[a.SERVER_PORT] = endpoint.port
    model = body.get("model")
    name = f"{route.operation} {model}" if isinstance(model, str) and model else route.operation
    live = open_span(_spec(name), context, parent, extra=attrs, kind=SpanKind.CLIENT)
    if live is None or not live.recording:
        return None
    call = Call(live, route, body, endpoint)
    if not live.omit_inputs:
        try:
            for key, value in route.content(body, live.max_bytes).items():
                live.set_attribute(key, value)
        except Exception:
            logger.exception("clew: reading the %s request failed", route.operation)
    if adapter.prepare is not None:
        try:
            adapter.prepare(options)
        except Exception:
            logger.debug("clew: preparing the %s request failed", adapter.name, exc_info=True)
    stream = kwargs.get("stream")
    if stream and route.stream_state is not None:
        call.state = route.stream_state(body)
    return call


# -- results: plain, stream, raw -----------------------------------------------------------
def settle(adapter: Adapter, call: Call, result: Any) -> None:
    """Record a result: end the span now, or hook the stream / raw response that ends it."""
    try:
        if isinstance(result, adapter.stream_types):
            _hook_stream(call, result)
        elif isinstance(result, adapter.raw_types):
            _hook_raw(adapter, call, result)
        else:
            call.finish(result)
    except Exception:
        logger.exception("clew: recording an LLM response failed")
        call.finish_stream()


def _hook_stream(call: Call, stream: Any) -> None:
    if call.state is None:
        call.state = call.route.stream_state(call.body) if call.route.stream_state else None
    inner = stream._iterator
    is_async = hasattr(inner, "__anext__")
    stream.__dict__["_iterator"] = (
        _AsyncChunks(inner, call) if is_async else _SyncChunks(inner, call)
    )
    _hook_close(call, getattr(stream, "response", None), is_async)


def _hook_close(call: Call, response: Any, is_async: bool) -> None:
    """End the span when the HTTP response is closed outside clew's own iteration."""
    if response is None or not hasattr(response, "__dict__"):
        return
    # Only weak references and the class's own method: the hook must not tie the response into
    # a reference cycle, or every response would wait for the cyclic garbage collector.
    ref = weakref.ref(call)
    response_ref = weakref.ref(response)
    if is_async:
        class_aclose = type(response).aclose

        async def aclose() -> None:
            _closed(ref)
            owner = response_ref()
            if owner is not None:
                await class_aclose(owner)

        response.aclose = aclose
    else:
        class_close = type(response).close

        def close() -> None:
            _closed(ref)
            owner = response_ref()
            if owner is not None:
                class_close(owner)

        response.close = close


def _closed(ref: weakref.ReferenceType[Call]) -> None:
    call = ref()
    if call is not None and not call.busy and not call.live.ended:
        call.finish_stream()


class _SyncChunks:
    """Stands in for a stream's chunk iterator; sees each chunk and every way it can end."""

    __slots__ = ("_call", "_inner")

    def __init__(self, inner: Iterator[Any], call: Call) -> None:
        self._inner = inner
        self._call = call

    def __next__(self) -> Any:
        call = self._call
        call.busy = True
        try:
            item = next(self._inner)
        except StopIteration:
            call.busy = False
            call.finish_stream("exhausted")
            raise
        except BaseException as exc:
            call.busy = False
            call.fail(exc)
            raise
        call.busy = False
        call.chunk(item)
        return item

    def __iter__(self) -> Iterator[Any]:
        return self._loop()

    def _loop(self) -> Iterator[Any]:
        # The per-chunk path of every stream: one loop, and the state's own ``record`` as
        # the only call per chunk (what :meth:`Call.chunk` does, inline).
        call = self._call
        live = call.live
        state = call.state
        record = state.record if state is not None else None
        try:
            call.busy = True
            for item in self._inner:
                call.busy = False
                if call.first_chunk is None:
                    call.first_chunk = time.perf_counter()
                if record is not None and not live.ended:
                    try:
                        record(item)
                    except Exception:
                        logger.exception("clew: reading a stream chunk failed")
                        record = call.state = None
                yield item
                call.busy = True
            call.busy = False
            call.finish_stream("exhausted")
        except GeneratorExit:
            call.finish_stream()  # an early break: the consumer let go
            raise
        except BaseException as exc:
            call.busy = False
            call.fail(exc)
            raise


class _AsyncChunks:
    """The async twin of :class:`_SyncChunks`."""

    __slots__ = ("_call", "_inner")

    def __init__(self, inner: Any, call: Call) -> None:
        self._inner = inner
        self._call = call

    async def __anext__(self) -> Any:
        call = self._call
        call.busy = True
        try:
            item = await self._inner.__anext__()
        except StopAsyncIteration:
            call.busy = False
            call.finish_stream("exhausted")
            raise
        except BaseException as exc:
            call.busy = False
            call.fail(exc)
            raise
        call.busy = False
        call.chunk(item)
        return item

    def __aiter__(self) -> Any:
        return self._loop()

    async def _loop(self) -> Any:
        call = self._call
        live = call.live
        state = call.state
        record = state.record if state is not None else None
        try:
            call.busy = True
            async for item in self._inner:
                call.busy = False
                if call.first_chunk is None:
                    call.first_chunk = time.perf_counter()
                if record is not None and not live.ended:
                    try:
                        record(item)
                    except Exception:
                        logger.exception("clew: reading a stream chunk failed")
                        record = call.state = None
                yield item
                call.busy = True
            call.busy = False
            call.finish_stream("exhausted")
        except GeneratorExit:
            call.finish_stream()
            raise
        except BaseException as exc:
            call.busy = False
            call.fail(exc)
            raise


def _hook_raw(adapter: Adapter, call: Call, raw: Any) -> None:
    """``with_raw_response`` / ``with_streaming_response``: the span ends when parsed.

    The hooked ``parse`` holds the raw response strongly: ``create(...).parse()`` drops the
    raw response before ``parse`` runs. (Raw response and hook form a cycle, which the
    collector reclaims; an unparsed response's span ends then, or when its body is closed.)
    """
    parse = type(raw).parse

    def settle_parsed(parsed: Any, to: Any) -> None:
        if to is None and not call.live.ended:
            settle(adapter, call, parsed)

    if inspect.iscoroutinefunction(parse):

        async def aparse(*args: Any, **kwargs: Any) -> Any:
            call.busy = True
            try:
                parsed = await parse(raw, *args, **kwargs)
            finally:
                call.busy = False
            settle_parsed(parsed, kwargs.get("to"))
            return parsed

        raw.parse = aparse
    else:

        def sync_parse(*args: Any, **kwargs: Any) -> Any:
            call.busy = True
            try:
                parsed = parse(raw, *args, **kwargs)
            finally:
                call.busy = False
            settle_parsed(parsed, kwargs.get("to"))
            return parsed

        raw.parse = sync_parse
    http = getattr(raw, "http_response", None)
    stream = getattr(http, "stream", None)
    is_async = hasattr(stream, "__aiter__") and not hasattr(stream, "__iter__")
    _hook_close(call, http, is_async)


# -- the wrappers --------------------------------------------------------------------------
def sync_wrapper(adapter: Adapter) -> Callable[..., Any]:
    """The wrapt wrapper of a sync ``request`` method."""

    def request(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if _IN_CALL.get():
            return wrapped(*args, **kwargs)
        try:
            call = begin(adapter, instance, args, kwargs)
        except Exception:
            logger.exception("clew: starting an LLM span failed")
            call = None
        if call is None:
            return wrapped(*args, **kwargs)
        marker = _IN_CALL.set(True)
        token = call.live.activate()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            call.live.deactivate(token)
            _IN_CALL.reset(marker)
            call.fail(exc)
            raise
        call.live.deactivate(token)
        _IN_CALL.reset(marker)
        settle(adapter, call, result)
        return result

    return request


def async_wrapper(adapter: Adapter) -> Callable[..., Any]:
    """The wrapt wrapper of an async ``request`` method."""

    async def request(
        wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if _IN_CALL.get():
            return await wrapped(*args, **kwargs)
        try:
            call = begin(adapter, instance, args, kwargs)
        except Exception:
            logger.exception("clew: starting an LLM span failed")
            call = None
        if call is None:
            return await wrapped(*args, **kwargs)
        marker = _IN_CALL.set(True)
        token = call.live.activate()
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            call.live.deactivate(token)
            _IN_CALL.reset(marker)
            call.fail(exc)
            raise
        call.live.deactivate(token)
        _IN_CALL.reset(marker)
        settle(adapter, call, result)
        return result

    return request


# -- patches and the handle ----------------------------------------------------------------
class _Patch:
    """One wrapped attribute: ``owner.name`` (a class, or one client) and how to undo it."""

    __slots__ = ("name", "original", "owner", "wrapper")

    def __init__(self, owner: Any, name: str, wrapper: Callable[..., Any]) -> None:
        self.owner = owner
        self.name = name
        self.original: Any = None
        self.wrapper: Any = None
        if isinstance(owner, type):
            self.original = owner.__dict__[name]
            self.wrapper = wrapt.FunctionWrapper(self.original, wrapper)
        else:
            self.wrapper = wrapt.FunctionWrapper(getattr(owner, name), wrapper)
        setattr(owner, name, self.wrapper)

    def undo(self) -> None:
        owner = self.owner
        if isinstance(owner, type):
            if owner.__dict__.get(self.name) is self.wrapper:
                setattr(owner, self.name, self.original)
        elif vars(owner).get(self.name) is self.wrapper:
            delattr(owner, self.name)


class Instrumentation:
    """A handle on an instrumentation: undo it, or use it as a context manager.

    Example:
        >>> import clew
        >>> with clew.instrument_openai():  # doctest: +SKIP
        ...     client.chat.completions.create(...)  # traced
    """

    def __init__(
        self,
        name: str,
        patches: list[_Patch] | None = None,
        parts: list[Instrumentation] | None = None,
        on_undo: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._patches = patches or []
        self._parts = parts or []
        self._on_undo = on_undo
        self._active = True

    @property
    def active(self) -> bool:
        """True until :meth:`uninstrument` is called."""
        return self._active

    def uninstrument(self) -> None:
        """Undo the instrumentation (idempotent). Calls already running finish traced."""
        if not self._active:
            return
        self._active = False
        for patch in reversed(self._patches):
            try:
                patch.undo()
            except Exception:
                logger.exception("clew: undoing the %s instrumentation failed", self.name)
        for part in self._parts:
            part.uninstrument()
        if self._on_undo is not None:
            self._on_undo()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstrument()

    def __repr__(self) -> str:
        state = "active" if self._active else "undone"
        return f"<clew.Instrumentation {self.name} {state}>"


_registry: dict[str, Instrumentation] = {}
_HANDLE_ATTRIBUTE = "_clew_instrumentation"


def patch(
    adapter: Adapter, targets: list[tuple[Any, bool]], label: str, client: Any = None
) -> Instrumentation:
    """Wrap ``request`` on each target (``(class or client, is_async)``), once.

    The SDK classes are instrumented once per process (``client`` None), a client once per
    client (the handle is kept on the client, so it dies with it). Calling again while the
    first is active returns the same handle.
    """
    holder: dict[str, Any] = _registry if client is None else vars(client)
    key = adapter.name if client is None else _HANDLE_ATTRIBUTE
    existing = holder.get(key)
    if isinstance(existing, Instrumentation) and existing.active:
        return existing
    patches = [
        _Patch(owner, "request", async_wrapper(adapter) if is_async else sync_wrapper(adapter))
        for owner, is_async in targets
    ]

    def forget() -> None:
        if holder.get(key) is handle:
            del holder[key]

    handle = Instrumentation(label, patches, on_undo=forget)
    holder[key] = handle
    return handle
