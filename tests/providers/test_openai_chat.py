"""OpenAI chat completions through the real SDK client: attributes, tokens, cost, errors."""

from __future__ import annotations

import json

import openai
import pydantic
import pytest
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price
from openai import AsyncOpenAI, OpenAI
from provider_helpers import only_llm_span

import clew
from clew.testing import SpanCapture
from clew.testing.llm_server import FakeLLMServer

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the weather in Paris?"},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def genai_price(model: str, input_tokens: int, output_tokens: int, cached: int = 0) -> float:
    usage = PriceUsage(
        input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=cached
    )
    return float(calc_price(usage, model, provider_id="openai").total_price)


def test_a_chat_call_becomes_a_span_with_exact_tokens_and_cost(
    openai_client: OpenAI, clew_spans: SpanCapture
) -> None:
    reply = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, temperature=0.2, max_tokens=100, seed=7
    )
    record = only_llm_span(clew_spans)
    attrs = record["attributes"]
    assert record["name"] == "chat gpt-4o-mini"
    assert record["status"] == "success"
    assert reply.usage is not None
    assert record["input_tokens"] == reply.usage.prompt_tokens
    assert record["output_tokens"] == reply.usage.completion_tokens
    assert record["cost"] == pytest.approx(
        genai_price("gpt-4o-mini", reply.usage.prompt_tokens, reply.usage.completion_tokens)
    )
    assert attrs["gen_ai.usage.cost.currency"] == "USD"
    assert attrs["gen_ai.usage.cost.source"] == "genai-prices"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.temperature"] == 0.2
    assert attrs["gen_ai.request.max_tokens"] == 100
    assert attrs["gen_ai.request.seed"] == 7
    assert attrs["gen_ai.response.id"] == reply.id
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["server.address"] == "127.0.0.1"
    assert json.loads(attrs["gen_ai.input.messages"])[1] == {
        "role": "user",
        "parts": [{"type": "text", "content": "What is the weather in Paris?"}],
    }
    output = json.loads(attrs["gen_ai.output.messages"])
    assert output == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": reply.choices[0].message.content}],
            "finish_reason": "stop",
        }
    ]


def test_no_secret_reaches_the_span(openai_client: OpenAI, clew_spans: SpanCapture) -> None:
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert "sk-test-key" not in json.dumps(clew_spans.records())


def test_the_span_is_a_child_of_the_current_clew_span(
    openai_client: OpenAI, clew_spans: SpanCapture
) -> None:
    with clew.span("answer") as parent:
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    record = only_llm_span(clew_spans)
    assert record["parent_trace_id"] == parent.trace_id
    assert record["depth"] == 1


def test_tool_calls_and_several_choices_are_kept_apart(
    openai_client: OpenAI, clew_spans: SpanCapture
) -> None:
    reply = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS, n=2
    )
    attrs = only_llm_span(clew_spans)["attributes"]
    assert attrs["gen_ai.request.choice.count"] == 2
    assert attrs["gen_ai.response.finish_reasons"] == ["tool_calls", "tool_calls"]
    assert json.loads(attrs["gen_ai.tool.definitions"]) == [  # the conventions' flat shape
        {
            "type": "function",
            "name": "get_weather",
            "parameters": TOOLS[0]["function"]["parameters"],
        }
    ]
    output = json.loads(attrs["gen_ai.output.messages"])
    assert len(output) == 2
    tool_call = reply.choices[1].message.tool_calls[0]  # type: ignore[index]
    assert output[1]["parts"] == [
        {
            "type": "tool_call",
            "id": tool_call.id,
            "name": "get_weather",
            "arguments": json.loads(tool_call.function.arguments),  # type: ignore[union-attr]
        }
    ]


def test_tool_results_in_the_history_are_recorded(
    openai_client: OpenAI, clew_spans: SpanCapture
) -> None:
    first = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS
    )
    message = first.choices[0].message
    call_id = message.tool_calls[0].id  # type: ignore[index]
    history = [
        *MESSAGES,
        message,
        {"role": "tool", "tool_call_id": call_id, "content": "sunny"},
    ]
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=history, tools=TOOLS)  # type: ignore[arg-type]
    second = clew_spans.records()[-1]["attributes"]
    inputs = json.loads(second["gen_ai.input.messages"])
    assert inputs[2]["parts"][0]["type"] == "tool_call"
    assert inputs[3] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": call_id, "response": "sunny"}],
    }


def test_an_api_error_reaches_the_caller_unchanged_and_marks_the_span(
    openai_client: OpenAI, server: FakeLLMServer, clew_spans: SpanCapture
) -> None:
    server.fail_next(429)
    with pytest.raises(openai.RateLimitError) as raised:
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    record = only_llm_span(clew_spans)
    assert record["status"] == "error"
    assert "RateLimitError" in record["error"]
    assert str(raised.value) in record["error"]
    assert record["attributes"]["error.type"] == "openai.RateLimitError"
    assert record["attributes"]["http.response.status_code"] == 429


def test_a_connection_error_is_recorded(clew_spans: SpanCapture, traced: None) -> None:
    with (
        OpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-x", max_retries=0) as client,
        pytest.raises(openai.APIConnectionError),
    ):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert only_llm_span(clew_spans)["attributes"]["error.type"] == "openai.APIConnectionError"


