"""The one LLM instrumentation engine every provider SDK goes through: a call's life.

The ``openai`` and ``anthropic`` SDKs send every API call through one method,
``SyncAPIClient.request`` / ``AsyncAPIClient.request``. clew wraps that method
(:mod:`clew.providers.patching`), so every endpoint, ``with_raw_response`` and
``with_streaming_response`` included, passes the same few lines of code. A provider module
only says, per request path, what to read from the request and from the response (a
:class:`Route`), and how to follow a stream (a :class:`StreamState`).

Life of a call:

1. :func:`begin` decides: not an LLM route, or a sampled-out parent → no span, nothing
   captured. Otherwise it opens a CLIENT span with the request attributes, and the content
   (messages, tools) unless the omit rules drop it.
2. The SDK call runs with the span current (so HTTP spans nest under it).
3. A plain response ends the span at once. A stream ends it exactly once: on exhaustion, an
   error, ``close()``, an early ``break``, leaving ``with``, or garbage collection; a raw
   response ends it when parsed (or closed, or collected) (:mod:`clew.providers.streams`).

Nothing here raises into the user's call: a failure inside clew is an internal error
(:func:`~clew.errors.internal_error`), and the SDK's own result or exception reaches the
caller unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import SpanKind

from clew import attributes as a
from clew.errors import internal_error
from clew.providers.pricing import Cost, cost_of
from clew.providers.registry import Endpoint, provider_attribute
from clew.providers.usage import Usage
from clew.tracer.entry import open_span
from clew.tracer.live import LIVE_KEY, LiveSpan, current_context
from clew.tracer.options import SpanSpec
from clew.tracer.serialize import to_json

__all__ = [
    "Adapter",
    "Call",
    "Outcome",
    "Route",
    "StreamState",
    "begin",
    "record_first_chunk",
    "record_outcome",
    "refined_for",
]

logger = logging.getLogger(__name__)

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
    """What a response said: the one reading of a response that the SDK instrumentation
    records on its span and the completion gateway (:mod:`clew.gateway`) answers with.

    Attributes:
        usage: the token counts (None when the response carried none).
        model: the model that answered (None: the requested one).
        reported_cost: a cost the provider reported (OpenRouter), which wins over prices.
        response_id: the provider's id of the response.
        finish_reasons: the provider's finish reason of each choice, as it wrote them.
        messages: the output messages in the GenAI shape (``role``, ``parts``,
            ``finish_reason``), one per choice; None when the response had no output.
        plain: the messages hold only text parts (see :func:`~clew.tracer.serialize.to_json`).
        attributes: the provider's own response attributes for the span (the OpenAI
            refinement's service tier and system fingerprint), or None.
    """

    usage: Usage | None = None
    model: str | None = None
    reported_cost: float | None = None
    response_id: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] | None = None
    plain: bool = False
    attributes: dict[str, Any] | None = None

    def cut_short(self, choices: int = 1) -> None:
        """Mark a stream that ended before its last event: each of the ``choices`` that got no
        finish reason gets ``error``, the convention's word for a generation that ended
        abnormally (in the finish reasons and on its output message).

        Example:
            >>> outcome = Outcome(messages=[{"role": "assistant", "parts": []}])
            >>> outcome.cut_short()
            >>> outcome.finish_reasons
            ['error']
        """
        reasons = []
        for message in self.messages or ():
            if not message.get("finish_reason"):
                message["finish_reason"] = "error"
            reasons.append(str(message["finish_reason"]))
        if len(reasons) < len(self.finish_reasons):
            reasons = list(self.finish_reasons)
        self.finish_reasons = reasons + ["error"] * (choices - len(reasons))


class StreamState:
    """Follows one stream: sees every chunk, then tells what the whole stream said.

    A provider subclasses it per streaming route. ``record`` runs on the user's thread for
    each chunk, so it keeps only what it needs (no copies of chunks, no summing of usage: the
    usage is taken from the chunk that carries it).
    """

    __slots__ = ()

    def record(self, chunk: Any) -> None:
        """Take note of one chunk (called for every chunk the user receives)."""

    def outcome(self) -> Outcome:
        """What the stream said so far (at the stream's end)."""
        return Outcome()


@dataclass(frozen=True, slots=True)
class Route:
    """How to trace one API path (logfire's "endpoint config").

    Attributes:
        operation: ``gen_ai.operation.name`` (``chat``, ``text_completion``, ``embeddings``).
        request: the request attributes (parameters) from the JSON body; always recorded.
        content: the content attributes (messages, system instructions, tool definitions)
            from the body and the span's byte limit; only called when inputs are captured.
        response: reads a complete response (an SDK object or the parsed JSON).
        stream_state: makes the :class:`StreamState` of a streamed response.
    """

    operation: str
    request: Callable[[Mapping[str, Any]], dict[str, Any]]
    content: Callable[[Mapping[str, Any], int], dict[str, Any]]
    response: Callable[[Any], Outcome]
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

    # -- endings (each safe to call more than once; the span ends once) -------------------
    def finish(self, response: Any) -> None:
        """End the span with a complete response."""
        if self.live.ended:
            return
        try:
            self._record(self.route.response(response))
        except Exception:
            internal_error(logger, "reading the %s response failed", self.route.operation)
        self.live.end()

    def finish_stream(self, how: str = "closed") -> None:
        """End the span of a stream with what it said so far.

        Args:
            how: ``exhausted``, ``closed`` (close, break, leaving ``with``) or ``dropped``
                (garbage-collected), recorded as ``clew.stream.end``; a stream not exhausted
                was cut short.
        """
        if self.live.ended:
            return
        try:
            if self.state is not None:
                self.live.set_attribute(a.CLEW_STREAM_END, how)
            self._record_first_chunk()
            if self.state is not None:
                self._record(self._stream_outcome(cut=how != "exhausted"))
        except Exception:
            internal_error(logger, "reading the %s stream failed", self.route.operation)
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
                self._record_first_chunk()
                self._record(self._stream_outcome(cut=True))
        except Exception:
            internal_error(logger, "recording an LLM error failed")
        self.live.fail(exc)

    def see(self, chunk: Any) -> None:
        """Note one stream chunk, on the user's thread: the one thing a stream does per chunk,
        sync or async."""
        if self.first_chunk is None:
            self.first_chunk = time.perf_counter()
        state = self.state
        if state is not None and not self.live.ended:
            try:
                state.record(chunk)
            except Exception:
                self.state = None  # the rest of the stream goes unread; the span still ends
                internal_error(logger, "reading a %s stream chunk failed", self.route.operation)

    def _record_first_chunk(self) -> None:
        if self.first_chunk is not None:
            record_first_chunk(self.live, self.first_chunk - self.started)

    def _stream_outcome(self, cut: bool) -> Outcome:
        assert self.state is not None
        outcome = self.state.outcome()
        if cut:
            n = self.body.get("n")
            outcome.cut_short(n if type(n) is int and n > 1 else 1)
        return outcome

    def _record(self, outcome: Outcome) -> None:
        record_outcome(self.live, outcome, self.request_model, self.endpoint.provider)

    def __del__(self) -> None:
        # A stream or raw response dropped before it ended: the span ends now.
        if not self.live.ended:
            self.finish_stream("dropped")


def record_first_chunk(live: LiveSpan, seconds: float) -> None:
    """Record a stream's seconds to its first chunk, under the convention's key and clew's."""
    live.update_attributes(
        {a.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: seconds, a.CLEW_TIME_TO_FIRST_TOKEN: seconds}
    )


def refined_for(provider: str, attrs: dict[str, Any]) -> dict[str, Any]:
    """``attrs`` made fit for a span of ``provider`` (clew's name), in place: the OpenAI
    refinement's keys stay on OpenAI's own spans only. The conventions tie a refinement to its
    ``gen_ai.provider.name``, so an OpenAI-compatible API elsewhere (Azure OpenAI, Groq ...)
    gets the plain GenAI span."""
    if provider != "openai":
        for key in a.OPENAI_KEYS:
            attrs.pop(key, None)
    return attrs


def record_outcome(
    live: LiveSpan,
    outcome: Outcome,
    request_model: str | None,
    provider: str,
    messages_json: str | None = None,
) -> Cost:
    """Record what a response said on its LLM span: id, finish reasons, output messages (unless
    outputs are omitted), model, tokens and cost. Returns the cost.

    ``messages_json``: the output messages' JSON, when the caller made it already (the same
    text :func:`to_json` gives for ``outcome.messages`` at the span's byte limit).
    """
    if outcome.response_id:
        live.set_attribute(a.GEN_AI_RESPONSE_ID, outcome.response_id)
    if outcome.finish_reasons:
        live.set_attribute(a.GEN_AI_RESPONSE_FINISH_REASONS, tuple(outcome.finish_reasons))
    if outcome.attributes:
        live.update_attributes(refined_for(provider, dict(outcome.attributes)))
    if outcome.messages and not live.omit_outputs:
        if messages_json is None:
            messages_json = to_json(outcome.messages, live.max_bytes, plain=outcome.plain)
        live.set_attribute(a.GEN_AI_OUTPUT_MESSAGES, messages_json)
    model = outcome.model or request_model
    if outcome.model:
        live.set_attribute(a.GEN_AI_RESPONSE_MODEL, outcome.model)
    usage = outcome.usage
    if usage is None:
        live.set_attribute(a.CLEW_COST_ERROR, "no usage reported")
        return Cost(None, error="no usage reported")
    cost = cost_of(usage, model, provider, outcome.reported_cost)
    attrs = usage.attributes()
    attrs.update(cost.attributes())
    live.update_attributes(attrs)
    live.add_usage(usage.input_tokens, usage.output, cost.amount)
    return cost


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
    attrs = refined_for(endpoint.provider, route.request(body))
    attrs[a.GEN_AI_OPERATION_NAME] = route.operation
    attrs[a.GEN_AI_PROVIDER_NAME] = provider_attribute(endpoint.provider)
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
            live.update_attributes(route.content(body, live.max_bytes))
        except Exception:
            internal_error(logger, "reading the %s request failed", route.operation)
    if adapter.prepare is not None:
        try:
            adapter.prepare(options)
        except Exception:  # foreign: an SDK whose request options this adapter does not know
            logger.debug("clew: preparing the %s request failed", adapter.name, exc_info=True)
    stream = kwargs.get("stream")
    if stream and route.stream_state is not None:
        call.state = route.stream_state(body)
    return call


# -- results: plain, stream, raw -----------------------------------------------------------
