"""Span records as a readable tree: the console exporter's output and ``clew show``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from clew import attributes as a

__all__ = ["format_cost", "format_duration", "format_tokens", "render_tree"]

_MAX_NAME = 60
_MAX_ERROR = 120
_OK = "✓"
_FAILED = "✗"

Record = Mapping[str, Any]


def format_duration(seconds: float | None) -> str:
    """``420 µs``, ``4.2 ms``, ``12 ms``, ``1.23 s`` or ``2m 05s``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 0.01:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m {rest:02d}s"


def format_tokens(input_tokens: int | None, output_tokens: int | None) -> str:
    """``1,200 → 56``; a missing side shows as ``?``; empty when both are unknown."""
    if input_tokens is None and output_tokens is None:
        return ""
    left = "?" if input_tokens is None else f"{input_tokens:,}"
    right = "?" if output_tokens is None else f"{output_tokens:,}"
    return f"{left} → {right}"


def format_cost(cost: float | None) -> str:
    """``$0.0123``, or ``$0.000042`` for small amounts; empty when unknown."""
    if cost is None:
        return ""
    if cost == 0:
        return "$0.00"
    if abs(cost) >= 0.01:
        return f"${cost:,.4f}"
    text = f"{cost:.8f}".rstrip("0")
    return f"${text}"


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())  # one line, whatever the error message looked like
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _epoch(timestamp: Any) -> float | None:
    if not isinstance(timestamp, str):
        return None
    try:
        return datetime.fromisoformat(timestamp).timestamp()
    except ValueError:
        return None


def _start_key(record: Record) -> tuple[float, int]:
    order = record.get("execution_order")
    return _epoch(record.get("start_timestamp")) or 0.0, order if isinstance(order, int) else 0


def _number(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _sum(records: Iterable[Record], field: str) -> Any:
    values = [v for r in records if (v := _number(r.get(field))) is not None]
    return sum(values) if values else None


def _walk(records: list[Record]) -> list[tuple[str, Record]]:
    """Depth-first (prefix, record) pairs. Spans whose parent is absent are roots."""
    ids = {r.get("trace_id") for r in records}
    children: dict[Any, list[Record]] = defaultdict(list)
    roots: list[Record] = []
    for record in records:
        parent = record.get("parent_trace_id")
        if parent is None or parent not in ids or parent == record.get("trace_id"):
            roots.append(record)
        else:
            children[parent].append(record)
    out: list[tuple[str, Record]] = []

    def visit(record: Record, lead: str, branch: str) -> None:
        out.append((lead + branch, record))
        kids = sorted(children.pop(record.get("trace_id"), ()), key=_start_key)
        inner = lead + ("" if not branch else "   " if branch.startswith("└") else "│  ")
        for i, kid in enumerate(kids):
            visit(kid, inner, "└─ " if i == len(kids) - 1 else "├─ ")

    for root in sorted(roots, key=_start_key):
        visit(root, "", "")
    return out


def _score(record: Record) -> Mapping[str, Any] | None:
    """The attributes of a score span (see :mod:`clew.tracer.evaluation`), else None."""
    attrs = record.get("attributes")
    return attrs if isinstance(attrs, Mapping) and a.CLEW_SCORE_NAME in attrs else None


def _score_row(prefix: str, record: Record, attrs: Mapping[str, Any]) -> list[str]:
    failed = record.get("status") == "error"
    value = _number(attrs.get(a.CLEW_SCORE_VALUE))
    text = f"★ {attrs[a.CLEW_SCORE_NAME]}" + (f" = {value:.4g}" if value is not None else "")
    reason = attrs.get(a.CLEW_SCORE_REASON)
    detail = _clip(str(record.get("error") or "error"), _MAX_ERROR) if failed else ""
    if reason and not failed:
        detail = _clip(f"“{reason}”", _MAX_ERROR)
    source = attrs.get(a.CLEW_SCORE_SOURCE)
    return [
        prefix + text,
        "",
        _FAILED if failed else _OK,
        str(source) if source else "",
        "",
        "",
        detail,
    ]


def _row(prefix: str, record: Record) -> list[str]:
    score = _score(record)
    if score is not None:
        return _score_row(prefix, record, score)
    failed = record.get("status") == "error"
    model = record.get("model")
    return [
        prefix + _clip(str(record.get("name") or "?"), _MAX_NAME),
        format_duration(_number(record.get("latency"))),
        _FAILED if failed else _OK,
        str(model) if model else "",
        format_tokens(record.get("input_tokens"), record.get("output_tokens")),
        format_cost(_number(record.get("cost"))),
        _clip(str(record.get("error") or "error"), _MAX_ERROR) if failed else "",
    ]


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i in (1, 4, 5) else cell.ljust(widths[i])
            for i, cell in enumerate(row)
            if widths[i]
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def _render_one(root_trace_id: str, records: list[Record]) -> str:
    walked = _walk(records)
    head = walked[0][1]
    project = head.get("project_name")
    start = head.get("start_timestamp") or "?"
    title = f"trace {root_trace_id}" + (f" · {project}" if project else "") + f" · {start}"
    lines = [title, *_table([_row(prefix, record) for prefix, record in walked])]
    timed = [r for r in records if _score(r) is None]  # scores end after the trace: not timed
    starts = [t for r in timed if (t := _epoch(r.get("start_timestamp"))) is not None]
    ends = [t for r in timed if (t := _epoch(r.get("end_timestamp"))) is not None]
    wall = max(ends) - min(starts) if starts and ends else _number(head.get("latency"))
    errors = sum(1 for r in records if r.get("status") == "error")
    scores = sum(1 for r in records if _score(r) is not None)
    spans = len(records) - scores
    parts = [f"{spans} span{'s' if spans != 1 else ''}", format_duration(wall)]
    if scores:
        parts.append(f"{scores} score{'s' if scores != 1 else ''}")
    tokens = format_tokens(_sum(records, "input_tokens"), _sum(records, "output_tokens"))
    if tokens:
        parts.append(f"{tokens} tokens")
    cost = format_cost(_sum(records, "cost"))
    if cost:
        parts.append(cost)
    parts.append(f"{errors} error{'s' if errors != 1 else ''}" if errors else _OK)
    lines.append("total: " + " · ".join(parts))
    return "\n".join(lines)


def render_tree(records: Iterable[Record]) -> str:
    """A readable tree per trace: name, duration, status, model, tokens and cost per span.

    Spans are nested under their parent and ordered by start time (then execution order); a
    span whose parent is not among ``records`` is shown as a root. Each trace ends with a totals
    line (span count, wall time, tokens and cost summed over the trace, errors).

    Example:
        >>> print(render_tree(store.get_trace(root_trace_id)))  # doctest: +SKIP
        trace 0af76519-16cd-43dd-8448-eb211c80319c · support-bot · 2024-05-01T12:00:00+00:00
        answer                  1.23 s  ✓
        ├─ retrieve              120 ms  ✓
        └─ chat gpt-4o-mini     1.05 s  ✓  gpt-4o-mini  1,200 → 56  $0.0012
        total: 3 spans · 1.23 s · 1,200 → 56 tokens · $0.0012 · ✓

    Args:
        records: span records (:func:`clew.log_record.span_to_record`), of one or more
            traces, in any order.

    Returns:
        The text, traces separated by a blank line, oldest trace first; empty for no records.
    """
    by_trace: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        key = record.get("root_trace_id") or record.get("trace_id")
        by_trace[str(key)].append(record)
    ordered = sorted(by_trace.items(), key=lambda item: min(_start_key(r) for r in item[1]))
    return "\n\n".join(_render_one(root, group) for root, group in ordered)
