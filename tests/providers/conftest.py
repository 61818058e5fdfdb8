"""Fixtures: the fake LLM server, instrumented SDK clients, and span helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from anthropic import Anthropic, AsyncAnthropic
from openai import AsyncOpenAI, OpenAI

from clew.providers import instrument_anthropic, instrument_openai
from clew.testing.llm_server import FakeLLMServer


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    """A fake OpenAI + Anthropic API on 127.0.0.1."""
    with FakeLLMServer() as fake:
        yield fake


@pytest.fixture
def traced() -> Iterator[None]:
    """Every OpenAI and Anthropic client is instrumented for the test."""
    with instrument_openai(), instrument_anthropic():
        yield


@pytest.fixture
def openai_client(server: FakeLLMServer, traced: None) -> Iterator[OpenAI]:
    """A real ``openai.OpenAI`` client talking to the fake server (no retries)."""
    with OpenAI(base_url=server.openai_base_url, api_key="sk-test-key", max_retries=0) as client:
        yield client


@pytest.fixture
async def async_openai_client(server: FakeLLMServer, traced: None) -> AsyncIterator[AsyncOpenAI]:
    """A real ``openai.AsyncOpenAI`` client talking to the fake server (no retries)."""
    async with AsyncOpenAI(
        base_url=server.openai_base_url, api_key="sk-test-key", max_retries=0
    ) as client:
        yield client


@pytest.fixture
def anthropic_client(server: FakeLLMServer, traced: None) -> Iterator[Anthropic]:
    """A real ``anthropic.Anthropic`` client talking to the fake server (no retries)."""
    with Anthropic(
        base_url=server.anthropic_base_url, api_key="sk-ant-test", max_retries=0
    ) as client:
        yield client


@pytest.fixture
async def async_anthropic_client(
    server: FakeLLMServer, traced: None
) -> AsyncIterator[AsyncAnthropic]:
    """A real ``anthropic.AsyncAnthropic`` client talking to the fake server."""
    async with AsyncAnthropic(
        base_url=server.anthropic_base_url, api_key="sk-ant-test", max_retries=0
    ) as client:
        yield client
