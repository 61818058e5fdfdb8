"""A clew span while it runs: sampling, omit rules, capture, and ending exactly once.

The per-span path lives here. It reads one context variable to find the enclosing clew span,
decides sampling and omit rules before capturing anything, hands every attribute to the SDK in
one call at start and one at end, and never raises into the caller: an internal failure is
logged and the user's code runs untraced.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar, Token
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags

from clew import attributes as a
from clew.errors import ConfigurationError
from clew.tracer import runtime as rt_module
from clew.tracer.ids import (
    log_trace_id_of,
    new_trace_id,
    parse_uuid,
    root_trace_id_of,
    span_id_from_log_trace_id,
)
from clew.tracer.serialize import to_json
from clew.tracer.spans import attach_span, detach, end_span, set_attributes

logger = logging.getLogger("clew")

_LOW64 = (1 << 64) - 1
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)

CURRENT: ContextVar[LiveSpan | None] = ContextVar("clew_current_span", default=None)
"""The innermost clew span of this context (None outside any clew span)."""

_set_span_in_context = trace_api.set_span_in_context

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


class SpanSpec:
    """What a decorator or ``span()`` call asks for, validated once."""

    __slots__ = ("attributes", "metadata", "name", "omit_inputs", "omit_outputs", "rate", "tags")

    def __init__(
        self,
        name: str,
        *,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        end_user_identifier: str | None = None,
        session_id: str | None = None,
        target: Any = None,
        deployment_id: str | None = None,
        log_omit_inputs: bool = False,
        log_omit_outputs: bool = False,
        log_omit: bool = False,
        log_sample_rate: float | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"a span name must be a non-empty string, got {name!r}")
        if isinstance(tags, str):
            raise ConfigurationError(f"tags must be a list of strings, e.g. [{tags!r}]")
        tag_list = list(tags or ())
        if not all(isinstance(t, str) for t in tag_list):
            raise ConfigurationError(f"tags must be a list of strings, got {tag_list!r}")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise ConfigurationError(f"metadata must be a dict, got {type(metadata).__name__}")
        for field, value in (
            ("end_user_identifier", end_user_identifier),
            ("session_id", session_id),
            ("deployment_id", deployment_id),
        ):
            if value is not None and not isinstance(value, str):
                raise ConfigurationError(f"{field} must be a string, got {type(value).__name__}")
        if log_sample_rate is not None and (
            isinstance(log_sample_rate, bool)
            or not isinstance(log_sample_rate, int | float)
            or not 0.0 <= log_sample_rate <= 1.0
        ):
            raise ConfigurationError(
                f"log_sample_rate must be a number from 0 to 1, got {log_sample_rate!r}"
            )
        self.name = name
        self.tags = tag_list
        self.metadata = dict(metadata) if metadata else None
        self.omit_inputs = bool(log_omit_inputs or log_omit)
        self.omit_outputs = bool(log_omit_outputs or log_omit)
        self.rate = None if log_sample_rate is None else float(log_sample_rate)
        attrs: dict[str, Any] = {}
        if tag_list:
            attrs[a.CLEW_TAGS] = tuple(tag_list)
        if self.metadata:
            attrs[a.CLEW_METADATA] = to_json(self.metadata)
        if end_user_identifier is not None:
            attrs[a.CLEW_END_USER_IDENTIFIER] = end_user_identifier
        if session_id is not None:
            attrs[a.CLEW_SESSION_ID] = session_id
        if target is not None:
            attrs[a.CLEW_TARGET] = to_json(target)
        if deployment_id is not None:
            attrs[a.CLEW_DEPLOYMENT_ID] = deployment_id
        self.attributes = attrs


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
        counter: Iterable[int],
        max_bytes: int,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
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
        self._pending: dict[str, Any] | None = None
        self.ended = False

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
        """Set the span's output (ignored when outputs are omitted or sampled out)."""
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

    # -- life cycle ------------------------------------------------------------------------
    def activate(self) -> tuple[Token[LiveSpan | None], object]:
        """Make this span current (clew's and OpenTelemetry's context); returns the tokens."""
        return CURRENT.set(self), attach_span(self.span)

    @staticmethod
    def deactivate(tokens: tuple[Token[LiveSpan | None], object]) -> None:
        """Undo :meth:`activate` (on the same context it was done in)."""
        detach(tokens[1])
        CURRENT.reset(tokens[0])

    def end(self, output: Any = None, has_output: bool = False) -> None:
        """End the span successfully (once; later calls do nothing)."""
        if self.ended:
            return
        self.ended = True
        if not self.recording:
            return
        try:
            attrs = self._pending
            if has_output and not self.omit_outputs and output is not None:
                if attrs is None:
                    attrs = {}
                attrs.setdefault(a.CLEW_OUTPUT, to_json(output, self.max_bytes))
            if attrs:
                set_attributes(self.span, attrs)
            end_span(self.span)
        except Exception:
            logger.exception("clew: ending span failed")

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
            attrs[a.ERROR_TYPE] = _qualified_name(type(exc))
            set_attributes(span, attrs)
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, _error_text(exc)))
            end_span(span)
        except Exception:
            logger.exception("clew: ending span failed")


