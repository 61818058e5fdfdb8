"""The ``clew`` command line.

``clew traces`` and ``clew show`` read the local trace store (:mod:`clew.cli.traces`);
``clew demo`` runs the demo; ``clew deployments``, ``clew keys`` and ``clew serve`` are the
gateway's (:mod:`clew.cli.gateway`).

Each command is a function that adds its sub-parser and sets ``handler`` on it; :data:`COMMANDS`
lists them. A handler takes the parsed arguments and returns the exit code; it raises
:class:`~clew.errors.ClewError` for a failure the user can fix, which :func:`main` prints on
stderr with exit code 1. Usage errors exit with 2, as argparse does.

To add a command (``demo``, ``serve``, ``ui`` …), write ``add_<name>(commands)`` and append
it to :data:`COMMANDS`; import heavy dependencies inside the handler, not at module level.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from contextlib import suppress

from clew.cli.common import CommandAdder, Subcommands, store_path
from clew.cli.datasets import add_datasets
from clew.cli.experiments import add_experiments
from clew.cli.gateway import add_deployments, add_keys, add_serve
from clew.cli.traces import add_show, add_traces
from clew.cli.ui import add_ui
from clew.errors import ClewError

__all__ = ["COMMANDS", "build_parser", "main", "store_path"]


# --- clew demo -------------------------------------------------------------------------------


def add_demo(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "demo",
        help="run a small traced LLM app (offline by default) and show its trace",
        description="Run a small traced LLM app through the real openai client against clew's"
        " fake server (or the real API with --live), store it, and print the trace tree.",
    )
    parser.add_argument(
        "--live", action="store_true", help="call the real OpenAI API (needs OPENAI_API_KEY)"
    )
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from clew.demo import run_demo

    return run_demo(["--live"] if args.live else [])


COMMANDS: list[CommandAdder] = [
    add_traces,
    add_show,
    add_demo,
    add_datasets,
    add_experiments,
    add_deployments,
    add_keys,
    add_serve,
    add_ui,
]
"""The sub-commands, in the order ``clew --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    """The ``clew`` argument parser with every command of :data:`COMMANDS`."""
    from clew import __version__

    parser = argparse.ArgumentParser(
        prog="clew", description="clew: OpenTelemetry-native tracing for LLM applications."
    )
    parser.add_argument("--version", action="version", version=f"clew {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add in COMMANDS:
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``clew`` with ``argv`` (default: the process's arguments); returns the exit code.

    Example:
        >>> main(["traces", "--limit", "5"])  # doctest: +SKIP
        0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (already printed)
        return exc.code if isinstance(exc.code, int) else 2
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_usage(sys.stderr)
        print("clew: error: choose a command; `clew --help` lists them", file=sys.stderr)
        return 2
    try:
        return handler(args)
    except ClewError as exc:
        print(f"clew: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `clew traces | head`: the reader left, nothing more to say
        _silence_stdout()
        return 1
    except KeyboardInterrupt:
        return 130


def _silence_stdout() -> None:
    # Python flushes stdout at exit; pointing it at /dev/null avoids a second BrokenPipeError.
    with suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
