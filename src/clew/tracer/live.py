"""A clew span while it runs, and which one is current.

A :class:`LiveSpan` wraps the OpenTelemetry span: the setters collect attributes that go to the
SDK in one call when the span ends, and the span ends exactly once. A sampled-out span is a
:class:`DroppedSpan` (``recording`` False), so its children know to record nothing.

The current LiveSpan sits in OpenTelemetry's context beside the span it wraps
(:data:`~clew.tracer.sdk_shortcut.LIVE_KEY`): one context holds both, so clew's parent and
OpenTelemetry's never disagree, and a thread, task or ``context.attach`` that carries one
carries the other.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextvars import Token
from typing import TYPE_CHECKING, Any

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import DEFAULT_TRACE_STATE

from clew import attributes as a
from clew.errors import ConfigurationError, internal_error
from clew.log_record import log_trace_id_of, new_trace_id, root_trace_id_of
from clew.tracer import conventions
from clew.tracer.sdk_shortcut import (
    LIVE_KEY,
    attach,
    context_reader,
    detach,
    end_span,
    set_attributes,
    valid_span_context,
)
from clew.tracer.serialize import to_json

if TYPE_CHECKING:
    from clew.tracer.scores import Evaluation

__all__ = [
    "INSERTABLE_FIELDS",
    "LIVE_KEY",
    "DroppedSpan",
    "LiveSpan",
    "current",
    "current_context",
    "dropped_span",
]

logger = logging.getLogger(__name__)

current_context = context_reader()
"""The current OpenTelemetry context; ``current_context().get(LIVE_KEY)`` is clew's span."""


def current() -> LiveSpan | None:
    """The innermost clew span of the current context (None outside any clew span)."""
    live = current_context().get(LIVE_KEY)
    return live if isinstance(live, LiveSpan) else None


INSERTABLE_FIELDS = (
    "inputs",
    "output",
    "metadata",
    "tags",
    "end_user_identifier",
    "session_id",
    "target",
    "deployment_id",
    "scores",
    "name",
)

_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_NO_ORDER: Iterator[int] = itertools.count()
"""The execution-order counter of a dropped span: never read, since nothing opens under one."""


