"""What an eval function is given and what it gives back: :class:`Log` and :class:`EvalResult`.

An eval function takes a :class:`Log` (one traced call: its inputs, output, target, error,
latency, tokens, cost, ids, tags and metadata) and returns a number, a bool, an
:class:`EvalResult` or a list of them; :func:`results_of` turns any of these into a list of
results, named after the function when it gave a bare value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clew.errors import ConfigurationError

__all__ = ["EvalResult", "Evaluation", "Log", "error_text", "results_of", "set_submitter"]


@dataclass(frozen=True, slots=True)
class Log:
    """One traced call, as an eval function sees it.

    ``inputs`` and ``output`` are the call's own Python values (not their JSON): evals run in
    the process, so omit rules (which decide what leaves it) do not hide them here.
    """

    inputs: Mapping[str, Any] | None = None
    output: Any = None
    target: Any = None
    """The expected output: the span's ``target`` option, ``trace_insert({"target": …})``, a
    dataset row's target, or a completion's ``target``."""
    error: str | None = None
    """``"<Type>: <message>"`` when the call raised, else None."""
    latency: float = 0.0
    """Seconds from the call's start to its end."""
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None
    """USD over every LLM call made under this one (None: none was priced)."""
    trace_id: str = ""
    parent_trace_id: str | None = None
    root_trace_id: str = ""
    name: str = ""
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    end_user_identifier: str | None = None
    session_id: str | None = None
    experiment_uuid: str | None = None

    @property
    def total_tokens(self) -> int:
        """Input and output tokens."""
        return self.input_tokens + self.output_tokens

    @property
    def status(self) -> str:
        """``"error"`` when the call raised, else ``"success"``."""
        return "error" if self.error is not None else "success"


@dataclass(frozen=True, slots=True)
class EvalResult:
    """One score: a name, a value (a bool counts as 1 or 0) and an optional reason."""

    name: str
    score: float
    reason: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigurationError(f"a score's name is a non-empty string, got {self.name!r}")
        value = _number(self.score)
        if value is None:
            raise ConfigurationError(
                f"score {self.name!r} must be a finite number or a bool, got {self.score!r}"
            )
        object.__setattr__(self, "score", value)
        if self.reason is not None and not isinstance(self.reason, str):
            object.__setattr__(self, "reason", str(self.reason))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def results_of(value: Any, default_name: str) -> list[EvalResult]:
    """What an eval function returned, as results; a bare number or bool is named
    ``default_name`` (the function's name).

    Raises:
        ConfigurationError: the value is none of: a finite number, a bool, an EvalResult, or
            a list of them; None (nothing to score) gives an empty list.
    """
    if value is None:
        return []
    if isinstance(value, EvalResult):
        return [value]
    number = _number(value)
    if number is not None:
        return [EvalResult(default_name, number)]
    if isinstance(value, list | tuple):
        found: list[EvalResult] = []
        for item in value:
            found.extend(results_of(item, default_name))
        return found
    raise ConfigurationError(
        f"eval {default_name!r} returned {type(value).__name__}; return a number, a bool, a"
        " clew.EvalResult(name, score, reason) or a list of them"
    )


Submitter = Callable[[Any, "Evaluation", "str | None"], None]
"""Takes the ended span (a :class:`~clew.tracer.live.LiveSpan`), its evaluation and its
error text."""
_submit: Submitter | None = None


def set_submitter(submit: Submitter) -> None:
    """Where ended spans' evaluations go (:mod:`clew.tracer.evaluation` sets its pool here when
    imported, which setting up clew does)."""
    global _submit
    _submit = submit


class Evaluation:
    """What a span's eval functions will be given, gathered while the span runs (see
    :mod:`clew.tracer.evaluation`)."""

    __slots__ = (
        "cost",
        "deferred",
        "evals",
        "input_tokens",
        "inputs",
        "output",
        "output_tokens",
        "target",
    )

    def __init__(
        self,
        evals: Sequence[Callable[..., Any]],
        inputs: Any,
        target: Any,
        deferred: bool = False,
    ) -> None:
        self.evals = evals
        self.deferred = deferred
        """True: the span's owner runs the evals itself (``evaluation.evaluate``), not the
        pool."""
        self.inputs = inputs
        self.target = target
        self.output: Any = None
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost: float | None = None

    def add_usage(self, input_tokens: int, output_tokens: int, cost: float | None) -> None:
        """Count an LLM call made under the span."""
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost

    def finish(self, live: Any, error: BaseException | None) -> None:
        """The span ended: hand it to the evals' pool (the caller's thread does nothing more)."""
        if _submit is not None and not self.deferred:
            _submit(live, self, error_text(error) if error is not None else None)


def error_text(exc: BaseException) -> str:
    """``<Type>: <message>`` (never raises)."""
    try:
        return f"{type(exc).__name__}: {exc}"
    except Exception:  # foreign: the exception's __str__
        return type(exc).__name__
