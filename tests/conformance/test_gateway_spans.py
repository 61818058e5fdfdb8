"""The LLM spans of the completion API conform too, for every provider it calls.

Each provider is called through :func:`clew.completion` and :func:`clew.stream_completion`
against the fake LLM server, with and without functions. The spans are checked against the
vendored conventions without a recorded call beside them (keys, types, well-known values, JSON
schemas, required attributes). Their names are Parea's (``llm-{provider}``), not
``{operation} {model}``: the seed's log names are kept where users meet them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from genai_semconv import violations

import clew
from clew.demo import GATEWAY_MODELS as MODELS
from clew.testing import capture_spans
from clew.testing.llm_server import FakeLLMServer

FUNCTION = {
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}

KNOWN_GAPS = {
    # The AWS Bedrock refinement makes the guardrail id required, even for a request that
    # names no guardrail (the completion API has no way to name one).
    "aws.bedrock.guardrail.id: required, missing",
}


@pytest.fixture(scope="module")
def configured() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        clew.configure(
            providers=server.providers(),
            gateway={"timeout": 10.0, "max_retries": 0, "cache_url": None},
        )
        try:
            yield server
        finally:
            clew.configure(providers={}, gateway={})


def _request(provider: str, functions: bool) -> dict[str, Any]:
    configuration: dict[str, Any] = {
        "provider": provider,
        "model": MODELS[provider],
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is the weather in Paris?"},
        ],
        "model_params": {"temp": 0, "max_length": 200},
    }
    if functions:
        configuration["functions"] = [FUNCTION]
    return {"llm_configuration": configuration}


@pytest.mark.parametrize("functions", [False, True], ids=["text", "functions"])
@pytest.mark.parametrize("provider", sorted(MODELS))
def test_the_spans_of_completions_conform(
    configured: FakeLLMServer, provider: str, functions: bool
) -> None:
    with capture_spans() as captured:
        clew.completion(_request(provider, functions))
        with clew.stream_completion(_request(provider, functions)) as stream:
            "".join(stream)
    spans = [s for s in captured.spans if "gen_ai.operation.name" in (s.attributes or {})]
    assert len(spans) == 2
    for span in spans:
        found = violations(dict(span.attributes or {}), kind=span.kind.name)
        assert set(found) - KNOWN_GAPS == set(), span.name
