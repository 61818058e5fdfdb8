"""Which :class:`~clew.providers.wire.Wire` speaks to each provider of the seed's
``ProviderName``, imported when first asked for."""

from __future__ import annotations

import importlib

from clew.providers.wire import Wire

__all__ = ["GATEWAY_PROVIDERS", "wire_for"]

_WIRES: dict[str, tuple[str, str]] = {
    "openai": ("clew.providers.openai_http", "OPENAI_WIRE"),
    "azure": ("clew.providers.openai_http", "OPENAI_WIRE"),
    "openrouter": ("clew.providers.openai_http", "OPENAI_WIRE"),
    "groq": ("clew.providers.openai_http", "OPENAI_WIRE"),
    "fireworks": ("clew.providers.openai_http", "OPENAI_WIRE"),
    "anyscale": ("clew.providers.openai_http", "OPENAI_WIRE"),
    "mistral": ("clew.providers.openai_http", "OPENAI_WIRE"),
    "litellm": ("clew.providers.openai_http", "OPENAI_WIRE"),
    "anthropic": ("clew.providers.anthropic_http", "ANTHROPIC_WIRE"),
    "cohere": ("clew.providers.cohere", "COHERE_WIRE"),
    "vertexai": ("clew.providers.gemini", "GEMINI_WIRE"),
    "aws_bedrock": ("clew.providers.bedrock", "BEDROCK_WIRE"),
}

GATEWAY_PROVIDERS: tuple[str, ...] = tuple(_WIRES)
"""The seed's ``ProviderName`` values: the providers :func:`clew.completion` calls."""


def wire_for(provider: str) -> Wire:
    """The wire of ``provider`` (one of :data:`GATEWAY_PROVIDERS`).

    Raises:
        KeyError: not a gateway provider.
    """
    wire = _loaded.get(provider)
    if wire is None:
        module, name = _WIRES[provider]
        wire = _loaded[provider] = getattr(importlib.import_module(module), name)
    return wire


_loaded: dict[str, Wire] = {}
