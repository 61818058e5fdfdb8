"""Evaluation: eval functions on traced calls, ready-made evals, datasets and experiments.

- ``@clew.trace(eval_funcs=[...], apply_eval_frac=1.0)`` (and the same on ``clew.span``) scores
  each call after it ended, off the caller's thread (:mod:`clew.tracer.evaluation`); an eval
  takes a :class:`~clew.Log` and returns a number, a bool, an :class:`~clew.EvalResult` or a
  list of them.
- Ready-made evals (:mod:`clew.evals.library`, :mod:`clew.evals.judge`): :func:`exact_match`,
  :func:`contains`, :func:`contains_target`, :func:`regex`, :func:`similarity`,
  :func:`json_valid`, :func:`json_schema`, :func:`llm_judge`.
- :func:`register` names an eval for a completion's ``eval_metric_ids``.
- ``clew.score(trace_id, name, value)`` records feedback after the fact.
"""

from __future__ import annotations

from clew.evals.judge import DEFAULT_RUBRIC, llm_judge
from clew.evals.library import (
    contains,
    contains_target,
    contains_target_with,
    exact_match,
    exact_match_with,
    json_schema,
    json_valid,
    regex,
    similarity,
)
from clew.tracer.evaluation import register
from clew.tracer.scores import EvalResult, Log

__all__ = [
    "DEFAULT_RUBRIC",
    "EvalResult",
    "Log",
    "contains",
    "contains_target",
    "contains_target_with",
    "exact_match",
    "exact_match_with",
    "json_schema",
    "json_valid",
    "llm_judge",
    "regex",
    "register",
    "similarity",
]