class LiveSpan:
    """A running clew span, and the handle ``with clew.span(...) as s`` gives.

    A sampled-out span is a LiveSpan too (``recording`` False): it carries the ids so children
    and other processes decide the same, and every setter is a no-op.
    """

    __slots__ = (
        "_metadata",
        "_pending",
        "_tags",
        "counter",
        "depth",
        "ended",
        "evaluation",
        "identity",
        "max_bytes",
        "omit_inputs",
        "omit_outputs",
        "parent",
        "recording",
        "span",
    )

    def __init__(
        self,
        span: trace_api.Span,
        parent: LiveSpan | None,
        recording: bool,
        omit_inputs: bool,
        omit_outputs: bool,
        depth: int,
        counter: Iterator[int],
        max_bytes: int,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        identity: conventions.Identity | None = None,
    ) -> None:
        self.span = span
        self.parent = parent
        self.recording = recording
        self.omit_inputs = omit_inputs
        self.omit_outputs = omit_outputs
        self.depth = depth
        self.counter = counter
        self.max_bytes = max_bytes
        self._tags = tags
        self._metadata = metadata
        self.identity = identity  # the end user and session this span and those below carry
        self._pending: dict[str, Any] | None = None
        self.ended = False
        self.evaluation: Evaluation | None = None  # set when eval functions score this span

    # -- ids -------------------------------------------------------------------------------
    @property
    def trace_id(self) -> str:
        """This span's log id (a UUID)."""
        ctx = self.span.get_span_context()
        return log_trace_id_of(ctx.trace_id, ctx.span_id)

    @property
    def root_trace_id(self) -> str:
        """The id of the trace's root log (a UUID)."""
        return root_trace_id_of(self.span.get_span_context().trace_id)

    @property
    def parent_trace_id(self) -> str | None:
        """The parent log's id, or None for a root."""
        parent = getattr(self.span, "parent", None)
        if isinstance(parent, SpanContext) and parent.is_valid:
            return log_trace_id_of(parent.trace_id, parent.span_id)
        if self.parent is not None:
            return self.parent.trace_id
        return None

    # -- setters ---------------------------------------------------------------------------
    def _set(self, key: str, value: Any) -> None:
        if self._pending is None:
            self._pending = {}
        self._pending[key] = value

    def set_inputs(self, inputs: Mapping[str, Any]) -> None:
        """Replace the span's inputs (ignored when inputs are omitted or sampled out)."""
        if self.recording and not self.omit_inputs and not self.ended:
            self._set(a.CLEW_INPUTS, to_json(dict(inputs), self.max_bytes))

    def set_output(self, output: Any) -> None:
        """Set the span's output (ignored when outputs are omitted or sampled out; eval
        functions see it even then)."""
        if self.evaluation is not None and not self.ended:
            self.evaluation.output = output
        if self.recording and not self.omit_outputs and not self.ended:
            self._set(a.CLEW_OUTPUT, to_json(output, self.max_bytes))

    def set_metadata(self, metadata: Mapping[str, Any]) -> None:
        """Merge ``metadata`` into the span's metadata."""
        if self.recording and not self.ended:
            merged = dict(self._metadata or {})
            merged.update(metadata)
            self._metadata = merged
            self._set(a.CLEW_METADATA, to_json(merged, self.max_bytes))

    def add_tags(self, *tags: str | Iterable[str]) -> None:
        """Add tags: ``add_tags("a", "b")`` or ``add_tags(["a", "b"])``."""
        if not self.recording or self.ended:
            return
        flat: list[str] = []
        for tag in tags:
            flat.extend([tag] if isinstance(tag, str) else [str(t) for t in tag])
        self._tags = [*(self._tags or []), *flat]
        self._set(a.CLEW_TAGS, tuple(self._tags))

    def set_attribute(self, key: str, value: Any) -> None:
        """Set any attribute on the span at its end (for instrumentations)."""
        if self.recording and not self.ended:
            self._set(key, value)

    def update_attributes(self, attrs: Mapping[str, Any]) -> None:
        """Set several attributes on the span at its end (for instrumentations)."""
        if self.recording and not self.ended:
            if self._pending is None:
                self._pending = dict(attrs)
            else:
                self._pending.update(attrs)

    @staticmethod
    def insert_fields_check(data: Mapping[str, Any]) -> None:
        """Raise :class:`ConfigurationError` if ``data`` has a field trace_insert does not know."""
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"trace_insert() takes a dict, got {type(data).__name__}")
        unknown = set(data) - set(INSERTABLE_FIELDS)
        if unknown:
            raise ConfigurationError(
                f"trace_insert() got unknown field(s) {sorted(unknown)}; use one of"
                f" {', '.join(INSERTABLE_FIELDS)} (put anything else under 'metadata')"
            )

    def insert(self, data: Mapping[str, Any]) -> None:
        """Parea's ``trace_insert``: dicts merge, lists extend, other fields are replaced."""
        self.insert_fields_check(data)
        if not self.recording or self.ended:
            return
        for key, value in data.items():
            if key == "inputs":
                if not self.omit_inputs:
                    current = self._current_json(a.CLEW_INPUTS)
                    merged = dict(current) if isinstance(current, dict) else {}
                    merged.update(value)
                    self._set(a.CLEW_INPUTS, to_json(merged, self.max_bytes))
            elif key == "output":
                self.set_output(value)
            elif key == "metadata":
                self.set_metadata(value)
            elif key == "tags":
                self.add_tags(value)
            elif key == "scores":
                current = self._current_json(a.CLEW_SCORES)
                scores = list(current) if isinstance(current, list) else []
                scores.extend(value)
                self._set(a.CLEW_SCORES, to_json(scores, self.max_bytes))
            elif key == "target":
                self._set(a.CLEW_TARGET, to_json(value, self.max_bytes))
                if self.evaluation is not None:
                    self.evaluation.target = value
            elif key == "name":
                self.span.update_name(str(value))
            else:
                self._set(f"clew.{key}", str(value))

    def _current_json(self, key: str) -> Any:
        text = (self._pending or {}).get(key)
        if text is None:
            text = (getattr(self.span, "attributes", None) or {}).get(key)
        try:
            return json.loads(text) if isinstance(text, str) else None
        except ValueError:
            return None

    def add_usage(self, input_tokens: int, output_tokens: int, cost: float | None) -> None:
        """Count an LLM call's tokens and cost for the eval functions of this span and of every
        span above it (most have none: then this only walks up the parents)."""
        span: LiveSpan | None = self
        while span is not None:
            if span.evaluation is not None:
                span.evaluation.add_usage(input_tokens, output_tokens, cost)
            span = span.parent

    # -- life cycle ------------------------------------------------------------------------
    def activate(self) -> Token[Context]:
        """Make this span current (clew's and OpenTelemetry's); returns the token."""
        return attach(self.span, self)

    @staticmethod
    def deactivate(token: Token[Context]) -> None:
        """Undo :meth:`activate` (in the context it was done in); never raises."""
        detach(token)

    def end(self, output: Any = None, has_output: bool = False) -> None:
        """End the span successfully (once; later calls do nothing)."""
        if self.ended:
            return
        self.ended = True
        if not self.recording:
            return
        try:
            attrs = self._pending
            if attrs and conventions.families:
                conventions.mirror(self.span, self._metadata, attrs, conventions.families)
            if has_output and not self.omit_outputs and output is not None:
                if attrs is None:
                    attrs = {}
                if a.CLEW_OUTPUT not in attrs:  # set_output's wins
                    text = attrs[a.CLEW_OUTPUT] = to_json(output, self.max_bytes)
                    if conventions.families:
                        attrs[a.OUTPUT_VALUE] = text
                        attrs[a.OUTPUT_MIME_TYPE] = conventions.JSON
            if attrs:
                set_attributes(self.span, attrs)
            end_span(self.span)
            if self.evaluation is not None:
                if has_output:
                    self.evaluation.output = output
                self.evaluation.finish(self, None)
        except Exception:
            internal_error(logger, "ending span %r failed", self.span)

    def fail(self, exc: BaseException) -> None:
        """End the span with status error, recording the exception (once)."""
        if self.ended:
            return
        self.ended = True
        if not self.recording:
            return
        try:
            span = self.span
            attrs = self._pending or {}
            if attrs and conventions.families:
                conventions.mirror(span, self._metadata, attrs, conventions.families)
            attrs[a.ERROR_TYPE] = _qualified_name(type(exc))
            set_attributes(span, attrs)
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, _error_text(exc)))
            end_span(span)
            if self.evaluation is not None:
                self.evaluation.finish(self, exc)
        except Exception:
            internal_error(logger, "ending span %r with an error failed", self.span)