def _qualified_name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _error_text(exc: BaseException) -> str:
    try:
        message = str(exc)
    except Exception:
        message = "<unprintable error>"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _dropped(
    trace_id: int, span_id: int, parent: LiveSpan | None
) -> tuple[LiveSpan, Context | None]:
    ctx = SpanContext(trace_id, span_id, is_remote=False, trace_flags=_NOT_SAMPLED)
    live = LiveSpan(NonRecordingSpan(ctx), parent, False, True, True, 0, (), 0)
    return live, None


def stitched_context(
    parent_trace_id: str | None, root_trace_id: str | None
) -> tuple[Context, dict[str, Any], int]:
    """A parent context for a span joining a trace begun elsewhere.

    Returns the context, attributes keeping ids that do not fit the mapping, and the depth.

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
    assert root is not None and parent is not None
    if root == 0 or root & _LOW64 == 0:
        raise ConfigurationError("root_trace_id must not be all zeros in its low 64 bits")
    attrs: dict[str, Any] = {}
    span_id = span_id_from_log_trace_id(root, parent)
    if span_id is None:  # an id from another system: keep it verbatim
        span_id = (parent & _LOW64) or 1
        attrs[a.CLEW_PARENT_TRACE_ID] = str(parent_trace_id)
    parent_span = NonRecordingSpan(SpanContext(root, span_id, is_remote=True, trace_flags=_SAMPLED))
    depth = 1 if parent == root else 2
    return _set_span_in_context(parent_span), attrs, depth


def start(
    spec: SpanSpec,
    parent: LiveSpan | None,
    inputs: Callable[..., Mapping[str, Any] | None] | None = None,
    context: Context | None = None,
    extra_attributes: Mapping[str, Any] | None = None,
    depth: int | None = None,
    kind: trace_api.SpanKind = trace_api.SpanKind.INTERNAL,
    inputs_args: tuple[Any, ...] = (),
) -> LiveSpan:
    """Open a span for ``spec`` under ``parent`` (not yet current: call :meth:`LiveSpan.activate`).

    Args:
        spec: the validated request.
        parent: the enclosing clew span, from :data:`CURRENT`.
        inputs: called with ``inputs_args`` only when inputs are captured; returns the
            inputs dict.
        context: an explicit parent context (stitched spans); the current context otherwise.
        extra_attributes: more start attributes (instrumentations, stitched ids).
        depth: the depth when there is no clew parent (stitched spans).
        kind: the OpenTelemetry span kind.
        inputs_args: the arguments for ``inputs``.
    """
    runtime = rt_module._runtime or rt_module.get_runtime()
    preset = False
    if parent is None:
        rate = runtime.sample_rate if spec.rate is None else spec.rate
        if rate < 1.0:
            parent_ctx = trace_api.get_current_span(context).get_span_context()
            if parent_ctx.is_valid:
                trace_id = parent_ctx.trace_id
            else:
                trace_id = new_trace_id()
                preset = True
            if (trace_id & rt_module.SAMPLING_MASK) >= rt_module.sample_bound(rate):
                span_id = trace_id & _LOW64 if preset else random.getrandbits(64) or 1
                return _dropped(trace_id, span_id, None)[0]
        omit_in = spec.omit_inputs or not runtime.capture
        omit_out = spec.omit_outputs or not runtime.capture
        depth = depth or 0
        counter: Iterable[int] = itertools.count(1 if depth else 0)
    else:
        if spec.rate is not None and spec.rate < 1.0 and random.random() >= spec.rate:
            ctx = parent.span.get_span_context()
            return _dropped(ctx.trace_id, random.getrandbits(64) or 1, parent)[0]
        omit_in = parent.omit_inputs or spec.omit_inputs
        omit_out = parent.omit_outputs or spec.omit_outputs
        depth = parent.depth + 1
        counter = parent.counter
    attrs = spec.attributes.copy()
    if extra_attributes:
        attrs.update(extra_attributes)
    attrs[a.CLEW_DEPTH] = depth
    attrs[a.CLEW_EXECUTION_ORDER] = next(counter)  # type: ignore[call-overload]
    max_bytes = runtime.max_value_bytes
    if omit_in:
        attrs[a.CLEW_INPUTS_OMITTED] = True
    elif inputs is not None:
        try:
            values = inputs(*inputs_args)
        except Exception:
            values = None
        if values is not None:
            attrs[a.CLEW_INPUTS] = to_json(values, max_bytes)
    if omit_out:
        attrs[a.CLEW_OUTPUT_OMITTED] = True
    span = runtime.start_span(spec.name, context, kind, attrs, trace_id if preset else None)
    return LiveSpan(
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
    )