async def test_async_chat(async_openai_client: AsyncOpenAI, clew_spans: SpanCapture) -> None:
    reply = await async_openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES
    )
    record = only_llm_span(clew_spans)
    assert reply.usage is not None
    assert record["input_tokens"] == reply.usage.prompt_tokens
    assert record["attributes"]["gen_ai.response.id"] == reply.id


def test_with_raw_response_ends_the_span_when_parsed(
    openai_client: OpenAI, clew_spans: SpanCapture
) -> None:
    raw = openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES
    )
    assert raw.headers.get("content-type", "").startswith("application/json")
    reply = raw.parse()
    record = only_llm_span(clew_spans)
    assert record["attributes"]["gen_ai.response.id"] == reply.id
    assert record["output_tokens"] == reply.usage.completion_tokens  # type: ignore[union-attr]


def test_with_raw_response_of_a_stream(openai_client: OpenAI, clew_spans: SpanCapture) -> None:
    raw = openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(raw.parse())
    record = only_llm_span(clew_spans)
    assert chunks[-1].usage is not None
    assert record["output_tokens"] == chunks[-1].usage.completion_tokens
    assert record["attributes"]["clew.stream.end"] == "exhausted"


async def test_async_with_raw_response(
    async_openai_client: AsyncOpenAI, clew_spans: SpanCapture
) -> None:
    raw = await async_openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES
    )
    reply = raw.parse()
    assert only_llm_span(clew_spans)["attributes"]["gen_ai.response.id"] == reply.id


def test_with_streaming_response(openai_client: OpenAI, clew_spans: SpanCapture) -> None:
    with openai_client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES
    ) as response:
        reply = response.parse()
    record = only_llm_span(clew_spans)
    assert record["attributes"]["gen_ai.response.id"] == reply.id
    assert record["input_tokens"] == reply.usage.prompt_tokens  # type: ignore[union-attr]


def test_with_streaming_response_read_as_lines_ends_when_the_body_is_read(
    openai_client: OpenAI, clew_spans: SpanCapture
) -> None:
    with openai_client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    ) as response:
        lines = list(response.iter_lines())
    assert any(line.startswith("data:") for line in lines)
    assert only_llm_span(clew_spans)["status"] == "success"


async def test_async_with_streaming_response(
    async_openai_client: AsyncOpenAI, clew_spans: SpanCapture
) -> None:
    async with async_openai_client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES
    ) as response:
        reply = await response.parse()
    assert only_llm_span(clew_spans)["attributes"]["gen_ai.response.id"] == reply.id


class Weather(pydantic.BaseModel):
    city: str


def test_parse(openai_client: OpenAI, clew_spans: SpanCapture) -> None:
    reply = openai_client.chat.completions.parse(
        model="gpt-4o-mini", messages=MESSAGES, response_format=Weather
    )
    assert isinstance(reply.choices[0].message.parsed, Weather)
    record = only_llm_span(clew_spans)
    assert record["attributes"]["gen_ai.output.type"] == "json"
    assert record["output_tokens"] == reply.usage.completion_tokens  # type: ignore[union-attr]


def test_the_stream_helper(openai_client: OpenAI, clew_spans: SpanCapture) -> None:
    with openai_client.chat.completions.stream(
        model="gpt-4o-mini", messages=MESSAGES, stream_options={"include_usage": True}
    ) as stream:
        final = stream.get_final_completion()
    record = only_llm_span(clew_spans)
    assert record["attributes"]["gen_ai.response.id"] == final.id
    assert record["output_tokens"] == final.usage.completion_tokens  # type: ignore[union-attr]
    assert "clew.usage.estimated" not in record["attributes"]


def test_omitted_inputs_record_no_messages_but_still_tokens_and_cost(
    openai_client: OpenAI, clew_spans: SpanCapture
) -> None:
    with clew.span("private", log_omit_inputs=True):
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS)
    attrs = only_llm_span(clew_spans)["attributes"]
    assert "gen_ai.input.messages" not in attrs
    assert "gen_ai.tool.definitions" not in attrs
    assert "gen_ai.output.messages" in attrs
    assert attrs["gen_ai.usage.cost.amount"] > 0
    assert "Paris" not in json.dumps(attrs)


def test_omitted_outputs_record_no_output_messages(
    openai_client: OpenAI, clew_spans: SpanCapture
) -> None:
    with clew.span("private", log_omit_outputs=True):
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    record = only_llm_span(clew_spans)
    assert "gen_ai.output.messages" not in record["attributes"]
    assert record["attributes"]["gen_ai.response.finish_reasons"] == ["stop"]
    assert record["output_tokens"] == 18


def test_a_sampled_out_trace_captures_nothing(
    openai_client: OpenAI, clew_spans: SpanCapture
) -> None:
    with clew.span("dropped", log_sample_rate=0.0):
        reply = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert reply.choices[0].message.content
    assert clew_spans.records() == []


def test_capture_content_off_records_no_messages(
    openai_client: OpenAI, clew_spans: SpanCapture
) -> None:
    clew.configure(capture_content=False)
    try:
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        clew.configure(capture_content=True)
    record = only_llm_span(clew_spans)
    assert "gen_ai.input.messages" not in record["attributes"]
    assert "gen_ai.output.messages" not in record["attributes"]
    assert record["input_tokens"] > 0
