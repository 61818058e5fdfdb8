"""Starting clew's OpenTelemetry SDK spans, on a short path when the provider allows it.

``Tracer.start_span`` is general: it looks the parent up through the context API, asks the
sampler, validates ids, creates a ``SpanContext`` and three bounded containers through their
constructors, and re-validates every attribute. For clew's own spans most of that is decided
once: when the provider keeps the SDK defaults that matter (the ``ParentBased(ALWAYS_ON)`` or
``ALWAYS_ON`` sampler, no SDK self-metrics, contextvars context), :class:`SpanStarter` builds
the same ``_Span`` the SDK would — same fields, same ids, flags and trace state, same
``on_start`` call to the provider's processors — from a template made by the SDK's own
constructor, in about a third of the time. :func:`end_span` ends such a span as ``Span.end``
does, but hands the processors the ended span itself instead of a ``ReadableSpan`` copy of it
(every setter of an ended span is a no-op, so they read the same values either way).
:func:`attach_span` and :func:`detach` make a span current in OpenTelemetry's context with one
context copy instead of two.

The short path is taken only when the SDK's span has exactly the fields this module knows
(checked once, on the template); any other SDK version, sampler, id generator limit or
context implementation gets ``Tracer.start_span`` itself. Both paths give one result.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.sdk.trace import (
    ConcurrentMultiSpanProcessor,
    SpanLimits,
    SpanProcessor,
    SynchronousMultiSpanProcessor,
    Tracer,
    _Span,
)
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation import _SPAN_KEY
from opentelemetry.trace.span import DEFAULT_TRACE_STATE, INVALID_SPAN_CONTEXT

from clew.tracer.id_generator import ClewIdGenerator
from clew.tracer.lean_span import (
    ATTRIBUTES_OWN_FIELDS,
    LEAN_CLASSES,
    SPAN_LISTS,
    SPAN_OWN_FIELDS,
    LeanAttributes,
    LeanSpan,
    lean_class,
)

logger = logging.getLogger(__name__)

_LOW64 = (1 << 64) - 1
_clock: Callable[[], int] = time.time_ns

# The per-instance fields of the SDK objects the short path builds. A template whose fields
# differ (another SDK version) turns the short path off.
_SPAN_FIELDS = frozenset(
    {
        "_attributes",
        "_context",
        "_end_time",
        "_events",
        "_instrumentation_info",
        "_instrumentation_scope",
        "_kind",
        "_limits",
        "_links",
        "_lock",
        "_name",
        "_parent",
        "_record_end_metrics",
        "_record_exception",
        "_resource",
        "_sampler",
        "_set_status_on_exception",
        "_span_processor",
        "_start_time",
        "_status",
        "_trace_config",
    }
)
_ATTRIBUTES_FIELDS = frozenset(
    {"_dict", "_immutable", "_lock", "dropped", "max_value_len", "maxlen"}
)
_LIST_FIELDS = frozenset({"_dq", "_lock", "dropped"})

_MULTI_PROCESSORS = (SynchronousMultiSpanProcessor, ConcurrentMultiSpanProcessor)
_QUIET_PROCESSORS: set[type[SpanProcessor]] = set()
"""Processor types whose ``on_start`` and ``_on_ending`` do nothing (:func:`quiet_processor`)."""


def quiet_processor(cls: type[SpanProcessor]) -> type[SpanProcessor]:
    """Declare that ``cls``'s ``on_start`` and ``_on_ending`` do nothing.

    When such a processor is the only one on the provider, spans skip the provider's fan-out:
    ``on_start`` is not called and ``on_end`` goes to it directly.
    """
    _QUIET_PROCESSORS.add(cls)
    return cls


def _sole_quiet_processor(processor: Any) -> SpanProcessor | None:
    inner = processor._span_processors
    if len(inner) == 1 and type(inner[0]) in _QUIET_PROCESSORS:
        sole: SpanProcessor = inner[0]
        return sole
    return None


_RUNTIME_CONTEXT = getattr(context_api, "_RUNTIME_CONTEXT", None)
_CONTEXT: ContextVar[Context] | None = (
    _RUNTIME_CONTEXT._current_context
    if type(_RUNTIME_CONTEXT) is ContextVarsRuntimeContext
    else None
)
"""OpenTelemetry's context variable, when the context is the default contextvars one."""


