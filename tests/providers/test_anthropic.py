"""Anthropic messages through the real SDK client: tokens with cache reads and writes, streams."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest
from anthropic import Anthropic, AsyncAnthropic
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price
from provider_helpers import llm_spans, only_llm_span

from clew.testing import SpanCapture
from clew.testing.llm_server import FakeLLMServer

MODEL = "claude-haiku-4-5"
SYSTEM: list[Any] = [
    {
        "type": "text",
        "text": "You answer questions about a long handbook. " * 20,
        "cache_control": {"type": "ephemeral"},
    }
]
MESSAGES: list[Any] = [{"role": "user", "content": "How many holidays do I get?"}]
TOOLS: list[Any] = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


def anthropic_price(inp: int, out: int, read: int = 0, write: int = 0) -> float:
    usage = PriceUsage(
        input_tokens=inp, output_tokens=out, cache_read_tokens=read, cache_write_tokens=write
    )
    return float(calc_price(usage, MODEL, provider_id="anthropic").total_price)


def test_a_message_becomes_one_span(anthropic_client: Anthropic, clew_spans: SpanCapture) -> None:
    message = anthropic_client.messages.create(
        model=MODEL, max_tokens=200, messages=MESSAGES, system="Be brief."
    )
    record = only_llm_span(clew_spans)  # the SDK's own span is not duplicated
    attrs = record["attributes"]
    assert record["name"] == f"chat {MODEL}"
    assert record["provider"] == "anthropic"
    assert attrs["gen_ai.response.id"] == message.id
    assert attrs["gen_ai.response.finish_reasons"] == ["end_turn"]
    assert attrs["gen_ai.request.max_tokens"] == 200
    assert json.loads(attrs["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "Be brief."}
    ]
    assert record["input_tokens"] == message.usage.input_tokens
    assert record["output_tokens"] == message.usage.output_tokens
    assert record["cost"] == pytest.approx(
        anthropic_price(message.usage.input_tokens, message.usage.output_tokens)
    )


def test_input_tokens_include_cache_writes_then_reads(
    anthropic_client: Anthropic, clew_spans: SpanCapture
) -> None:
    first = anthropic_client.messages.create(
        model=MODEL, max_tokens=100, system=SYSTEM, messages=MESSAGES
    )
    second = anthropic_client.messages.create(
        model=MODEL, max_tokens=100, system=SYSTEM, messages=MESSAGES
    )
    write_span, read_span = llm_spans(clew_spans)
    written = first.usage.cache_creation_input_tokens or 0
    read = second.usage.cache_read_input_tokens or 0
    assert written > 0 and read == written
    assert write_span["input_tokens"] == first.usage.input_tokens + written
    assert write_span["cache_creation_input_tokens"] == written
    assert read_span["input_tokens"] == second.usage.input_tokens + read
    assert read_span["cache_read_input_tokens"] == read
    assert write_span["cost"] == pytest.approx(
        anthropic_price(
            first.usage.input_tokens + written, first.usage.output_tokens, write=written
        )
    )
    assert read_span["cost"] == pytest.approx(
        anthropic_price(second.usage.input_tokens + read, second.usage.output_tokens, read=read)
    )
    assert read_span["cost"] < write_span["cost"]


def test_a_stream_with_tool_use(anthropic_client: Anthropic, clew_spans: SpanCapture) -> None:
    events = list(
        anthropic_client.messages.create(
            model=MODEL,
            max_tokens=200,
            messages=[{"role": "user", "content": "call get_weather for Paris"}],
            tools=TOOLS,
            stream=True,
        )
    )
    record = only_llm_span(clew_spans)
    attrs = record["attributes"]
    start = events[0].message  # type: ignore[union-attr]
    final = [e for e in events if e.type == "message_delta"][-1]
    assert attrs["gen_ai.response.id"] == start.id
    assert attrs["gen_ai.response.finish_reasons"] == ["tool_use"]
    assert record["output_tokens"] == final.usage.output_tokens  # type: ignore[union-attr]
    assert record["input_tokens"] == start.usage.input_tokens
    (message,) = json.loads(attrs["gen_ai.output.messages"])
    tool_call = next(p for p in message["parts"] if p["type"] == "tool_call")
    assert tool_call["name"] == "get_weather"
    assert isinstance(tool_call["arguments"], dict)
    assert json.loads(attrs["gen_ai.tool.definitions"]) == [  # the conventions' flat shape
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": TOOLS[0]["input_schema"],
        }
    ]


def test_the_stream_helper(anthropic_client: Anthropic, clew_spans: SpanCapture) -> None:
    with anthropic_client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    record = only_llm_span(clew_spans)
    assert record["output_tokens"] == final.usage.output_tokens
    output = json.loads(record["attributes"]["gen_ai.output.messages"])
    assert output[0]["parts"] == [{"type": "text", "content": text}]


def test_the_stream_helper_left_early(anthropic_client: Anthropic, clew_spans: SpanCapture) -> None:
    with anthropic_client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as s:
        next(iter(s.text_stream))
    assert only_llm_span(clew_spans)["attributes"]["clew.stream.end"] == "closed"


def test_tool_results_in_the_history(anthropic_client: Anthropic, clew_spans: SpanCapture) -> None:
    history: list[Any] = [
        {"role": "user", "content": "weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"c": 1}}
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}],
        },
    ]
    anthropic_client.messages.create(model=MODEL, max_tokens=50, messages=history, tools=TOOLS)
    inputs = json.loads(only_llm_span(clew_spans)["attributes"]["gen_ai.input.messages"])
    assert inputs[1]["parts"] == [
        {"type": "tool_call", "id": "toolu_1", "name": "get_weather", "arguments": {"c": 1}}
    ]
    assert inputs[2]["parts"] == [
        {"type": "tool_call_response", "id": "toolu_1", "response": "sunny"}
    ]


def test_an_error(
    anthropic_client: Anthropic, server: FakeLLMServer, clew_spans: SpanCapture
) -> None:
    server.fail_next(529)
    with pytest.raises(anthropic.APIStatusError):
        anthropic_client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    record = only_llm_span(clew_spans)
    assert record["status"] == "error"
    assert record["attributes"]["http.response.status_code"] == 529


async def test_async_stream(
    async_anthropic_client: AsyncAnthropic, clew_spans: SpanCapture
) -> None:
    stream = await async_anthropic_client.messages.create(
        model=MODEL, max_tokens=100, messages=MESSAGES, stream=True
    )
    events = [e async for e in stream]
    record = only_llm_span(clew_spans)
    assert record["attributes"]["gen_ai.response.id"] == events[0].message.id  # type: ignore[union-attr]
    assert record["attributes"]["clew.stream.end"] == "exhausted"


async def test_async_stream_helper(
    async_anthropic_client: AsyncAnthropic, clew_spans: SpanCapture
) -> None:
    async with async_anthropic_client.messages.stream(
        model=MODEL, max_tokens=100, messages=MESSAGES
    ) as stream:
        final = await stream.get_final_message()
    assert only_llm_span(clew_spans)["output_tokens"] == final.usage.output_tokens
