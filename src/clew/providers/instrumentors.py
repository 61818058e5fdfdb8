"""OpenTelemetry ``BaseInstrumentor``s, so ``opentelemetry-instrument python app.py`` traces
OpenAI and Anthropic calls the clew way.

They are registered under the ``opentelemetry_instrumentor`` entry point group. They share
clew's instrumentation (and its handle), so turning on both ``clew.instrument_openai()`` and
the ``OpenAIInstrumentor`` still gives one span per call.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from clew.providers.engine import Instrumentation

__all__ = ["AnthropicInstrumentor", "OpenAIInstrumentor"]


class _ClewInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    _handle: Instrumentation | None = None

    def _instrument(self, **kwargs: Any) -> None:
        self._handle = self._start()

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._handle is not None:
            self._handle.uninstrument()
            self._handle = None

    def _start(self) -> Instrumentation:
        raise NotImplementedError


class OpenAIInstrumentor(_ClewInstrumentor):
    """Trace every ``openai`` client (``OpenAIInstrumentor().instrument()``)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        """The SDK versions this instrumentor supports."""
        return ("openai >= 1.40",)

    def _start(self) -> Instrumentation:
        from clew.providers.openai import instrument_openai

        return instrument_openai()


class AnthropicInstrumentor(_ClewInstrumentor):
    """Trace every ``anthropic`` client (``AnthropicInstrumentor().instrument()``)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        """The SDK versions this instrumentor supports."""
        return ("anthropic >= 0.30",)

    def _start(self) -> Instrumentation:
        from clew.providers.anthropic import instrument_anthropic

        return instrument_anthropic()
