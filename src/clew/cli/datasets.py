"""``clew datasets``: create, list and show datasets, and make them from stored traces."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from clew.cli.common import (
    Subcommands,
    clip,
    local_time,
    positive_int,
    since,
    store_options,
    store_path,
    table,
    usage,
)

if TYPE_CHECKING:
    from clew.evals.datasets import Dataset

__all__ = ["add_datasets"]


def add_datasets(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "datasets",
        help="create, list and show datasets",
        description="Datasets: named, versioned rows (inputs, target, metadata) in the local"
        " store, for experiments. Creating a name that exists stores a new version.",
    )
    parser.set_defaults(handler=lambda _: usage(parser, "create, list, show or from-traces"))
    actions = parser.add_subparsers(title="commands", metavar="COMMAND")
    create = actions.add_parser(
        "create",
        parents=[store_options()],
        help="create a dataset from a file (a new version if its name exists)",
        description="Create dataset NAME from FILE: .jsonl (one row object per line), .json (a"
        ' list of row objects) or .csv (a header; a "target" column, a "metadata" column of'
        ' JSON objects, and a column per input). A row object is {"inputs": {...}, "target":'
        ' ..., "metadata": {...}}.',
    )
    create.add_argument("name", metavar="NAME")
    create.add_argument("file", metavar="FILE")
    create.set_defaults(handler=_create)
    listing = actions.add_parser(
        "list",
        parents=[store_options()],
        help="list the datasets",
        description="List the datasets with their latest version and its row count.",
    )
    listing.set_defaults(handler=_list)
    show = actions.add_parser(
        "show",
        parents=[store_options()],
        help="show the rows of a dataset",
        description="Show the rows of a dataset (its latest version, or --version N) with their"
        " index; --json prints them whole.",
    )
    show.add_argument("name", metavar="NAME")
    show.add_argument("--version", type=positive_int, metavar="N", help="default: the latest")
    show.set_defaults(handler=_show)
    traces = actions.add_parser(
        "from-traces",
        parents=[store_options()],
        help="create a dataset from stored traces",
        description="Create dataset NAME with a row per stored trace, oldest first: the root"
        " span's inputs, its output as the target, and the trace's root_trace_id and name as"
        " metadata. Traces without recorded inputs are left out and counted.",
    )
    traces.add_argument("name", metavar="NAME")
    traces.add_argument("--tag", metavar="T", help="only traces with a span carrying this tag")
    traces.add_argument("--user", metavar="U", help="only traces for this end_user_identifier")
    traces.add_argument(
        "--since",
        type=since,
        metavar="WHEN",
        help="only traces started since: an ISO date or time (2024-05-01, 2024-05-01T09:30,"
        " local time unless it has an offset) or a duration back from now (30m, 12h, 7d)",
    )
    traces.add_argument("--limit", type=positive_int, metavar="N", help="only the newest N rows")
    traces.set_defaults(handler=_from_traces)


def _summary(dataset: Dataset, **extra: object) -> dict[str, object]:
    return {
        "name": dataset.name,
        "version": dataset.version,
        "created": dataset.created,
        "row_count": len(dataset.rows),
        **extra,
    }


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _create(args: argparse.Namespace) -> int:
    from clew.evals import datasets

    rows = datasets.load_file(args.file)
    created = datasets.create(args.name, rows, store=store_path(args.store))
    if args.json:
        _print_json(_summary(created))
    else:
        print(f"created {created.name} version {created.version} ({_count(len(rows), 'row')})")
    return 0


def _list(args: argparse.Namespace) -> int:
    from clew.evals import datasets

    path = store_path(args.store)
    found = datasets.list(store=path)
    if args.json:
        _print_json([vars(d) for d in found])
        return 0
    if not found:
        print(f"No datasets in {path}. Create one with `clew datasets create NAME FILE`.")
        return 0
    rows = [
        [d.name, str(d.version), str(d.versions), str(d.row_count), local_time(d.created)]
        for d in found
    ]
    print(table(("NAME", "VERSION", "VERSIONS", "ROWS", "CREATED"), rows, {1, 2, 3}))
    return 0


def _cell(value: Any, width: int) -> str:
    """A field of a row as ``show`` prints it: JSON on one line, clipped to ``width``."""
    if value is None or value == {}:
        return "-"
    return clip(json.dumps(value, ensure_ascii=False), width)


def _show(args: argparse.Namespace) -> int:
    from clew.evals import datasets

    dataset = datasets.get(args.name, args.version, store=store_path(args.store))
    if args.json:
        rows = [
            {"index": i, "inputs": r.inputs, "target": r.target, "metadata": r.metadata}
            for i, r in enumerate(dataset.rows)
        ]
        _print_json(_summary(dataset, rows=rows))
        return 0
    print(
        f"# dataset {dataset.name} version {dataset.version}:"
        f" {_count(len(dataset.rows), 'row')}, created {local_time(dataset.created)}"
    )
    lines = [
        [str(i), _cell(r.inputs, 60), _cell(r.target, 40), _cell(r.metadata, 30)]
        for i, r in enumerate(dataset.rows)
    ]
    print(table(("INDEX", "INPUTS", "TARGET", "METADATA"), lines, {0}))
    return 0


def _from_traces(args: argparse.Namespace) -> int:
    from clew.evals import datasets

    path = store_path(args.store)
    found = datasets.rows_from_traces(
        tag=args.tag, user=args.user, since=args.since, limit=args.limit, store=path
    )
    created = datasets.create(args.name, found.rows, store=path)
    if args.json:
        _print_json(_summary(created, matched=found.matched, skipped=found.skipped))
        return 0
    print(
        f"created {created.name} version {created.version} ({_count(len(created.rows), 'row')})"
        f" from {_count(found.matched, 'matching trace')}"
    )
    if found.skipped:
        print(
            f"left out {_count(found.skipped, 'trace')} without recorded inputs on the root span"
            " (inputs omitted, content capture off, or the root span not ended yet)"
        )
    return 0
