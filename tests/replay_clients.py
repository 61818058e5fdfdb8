"""The real SDK client for a cassette's provider, pointed at a replay server (shared by tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anthropic
import openai

from clew.testing.llm_server import ReplayServer


@contextmanager
def replay_client(provider: str, server: ReplayServer, uri: str) -> Iterator[Any]:
    """The SDK client for ``provider``, pointed at ``server``.

    The local server speaks plain HTTP, so the clients skip loading the CA bundle (which
    costs ~30 ms per client and would dominate this module's run time).
    """
    if provider == "anthropic":
        with anthropic.Anthropic(
            base_url=server.anthropic_base_url,
            api_key="test",
            max_retries=0,
            http_client=anthropic.DefaultHttpxClient(verify=False),
        ) as client:
            yield client
    elif provider == "azure":
        with openai.AzureOpenAI(
            azure_endpoint=server.url,
            api_version=parse_qs(urlsplit(uri).query)["api-version"][0],
            api_key="test",
            max_retries=0,
            http_client=openai.DefaultHttpxClient(verify=False),
        ) as client:
            yield client
    else:
        with openai.OpenAI(
            base_url=server.openai_base_url,
            api_key="test",
            max_retries=0,
            http_client=openai.DefaultHttpxClient(verify=False),
        ) as client:
            yield client
