"""``clew ui``: the local trace viewer in a browser (:mod:`clew.ui`)."""

from __future__ import annotations

import argparse
import threading
import webbrowser

from clew.cli.common import Subcommands, store_path
from clew.config import load_config
from clew.errors import ClewError

__all__ = ["add_ui"]

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def add_ui(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "ui",
        help="look at the local traces in a browser (pip install 'clew[gateway]')",
        description="Serve the trace viewer over the local store: traces, a trace as a tree and"
        " a waterfall, LLM calls as conversations, sessions, a dashboard, experiments and"
        " datasets. Read-only; binding beyond loopback needs --token (or CLEW_UI_TOKEN).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=7777, help="port (7777)")
    parser.add_argument(
        "--store", metavar="PATH", help="the trace store (default: $CLEW_STORE, .clew/traces.db)"
    )
    parser.add_argument("--open", action="store_true", help="open the viewer in a browser")
    parser.add_argument("--token", help="the token a browser or script must give (CLEW_UI_TOKEN)")
    parser.add_argument(
        "--search-budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long one request searches the trace list before it answers with what it"
        " found, and the page goes on searching (0.08)",
    )
    parser.set_defaults(handler=_ui)


def _ui(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from clew.ui.api import create_app
    except ImportError:
        raise ClewError("clew ui needs the gateway extra: pip install 'clew[gateway]'") from None
    configured = load_config().ui_token
    token = args.token or (configured.get_secret_value() if configured is not None else None)
    if args.host not in _LOOPBACK and not token:
        raise ClewError(
            f"refusing to serve the viewer on {args.host} without a token: give --token (or set"
            " CLEW_UI_TOKEN), or bind to 127.0.0.1"
        )
    url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}/"
    print(f"clew ui: {url}" + (" (open it with ?token=<your token> once)" if token else ""))
    if args.open:
        link = f"{url}?token={token}" if token else url
        threading.Timer(1.0, webbrowser.open, (link,)).start()
    if args.search_budget is not None and args.search_budget < 0:
        raise ClewError(f"--search-budget must be 0 or more seconds, got {args.search_budget}")
    app = create_app(store_path(args.store), token, search_budget=args.search_budget)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
