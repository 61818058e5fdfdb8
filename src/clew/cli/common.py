"""What the ``clew`` commands share: where the store is, argument types, the table printer."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeAlias

from clew.config import load_config

__all__ = [
    "MAX_NAME",
    "CommandAdder",
    "Subcommands",
    "clip",
    "local_time",
    "positive_int",
    "since",
    "store_options",
    "store_path",
    "table",
    "usage",
]

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What ``ArgumentParser.add_subparsers`` returns: call ``add_parser`` on it."""
CommandAdder: TypeAlias = Callable[[Subcommands], None]
"""Adds one sub-command (with ``handler`` set) to the ``clew`` parser."""

MAX_NAME = 40


def store_path(given: str | None) -> Path:
    """The store to read: ``--store``, else ``$CLEW_STORE``, else ``.clew/traces.db``."""
    if given:
        return Path(given)
    return load_config().store_path


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def store_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--store",
        metavar="PATH",
        help="the trace store file (default: $CLEW_STORE, else .clew/traces.db)",
    )
    options.add_argument("--json", action="store_true", help="print JSON instead of text")
    return options


def local_time(timestamp: str | None) -> str:
    if not timestamp:
        return "-"
    try:
        return datetime.fromisoformat(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return timestamp


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table(header: Sequence[str], rows: list[list[str]], right: set[int]) -> str:
    everything = [list(header), *rows]
    widths = [max(len(row[i]) for row in everything) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in everything
    ]
    return "\n".join(lines)


def usage(parser: argparse.ArgumentParser, choices: str) -> int:
    """What a command with sub-commands does when given none: its usage, and exit code 2."""
    parser.print_usage(sys.stderr)
    print(f"clew: error: choose {choices}", file=sys.stderr)
    return 2


_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def since(text: str) -> datetime | timedelta:
    """``--since``: a duration back from now (``30m``, ``12h``, ``7d``, also ``s`` and ``w``)
    or an ISO date or time (naive: local time).

    Raises:
        argparse.ArgumentTypeError: it is neither.
    """
    text = text.strip()
    if duration := _DURATION.fullmatch(text):
        return timedelta(**{_UNITS[duration[2]]: int(duration[1])})
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO date or time (2024-05-01, 2024-05-01T09:30) or a duration"
            f" (30m, 12h, 7d), got {text!r}"
        ) from None
