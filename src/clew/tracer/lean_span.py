"""The SDK's span and attributes, holding in themselves only what differs from span to span.

:class:`~clew.tracer.sdk_shortcut.SpanStarter` makes clew's spans of a subclass made once per
tracer (:func:`lean_class`), whose class attributes hold what every span of that tracer
shares. Spans of any of these classes are the SDK's own spans to every reader.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import _Span
from opentelemetry.sdk.util import BoundedList

__all__ = [
    "ATTRIBUTES_OWN_FIELDS",
    "LEAN_CACHE_SIZE",
    "LEAN_CLASSES",
    "SPAN_LISTS",
    "SPAN_OWN_FIELDS",
    "LeanAttributes",
    "LeanSpan",
    "lean_class",
]

_NO_ITEMS: BoundedList[Any] = BoundedList(0)
"""The events and links of every :class:`LeanSpan` until it gets its first one (never added to:
a span given an event or link gets a list of its own first)."""

# What differs from one span to the next; every other field is the tracer's, held by the class.
SPAN_OWN_FIELDS = frozenset(
    {"_name", "_context", "_parent", "_kind", "_lock", "_attributes", "_start_time"}
)
SPAN_LISTS = frozenset({"_events", "_links"})  # LeanSpan's shared empty list, until a first
ATTRIBUTES_OWN_FIELDS = frozenset({"_dict", "_lock"})


class LeanSpan(_Span):
    """The SDK's span, holding in itself only what differs from span to span.

    The fields every span of a tracer shares (resource, processor, scope, limits, sampler...)
    and the initial values of the rest (no end time, status unset) are class attributes of a
    subclass made once per tracer; a field the SDK sets on a span (``_end_time``, ``_status``,
    ``_name``...) is set on the span as usual and shadows the class's. Events and links share
    one empty list until a span gets its first. Most spans never get an event or a link; a span
    is then five small objects instead of eleven, which is what the garbage collector walks
    while spans wait in an export queue.
    """

    _events = _links = _NO_ITEMS

    def _add_event(self, event: Any) -> None:
        if self._events is _NO_ITEMS:
            with self._lock:
                if self._events is _NO_ITEMS:
                    self._events = BoundedList(self._limits.max_events)
        super()._add_event(event)

    def _add_link(self, link: trace_api.Link) -> None:
        if self._links is _NO_ITEMS:
            with self._lock:
                if self._links is _NO_ITEMS:
                    self._links = BoundedList(self._limits.max_links)
        super()._add_link(link)


class LeanAttributes(BoundedAttributes):
    """The SDK's ``BoundedAttributes`` holding in itself only its values and lock; limits, the
    dropped count and the immutable flag start as class attributes (see :class:`LeanSpan`)."""


LEAN_CLASSES: set[type] = set()
_CACHE: OrderedDict[tuple[type, tuple[tuple[str, int], ...]], tuple[type, dict[str, Any]]] = (
    OrderedDict()
)
LEAN_CACHE_SIZE = 16
"""Lean classes kept: one pair per tracer set-up in use. An evicted class's spans still end
correctly, through ``Span.end``."""


def lean_class(base: type[Any], shared: dict[str, Any]) -> type[Any]:
    """A subclass of ``base`` with ``shared`` as class attributes (one per distinct set)."""
    key = (base, tuple(sorted((name, id(value)) for name, value in shared.items())))
    cached = _CACHE.get(key)
    if cached is None:  # the values are kept with the class, so their ids stay theirs
        cls = type(base.__name__, (base,), {"__module__": __name__, **shared})
        cached = _CACHE[key] = (cls, shared)
        LEAN_CLASSES.add(cls)
        while len(_CACHE) > LEAN_CACHE_SIZE:
            LEAN_CLASSES.discard(_CACHE.popitem(last=False)[1][0])
    else:
        _CACHE.move_to_end(key)
    return cached[0]