def _span_template(**fields: Any) -> _Span:
    """An unstarted SDK span made by the SDK's constructor (never given to a processor)."""
    return _Span(
        name="template",
        context=INVALID_SPAN_CONTEXT,
        parent=None,
        attributes=None,
        kind=SpanKind.INTERNAL,
        links=(),
        record_exception=True,
        set_status_on_exception=True,
        record_end_metrics=None,
        **fields,
    )


def _check_layout(template: _Span) -> None:
    """Raise ValueError unless ``template`` has exactly the fields this module knows."""
    fields = vars(template)
    if set(fields) != _SPAN_FIELDS:
        raise ValueError(f"unknown span fields {sorted(set(fields) ^ _SPAN_FIELDS)}")
    if type(template._attributes) is not BoundedAttributes:
        raise ValueError("unknown attributes type")
    events = vars(template._events)
    if set(vars(template._attributes)) != _ATTRIBUTES_FIELDS or set(events) != _LIST_FIELDS:
        raise ValueError("unknown attribute or list fields")
    if type(events["_dq"]) is not deque:
        raise ValueError("unknown list type")


def _layout_known() -> bool:
    try:
        _check_layout(_span_template(limits=SpanLimits()))
    except Exception:  # foreign: an SDK version whose span this module does not know
        return False
    return True


_SHORT_END = _layout_known()

StartSpan = Callable[[str, Context | None, SpanKind, dict[str, Any], int | None], trace_api.Span]
"""``(name, parent context or None for the current one, kind, attributes, trace id or None)``:
the attributes dict is handed over (the span may keep it); a trace id is used for a root."""


