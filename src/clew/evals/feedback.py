"""``clew.score``: a score recorded after the fact (a user's thumbs-up from a web handler, a
reviewer's grade), perhaps in another process than the one that made the trace."""

from __future__ import annotations

from clew.errors import StoreError
from clew.setup import current_config
from clew.store.sqlite import TraceStore
from clew.tracer.evaluation import record_scores
from clew.tracer.scores import EvalResult

__all__ = ["score"]


def score(
    trace_id: str,
    name: str,
    value: float | bool,
    reason: str | None = None,
    *,
    root_trace_id: str | None = None,
) -> None:
    """Record a score on the span ``trace_id``: a score span under it, with source
    ``feedback``, sent to the configured exporters like any span.

    Args:
        trace_id: the scored span's ``trace_id`` (``clew.get_current_trace_id()`` in the
            traced call, or a completion's ``inference_id``).
        name: what is scored ("helpful", "thumbs_up").
        value: a number, or a bool (1 or 0).
        reason: why, in words.
        root_trace_id: the trace's root id. Needed only for a span that is not a root and is
            not in the local store (which is looked in first); a root's is its own id.

    Raises:
        ConfigurationError: a bad name or value, or an id that is not a UUID.

    Example:
        >>> import clew
        >>> clew.score(trace_id, "thumbs_up", True, "the user clicked 👍")  # doctest: +SKIP
    """
    result = EvalResult(name, value, reason)
    if root_trace_id is None:
        try:
            root_trace_id = TraceStore(current_config().store_path).root_of(trace_id)
        except StoreError:
            root_trace_id = None
    record_scores([result], trace_id=trace_id, root_trace_id=root_trace_id or trace_id)
