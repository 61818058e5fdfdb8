"""``with clew.span(...)``: a span around a block, for ``with`` and ``async with``."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import Token
from types import TracebackType
from typing import Any, Unpack

from opentelemetry.context import Context

from clew.tracer.entry import Stitch, open_span, stitch
from clew.tracer.live import LIVE_KEY, LiveSpan, current_context, dropped_span
from clew.tracer.options import SpanOptions, SpanSpec

__all__ = ["span"]


class span:
    """A span around a block, for ``with`` and ``async with``; yields a :class:`LiveSpan`.

    Inside a trace that was sampled out, the block runs untraced and the handle it gets is the
    dropped span's (every setter does nothing).

    Args:
        name: the span name.
        inputs: the span's inputs (also settable later with ``set_inputs``).
        parent_trace_id: stitch this span under a log begun elsewhere (another process, a job
            queue): the parent's ``trace_id``.
        root_trace_id: the ``root_trace_id`` of that trace (give it whenever the parent is not
            the root).
        **options: the :class:`~clew.tracer.options.SpanOptions`, as for :func:`clew.trace`.

    Example:
        >>> import clew
        >>> with clew.span("retrieve", tags=["rag"]) as s:
        ...     s.set_output(["doc-1", "doc-2"])

    Raises:
        ConfigurationError: an argument is invalid.
    """

    __slots__ = ("_inputs", "_live", "_spec", "_stitch", "_token")

    def __init__(
        self,
        name: str,
        *,
        inputs: Mapping[str, Any] | None = None,
        parent_trace_id: str | None = None,
        root_trace_id: str | None = None,
        **options: Unpack[SpanOptions],
    ) -> None:
        self._spec = SpanSpec(name, options)
        self._inputs = inputs
        self._stitch: Stitch | None = (
            stitch(parent_trace_id, root_trace_id) if parent_trace_id or root_trace_id else None
        )
        self._live: LiveSpan | None = None
        self._token: Token[Context] | None = None

    def __enter__(self) -> LiveSpan:
        inputs = self._inputs
        context = current_context()
        stitched = self._stitch
        found = None if stitched is not None else context.get(LIVE_KEY)
        live = open_span(
            self._spec,
            context,
            found if isinstance(found, LiveSpan) else None,
            (lambda: inputs) if inputs is not None else None,
            stitched=stitched,
        )
        if live is None:  # inside a dropped trace (or opening failed): the block runs untraced
            dropped = context.get(LIVE_KEY)
            return dropped if isinstance(dropped, LiveSpan) else dropped_span(1, 1, None)
        self._live = live
        self._token = live.activate()
        return live

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        live, token = self._live, self._token
        if live is None or token is None:
            return
        self._live = self._token = None
        live.deactivate(token)
        if exc is None or isinstance(exc, GeneratorExit):
            live.end()
        else:
            live.fail(exc)

    async def __aenter__(self) -> LiveSpan:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
