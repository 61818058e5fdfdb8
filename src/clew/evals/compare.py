"""Two experiment runs compared: per eval, the difference of the means with a paired bootstrap
confidence interval, and the rows that got worse, first.

Rows are paired by their index in the data (the trials of a row are averaged first), so the
comparison is meaningful when both runs used the same rows, as runs on one dataset version do.
A score is compared over the rows that have it in both runs.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from clew.evals.results import ExperimentResult, RowResult

__all__ = ["Comparison", "EvalDiff", "RowDiff", "compare"]

RESAMPLES = 2000
"""Bootstrap resamples per eval."""
SEED = 0
"""The bootstrap's seed: comparing the same two runs always gives the same interval."""


@dataclass(frozen=True)
class EvalDiff:
    """One eval in both runs: means, their difference (b − a), and its 95% interval."""

    name: str
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    pairs: int

    @property
    def significant(self) -> bool:
        """Whether the interval leaves out 0."""
        return self.ci_low > 0 or self.ci_high < 0


@dataclass(frozen=True)
class RowDiff:
    """One row in both runs: its scores in each and the sum of the differences (b − a)."""

    index: int
    inputs: dict[str, object]
    output_a: object
    output_b: object
    scores_a: dict[str, float]
    scores_b: dict[str, float]
    diff: float


@dataclass(frozen=True)
class Comparison:
    """Run ``b`` against run ``a``."""

    a: ExperimentResult
    b: ExperimentResult
    evals: list[EvalDiff]
    rows: list[RowDiff]
    """Every row both runs have, the ones that got worse first."""

    @property
    def worse(self) -> list[RowDiff]:
        """The rows whose scores went down."""
        return [row for row in self.rows if row.diff < 0]


def _by_index(rows: Sequence[RowResult]) -> dict[int, tuple[RowResult, dict[str, float]]]:
    """Each row index: its first trial, and each score's mean over its trials."""
    trials: dict[int, list[RowResult]] = {}
    for row in rows:
        trials.setdefault(row.index, []).append(row)
    found = {}
    for index, group in trials.items():
        values: dict[str, list[float]] = {}
        for row in group:
            for name, value in row.scores.items():
                values.setdefault(name, []).append(value)
        found[index] = (group[0], {n: statistics.fmean(v) for n, v in values.items()})
    return found


def _interval(diffs: Sequence[float], rng: random.Random) -> tuple[float, float]:
    """The 2.5th and 97.5th percentiles of the mean of ``diffs`` resampled with replacement."""
    if len(diffs) < 2:
        return diffs[0], diffs[0]
    size = len(diffs)
    means = sorted(statistics.fmean(rng.choices(diffs, k=size)) for _ in range(RESAMPLES))
    return means[int(0.025 * RESAMPLES)], means[min(RESAMPLES - 1, int(0.975 * RESAMPLES))]


def compare(a: ExperimentResult, b: ExperimentResult) -> Comparison:
    """Compare run ``b`` with run ``a`` (``b`` is the new one: a positive diff is better).

    Example:
        >>> from clew.evals import results
        >>> before = results.load("prompt-v2", store=".clew/traces.db")  # doctest: +SKIP
        >>> after = results.load("prompt-v3", store=".clew/traces.db")  # doctest: +SKIP
        >>> for e in compare(before, after).evals:  # doctest: +SKIP
        ...     print(e.name, e.diff, e.ci_low, e.ci_high)
    """
    rng = random.Random(SEED)
    in_a, in_b = _by_index(a.rows), _by_index(b.rows)
    shared = sorted(set(in_a) & set(in_b))
    names = sorted(
        {n for i in shared for n in in_a[i][1]} & {n for i in shared for n in in_b[i][1]}
    )
    evals = []
    for name in names:
        pairs = [
            (in_a[i][1][name], in_b[i][1][name])
            for i in shared
            if name in in_a[i][1] and name in in_b[i][1]
        ]
        if not pairs:
            continue
        diffs = [y - x for x, y in pairs]
        low, high = _interval(diffs, rng)
        evals.append(
            EvalDiff(
                name,
                statistics.fmean(x for x, _ in pairs),
                statistics.fmean(y for _, y in pairs),
                statistics.fmean(diffs),
                low,
                high,
                len(pairs),
            )
        )
    rows = []
    for index in shared:
        (row_a, scores_a), (row_b, scores_b) = in_a[index], in_b[index]
        diff = sum(scores_b[n] - scores_a[n] for n in names if n in scores_a and n in scores_b)
        rows.append(
            RowDiff(index, row_a.inputs, row_a.output, row_b.output, scores_a, scores_b, diff)
        )
    rows.sort(key=lambda row: (row.diff, row.index))
    return Comparison(a, b, evals, rows)
