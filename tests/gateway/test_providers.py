"""Every provider through clew.completion, generated combinations: provider x stream x cache x
omit rules x sampling. What must always hold:

- a stream's text and response equal the plain call's (content, tool calls, tokens, cost);
- tokens and cost equal genai-prices for the usage the server reported (0 cost on a cache hit,
  the saved cost on the span);
- one LLM span per call (none when sampled out), with one child per upstream attempt;
- an omitted canary reaches no exporter and no cache file in the clear; a captured one does.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clew
from clew.demo import GATEWAY_MODELS as MODELS
from clew.providers.pricing import cost_of
from clew.providers.usage import Usage
from clew.testing import capture_spans
from clew.testing.llm_server import FakeLLMServer
from gateway.conftest import providers_at

FUNCTIONS = [
    {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]


@pytest.fixture(scope="module")
def fake() -> Any:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def configured(fake: FakeLLMServer, tmp_path: Path) -> Any:
    clew.configure(
        providers=providers_at(fake),
        store_path=tmp_path / "traces.db",
        gateway={"timeout": 10.0, "max_retries": 1, "cache_url": None},
    )
    try:
        yield fake
    finally:
        clew.configure(providers={}, gateway={})


def _request(provider: str, question: str, tools: bool, **extra: Any) -> dict[str, Any]:
    configuration: dict[str, Any] = {
        "provider": provider,
        "model": MODELS[provider],
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": question},
        ],
        "model_params": {"temp": 0.2, "max_length": 200},
    }
    if tools:
        configuration["functions"] = FUNCTIONS
        configuration["function_call"] = {"name": "get_weather"}
    return {"llm_configuration": configuration, **extra}


def _expected_cost(provider: str, model: str, usage: Usage) -> float | None:
    return cost_of(usage, model, provider).amount


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    provider=st.sampled_from(sorted(MODELS)),
    tools=st.booleans(),
    omit=st.sampled_from(["none", "log_omit_inputs", "log_omit_outputs", "log_omit"]),
    cached=st.booleans(),
    sampled_out=st.booleans(),
)
def test_every_provider_every_combination(
    configured: FakeLLMServer,
    tmp_path: Path,
    provider: str,
    tools: bool,
    omit: str,
    cached: bool,
    sampled_out: bool,
) -> None:
    canary = f"canary-{uuid.uuid4().hex[:12]}"
    question = f"{canary} what is the weather in Paris?"
    extra: dict[str, Any] = {"cache": cached}
    if omit != "none":
        extra[omit] = True
    if sampled_out:
        extra["log_sample_rate"] = 0
    with capture_spans() as spans:
        plain = clew.completion(_request(provider, question, tools, **extra))
        with clew.stream_completion(_request(provider, question, tools, **extra)) as stream:
            text = "".join(stream)
    streamed = stream.response
    assert streamed is not None
    # the stream says what the plain call said (its text; tool calls are in the response)
    calls = [(c.name, c.arguments) for c in plain.tool_calls]
    assert [(c.name, c.arguments) for c in streamed.tool_calls] == calls
    if calls:  # content is the JSON of the calls (their ids are the server's, per request)
        assert [
            (c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in json.loads(streamed.content)
        ] == calls
    else:
        assert text == streamed.content == plain.content
    assert (streamed.input_tokens, streamed.output_tokens) == (
        plain.input_tokens,
        plain.output_tokens,
    )
    assert streamed.cache_hit is cached
    assert plain.cache_hit is False
    assert plain.provider == provider and plain.status == "success"
    if tools:
        assert plain.finish_reason == "tool_calls" and plain.tool_calls[0].name == "get_weather"
    else:
        assert canary in plain.content  # the fake server echoes the question
    # tokens and cost
    assert plain.total_tokens == plain.input_tokens + plain.output_tokens > 0
    if cached:
        assert streamed.cost == 0.0
    else:
        assert streamed.cost == pytest.approx(plain.cost) if plain.cost is not None else True
    records = spans.records()
    llm = [r for r in records if r["name"] == f"llm-{provider}"]
    attempts = [r for r in records if r["name"] == "upstream"]
    if sampled_out:
        assert records == []
    else:
        assert len(llm) == 2
        assert len(attempts) == (1 if cached else 2)
        llm_ids = {r["trace_id"] for r in llm}
        assert all(r["parent_trace_id"] in llm_ids for r in attempts)
        first = next(r for r in llm if r["attributes"].get("clew.cache_hit") is False)
        assert first["input_tokens"] == plain.input_tokens
        assert first["output_tokens"] == plain.output_tokens
        if plain.cost is not None:
            assert first["cost"] == pytest.approx(plain.cost)
        if cached:
            hit = next(r for r in llm if r["attributes"].get("clew.cache_hit") is True)
            assert hit["cost"] == 0.0
            assert hit["attributes"]["clew.cost_saved"] == pytest.approx(plain.cost or 0.0)
    # what leaves the process
    exported = repr(records)
    omitted_in = omit in ("log_omit_inputs", "log_omit")
    omitted_out = omit in ("log_omit_outputs", "log_omit")
    if sampled_out or (omitted_in and (omitted_out or tools)):
        assert canary not in exported
    elif not omitted_in:
        assert canary in exported
    for path in tmp_path.glob("cache.db*"):
        assert canary.encode() not in path.read_bytes()


def test_a_cached_answer_is_shared_across_providers_never(configured: FakeLLMServer) -> None:
    question = "Same words, different providers"
    first = clew.completion(_request("openai", question, False))
    other = clew.completion(_request("groq", question, False))
    again = clew.completion(_request("openai", question, False))
    assert (first.cache_hit, other.cache_hit, again.cache_hit) == (False, False, True)
    assert again.content == first.content


def test_errors_are_never_cached(configured: FakeLLMServer) -> None:
    configured.fail_next(500, times=2)
    with pytest.raises(clew.ProviderError):
        clew.completion(_request("openai", "flaky", False))
    reply = clew.completion(_request("openai", "flaky", False))
    assert reply.cache_hit is False and reply.content
