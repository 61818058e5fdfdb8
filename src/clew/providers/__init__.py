"""LLM provider instrumentation: OpenAI and Anthropic SDK calls become spans with tokens and cost.

Example:
    >>> import clew
    >>> handle = clew.instrument()  # doctest: +SKIP  (every provider whose SDK is installed)
    >>> handle.uninstrument()  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import TypeVar

from clew.errors import internal_error
from clew.providers.patching import Instrumentation, instrument_sdk
from clew.providers.pricing import Cost, cost_of
from clew.providers.registry import PROVIDERS, provider_for_url
from clew.providers.usage import Usage

__all__ = [
    "Cost",
    "Instrumentation",
    "Usage",
    "cost_of",
    "instrument",
    "instrument_anthropic",
    "instrument_openai",
    "provider_for_url",
    "wrap_openai_client",
]

logger = logging.getLogger(__name__)
_Client = TypeVar("_Client")


def instrument_openai(client: object = None) -> Instrumentation:
    """Trace OpenAI calls; see :func:`clew.providers.openai.instrument_openai`."""
    from clew.providers.openai import instrument_openai as instrument

    return instrument(client)


def instrument_anthropic(client: object = None) -> Instrumentation:
    """Trace Anthropic calls; see :func:`clew.providers.anthropic.instrument_anthropic`."""
    from clew.providers.anthropic import instrument_anthropic as instrument

    return instrument(client)


def wrap_openai_client(client: _Client) -> _Client:
    """Trace one OpenAI client and return it (Parea's name for ``instrument_openai(client)``).

    Example:
        >>> client = clew.wrap_openai_client(OpenAI())  # doctest: +SKIP
    """
    instrument_openai(client)
    return client


def instrument() -> Instrumentation:
    """Trace every provider whose SDK is installed (``openai``, ``anthropic``).

    Returns:
        One handle that undoes them all (also a context manager).

    Example:
        >>> import clew
        >>> with clew.instrument():  # doctest: +SKIP
        ...     ...
    """
    parts = []
    for provider in PROVIDERS.values():
        if provider.sdk is None or importlib.util.find_spec(provider.name) is None:
            continue
        try:
            parts.append(instrument_sdk(importlib.import_module(provider.sdk).SDK))
        except Exception:
            internal_error(logger, "instrumenting %s failed", provider.name)
    return Instrumentation("+".join(p.name for p in parts) or "nothing", parts=parts)
