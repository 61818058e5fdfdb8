"""OpenTelemetry ``BaseInstrumentor``s, so ``opentelemetry-instrument python app.py`` traces
OpenAI and Anthropic calls the clew way.

They are registered under the ``opentelemetry_instrumentor`` entry point group. They share
clew's instrumentation (and its handle), so turning on both ``clew.instrument_openai()`` and
the ``OpenAIInstrumentor`` still gives one span per call.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from typing import Any, ClassVar

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from clew.providers.patching import Instrumentation, Sdk, instrument_sdk

__all__ = ["AnthropicInstrumentor", "OpenAIInstrumentor"]


class _ClewInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    sdk_module: ClassVar[str]  # the module whose SDK this instrumentor turns on
    _handle: Instrumentation | None = None

    def _sdk(self) -> Sdk:
        sdk: Sdk = importlib.import_module(self.sdk_module).SDK
        return sdk

    def instrumentation_dependencies(self) -> Collection[str]:
        """The SDK versions this instrumentor supports."""
        return (self._sdk().requirement,)

    def _instrument(self, **kwargs: Any) -> None:
        self._handle = instrument_sdk(self._sdk())

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._handle is not None:
            self._handle.uninstrument()
            self._handle = None


class OpenAIInstrumentor(_ClewInstrumentor):
    """Trace every ``openai`` client (``OpenAIInstrumentor().instrument()``)."""

    sdk_module = "clew.providers.openai"


class AnthropicInstrumentor(_ClewInstrumentor):
    """Trace every ``anthropic`` client (``AnthropicInstrumentor().instrument()``)."""

    sdk_module = "clew.providers.anthropic"
