"""The gateway's commands: ``clew deployments``, ``clew keys`` and ``clew serve``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from clew.cli.common import (
    Subcommands,
    local_time,
    positive_int,
    store_options,
    store_path,
    table,
    usage,
)
from clew.config import hand_settings_file, load_config
from clew.errors import ClewError
from clew.gateway import keys

__all__ = ["add_deployments", "add_keys", "add_serve"]


def add_deployments(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "deployments",
        help="add, list and show deployed prompts",
        description="Deployed prompts: named, versioned prompts in the local store that"
        " clew.completion(deployment_id=...) calls. Adding an id that exists stores a new"
        " version; a completion uses the latest.",
    )
    parser.set_defaults(handler=lambda _: usage(parser, "add, list or show"))
    actions = parser.add_subparsers(title="commands", metavar="COMMAND")
    add = actions.add_parser(
        "add",
        parents=[store_options()],
        help="add a deployment (a new version if its id exists)",
        description="Add the deployment in FILE (YAML, or JSON if the name ends in .json):"
        " id, provider, model, model_params, messages (with {{variable}} placeholders),"
        " functions, function_call, fallbacks.",
    )
    add.add_argument("file", metavar="FILE")
    add.set_defaults(handler=_deployments_add)
    listing = actions.add_parser(
        "list",
        parents=[store_options()],
        help="list the deployments",
        description="List the deployments with their latest version.",
    )
    listing.set_defaults(handler=_deployments_list)
    show = actions.add_parser(
        "show",
        parents=[store_options()],
        help="show a deployment",
        description="Show a deployment (its latest version, or --version N) as YAML that"
        " `clew deployments add` takes back, with the variables its messages use.",
    )
    show.add_argument("id", metavar="ID")
    show.add_argument("--version", type=positive_int, metavar="N", help="default: the latest")
    show.set_defaults(handler=_deployments_show)


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
            local_time(d.created_at),
        ]
        for d in found
    ]
    print(table(("ID", "VERSION", "VERSIONS", "PROVIDER", "MODEL", "CREATED"), rows, {1, 2}))
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


# --- clew serve ------------------------------------------------------------------------------


_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def add_serve(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the completion gateway over HTTP (pip install 'clew[gateway]')",
        description="Serve clew.completion over HTTP: the Parea completion routes and the"
        " OpenAI-style /v1 routes, on uvicorn. Binding to anything but loopback needs gateway"
        " keys (CLEW_GATEWAY_KEYS or `clew keys create`).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (8000)")
    parser.add_argument("--workers", type=positive_int, default=1, help="worker processes (1)")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="settings as clew.configure takes them (YAML, or JSON if the name ends in .json):"
        " providers, gateway, exporter, store_path, project …; over the environment's",
    )
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError:
        raise ClewError("clew serve needs the gateway extra: pip install 'clew[gateway]'") from None
    overrides: dict[str, Any] = {}
    if args.config:
        overrides = hand_settings_file(args.config)
    config = load_config(**overrides)
    if args.host not in _LOOPBACK and not (
        config.gateway.key_list() or keys.list(store=config.store_path)
    ):
        raise ClewError(
            f"refusing to serve on {args.host} without gateway keys: set CLEW_GATEWAY_KEYS"
            " (comma-separated) or make one with `clew keys create NAME`, or bind to 127.0.0.1"
        )
    uvicorn.run(
        "clew.gateway.server:app_factory",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
    )
    return 0


# --- clew keys -------------------------------------------------------------------------------


def add_keys(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "keys",
        help="create, list and revoke gateway keys",
        description="Gateway keys for clew serve, each with a name and limits, kept hashed in"
        " the local store (the server reads CLEW_STORE).",
    )
    parser.set_defaults(handler=lambda _: usage(parser, "create, list or revoke"))
    actions = parser.add_subparsers(title="commands", metavar="COMMAND")
    create = actions.add_parser(
        "create",
        parents=[store_options()],
        help="make a key (printed once)",
        description="Make a key named NAME and print it: it is shown this once, then only its"
        " hash is kept. Limits are per key; over one, a request is a 429 with Retry-After.",
    )
    create.add_argument("name", metavar="NAME")
    create.add_argument("--rpm", type=positive_int, metavar="N", help="requests per minute")
    create.add_argument(
        "--tpm", type=positive_int, metavar="N", help="tokens (input and output) per minute"
    )
    create.add_argument("--budget-usd-per-day", type=float, metavar="X", help="dollars per UTC day")
    create.add_argument(
        "--models",
        metavar="A,B",
        help="the models it may use: gpt-4o-mini (any provider) or openai/gpt-4o-mini",
    )
    create.set_defaults(handler=_keys_create)
    listing = actions.add_parser(
        "list",
        parents=[store_options()],
        help="list the keys in use",
        description="List the keys in use: name, the key's first characters, limits, created.",
    )
    listing.set_defaults(handler=_keys_list)
    revoke = actions.add_parser(
        "revoke",
        parents=[store_options()],
        help="revoke a key",
        description="Revoke the key named NAME: servers refuse it within a second.",
    )
    revoke.add_argument("name", metavar="NAME")
    revoke.set_defaults(handler=_keys_revoke)


def _keys_create(args: argparse.Namespace) -> int:
    models = args.models.split(",") if args.models is not None else None
    key, record = keys.create(
        args.name,
        rpm=args.rpm,
        tpm=args.tpm,
        budget_usd_per_day=args.budget_usd_per_day,
        models=models,
        store=store_path(args.store),
    )
    if args.json:
        print(json.dumps({"name": record.name, "key": key, **record.limits()}, indent=2))
    else:
        print(f"created key {record.name!r}; it is shown this once, keep it now:")
        print(key)
    return 0


def _limits_text(record: keys.GatewayKey) -> str:
    shown = [
        f"{name}={','.join(value) if isinstance(value, list) else value}"
        for name, value in record.limits().items()
    ]
    return " ".join(shown) or "-"


def _keys_list(args: argparse.Namespace) -> int:
    path = store_path(args.store)
    found = keys.list(store=path)
    if args.json:
        listed = [
            {"name": k.name, "prefix": k.prefix, "created": k.created, **k.limits()} for k in found
        ]
        print(json.dumps(listed, indent=2))
        return 0
    if not found:
        print(f"No gateway keys in {path}. Make one with `clew keys create NAME`.")
        return 0
    rows = [[k.name, k.prefix + "…", _limits_text(k), local_time(_iso(k.created))] for k in found]
    print(table(("NAME", "KEY", "LIMITS", "CREATED"), rows, set()))
    return 0


def _iso(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, tz=UTC).isoformat()


def _keys_revoke(args: argparse.Namespace) -> int:
    if not keys.revoke(args.name, store=store_path(args.store)):
        raise ClewError(f"no key in use is named {args.name!r}; `clew keys list` shows them")
    if args.json:
        print(json.dumps({"revoked": args.name}))
    else:
        print(f"revoked key {args.name!r}")
    return 0
