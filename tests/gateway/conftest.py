"""Fixtures for the completion gateway: the fake LLM server configured as every provider."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import clew
from clew.testing import SpanCapture, capture_spans
from clew.testing.llm_server import FakeLLMServer


def providers_at(server: FakeLLMServer) -> dict[str, dict[str, str]]:
    """Every provider of the gateway pointed at ``server``, each with its own test key."""
    return {
        name: {**settings, "api_key": f"key-{name}"}
        for name, settings in server.providers().items()
    }


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    """A fake LLM server configured as every gateway provider (quick deadline and retries)."""
    with FakeLLMServer() as fake:
        clew.configure(
            providers=providers_at(fake),
            gateway={"timeout": 10.0, "max_retries": 2, "cache_url": None},
        )
        try:
            yield fake
        finally:
            clew.configure(providers={}, gateway={})


@pytest.fixture
def spans() -> Iterator[SpanCapture]:
    """The spans the test makes."""
    with capture_spans() as capture:
        yield capture
