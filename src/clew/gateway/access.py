"""Which models a caller of ``clew serve`` may use, and ``GET /v1/models``.

Two lists can restrict the models: the server's (``CLEW_GATEWAY_MODELS``) and a key's
(``clew keys create --models``). An entry is a model (``gpt-4o-mini``: from any provider) or
``provider/model``. A request is checked on every model it may be served by (the requested one
and each fallback, after a deployment is resolved), before anything is sent: one not allowed is
a 403 naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clew.config import Config
from clew.errors import PermissionDeniedError
from clew.gateway.keys import GatewayKey
from clew.gateway.request import Plan
from clew.providers.pricing import catalogue
from clew.providers.wires import GATEWAY_PROVIDERS

__all__ = ["check", "listed"]


def allows(models: Sequence[str] | None, provider: str, model: str) -> bool:
    """Whether the list ``models`` (None: no list) lets ``model`` of ``provider`` through."""
    return models is None or model in models or f"{provider}/{model}" in models


def check(plan: Plan, key: GatewayKey | None, server: Sequence[str] | None) -> None:
    """Refuse the plan if any of its models is outside the server's or the key's list.

    Raises:
        PermissionDeniedError: naming the first model not allowed.
    """
    models = key.models if key is not None else None
    for candidate in plan.candidates:
        provider, model = candidate.provider, candidate.model
        if not allows(server, provider, model):
            raise PermissionDeniedError(
                f"this gateway does not serve {provider}/{model} (CLEW_GATEWAY_MODELS)",
                param="model",
            )
        if not allows(models, provider, model):
            assert key is not None
            raise PermissionDeniedError(
                f"key {key.name!r} may not use {provider}/{model}; it may use:"
                f" {', '.join(models or ())}",
                param="model",
            )


def _entry(model: str) -> dict[str, Any]:
    head, sep, _ = model.partition("/")
    owner = head if sep and head in GATEWAY_PROVIDERS else "openai"
    return {"id": model, "object": "model", "created": 0, "owned_by": owner}


def listed(config: Config, key: GatewayKey | None) -> dict[str, Any]:
    """``GET /v1/models``: the models this caller may use, in OpenAI's list shape.

    With a server or key list, its entries (both: the key's that the server's lets through);
    else every model genai-prices lists for each provider the server has a key or an address
    for, as ``provider/model``.
    """
    server = config.gateway.models
    own = key.models if key is not None else None
    if server is not None or own is not None:
        entries = [m for m in (own if own is not None else server or ()) if _through(server, m)]
    else:
        entries = [
            f"{provider}/{model}"
            for provider in GATEWAY_PROVIDERS
            if (settings := config.providers.get(provider)) is not None
            and (settings.api_key is not None or settings.base_url is not None)
            for model in catalogue(provider)
        ]
    return {"object": "list", "data": [_entry(m) for m in entries]}


def _through(server: Sequence[str] | None, entry: str) -> bool:
    """Whether a key's entry is within the server's list."""
    if server is None or entry in server:
        return True
    head, sep, tail = entry.partition("/")
    return bool(sep) and head in GATEWAY_PROVIDERS and tail in server