class SpanStarter:
    """Starts clew's spans on ``tracer``, on the short path when it gives the SDK's result.

    Call :attr:`start` from the thread that opens the span; it never blocks.
    """

    def __init__(self, tracer: Tracer, ids: ClewIdGenerator) -> None:
        self._tracer = tracer
        self._ids = ids
        reason = _short_path_refusal(tracer, ids)
        if reason is None:
            try:
                self._prepare_short_path()
            except Exception as exc:  # foreign: an SDK this module does not know
                reason = f"the SDK's span could not be templated ({exc!r})"
        self.short_path = reason is None
        if reason is not None:
            logger.debug("clew: spans start through Tracer.start_span: %s", reason)
        self.start: StartSpan = self._start_short if reason is None else self._start_sdk

    # -- the SDK's own path ----------------------------------------------------------------
    def _start_sdk(
        self,
        name: str,
        context: Context | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        trace_id: int | None,
    ) -> trace_api.Span:
        ids = self._ids
        if trace_id is not None:
            ids.preset_trace_id(trace_id)
        try:
            span = self._tracer.start_span(name, context, kind, start_time=_clock())
        finally:
            if trace_id is not None:
                ids.preset_trace_id(None)
        if attributes and span.is_recording():
            set_attributes(span, attributes)
        return span

    # -- the short path --------------------------------------------------------------------
    def _prepare_short_path(self) -> None:
        tracer = self._tracer
        limits: SpanLimits = tracer._span_limits
        template = _span_template(
            sampler=tracer.sampler,
            resource=tracer.resource,
            span_processor=tracer.span_processor,
            instrumentation_info=tracer.instrumentation_info,
            limits=limits,
            instrumentation_scope=tracer._instrumentation_scope,
        )
        _check_layout(template)
        attributes = vars(template._attributes)
        self._span_class = lean_class(
            LeanSpan,
            {
                k: v
                for k, v in vars(template).items()
                if k not in SPAN_OWN_FIELDS and k not in SPAN_LISTS
            },
        )
        self._attributes_class = lean_class(
            LeanAttributes,
            {k: v for k, v in attributes.items() if k not in ATTRIBUTES_OWN_FIELDS},
        )
        self._max_attributes: int | None = attributes["maxlen"]
        self._direct_attributes = attributes["max_value_len"] is None
        random_ids = self._ids.is_trace_id_random()
        self._root_flags = TraceFlags(
            TraceFlags.SAMPLED | (TraceFlags.RANDOM_TRACE_ID if random_ids else 0)
        )
        self._flags = {
            (sampled, random_id): TraceFlags(
                (TraceFlags.SAMPLED if sampled else 0)
                | (TraceFlags.RANDOM_TRACE_ID if random_id else 0)
            )
            for sampled in (False, True)
            for random_id in (False, True)
        }
        self._always_on = tracer.sampler is ALWAYS_ON
        self._inner_ids = self._ids.inner
        self._random_ids = type(self._inner_ids) is RandomIdGenerator
        self._config = getattr(tracer, "_tracer_config", None)
        self._processor = tracer.span_processor
        self._fan_out = type(tracer.span_processor) in _MULTI_PROCESSORS
        self._current_context: Callable[[], Context] = (
            _CONTEXT.get if _CONTEXT is not None else context_api.get_current
        )

    def _start_short(
        self,
        name: str,
        context: Context | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        trace_id: int | None,
    ) -> trace_api.Span:
        config = self._config
        if config is not None and not config.is_enabled:
            return self._start_sdk(name, context, kind, attributes, trace_id)
        parent_span: Any = (self._current_context() if context is None else context).get(_SPAN_KEY)
        if type(parent_span) in LEAN_CLASSES:
            parent: SpanContext | None = parent_span._context
        elif isinstance(parent_span, trace_api.Span):
            parent = parent_span.get_span_context()
        else:
            parent = None
        ids = self._inner_ids
        if parent is None or not parent.is_valid:
            parent = None
            if trace_id is None:  # RandomIdGenerator's own arithmetic, without its call
                trace_id = (
                    random.getrandbits(128) or ids.generate_trace_id()
                    if self._random_ids
                    else ids.generate_trace_id()
                )
            span_id = trace_id & _LOW64 or ids.generate_span_id()
            flags = self._root_flags
            trace_state = DEFAULT_TRACE_STATE
        else:
            trace_id = parent.trace_id
            span_id = ids.generate_span_id()
            parent_flags = parent.trace_flags
            flags = self._flags[
                self._always_on or parent_flags.sampled, parent_flags.random_trace_id
            ]
            trace_state = parent.trace_state
            if not flags.sampled:
                return NonRecordingSpan(SpanContext(trace_id, span_id, False, flags, trace_state))
        span_context = tuple.__new__(
            SpanContext, (trace_id, span_id, False, flags, trace_state, True)
        )
        direct = self._direct_attributes and (
            self._max_attributes is None or len(attributes) <= self._max_attributes
        )
        # Fields set one by one (not as a __dict__) stay in the object itself: no dict object
        # for the garbage collector to walk.
        bounded = object.__new__(self._attributes_class)
        bounded._dict = attributes if direct else {}
        bounded._lock = threading.Lock()
        span: LeanSpan = object.__new__(self._span_class)
        span._name = name
        span._context = span_context
        span._parent = parent
        span._kind = kind
        span._lock = threading.Lock()
        span._attributes = bounded
        span._start_time = _clock()
        if not direct:
            span.set_attributes(attributes)
        processor = self._processor
        if not self._fan_out or _sole_quiet_processor(processor) is None:
            processor.on_start(span, parent_context=context)
        return span


def end_span(given: trace_api.Span) -> None:
    """End ``span`` as ``Span.end()`` does, without copying it for the processors."""
    span: Any = given
    if (
        not _SHORT_END
        or (type(span) not in LEAN_CLASSES and type(span) is not _Span)
        or type(span._span_processor) not in _MULTI_PROCESSORS
    ):
        span.end(end_time=_clock())
        return
    with span._lock:
        ending = span._start_time is not None and span._end_time is None
        if ending:
            span._end_time = _clock()
            span._attributes._immutable = True
    if not ending:  # not started, or ended already: the SDK says so as usual
        span.end()
        return
    if span._record_end_metrics:
        span._record_end_metrics()
    processor = span._span_processor
    sole = _sole_quiet_processor(processor)
    if sole is not None:
        sole.on_end(span)
        return
    processor._on_ending(span)
    processor.on_end(span)


