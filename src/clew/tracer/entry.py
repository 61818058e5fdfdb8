"""The one way into a span: :func:`open_span`.

``@clew.trace``, ``clew.span`` and the LLM instrumentation all open their spans here, so the
sampled-out, omitted and stitched branches are written once. The per-span path reads the
tracer's settings from this module (:func:`install` puts them here), decides sampling and the
omit rules before capturing anything, and hands every start attribute to the SDK in one call.

Nothing here raises into the caller: :func:`open_span` returns None when there is nothing to
open (inside a dropped trace) or when opening failed (handed to
:func:`~clew.errors.internal_error`), and the caller then runs its code untraced.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from clew import attributes as a
from clew.errors import ConfigurationError, internal_error
from clew.log_record import parse_uuid, span_id_from_log_trace_id
from clew.tracer import conventions
from clew.tracer.live import LiveSpan, dropped_span
from clew.tracer.options import SpanSpec
from clew.tracer.sampling import SAMPLING_MASK, sample_bound
from clew.tracer.scores import Evaluation
from clew.tracer.sdk_shortcut import SPAN_KEY, StartSpan, valid_span_context
from clew.tracer.serialize import DEFAULT_MAX_BYTES, to_json

__all__ = ["Stitch", "TracerSettings", "install", "on_first_span", "open_span", "stitch"]

logger = logging.getLogger(__name__)

_LOW64 = (1 << 64) - 1
_ALL = sample_bound(1.0)  # the bound that keeps every trace
_getrandbits = random.getrandbits
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_INTERNAL = SpanKind.INTERNAL


@dataclass(frozen=True, slots=True)
class TracerSettings:
    """What the per-span path needs, resolved once per configuration.

    Attributes:
        start_span: starts an SDK span (see :class:`~clew.tracer.sdk_shortcut.SpanStarter`).
        new_trace_id: a new trace id with non-zero low 64 bits (for a root decided here).
        random_ids: the ids are the SDK's random ones (:attr:`new_trace_id` may be skipped).
        capture: False when no content is recorded anywhere.
        max_value_bytes: the bound of one captured value.
        sample_rate: the share of traces kept when a root asks for no rate of its own.
        conventions: the extra conventions written (a bit set of
            :data:`~clew.tracer.conventions.FAMILIES`; 0: ``gen_ai.*`` and ``clew.*`` only).
    """

    start_span: StartSpan
    new_trace_id: Callable[[], int]
    random_ids: bool = True
    capture: bool = True
    max_value_bytes: int = DEFAULT_MAX_BYTES
    sample_rate: float = 1.0
    conventions: int = conventions.ALL
    bound: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bound", sample_bound(self.sample_rate))


_settings: TracerSettings | None = None
_first_span: Callable[[], None] | None = None


def install(settings: TracerSettings | None) -> None:
    """Make ``settings`` the tracer's (None: not configured, the next span configures)."""
    global _settings
    _settings = settings
    if settings is not None:
        conventions.use(settings.conventions)


def on_first_span(configure: Callable[[], None]) -> None:
    """Call ``configure`` (which must :func:`install` settings) when a span opens unconfigured."""
    global _first_span
    _first_span = configure


def _configured() -> TracerSettings:
    if _settings is None and _first_span is not None:
        _first_span()
    if _settings is None:
        raise RuntimeError("clew's tracer has no settings: nothing called install()")
    return _settings


class Stitch(NamedTuple):
    """A parent begun elsewhere (another process, a job queue), for :func:`open_span`."""

    context: Context
    attributes: dict[str, Any]
    depth: int


def stitch(parent_trace_id: str | None, root_trace_id: str | None) -> Stitch:
    """The parent of a span joining a trace begun elsewhere, from the seed's ids.

    Ids that do not fit clew's id mapping are kept verbatim as attributes.

    Raises:
        ConfigurationError: an id is not a UUID.
    """
    try:
        root = parse_uuid(root_trace_id, "root_trace_id") if root_trace_id else None
        parent = parse_uuid(parent_trace_id, "parent_trace_id") if parent_trace_id else None
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    if root is None:
        root = parent  # a parent alone is taken as the root of its trace
    if parent is None:
        parent = root
    if root is None or parent is None:
        raise ConfigurationError("give parent_trace_id, root_trace_id or both")
    if root & _LOW64 == 0:
        raise ConfigurationError("root_trace_id must not be all zeros in its low 64 bits")
    attrs: dict[str, Any] = {}
    span_id = span_id_from_log_trace_id(root, parent)
    if span_id is None:  # an id from another system: keep it verbatim
        span_id = (parent & _LOW64) or 1
        attrs[a.CLEW_PARENT_TRACE_ID] = str(parent_trace_id)
    parent_span = NonRecordingSpan(SpanContext(root, span_id, is_remote=True, trace_flags=_SAMPLED))
    depth = 1 if parent == root else 2
    return Stitch(trace_api.set_span_in_context(parent_span), attrs, depth)


