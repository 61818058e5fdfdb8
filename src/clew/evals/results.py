"""What an experiment measured: its rows, their summary, and how they are kept in the local
store and read back (:mod:`clew.store.experiments` is the SQL side)."""

from __future__ import annotations

import builtins
import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clew.errors import StoreError
from clew.store import experiments as stored

__all__ = ["EvalSummary", "ExperimentResult", "RowResult", "Summary", "list", "load", "save"]


@dataclass(frozen=True)
class RowResult:
    """One call of an experiment: a row of the data, one trial."""

    index: int
    trial: int
    inputs: dict[str, Any]
    target: Any
    output: Any
    error: str | None
    scores: dict[str, float]
    """Each score by name (a name scored twice: their mean)."""
    score_errors: dict[str, str]
    """The evals that failed on this row, with their error."""
    trace_id: str | None
    latency: float
    input_tokens: int
    output_tokens: int
    cost: float | None


@dataclass(frozen=True)
class EvalSummary:
    """One score over the rows that have it."""

    name: str
    mean: float
    stdev: float
    count: int
    min: float
    max: float


def _percentile(values: Sequence[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass(frozen=True)
class Summary:
    """What an experiment measured, over all its rows."""

    rows: int
    errors: int
    evals: dict[str, EvalSummary]
    eval_errors: int
    input_tokens: int
    output_tokens: int
    cost: float | None
    latency_p50: float | None
    latency_p95: float | None
    duration: float
    """Seconds the run took."""

    @classmethod
    def of(cls, rows: Sequence[RowResult], duration: float) -> Summary:
        """The summary of ``rows``."""
        values: dict[str, builtins.list[float]] = {}
        for row in rows:
            for name, value in row.scores.items():
                values.setdefault(name, []).append(value)
        evals = {
            name: EvalSummary(
                name,
                statistics.fmean(found),
                statistics.stdev(found) if len(found) > 1 else 0.0,
                len(found),
                min(found),
                max(found),
            )
            for name, found in sorted(values.items())
        }
        costs = [row.cost for row in rows if row.cost is not None]
        latencies = [row.latency for row in rows]
        return cls(
            rows=len(rows),
            errors=sum(1 for row in rows if row.error is not None),
            evals=evals,
            eval_errors=sum(len(row.score_errors) for row in rows),
            input_tokens=sum(row.input_tokens for row in rows),
            output_tokens=sum(row.output_tokens for row in rows),
            cost=sum(costs) if costs else None,
            latency_p50=_percentile(latencies, 0.5),
            latency_p95=_percentile(latencies, 0.95),
            duration=duration,
        )

    def __str__(self) -> str:
        lines = [
            f"{'eval':<24} {'mean':>8} {'stdev':>8} {'count':>6} {'min':>8} {'max':>8}",
            *(
                f"{e.name[:24]:<24} {e.mean:>8.4f} {e.stdev:>8.4f} {e.count:>6}"
                f" {e.min:>8.4g} {e.max:>8.4g}"
                for e in self.evals.values()
            ),
        ]
        if not self.evals:
            lines.append("(no scores)")
        p50 = f"{self.latency_p50:.3f} s" if self.latency_p50 is not None else "-"
        p95 = f"{self.latency_p95:.3f} s" if self.latency_p95 is not None else "-"
        cost = f"${self.cost:.6f}" if self.cost is not None else "-"
        lines.append(
            f"{self.rows} rows · {self.errors} errors · {self.eval_errors} failed evals ·"
            f" {self.input_tokens + self.output_tokens} tokens · {cost} ·"
            f" latency p50 {p50} p95 {p95} · {self.duration:.1f} s"
        )
        return "\n".join(lines)


@dataclass(frozen=True)
class ExperimentResult:
    """A run: its summary and every row."""

    uuid: str
    name: str
    created: str
    status: str
    """``finished``, or ``interrupted`` (Ctrl-C: only the finished rows are here)."""
    dataset: str | None
    dataset_version: int | None
    summary: Summary
    rows: list[RowResult]
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON-ready data."""
        plain: dict[str, Any] = json.loads(_json(asdict(self)))
        return plain


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def save(result: ExperimentResult, store: str | Path) -> None:
    """Keep ``result`` in the store (replacing an earlier save of the same run).

    Raises:
        StoreError: the store cannot be written.
    """
    created = datetime.fromisoformat(result.created).timestamp()
    stored.write(
        store,
        stored.StoredExperiment(
            result.uuid,
            result.name,
            created,
            result.dataset,
            result.dataset_version,
            result.status,
            _json(asdict(result.summary)),
            _json(result.metadata),
        ),
        [
            stored.StoredRow(
                row.index,
                row.trial,
                row.trace_id,
                _json(row.inputs),
                _json(row.target),
                _json(row.output),
                row.error,
                _json({"scores": row.scores, "errors": row.score_errors}),
                row.latency,
                row.input_tokens,
                row.output_tokens,
                row.cost,
            )
            for row in result.rows
        ],
    )


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _summary(data: dict[str, Any]) -> Summary:
    evals = {name: EvalSummary(**found) for name, found in data.pop("evals").items()}
    return Summary(evals=evals, **data)


def _result(found: stored.StoredExperiment, store: str | Path) -> ExperimentResult:
    rows = []
    for row in stored.rows(store, found.uuid):
        scored = json.loads(row.scores)
        rows.append(
            RowResult(
                index=row.idx,
                trial=row.trial,
                inputs=json.loads(row.inputs),
                target=_loads(row.target),
                output=_loads(row.output),
                error=row.error,
                scores=scored["scores"],
                score_errors=scored["errors"],
                trace_id=row.trace_id,
                latency=row.latency or 0.0,
                input_tokens=row.input_tokens or 0,
                output_tokens=row.output_tokens or 0,
                cost=row.cost,
            )
        )
    return ExperimentResult(
        uuid=found.uuid,
        name=found.name,
        created=datetime.fromtimestamp(found.created, tz=UTC).isoformat(),
        status=found.status,
        dataset=found.dataset,
        dataset_version=found.dataset_version,
        summary=_summary(json.loads(found.summary)),
        rows=rows,
        metadata=json.loads(found.metadata),
    )


def load(name_or_id: str, *, store: str | Path) -> ExperimentResult:
    """A stored experiment: the latest run of that name, or the run whose id starts so.

    Raises:
        StoreError: none matches, or an id prefix matches several.
    """
    found = stored.find(store, name_or_id)
    if not found:
        raise StoreError(
            f"no experiment named {name_or_id!r} or with an id starting so in {str(store)!r};"
            " `clew experiments list` shows them"
        )
    if len(found) > 1:
        raise StoreError(
            f"the id prefix {name_or_id!r} matches several experiments; give more characters"
        )
    return _result(found[0], store)


def list(*, store: str | Path) -> builtins.list[ExperimentResult]:
    """Every stored experiment, newest first, without its rows (``rows`` is empty)."""
    return [
        ExperimentResult(
            uuid=found.uuid,
            name=found.name,
            created=datetime.fromtimestamp(found.created, tz=UTC).isoformat(),
            status=found.status,
            dataset=found.dataset,
            dataset_version=found.dataset_version,
            summary=_summary(json.loads(found.summary)),
            rows=[],
            metadata=json.loads(found.metadata),
        )
        for found in stored.list(store)
    ]
