"""The sampling arithmetic: a trace is kept when its id's random bits fall below a bound."""

from __future__ import annotations

__all__ = ["SAMPLING_MASK", "sample_bound"]

SAMPLING_MASK = (1 << 56) - 1
"""Sampling reads the trace id's rightmost 56 bits: the bits W3C Trace Context level 2 (and
OpenTelemetry's consistent probability sampling) promise to be random. The low 64 bits that
``TraceIdRatioBased`` reads are not: in a UUID4 ``root_trace_id`` their top bits are the fixed
variant bits, which would drop every such trace at a rate of 0.5."""


def sample_bound(rate: float) -> int:
    """A trace is kept when ``trace_id & SAMPLING_MASK`` is below this bound.

    Example:
        >>> sample_bound(0.5) == 1 << 55
        True
    """
    return round(rate * (1 << 56))
