"""The tracer tests' fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai import OpenAI

from clew.providers import instrument_openai
from clew.testing.llm_server import FakeLLMServer


@pytest.fixture(scope="module")
def client() -> Iterator[OpenAI]:
    """The real ``openai`` client, instrumented, against clew's fake LLM server."""
    with (
        FakeLLMServer() as server,
        instrument_openai(),
        OpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0) as openai,
    ):
        yield openai
