"""Recorded real responses replayed through the real SDK clients: spans match what was recorded.

For every cassette in ``tests/fixtures/cassettes`` (INDEX.tsv), each recorded request is
re-issued through the ``openai`` / ``anthropic`` SDK against a replay server, and the span must
carry the recorded usage (input tokens including cache reads and writes), response id and
finish reasons, and the cost genai-prices gives for the recorded model and usage. A stream
that recorded no usage must be marked estimated. Recorded errors must mark the span failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price
from provider_helpers import llm_spans

from clew.providers import instrument_anthropic, instrument_openai
from clew.testing import SpanCapture
from clew.testing.cassettes import Interaction, fixtures_dir, load_cassette
from clew.testing.llm_server import ReplayServer
from replay_clients import cassette_rows, replay, replay_client, sse_json

CASSETTES = fixtures_dir() / "cassettes"
PRICE_IDS = {"openai": "openai", "azure": "azure", "anthropic": "anthropic"}


# -- what the recording says -----------------------------------------------------------------
class Expected:
    """The span facts a recorded response implies."""

    def __init__(self) -> None:
        self.response_id: str | None = None
        self.model: str | None = None
        self.finish_reasons: list[str] = []
        self.usage: dict[str, int] | None = None  # input (total), output, cache_read, ...


def _openai_usage(usage: dict[str, Any] | None) -> dict[str, int] | None:
    if not usage:
        return None
    if "input_tokens" in usage:  # Responses API
        return {
            "input": usage["input_tokens"],
            "output": usage["output_tokens"],
            "cache_read": (usage.get("input_tokens_details") or {}).get("cached_tokens") or 0,
            "reasoning": (usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0,
        }
    return {
        "input": usage["prompt_tokens"],
        "output": usage.get("completion_tokens") or 0,
        "cache_read": (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0,
        "reasoning": (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0,
    }


def _anthropic_usage(usage: dict[str, Any]) -> dict[str, int]:
    read = usage.get("cache_read_input_tokens") or 0
    write = usage.get("cache_creation_input_tokens") or 0
    return {
        "input": usage["input_tokens"] + read + write,
        "output": usage["output_tokens"],
        "cache_read": read,
        "cache_write": write,
    }


def _responses_reason(response: dict[str, Any]) -> list[str]:
    status = response.get("status")
    if status == "incomplete":
        return [response["incomplete_details"]["reason"]]
    if status == "completed":
        output = response.get("output", ())
        calls = any(item.get("type") in ("function_call", "custom_tool_call") for item in output)
        return ["tool_calls" if calls else "stop"]
    return []


def expected_of(interaction: Interaction) -> Expected:
    exp = Expected()
    route = interaction.route
    if not interaction.is_stream:
        body = interaction.response_json()
        exp.response_id = body.get("id")
        exp.model = body.get("model")
        if route == "/v1/messages":
            exp.finish_reasons = [body["stop_reason"]] if body.get("stop_reason") else []
            exp.usage = _anthropic_usage(body["usage"])
        elif route == "/v1/responses":
            exp.finish_reasons = _responses_reason(body)
            exp.usage = _openai_usage(body.get("usage"))
        else:
            exp.finish_reasons = [c["finish_reason"] for c in body.get("choices", ())]
            exp.usage = _openai_usage(body.get("usage"))
            if route == "/v1/embeddings" and exp.usage is not None:
                exp.usage["output"] = 0
        return exp
    events = sse_json(interaction)
    if route == "/v1/messages":
        usage: dict[str, Any] = {}
        for event in events:
            if event["type"] == "message_start":
                exp.response_id = event["message"]["id"]
                exp.model = event["message"]["model"]
                usage.update({k: v for k, v in event["message"]["usage"].items() if v is not None})
            elif event["type"] == "message_delta":
                exp.finish_reasons = [event["delta"]["stop_reason"]]
                usage.update({k: v for k, v in event["usage"].items() if v is not None})
        exp.usage = _anthropic_usage(usage)
    elif route == "/v1/responses":
        finals = [
            e for e in events if e.get("type") in ("response.completed", "response.incomplete")
        ]
        if finals:
            response = finals[-1]["response"]
            exp.response_id, exp.model = response["id"], response["model"]
            exp.finish_reasons = _responses_reason(response)
            exp.usage = _openai_usage(response.get("usage"))
    else:
        reasons: dict[int, str] = {}
        for event in events:
            exp.response_id = exp.response_id or event.get("id")
            exp.model = exp.model or event.get("model")
            for choice in event.get("choices") or ():
                if choice.get("finish_reason"):
                    reasons[choice["index"]] = choice["finish_reason"]
            if event.get("usage"):
                exp.usage = _openai_usage(event["usage"])
        exp.finish_reasons = [reasons[i] for i in sorted(reasons)]
    return exp


def expected_cost(provider: str, model: str | None, usage: dict[str, int]) -> float | None:
    price_usage = PriceUsage(
        input_tokens=usage["input"],
        output_tokens=usage["output"],
        cache_read_tokens=usage.get("cache_read", 0),
        cache_write_tokens=usage.get("cache_write", 0),
    )
    try:
        return float(
            calc_price(price_usage, model or "", provider_id=PRICE_IDS[provider]).total_price
        )
    except LookupError:
        return None


def check_span(record: dict[str, Any], interaction: Interaction, provider: str) -> None:
    attrs = record["attributes"]
    if interaction.status >= 400:
        assert record["status"] == "error"
        assert attrs["http.response.status_code"] == interaction.status
        return
    exp = expected_of(interaction)
    assert record["status"] == "success"
    assert record["provider"] == provider
    if exp.response_id is not None:
        assert attrs["gen_ai.response.id"] == exp.response_id
    if exp.finish_reasons:
        assert attrs["gen_ai.response.finish_reasons"] == exp.finish_reasons
    if exp.usage is None:
        assert attrs["clew.usage.estimated"] is True
        return
    assert "clew.usage.estimated" not in attrs
    assert record["input_tokens"] == exp.usage["input"]
    assert record["output_tokens"] == exp.usage["output"]
    assert (record["cache_read_input_tokens"] or 0) == exp.usage.get("cache_read", 0)
    assert (record["cache_creation_input_tokens"] or 0) == exp.usage.get("cache_write", 0)
    assert (record["reasoning_tokens"] or 0) == exp.usage.get("reasoning", 0)
    cost = expected_cost(provider, exp.model, exp.usage)
    if cost is None:
        assert record["cost"] is None
        assert attrs["clew.cost.error"]
    else:
        assert record["cost"] == pytest.approx(cost, rel=1e-9)
        assert attrs["gen_ai.usage.cost.source"] == "genai-prices"


@pytest.fixture(autouse=True)
def _instrumented() -> Iterator[None]:
    with instrument_openai(), instrument_anthropic():
        yield


@pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")
@pytest.mark.parametrize("row", cassette_rows(), ids=lambda row: row["path"])
def test_spans_match_the_recording(row: dict[str, str], clew_spans: SpanCapture) -> None:
    path = CASSETTES / row["path"]
    interactions = load_cassette(path)
    provider = row["provider"]
    traced = [i for i in interactions if i.route != "/v1/complete"]
    with (
        ReplayServer(path) as server,
        replay_client(provider, server, interactions[0].uri) as client,
    ):
        for interaction in interactions:
            if interaction.status >= 400:
                with pytest.raises(
                    openai.APIStatusError if provider != "anthropic" else anthropic.APIStatusError
                ):
                    replay(client, provider, interaction)
            else:
                replay(client, provider, interaction)
    records = llm_spans(clew_spans)
    assert len(records) == len(traced)
    for record, interaction in zip(records, traced, strict=True):
        check_span(record, interaction, provider)
