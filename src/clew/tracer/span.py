"""``with clew.span(...)``, the current-trace helpers, and ``trace_insert``."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from opentelemetry import trace as trace_api

from clew.tracer.ids import log_trace_id_of, root_trace_id_of
from clew.tracer.live import CURRENT, LiveSpan, SpanSpec, start, stitched_context

logger = logging.getLogger("clew")


class span:
    """A span around a block, for ``with`` and ``async with``; yields a :class:`LiveSpan`.

    Args:
        name: the span name.
        tags, metadata, end_user_identifier, session_id, target, deployment_id,
        log_omit_inputs, log_omit_outputs, log_omit, log_sample_rate: as for
            :func:`clew.trace`.
        inputs: the span's inputs (also settable later with ``set_inputs``).
        parent_trace_id: stitch this span under a log begun elsewhere (another process, a job
            queue): the parent's ``trace_id``.
        root_trace_id: the ``root_trace_id`` of that trace (give it whenever the parent is not
            the root).

    Example:
        >>> import clew
        >>> with clew.span("retrieve", tags=["rag"]) as s:
        ...     s.set_output(["doc-1", "doc-2"])

    Raises:
        ConfigurationError: an argument is invalid.
    """

    __slots__ = ("_context", "_depth", "_extra", "_inputs", "_live", "_spec", "_tokens")

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
        inputs: Mapping[str, Any] | None = None,
        parent_trace_id: str | None = None,
        root_trace_id: str | None = None,
    ) -> None:
        self._spec = SpanSpec(
            name,
            tags=tags,
            metadata=metadata,
            end_user_identifier=end_user_identifier,
            session_id=session_id,
            target=target,
            deployment_id=deployment_id,
            log_omit_inputs=log_omit_inputs,
            log_omit_outputs=log_omit_outputs,
            log_omit=log_omit,
            log_sample_rate=log_sample_rate,
        )
        self._inputs = inputs
        self._context = None
        self._extra: dict[str, Any] | None = None
        self._depth: int | None = None
        if parent_trace_id or root_trace_id:
            self._context, self._extra, self._depth = stitched_context(
                parent_trace_id, root_trace_id
            )
        self._live: LiveSpan | None = None
        self._tokens: Any = None

    def __enter__(self) -> LiveSpan:
        stitched = self._context is not None
        parent = None if stitched else CURRENT.get()
        inputs = self._inputs
        live = start(
            self._spec,
            parent,
            (lambda: inputs) if inputs is not None else None,
            self._context,
            self._extra,
            self._depth,
        )
        self._live = live
        self._tokens = live.activate()
        return live

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        live = self._live
        if live is None:
            return
        try:
            live.deactivate(self._tokens)
        except Exception:
            logger.debug("clew: could not restore the context", exc_info=True)
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


def current_span() -> LiveSpan | None:
    """The innermost clew span of the current context, or None."""
    return CURRENT.get()


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
    live = CURRENT.get()
    if trace_id is not None:
        while live is not None and live.trace_id != trace_id:
            live = live.parent
    if live is None:
        # validate anyway, so a typo is found in development even outside a trace
        LiveSpan.insert_fields_check(data)
        return
    live.insert(data)
