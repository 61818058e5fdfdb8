"""``clew experiments list | show NAME|ID | compare A B``: stored experiment runs, as tables,
JSON (``--json``) or CSV (``--csv``)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from typing import Any

from clew.cli.common import (
    Subcommands,
    clip,
    local_time,
    store_options,
    store_path,
    table,
    usage,
)

__all__ = ["add_experiments"]


def _formats() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False, parents=[store_options()])
    options.add_argument("--csv", action="store_true", help="print CSV instead of text")
    return options


def add_experiments(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "experiments",
        help="list, show and compare experiment runs",
        description="Experiment runs kept in the local store by clew.experiment(...).run().",
    )
    parser.set_defaults(handler=lambda _: usage(parser, "list, show or compare"))
    actions = parser.add_subparsers(title="commands", metavar="COMMAND")
    listing = actions.add_parser(
        "list",
        parents=[_formats()],
        help="list the runs, newest first",
        description="List the runs: name, id, when, status, rows, errors, each eval's mean, cost.",
    )
    listing.set_defaults(handler=_list)
    show = actions.add_parser(
        "show",
        parents=[_formats()],
        help="show a run: its summary and rows",
        description="Show a run (the latest of NAME, or the run whose id starts with ID): the"
        " summary per eval, then every row with its output, scores, error and trace id.",
    )
    show.add_argument("run", metavar="NAME|ID")
    show.set_defaults(handler=_show)
    compare = actions.add_parser(
        "compare",
        parents=[_formats()],
        help="compare two runs",
        description="Compare run B with run A: per eval the means, their difference (B - A)"
        " with a 95%% paired bootstrap interval, then the rows that got worse, first.",
    )
    compare.add_argument("a", metavar="A")
    compare.add_argument("b", metavar="B")
    compare.add_argument("--rows", type=int, default=10, metavar="N", help="rows to show (10)")
    compare.set_defaults(handler=_compare)


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    writer = csv.writer(sys.stdout)
    writer.writerow(header)
    writer.writerows(rows)


def _text(value: Any, limit: int = 40) -> str:
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return clip(" ".join(str(shown).split()), limit)


def _means(evals: dict[str, Any]) -> str:
    return " ".join(f"{name}={e.mean:.3f}" for name, e in evals.items()) or "-"


def _list(args: argparse.Namespace) -> int:
    from clew.evals import results

    runs = results.list(store=store_path(args.store))
    if args.json:
        print(json.dumps([run.to_dict() for run in runs], indent=2, ensure_ascii=False))
        return 0
    header = ("NAME", "ID", "CREATED", "STATUS", "ROWS", "ERRORS", "SCORES", "COST")
    rows = [
        [
            run.name,
            run.uuid[:8],
            local_time(run.created),
            run.status,
            str(run.summary.rows),
            str(run.summary.errors),
            _means(run.summary.evals),
            f"${run.summary.cost:.6f}" if run.summary.cost is not None else "-",
        ]
        for run in runs
    ]
    if args.csv:
        _csv(header, rows)
    elif not runs:
        print("No experiments yet. Run one with clew.experiment(name, data, func).run().")
    else:
        print(table(header, rows, {4, 5}))
    return 0


def _show(args: argparse.Namespace) -> int:
    from clew.evals import results

    run = results.load(args.run, store=store_path(args.store))
    if args.json:
        print(json.dumps(run.to_dict(), indent=2, ensure_ascii=False))
        return 0
    names = list(run.summary.evals)
    header = ("ROW", "TRIAL", *names, "OUTPUT", "ERROR", "TRACE ID")
    rows = [
        [
            str(row.index),
            str(row.trial),
            *(f"{row.scores[n]:.3f}" if n in row.scores else "-" for n in names),
            _text(row.output),
            _text(row.error or "", 30),
            row.trace_id or "",
        ]
        for row in run.rows
    ]
    if args.csv:
        _csv(header, rows)
        return 0
    dataset = f" · dataset {run.dataset} v{run.dataset_version}" if run.dataset else ""
    print(f"experiment {run.name} · {run.uuid} · {local_time(run.created)} · {run.status}{dataset}")
    print(run.summary)
    print()
    print(table(header, rows, set(range(2, 2 + len(names)))))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from clew.evals import results
    from clew.evals.compare import compare

    path = store_path(args.store)
    found = compare(results.load(args.a, store=path), results.load(args.b, store=path))
    if args.json:
        out = {
            "a": {"name": found.a.name, "uuid": found.a.uuid},
            "b": {"name": found.b.name, "uuid": found.b.uuid},
            "evals": [{**e.__dict__, "significant": e.significant} for e in found.evals],
            "rows": [row.__dict__ for row in found.rows],
        }
        print(json.dumps(out, indent=2, ensure_ascii=False, default=str))
        return 0
    header = ("EVAL", "A", "B", "B - A", "95% CI", "PAIRS", "")
    evals = [
        [
            e.name,
            f"{e.mean_a:.4f}",
            f"{e.mean_b:.4f}",
            f"{e.diff:+.4f}",
            f"[{e.ci_low:+.4f}, {e.ci_high:+.4f}]",
            str(e.pairs),
            ("better" if e.diff > 0 else "worse") if e.significant else "",
        ]
        for e in found.evals
    ]
    if args.csv:
        _csv((*header[:-1], "SIGNIFICANT"), evals)
        return 0
    print(f"B {found.b.name} ({found.b.uuid[:8]}) against A {found.a.name} ({found.a.uuid[:8]})")
    print(table(header, evals, {1, 2, 3, 5}) if evals else "no score both runs have")
    worse = found.worse[: args.rows]
    if worse:
        print(f"\nrows that got worse ({len(found.worse)}), worst first:")
        rows = [
            [
                str(r.index),
                f"{r.diff:+.3f}",
                _text(r.inputs, 30),
                _text(r.output_a, 30),
                _text(r.output_b, 30),
            ]
            for r in worse
        ]
        print(table(("ROW", "B - A", "INPUTS", "OUTPUT A", "OUTPUT B"), rows, {1}))
    return 0