def _root_ids(settings: TracerSettings, outer_span: Any) -> tuple[int, int, bool]:
    """The trace and span id of a root span whose sampling clew decides, and whether the trace
    is new (not that of an OpenTelemetry span it starts under)."""
    outer = valid_span_context(outer_span) if outer_span is not None else None
    if outer is not None:
        return outer.trace_id, _getrandbits(64) or 1, False
    trace_id = 0
    if settings.random_ids:  # RandomIdGenerator's arithmetic, without its call
        trace_id = _getrandbits(128)
    if not trace_id & _LOW64:
        trace_id = settings.new_trace_id()
    return trace_id, trace_id & _LOW64, True


def open_span(
    spec: SpanSpec,
    context: Context,
    parent: LiveSpan | None,
    inputs: Callable[..., Mapping[str, Any] | None] | None = None,
    inputs_args: tuple[Any, ...] = (),
    *,
    stitched: Stitch | None = None,
    extra: Mapping[str, Any] | None = None,
    kind: SpanKind = _INTERNAL,
) -> LiveSpan | None:
    """Open a span for ``spec`` under the current clew span (not yet current: the caller
    activates it). Never raises.

    Args:
        spec: the validated name and options.
        context: the current OpenTelemetry context (``current_context()``), read once by the
            caller.
        parent: clew's current span, ``context.get(LIVE_KEY)`` (the caller has read it to see
            whether it is dropped; None with ``stitched``).
        inputs: called with ``inputs_args`` only when inputs are captured; returns the inputs.
        inputs_args: the arguments for ``inputs``.
        stitched: a parent begun elsewhere, instead of the current span.
        extra: more start attributes (instrumentations).
        kind: the OpenTelemetry span kind.

    Returns:
        The span; a sampled-out one (``recording`` False) for a root whose trace is dropped
        or a subtree a nested rate drops; None inside a dropped trace (nothing to open) or
        when opening failed.
    """
    try:
        if parent is not None and not parent.recording:
            return None
        settings = _settings or _configured()
        preset: int | None = None
        counter: Iterator[int]
        if parent is None:
            if stitched is not None:
                context = stitched.context
            bound = settings.bound if spec.rate is None else spec.bound
            if bound < _ALL:  # a rate below 1
                outer_span = context.get(SPAN_KEY)
                if not bound and settings.random_ids:
                    # every trace is dropped: its ids are made if someone asks for them
                    return dropped_span(0, 0, None, outer_span)
                trace_id, span_id, fresh = _root_ids(settings, outer_span)
                if (trace_id & SAMPLING_MASK) >= bound:
                    return dropped_span(trace_id, span_id, None)
                preset = trace_id if fresh else None
            omit_in = spec.omit_inputs or not settings.capture
            omit_out = spec.omit_outputs or not settings.capture
            depth = stitched.depth if stitched is not None else 0
            counter = itertools.count(1 if depth else 0)
        else:
            if spec.rate is not None and spec.rate < 1.0 and random.random() >= spec.rate:
                trace_id = parent.span.get_span_context().trace_id
                return dropped_span(trace_id, _getrandbits(64) or 1, parent)
            omit_in = parent.omit_inputs or spec.omit_inputs
            omit_out = parent.omit_outputs or spec.omit_outputs
            depth = parent.depth + 1
            counter = parent.counter
        chosen = settings.conventions
        attrs = spec.attribute_sets[chosen].copy()
        if stitched is not None and stitched.attributes:
            attrs.update(stitched.attributes)
        llm = False
        if extra:
            attrs.update(extra)
            operation = extra.get(a.GEN_AI_OPERATION_NAME)
            if operation is not None:
                llm = True
                if chosen and spec.kind is None:
                    attrs.update(conventions.operation_attributes(operation, chosen))
        identity = spec.identity
        if parent is not None and parent.identity is not None:
            identity = conventions.inherit(identity, parent.identity)
        if identity is not None:
            conventions.identity_attributes(attrs, identity, chosen, llm)
        attrs[a.CLEW_DEPTH] = depth
        attrs[a.CLEW_EXECUTION_ORDER] = next(counter)
        max_bytes = settings.max_value_bytes
        values = None
        if inputs is not None and (not omit_in or spec.evals):
            try:
                values = inputs(*inputs_args)
            except Exception:  # foreign: arguments that do not fit the signature
                values = None
        if omit_in:
            attrs[a.CLEW_INPUTS_OMITTED] = True
        elif values is not None:
            text = attrs[a.CLEW_INPUTS] = to_json(values, max_bytes)
            if chosen:
                attrs[a.INPUT_VALUE] = text
                attrs[a.INPUT_MIME_TYPE] = conventions.JSON
        if omit_out:
            attrs[a.CLEW_OUTPUT_OMITTED] = True
        span = settings.start_span(spec.name, context, kind, attrs, preset)
        live = LiveSpan(
            span,
            parent,
            span.is_recording(),
            omit_in,
            omit_out,
            depth,
            counter,
            max_bytes,
            spec.tags or None,
            spec.metadata,
            identity,
        )
        if (
            spec.evals
            and live.recording
            and span.get_span_context().trace_id >> 64 < spec.eval_bound
        ):
            live.evaluation = Evaluation(spec.evals, values, spec.target)
        return live
    except Exception:
        internal_error(logger, "opening span %r failed", spec.name)
        return None
