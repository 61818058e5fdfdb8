"""The id generator of clew's tracer: a root span's id is its trace id's low 64 bits.

That is what makes a root's seed ``trace_id`` equal its ``root_trace_id`` (see
:mod:`clew.log_record`).
"""

from __future__ import annotations

import threading

from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

from clew.log_record import new_trace_id

_LOW64 = (1 << 64) - 1


class ClewIdGenerator(IdGenerator):
    """Wraps the provider's id generator so that a root span's id is its trace id's low 64 bits.

    The SDK asks for the trace id and then, on the same thread and before anything else, the span
    id of a root span; a thread-local carries the trace id from one call to the next. A trace id
    decided beforehand (for sampling) is handed in with :meth:`preset_trace_id`.
    """

    def __init__(self, inner: IdGenerator | None = None) -> None:
        self._inner = inner or RandomIdGenerator()
        self._local = threading.local()
        self._random = type(self._inner) is RandomIdGenerator

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

    def new_root_trace_id(self) -> int:
        """A trace id for a root whose sampling clew decides before the span exists: from the
        provider's generator, with non-zero low 64 bits (they become the root's span id)."""
        if not self._random:
            trace_id = self._inner.generate_trace_id()
            if trace_id & _LOW64:
                return trace_id
        return new_trace_id()

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
