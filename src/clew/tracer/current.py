"""The current span and trace, and ``trace_insert``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import trace as trace_api

from clew.log_record import log_trace_id_of, root_trace_id_of
from clew.tracer.live import LiveSpan, current

__all__ = ["current_span", "get_current_trace_id", "get_root_trace_id", "trace_insert"]


def current_span() -> LiveSpan | None:
    """The innermost clew span of the current context, or None."""
    return current()


def get_current_trace_id() -> str | None:
    """The ``trace_id`` of the current span (clew's or any OpenTelemetry span), or None."""
    ctx = trace_api.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return log_trace_id_of(ctx.trace_id, ctx.span_id)


def get_root_trace_id() -> str | None:
    """The ``root_trace_id`` of the current trace, or None outside a trace."""
    ctx = trace_api.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return root_trace_id_of(ctx.trace_id)


def trace_insert(data: Mapping[str, Any], trace_id: str | None = None) -> None:
    """Update the current span (or the enclosing span with ``trace_id``), as Parea's does.

    Dicts (``metadata``, ``inputs``) merge, lists (``tags``, ``scores``) extend, other fields
    (``output``, ``end_user_identifier``, ``session_id``, ``target``, ``deployment_id``,
    ``name``) are replaced. Outside a span it does nothing.

    Example:
        >>> import clew
        >>> with clew.span("answer"):
        ...     clew.trace_insert({"metadata": {"retrieved": 3}, "tags": ["cached"]})

    Raises:
        ConfigurationError: ``data`` has a field clew does not know.
    """
    live = current()
    if trace_id is not None:
        while live is not None and live.trace_id != trace_id:
            live = live.parent
    if live is None:
        # validate anyway, so a typo is found in development even outside a trace
        LiveSpan.insert_fields_check(data)
        return
    live.insert(data)
