"""The ``clew`` command line: ``clew traces`` and ``clew show`` read the local trace store.

Each command is a function that adds its sub-parser and sets ``handler`` on it; :data:`COMMANDS`
lists them. A handler takes the parsed arguments and returns the exit code; it raises
:class:`~clew.errors.ClewError` for a failure the user can fix, which :func:`main` prints on
stderr with exit code 1. Usage errors exit with 2, as argparse does.

To add a command (``demo``, ``serve``, ``ui`` …), write ``_add_<name>(commands)`` and append
it to :data:`COMMANDS`; import heavy dependencies inside the handler, not at module level.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import TypeAlias

from clew.config import load_config
from clew.errors import ClewError
from clew.render import format_cost, format_duration, format_tokens, render_tree
from clew.store.sqlite import TraceStore

__all__ = ["COMMANDS", "build_parser", "main", "store_path"]

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What ``ArgumentParser.add_subparsers`` returns: call ``add_parser`` on it."""
CommandAdder: TypeAlias = Callable[[Subcommands], None]
"""Adds one sub-command (with ``handler`` set) to the ``clew`` parser."""

_MAX_NAME = 40


def store_path(given: str | None) -> Path:
    """The store to read: ``--store``, else ``$CLEW_STORE``, else ``.clew/traces.db``."""
    if given:
        return Path(given)
    return load_config().store_path


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _store_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--store",
        metavar="PATH",
        help="the trace store file (default: $CLEW_STORE, else .clew/traces.db)",
    )
    options.add_argument("--json", action="store_true", help="print JSON instead of text")
    return options


# --- clew traces -----------------------------------------------------------------------------


def _add_traces(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "traces",
        parents=[_store_options()],
        help="list the latest traces",
        description="List the latest root traces in the local store, newest first, with span"
        " count, status, latency, and tokens and cost summed over each trace.",
    )
    parser.add_argument("--limit", type=_positive_int, default=20, metavar="N")
    parser.add_argument("--tag", metavar="T", help="only traces with a span carrying this tag")
    parser.add_argument("--user", metavar="U", help="only traces for this end_user_identifier")
    parser.add_argument("--session", metavar="S", help="only traces in this session_id")
    parser.add_argument(
        "--status", choices=("error", "success"), help="only failed or only clean traces"
    )
    parser.set_defaults(handler=_traces)


