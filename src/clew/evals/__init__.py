"""Evaluation: eval functions on traced calls, ready-made evals, datasets and experiments.

- ``@clew.trace(eval_funcs=[...], apply_eval_frac=1.0)`` (and the same on ``clew.span``) scores
  each call after it ended, off the caller's thread (:mod:`clew.tracer.evaluation`); an eval
  takes a :class:`~clew.Log` and returns a number, a bool, an :class:`~clew.EvalResult` or a
  list of them.
- :func:`register` names an eval for a completion's ``eval_metric_ids``.
- ``clew.score(trace_id, name, value)`` records feedback after the fact.
"""

from __future__ import annotations

from clew.tracer.evaluation import register
from clew.tracer.scores import EvalResult, Log

__all__ = ["EvalResult", "Log", "register"]