class DroppedSpan(LiveSpan):
    """A sampled-out span: every setter does nothing, and it never ends (there is nothing to end).

    Only ``span`` and ``parent`` are its own; the rest are class attributes, so making one costs
    two assignments.
    """

    __slots__ = ()

    recording = False
    ended = False
    omit_inputs = True
    omit_outputs = True
    depth = 0
    counter = _NO_ORDER
    evaluation = None
    max_bytes = 0
    identity = None
    _tags = None
    _metadata = None
    _pending = None

    def end(self, output: Any = None, has_output: bool = False) -> None:
        """Nothing to end."""

    def fail(self, exc: BaseException) -> None:
        """Nothing to end."""


class DroppedOtelSpan(NonRecordingSpan):
    """The OpenTelemetry span of a :class:`DroppedSpan`: not sampled, and its ``SpanContext``
    is made the first time someone asks (an OpenTelemetry child, a propagator), since most
    dropped spans are never asked.

    A trace dropped whatever its id (a rate of 0) gets its ids then too: the trace id of the
    OpenTelemetry span it started under (``outer``), or a new random one.
    """

    __slots__ = ("_made", "_outer", "_span_id", "_trace_id")

    def __init__(self, trace_id: int, span_id: int, outer: trace_api.Span | None = None) -> None:
        self._trace_id = trace_id  # 0: made when asked for, from outer or at random
        self._span_id = span_id
        self._outer = outer
        self._made: SpanContext | None = None

    def get_span_context(self) -> SpanContext:
        made = self._made
        if made is None:
            with _MAKING:
                made = self._made
                if made is None:
                    made = self._made = self._make()
        return made

    def _make(self) -> SpanContext:
        trace_id, span_id = self._trace_id, self._span_id
        if not trace_id:
            outer = valid_span_context(self._outer)
            if outer is not None:
                trace_id, span_id = outer.trace_id, random.getrandbits(64) or 1
            else:
                trace_id = new_trace_id()
                span_id = trace_id & _LOW64
        return tuple.__new__(
            SpanContext, (trace_id, span_id, False, _NOT_SAMPLED, DEFAULT_TRACE_STATE, True)
        )

    @property
    def _context(self) -> SpanContext:  # what NonRecordingSpan's own methods read
        return self.get_span_context()

    @_context.setter
    def _context(self, value: SpanContext) -> None:
        self._made = value


_MAKING = threading.Lock()
_LOW64 = (1 << 64) - 1
_new = object.__new__


def dropped_span(
    trace_id: int, span_id: int, parent: LiveSpan | None, outer: Any = None
) -> LiveSpan:
    """A sampled-out span: it records nothing and carries the ids of a dropped trace, so
    OpenTelemetry children and other processes (the W3C sampled flag) drop it too.

    A trace id of 0 has the ids made when first asked for (see :class:`DroppedOtelSpan`),
    from ``outer``, the OpenTelemetry span the dropped root started under.
    """
    span = _new(DroppedOtelSpan)  # made without __init__'s call: this is the hot path
    span._trace_id = trace_id
    span._span_id = span_id
    span._outer = outer
    span._made = None
    live = _new(DroppedSpan)
    live.span = span
    live.parent = parent
    return live


def _qualified_name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _error_text(exc: BaseException) -> str:
    try:
        message = str(exc)
    except Exception:  # foreign: the user's exception's __str__
        message = "<unprintable error>"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
