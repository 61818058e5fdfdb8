"""Usage, cost and provider recognition."""

from __future__ import annotations

import json

import pytest
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price
from openai import OpenAI
from provider_helpers import only_llm_span

from clew.providers import Usage, cost_of, provider_for_url
from clew.providers.pricing import PRICE_PROVIDERS
from clew.providers.registry import PROVIDER_NAMES
from clew.providers.usage import estimate_tokens
from clew.testing import SpanCapture
from clew.testing.cassettes import Interaction
from clew.testing.llm_server import ReplayServer


@pytest.mark.parametrize(
    ("url", "provider"),
    [
        ("https://api.openai.com/v1", "openai"),
        ("https://openrouter.ai/api/v1", "openrouter"),
        ("https://api.groq.com/openai/v1", "groq"),
        ("https://api.mistral.ai/v1", "mistral"),
        ("https://api.fireworks.ai/inference/v1", "fireworks"),
        ("https://api.together.xyz/v1", "together"),
        ("https://api.deepseek.com", "deepseek"),
        ("https://myres.openai.azure.com/openai", "azure"),
        ("https://api.endpoints.anyscale.com/v1", "anyscale"),
        ("http://litellm.internal:4000", "litellm"),
        ("http://localhost:4000", "litellm"),
        ("http://localhost:8000/v1", "vllm"),
        ("http://127.0.0.1:11434/v1", "ollama"),
        ("https://my-proxy.example.com/v1", "openai"),
    ],
)
def test_providers_are_recognised_from_the_base_url(url: str, provider: str) -> None:
    assert provider_for_url(url).provider == provider


def test_every_provider_name_has_an_explicit_price_mapping() -> None:
    assert set(PROVIDER_NAMES) == set(PRICE_PROVIDERS)


def test_anthropic_style_usage_sums_cache_into_input() -> None:
    usage = Usage.from_anthropic(
        {
            "input_tokens": 10,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 50,
            "output_tokens": 7,
        }
    )
    assert usage is not None
    assert usage.input_tokens == 160
    assert usage.attributes()["gen_ai.usage.cache_write.input_tokens"] == 50


def test_openai_usage_keeps_cached_tokens_inside_input() -> None:
    usage = Usage.from_openai(
        {
            "prompt_tokens": 1220,
            "completion_tokens": 100,
            "prompt_tokens_details": {"cached_tokens": 1152},
        }
    )
    assert usage == Usage(input_uncached=68, cache_read=1152, output=100)
    assert usage.input_tokens == 1220


@pytest.mark.parametrize(
    ("provider", "model", "usage"),
    [
        ("openai", "gpt-4o", Usage(input_uncached=68, cache_read=1152, output=100)),
        ("openai", "gpt-4", Usage(input_uncached=68, cache_read=1152, output=100)),
        ("anthropic", "claude-haiku-4-5", Usage(10, 100, 50, 7)),
        ("anthropic", "claude-3-7-sonnet-latest", Usage(10, 0, 500, 7)),
        ("openai", "o4-mini", Usage(input_uncached=5, output=300, reasoning=256)),
        ("openai", "text-embedding-3-small", Usage(input_uncached=8)),
    ],
)
def test_cost_equals_genai_prices_with_cache_rates(provider: str, model: str, usage: Usage) -> None:
    expected = calc_price(
        PriceUsage(
            input_tokens=usage.input_tokens,
            cache_read_tokens=usage.cache_read,
            cache_write_tokens=usage.cache_write,
            output_tokens=usage.output,
        ),
        model,
        provider_id=provider,
    ).total_price
    cost = cost_of(usage, model, provider)
    assert cost.amount == pytest.approx(float(expected), rel=1e-12)
    assert cost.source == "genai-prices"


def test_tiered_prices_go_through_genai_prices() -> None:
    usage = Usage(input_uncached=250_000, output=10)
    expected = calc_price(
        PriceUsage(input_tokens=250_000, output_tokens=10), "gemini-2.5-pro", provider_id="google"
    ).total_price
    assert cost_of(usage, "gemini-2.5-pro", "vertexai").amount == pytest.approx(float(expected))


def test_an_unknown_model_has_no_cost_and_a_reason_never_zero() -> None:
    cost = cost_of(Usage(input_uncached=10, output=10), "my-finetune-xyz", "openai")
    assert cost.amount is None
    assert "my-finetune-xyz" in (cost.error or "")
    assert cost.attributes() == {"clew.cost.error": cost.error}


def test_a_local_model_has_no_cost() -> None:
    assert cost_of(Usage(output=10), "llama3", "ollama").amount is None


def test_a_provider_reported_cost_wins() -> None:
    cost = cost_of(Usage(output=10), "openai/gpt-4o", "openrouter", reported=0.0123)
    assert (cost.amount, cost.source) == (0.0123, "provider")


def test_openrouter_usage_cost_reaches_the_span(clew_spans: SpanCapture, traced: None) -> None:
    reply = {
        "id": "gen-1",
        "object": "chat.completion",
        "created": 1,
        "model": "openai/gpt-4o-mini",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6, "cost": 0.000042},
    }
    recorded = Interaction(
        "POST",
        "https://openrouter.ai/v1/chat/completions",
        "{}",
        200,
        (("content-type", "application/json"),),
        json.dumps(reply).encode(),
    )
    with (
        ReplayServer([recorded]) as server,
        OpenAI(base_url=server.openai_base_url, api_key="sk-x") as client,
    ):
        client.chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    record = only_llm_span(clew_spans)
    assert record["cost"] == 0.000042
    assert record["attributes"]["gen_ai.usage.cost.source"] == "provider"


def test_an_unknown_model_on_a_span(openai_client: OpenAI, clew_spans: SpanCapture) -> None:
    reply = openai_client.chat.completions.with_raw_response.create(
        model="unknown-model", messages=[{"role": "user", "content": "hi"}]
    ).parse()
    record = only_llm_span(clew_spans)
    assert reply.usage is not None
    assert record["input_tokens"] == reply.usage.prompt_tokens
    assert record["cost"] is None
    assert "unknown-model" in record["attributes"]["clew.cost.error"]


def test_estimates_need_no_download() -> None:
    assert estimate_tokens(["a" * 40]) == 10
    assert estimate_tokens(["one two three"], messages=2) == 4 + 8
