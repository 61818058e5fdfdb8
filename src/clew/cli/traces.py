"""``clew traces`` and ``clew show``: read the local trace store."""

from __future__ import annotations

import argparse
import json
import re

from clew.cli.common import (
    MAX_NAME,
    Subcommands,
    clip,
    local_time,
    positive_int,
    store_options,
    store_path,
    table,
)
from clew.render import format_cost, format_duration, format_tokens, render_tree
from clew.store.sqlite import TraceStore

__all__ = ["add_show", "add_traces", "score_filter"]


def add_traces(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "traces",
        parents=[store_options()],
        help="list the latest traces",
        description="List the latest root traces in the local store, newest first, with span"
        " count, status, latency, and tokens and cost summed over each trace.",
    )
    parser.add_argument("--limit", type=positive_int, default=20, metavar="N")
    parser.add_argument("--tag", metavar="T", help="only traces with a span carrying this tag")
    parser.add_argument("--user", metavar="U", help="only traces for this end_user_identifier")
    parser.add_argument("--session", metavar="S", help="only traces in this session_id")
    parser.add_argument(
        "--status", choices=("error", "success"), help="only failed or only clean traces"
    )
    parser.add_argument(
        "--score",
        type=score_filter,
        metavar="NAME[OP VALUE]",
        help="only traces with a score NAME, or one that compares so: 'accuracy<0.5'"
        " (OP: < <= > >= =)",
    )
    parser.set_defaults(handler=_traces)


_SCORE_FILTER = re.compile(r"\s*([^<>=\s][^<>=]*?)\s*(?:(<=|>=|<|>|=)\s*(\S+)\s*)?")


def score_filter(text: str) -> tuple[str, str | None, float | None]:
    found = _SCORE_FILTER.fullmatch(text)
    if found is None:
        raise argparse.ArgumentTypeError(
            f"expected NAME or NAME<VALUE (such as accuracy<0.5), got {text!r}"
        )
    name, op, value = found.groups()
    if op is None:
        return name, None, None
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} in --score {text!r} is not a number") from None
    return name, op, number


def _traces(args: argparse.Namespace) -> int:
    path = store_path(args.store)
    traces = TraceStore(path).list_traces(
        limit=args.limit,
        tag=args.tag,
        user=args.user,
        session=args.session,
        status=args.status,
        score=args.score,
    )
    if args.json:
        print(json.dumps(traces, indent=2, ensure_ascii=False))
        return 0
    if not traces:
        filters = (args.tag, args.user, args.session, args.status, args.score)
        filtered = any(v is not None for v in filters)
        print(f"No traces {'match these filters ' if filtered else ''}in {path}.")
        return 0
    rows = [
        [
            local_time(t["start_timestamp"]),
            t["root_trace_id"],
            clip(str(t["name"]), MAX_NAME),
            str(t["span_count"]),
            "✗ error" if t["status"] == "error" else "✓ ok",
            format_duration(t["latency"]),
            format_tokens(t["input_tokens"], t["output_tokens"]),
            format_cost(t["cost"]),
            _scores_text(t["scores"]),
        ]
        for t in traces
    ]
    header = (
        "START",
        "ROOT TRACE ID",
        "NAME",
        "SPANS",
        "STATUS",
        "LATENCY",
        "TOKENS",
        "COST",
        "SCORES",
    )
    print(table(header, rows, right={3, 5, 6, 7}))
    return 0


def _scores_text(scores: dict[str, float]) -> str:
    return clip(" ".join(f"{name}={value:.2f}" for name, value in scores.items()), 40) or "-"


# --- clew show -------------------------------------------------------------------------------


def add_show(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "show",
        parents=[store_options()],
        help="show one trace as a tree",
        description="Show every span of one trace as a tree with durations, status, tokens"
        " and cost. The id may be given without dashes, or as a unique prefix of 8+ digits.",
    )
    parser.add_argument("root_trace_id", metavar="ROOT_TRACE_ID")
    parser.set_defaults(handler=_show)


def _show(args: argparse.Namespace) -> int:
    records = TraceStore(store_path(args.store)).get_trace(args.root_trace_id)
    if args.json:
        print(json.dumps(records, indent=2, ensure_ascii=False))
    else:
        print(render_tree(records))
    return 0