SPAN_KEY = _SPAN_KEY
"""Where OpenTelemetry's context holds the current span."""

LIVE_KEY = context_api.create_key("clew-current-span")
"""Where clew's current span (a ``LiveSpan``) sits in OpenTelemetry's context, beside the
OpenTelemetry span it wraps: one context holds both, so they never disagree, and making a span
current costs one context copy."""


def attach(span: trace_api.Span, live: object) -> Token[Context]:
    """Make ``span`` OpenTelemetry's current span and ``live`` clew's; returns the token for
    :func:`detach`."""
    if _CONTEXT is None:
        context = context_api.set_value(LIVE_KEY, live, trace_api.set_span_in_context(span))
        return context_api.attach(context)
    # One literal: a third cheaper than copying the context and setting the two keys.
    return _CONTEXT.set(Context({**_CONTEXT.get(), _SPAN_KEY: span, LIVE_KEY: live}))


def detach(token: Token[Context]) -> None:
    """Undo :func:`attach` (in the context it was done in); never raises."""
    try:
        if _CONTEXT is None:
            context_api.detach(token)
        else:
            _CONTEXT.reset(token)
    except (ValueError, RuntimeError):  # foreign: the block ended in another context
        logger.debug("clew: could not restore the OpenTelemetry context", exc_info=True)


def context_reader() -> Callable[[], Context]:
    """A function returning the current OpenTelemetry context (read it with ``.get(key)``):
    the context variable's own ``get`` when the context is the default contextvars one."""
    return _CONTEXT.get if _CONTEXT is not None else context_api.get_current


def valid_span_context(span: Any) -> SpanContext | None:
    """The span context of ``span`` (an OpenTelemetry span or None) when it is valid."""
    if span is None:
        return None
    found: SpanContext = span._context if type(span) in LEAN_CLASSES else span.get_span_context()
    return found if found.is_valid else None


def set_clock(clock: Callable[[], int] | None) -> None:
    """Take the start and end times of clew's spans from ``clock`` (nanoseconds since the
    epoch; None: ``time.time_ns``). ``clew.testing`` uses it for deterministic times."""
    global _clock
    _clock = clock or time.time_ns


def _short_path_refusal(tracer: Tracer, ids: ClewIdGenerator) -> str | None:
    """Why the short path would not give the SDK's result for ``tracer`` (None: it would)."""
    if type(tracer) is not Tracer:
        return f"the tracer is a {type(tracer).__name__}"
    sampler = tracer.sampler
    default_parent_based = (
        type(sampler) is ParentBased
        and sampler._root is ALWAYS_ON
        and sampler._remote_parent_sampled is ALWAYS_ON
        and sampler._remote_parent_not_sampled is ALWAYS_OFF
        and sampler._local_parent_sampled is ALWAYS_ON
        and sampler._local_parent_not_sampled is ALWAYS_OFF
    )
    if not (default_parent_based or sampler is ALWAYS_ON):
        return f"the provider's sampler is {sampler.get_description()}"
    metrics = getattr(tracer, "_tracer_metrics", None)
    if metrics is not None and type(metrics).__name__ != "NoOpTracerMetrics":
        return "the SDK's own span metrics are on"
    if tracer.id_generator is not ids:
        return "the tracer's id generator is not clew's"
    return None


def set_attributes(given: trace_api.Span, attrs: dict[str, Any]) -> None:
    """``span.set_attributes(attrs)`` without the SDK's per-value validation.

    clew's values are already valid attribute values (str, int, bool, tuples of str), and
    re-validating them costs more than the rest of a span's start. When the span is not the
    SDK's, or limits apply (a count or length limit that could be reached), the SDK's own
    ``set_attributes`` runs instead.
    """
    span: Any = given
    if type(span) in LEAN_CLASSES or type(span) is _Span:
        bounded: Any = span._attributes
        values = bounded._dict
        if (
            bounded.max_value_len is None
            and (bounded.maxlen is None or len(values) + len(attrs) <= bounded.maxlen)
            and span._end_time is None
            and type(values) is dict
        ):
            values.update(attrs)
            return
    span.set_attributes(attrs)
