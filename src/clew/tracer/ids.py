"""The mapping between the seed's three log ids and OpenTelemetry ids.

- ``root_trace_id`` is the OpenTelemetry trace id written as a UUID.
- a span's ``trace_id`` is the UUID whose high 64 bits are the trace id's high 64 bits and whose
  low 64 bits are the span id. A root span gets span id = low 64 bits of the trace id, so for a
  root ``trace_id == root_trace_id``.
- ``parent_trace_id`` is the parent's ``trace_id``.
"""

from __future__ import annotations

import random
import threading
import uuid

from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

_LOW64 = (1 << 64) - 1
_HIGH64 = _LOW64 << 64


def _uuid_text(value: int) -> str:
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def root_trace_id_of(otel_trace_id: int) -> str:
    """The seed ``root_trace_id`` for an OpenTelemetry trace id."""
    return _uuid_text(otel_trace_id)


def log_trace_id_of(otel_trace_id: int, otel_span_id: int) -> str:
    """The seed ``trace_id`` of the span ``otel_span_id`` in the trace ``otel_trace_id``."""
    return _uuid_text((otel_trace_id & _HIGH64) | otel_span_id)


def parse_uuid(value: str, field: str) -> int:
    """Parse a UUID-like id (with or without dashes, or 32 hex digits) into a 128-bit int.

    Raises:
        ValueError: naming ``field`` when the text is not a UUID.
    """
    try:
        return uuid.UUID(str(value)).int
    except (ValueError, TypeError, AttributeError):
        raise ValueError(
            f"{field} must be a UUID such as '0af76519-16cd-43dd-8448-eb211c80319c', got {value!r}"
        ) from None


def span_id_from_log_trace_id(otel_trace_id: int, log_trace_id: int) -> int | None:
    """The span id encoded in ``log_trace_id`` if it belongs to ``otel_trace_id``, else None."""
    if log_trace_id & _HIGH64 != otel_trace_id & _HIGH64:
        return None
    span_id = log_trace_id & _LOW64
    return span_id or None


def new_trace_id() -> int:
    """A random, valid trace id whose low 64 bits are non-zero (they become the root span id)."""
    while True:
        value = random.getrandbits(128)
        if value & _LOW64 and value >> 64:
            return value


class ClewIdGenerator(IdGenerator):
    """Wraps the provider's id generator so that a root span's id is its trace id's low 64 bits.

    The SDK asks for the trace id and then, on the same thread and before anything else, the span
    id of a root span; a thread-local carries the trace id from one call to the next. A trace id
    decided beforehand (for sampling) is handed in with :meth:`preset_trace_id`.
    """

    def __init__(self, inner: IdGenerator | None = None) -> None:
        self._inner = inner or RandomIdGenerator()
        self._local = threading.local()

    @property
    def inner(self) -> IdGenerator:
        """The provider's own id generator, which this one wraps."""
        return self._inner

    def preset_trace_id(self, trace_id: int | None) -> None:
        """Make the next :meth:`generate_trace_id` on this thread return ``trace_id``."""
        self._local.preset = trace_id

    def generate_trace_id(self) -> int:
        local = self._local
        trace_id: int | None = getattr(local, "preset", None)
        if trace_id is None:
            trace_id = self._inner.generate_trace_id()
        else:
            local.preset = None
        local.pending = trace_id
        return trace_id

    def is_trace_id_random(self) -> bool:
        return self._inner.is_trace_id_random()

    def generate_span_id(self) -> int:
        local = self._local
        pending: int | None = getattr(local, "pending", None)
        if pending is not None:
            local.pending = None
            span_id = pending & _LOW64
            if span_id:
                return span_id
        return self._inner.generate_span_id()