def _local_time(timestamp: str | None) -> str:
    if not timestamp:
        return "-"
    try:
        return datetime.fromisoformat(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return timestamp


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(header: Sequence[str], rows: list[list[str]], right: set[int]) -> str:
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


def _traces(args: argparse.Namespace) -> int:
    path = store_path(args.store)
    traces = TraceStore(path).list_traces(
        limit=args.limit, tag=args.tag, user=args.user, session=args.session, status=args.status
    )
    if args.json:
        print(json.dumps(traces, indent=2, ensure_ascii=False))
        return 0
    if not traces:
        filtered = any(v is not None for v in (args.tag, args.user, args.session, args.status))
        print(f"No traces {'match these filters ' if filtered else ''}in {path}.")
        return 0
    rows = [
        [
            _local_time(t["start_timestamp"]),
            t["root_trace_id"],
            _clip(str(t["name"]), _MAX_NAME),
            str(t["span_count"]),
            "✗ error" if t["status"] == "error" else "✓ ok",
            format_duration(t["latency"]),
            format_tokens(t["input_tokens"], t["output_tokens"]),
            format_cost(t["cost"]),
        ]
        for t in traces
    ]
    header = ("START", "ROOT TRACE ID", "NAME", "SPANS", "STATUS", "LATENCY", "TOKENS", "COST")
    print(_table(header, rows, right={3, 5, 6, 7}))
    return 0


# --- clew show -------------------------------------------------------------------------------


def _add_show(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "show",
        parents=[_store_options()],
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


# --- clew deployments ------------------------------------------------------------------------


def _add_deployments(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "deployments",
        help="add, list and show deployed prompts",
        description="Deployed prompts: named, versioned prompts in the local store that"
        " clew.completion(deployment_id=...) calls. Adding an id that exists stores a new"
        " version; a completion uses the latest.",
    )
    parser.set_defaults(handler=lambda _: _deployments_usage(parser))
    actions = parser.add_subparsers(title="commands", metavar="COMMAND")
    add = actions.add_parser(
        "add",
        parents=[_store_options()],
        help="add a deployment (a new version if its id exists)",
        description="Add the deployment in FILE (YAML, or JSON if the name ends in .json):"
        " id, provider, model, model_params, messages (with {{variable}} placeholders),"
        " functions, function_call, fallbacks.",
    )
    add.add_argument("file", metavar="FILE")
    add.set_defaults(handler=_deployments_add)
    listing = actions.add_parser(
        "list",
        parents=[_store_options()],
        help="list the deployments",
        description="List the deployments with their latest version.",
    )
    listing.set_defaults(handler=_deployments_list)
    show = actions.add_parser(
        "show",
        parents=[_store_options()],
        help="show a deployment",
        description="Show a deployment (its latest version, or --version N) as YAML that"
        " `clew deployments add` takes back, with the variables its messages use.",
    )
    show.add_argument("id", metavar="ID")
    show.add_argument("--version", type=_positive_int, metavar="N", help="default: the latest")
    show.set_defaults(handler=_deployments_show)


def _deployments_usage(parser: argparse.ArgumentParser) -> int:
    parser.print_usage(sys.stderr)
    print("clew: error: choose add, list or show", file=sys.stderr)
    return 2


def _deployment_json(
    fields: dict[str, object], names: set[str], **extra: object
) -> dict[str, object]:
    """A deployment as ``show --json`` prints it: its fields and the variables it uses."""
    return {**fields, "variables": sorted(names), **extra}


def _deployments_add(args: argparse.Namespace) -> int:
    from clew.gateway import deployments
    from clew.gateway.templates import variables

    added = deployments.add(deployments.load_file(args.file), store=store_path(args.store))
    if args.json:
        fields = added.model_dump(mode="json", exclude_unset=True)
        shown = _deployment_json(fields, variables(added.messages))
        print(json.dumps(shown, indent=2, ensure_ascii=False))
    else:
        print(f"added {added.id} version {added.version}")
    return 0


def _deployments_list(args: argparse.Namespace) -> int:
    from clew.gateway import deployments
    from clew.gateway.templates import variables
    from clew.store import deployments as stored

    path = store_path(args.store)
    found = deployments.list(store=path)
    versions = {row.id: row.versions for row in stored.list(path)}
    if args.json:
        listed = [
            _deployment_json(
                d.model_dump(mode="json", exclude_unset=True),
                variables(d.messages),
                versions=versions.get(d.id, d.version),
            )
            for d in found
        ]
        print(json.dumps(listed, indent=2, ensure_ascii=False))
        return 0
    if not found:
        print(f"No deployments in {path}. Add one with `clew deployments add FILE`.")
        return 0
    rows = [
        [
            d.id,
            str(d.version),
            str(versions.get(d.id, d.version)),
            d.provider.value,
            d.model,
            _local_time(d.created_at),
        ]
        for d in found
    ]
    print(_table(("ID", "VERSION", "VERSIONS", "PROVIDER", "MODEL", "CREATED"), rows, {1, 2}))
    return 0


def _deployments_show(args: argparse.Namespace) -> int:
    from clew.gateway import deployments
    from clew.gateway.templates import variables

    deployment = deployments.get(args.id, args.version, store=store_path(args.store))
    fields = deployment.model_dump(mode="json", exclude_unset=True)
    names = variables(deployment.messages)
    if args.json:
        print(json.dumps(_deployment_json(fields, names), indent=2, ensure_ascii=False))
        return 0
    print(f"# deployment {deployment.id} version {deployment.version}")
    print(f"# variables: {', '.join(sorted(names)) if names else '(none)'}")
    print(_yaml_text(fields), end="")
    return 0


def _yaml_text(data: dict[str, object]) -> str:
    """YAML with multi-line text as ``|`` blocks (JSON when PyYAML is not installed)."""
    try:
        import yaml
    except ImportError:
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return yaml.dump(data, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100)


# --- entry point ----------------------------------------------------------------------------

# --- clew demo -------------------------------------------------------------------------------


def _add_demo(commands: Subcommands) -> None:
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


_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _add_serve(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the completion gateway over HTTP (pip install 'clew[gateway]')",
        description="Serve clew.completion over HTTP: the Parea completion routes, on uvicorn."
        " Binding to anything but loopback needs gateway keys (CLEW_GATEWAY_KEYS).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (8000)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (1)")
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError:
        raise ClewError("clew serve needs the gateway extra: pip install 'clew[gateway]'") from None
    if args.host not in _LOOPBACK and not load_config().gateway.key_list():
        raise ClewError(
            f"refusing to serve on {args.host} without gateway keys: set CLEW_GATEWAY_KEYS"
            " (comma-separated), or bind to 127.0.0.1"
        )
    if args.workers < 1:
        raise ClewError("--workers must be at least 1")
    uvicorn.run(
        "clew.gateway.server:app_factory",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
    )
    return 0


COMMANDS: list[CommandAdder] = [_add_traces, _add_show, _add_demo, _add_deployments, _add_serve]
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


if __name__ == "__main__":
    sys.exit(main())
