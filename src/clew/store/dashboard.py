"""The numbers of ``clew ui``'s dashboard: requests, errors, latency, tokens and cost over time,
by model, provider and project, read from the trace store in one pass over a time window.

A request is a root span (one without a parent), counted when it started; an error is a root
span that failed; latency is a root span's duration. Tokens and cost are summed over every span
that started in the window (LLM calls carry them). A span's model and provider come from its
GenAI attributes (a span from the exporter) or its record (a record written whole). SQLite sums
the window's spans; Python keeps the latencies for the percentiles. A store written by this
version keeps a copy of what the sums read (``llm_calls``, and the ``spans_roots`` index: see
:mod:`clew.store.schema`), so they do not parse each span's attributes; an older store is read
the long way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clew.errors import StoreError
from clew.log_record import iso_timestamp
from clew.store.schema import has_table

__all__ = ["dashboard"]

# The window's spans summed by time bucket and project, in SQLite: the bucket of a span is
# min((start_ns - since) / width, buckets - 1).
_BUCKET = "min((start_ns - :since) / :width, :last)"
_IN_WINDOW = "start_ns >= :since AND start_ns < :until"
_TOTALS = f"""SELECT {_BUCKET}, project_name, sum(parent_trace_id IS NULL),
    sum(parent_trace_id IS NULL AND status = 'error'), sum(input_tokens), sum(output_tokens),
    sum(cost)
    FROM spans WHERE {_IN_WINDOW} GROUP BY 1, 2"""
# The requests' latencies (root spans that ended), for the percentiles.
_LATENCIES = f"""SELECT {_BUCKET}, end_ns - start_ns FROM spans
    WHERE {_IN_WINDOW} AND parent_trace_id IS NULL AND end_ns IS NOT NULL"""
# LLM calls (spans with tokens or a cost; their attempts carry neither) by model and provider.
_MODELS = f"""SELECT
    coalesce(json_extract(attributes, '$."gen_ai.response.model"'),
             json_extract(attributes, '$."gen_ai.request.model"'), json_extract(fields, '$.model')),
    coalesce(json_extract(attributes, '$."gen_ai.provider.name"'),
             json_extract(fields, '$.provider')),
    count(*), sum(input_tokens), sum(output_tokens), sum(cost)
    FROM spans WHERE {_IN_WINDOW} AND (input_tokens IS NOT NULL OR cost IS NOT NULL)
    GROUP BY 1, 2"""
# The same from a store with ``llm_calls`` and the ``spans_roots`` index (see
# clew.store.schema.CALLS): the requests from the index, the rest from the calls.
_TOTALS_FROM_CALLS = f"""SELECT {_BUCKET}, project_name, count(*), sum(status = 'error'), NULL,
    NULL, NULL FROM spans WHERE parent_trace_id IS NULL AND {_IN_WINDOW} GROUP BY 1, 2
    UNION ALL
    SELECT {_BUCKET}, project_name, 0, 0, sum(input_tokens), sum(output_tokens), sum(cost)
    FROM llm_calls WHERE {_IN_WINDOW} GROUP BY 1, 2"""
_MODELS_FROM_CALLS = f"""SELECT model, provider, count(*), sum(input_tokens), sum(output_tokens),
    sum(cost) FROM llm_calls WHERE {_IN_WINDOW} AND (input_tokens IS NOT NULL OR cost IS NOT NULL)
    GROUP BY 1, 2"""


@dataclass
class _Bucket:
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0

    def __post_init__(self) -> None:
        self.latencies: list[float] = []


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@contextmanager
def _reader(path: Path) -> Iterator[sqlite3.Connection | None]:
    if not path.is_file():
        yield None
        return
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the trace store {str(path)!r}: {exc}") from exc
    try:
        yield conn if has_table(conn, "spans") else None
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the trace store {str(path)!r}: {exc}") from exc
    finally:
        conn.close()


def dashboard(path: str | Path, since_ns: int, until_ns: int, buckets: int) -> dict[str, Any]:
    """The dashboard of the window ``[since_ns, until_ns)`` in ``buckets`` equal buckets.

    Raises:
        StoreError: the store cannot be read.
        ValueError: an empty window or fewer than 1 bucket.
    """
    if until_ns <= since_ns or buckets < 1:
        raise ValueError("the window must be non-empty and have at least one bucket")
    width = -(-(until_ns - since_ns) // buckets)  # ceiling: the last bucket reaches until_ns
    series = [_Bucket() for _ in range(buckets)]
    models: dict[tuple[str, str], dict[str, Any]] = {}
    projects: dict[str, dict[str, Any]] = {}
    window = {"since": since_ns, "until": until_ns, "width": width, "last": buckets - 1}
    with _reader(Path(path)) as conn:
        if conn is not None:
            totals, by_models = _TOTALS, _MODELS
            if has_table(conn, "llm_calls"):
                totals, by_models = _TOTALS_FROM_CALLS, _MODELS_FROM_CALLS
            for index, project, requests, errors, tokens_in, tokens_out, cost in conn.execute(
                totals, window
            ):
                bucket = series[index]
                bucket.requests += requests
                bucket.errors += errors
                bucket.input_tokens += tokens_in or 0
                bucket.output_tokens += tokens_out or 0
                bucket.cost += cost or 0.0
                name = project or "default"
                by_project = projects.setdefault(
                    name, {"project": name, "requests": 0, "errors": 0, "cost": 0.0}
                )
                by_project["requests"] += requests
                by_project["errors"] += errors
                by_project["cost"] += cost or 0.0
            for index, duration in conn.execute(_LATENCIES, window):
                series[index].latencies.append(duration / 1e9)
            for model, provider, requests, tokens_in, tokens_out, cost in conn.execute(
                by_models, window
            ):
                key = (str(model or "?"), str(provider or "?"))
                by_model = models.setdefault(
                    key,
                    {
                        "model": key[0],
                        "provider": key[1],
                        "requests": 0,
                        "input_tokens": 0,
                        "output_tokens": 0,
                        "cost": 0.0,
                    },
                )
                by_model["requests"] += requests
                by_model["input_tokens"] += tokens_in or 0
                by_model["output_tokens"] += tokens_out or 0
                by_model["cost"] += cost or 0.0
    return {
        "since": iso_timestamp(since_ns),
        "until": iso_timestamp(until_ns),
        "bucket_seconds": round(width / 1e9, 3),
        "series": [
            {
                "start": iso_timestamp(since_ns + i * width),
                "requests": b.requests,
                "errors": b.errors,
                "latency_p50": _percentile(b.latencies, 0.5),
                "latency_p95": _percentile(b.latencies, 0.95),
                "input_tokens": b.input_tokens,
                "output_tokens": b.output_tokens,
                "cost": b.cost,
            }
            for i, b in enumerate(series)
        ],
        "by_model": sorted(models.values(), key=lambda m: (-m["requests"], m["model"])),
        "by_project": sorted(
            (p for p in projects.values() if p["requests"] or p["cost"]),  # not a span's project
            key=lambda p: (-p["requests"], p["project"]),
        ),
    }
