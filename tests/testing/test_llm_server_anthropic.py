"""The fake LLM server answers the real ``anthropic`` SDK on the Messages API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from clew.testing.llm_server import FakeLLMServer

MODEL = "claude-fake"  # not a real model: the SDK warns about deprecated real ones
PROMPT: list[Any] = [{"role": "user", "content": "Say hello to the test suite"}]  # 6 tokens
WEATHER_TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as fake:
        yield fake


@pytest.fixture
def client(server: FakeLLMServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=server.anthropic_base_url, api_key="test", max_retries=0
    ) as sdk:
        yield sdk


def test_message_echoes_the_prompt_with_word_counted_usage(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model=MODEL, max_tokens=100, messages=PROMPT)

    assert message.id == "msg_fake00000001"
    assert message.stop_reason == "end_turn"
    block = message.content[0]
    assert block.type == "text" and block.text.startswith("Echo: Say hello to the test suite")
    assert (message.usage.input_tokens, message.usage.output_tokens) == (6, 18)
    assert message.usage.cache_read_input_tokens == 0
    assert message.usage.cache_creation_input_tokens == 0


def test_stream_sends_the_real_event_sequence(client: anthropic.Anthropic) -> None:
    with client.messages.create(
        model=MODEL, max_tokens=100, messages=PROMPT, stream=True
    ) as stream:
        events = list(stream)

    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert kinds.count("content_block_delta") == 18
    delta = events[-2]
    assert delta.type == "message_delta" and delta.usage.output_tokens == 18
    assert delta.delta.stop_reason == "end_turn"


def test_stream_helper_agrees_with_the_non_stream_reply(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model=MODEL, max_tokens=100, messages=PROMPT)
    with client.messages.stream(model=MODEL, max_tokens=100, messages=PROMPT) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == message.content[0].text
    assert final.usage.input_tokens == message.usage.input_tokens
    assert final.usage.output_tokens == message.usage.output_tokens


def test_tool_use_streams_input_json_deltas(client: anthropic.Anthropic) -> None:
    prompt = [{"role": "user", "content": "What is the weather in Rome?"}]
    with client.messages.create(
        model=MODEL, max_tokens=100, messages=prompt, tools=[WEATHER_TOOL], stream=True
    ) as stream:
        events = list(stream)
    with client.messages.stream(
        model=MODEL, max_tokens=100, messages=prompt, tools=[WEATHER_TOOL]
    ) as helper:
        final = helper.get_final_message()

    json_deltas = [
        e for e in events if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    ]
    assert len(json_deltas) >= 4
    assert final.stop_reason == "tool_use"
    assert [b.type for b in final.content] == ["text", "tool_use"]
    tool_use = final.content[1]
    assert tool_use.type == "tool_use" and tool_use.name == "get_weather"
    assert tool_use.input == {"city": "example city"}


def test_forced_tool_choice_returns_only_the_tool_use(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL,
        max_tokens=100,
        messages=PROMPT,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
    )

    assert [b.type for b in message.content] == ["tool_use"]
    assert message.stop_reason == "tool_use"


def test_a_tool_result_gets_a_text_reply(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL,
        max_tokens=100,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "What is the weather in Rome?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sun"}],
            },
        ],
    )

    assert message.stop_reason == "end_turn"
    assert [b.type for b in message.content] == ["text"]


def test_cache_control_writes_then_reads_the_cached_prefix(client: anthropic.Anthropic) -> None:
    system: list[Any] = [
        {"type": "text", "text": "You answer from this long document " * 10},  # 60 words
        {"type": "text", "text": "cached part ends here", "cache_control": {"type": "ephemeral"}},
    ]

    first = client.messages.create(model=MODEL, max_tokens=100, system=system, messages=PROMPT)
    with client.messages.stream(
        model=MODEL, max_tokens=100, system=system, messages=PROMPT
    ) as stream:
        second = stream.get_final_message()

    assert first.usage.cache_creation_input_tokens == 64
    assert first.usage.cache_read_input_tokens == 0
    assert first.usage.input_tokens == 6
    assert second.usage.cache_read_input_tokens == 64
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens == 6


def test_thinking_comes_first_and_counts_as_output(client: anthropic.Anthropic) -> None:
    thinking: Any = {"type": "enabled", "budget_tokens": 1024}
    message = client.messages.create(
        model=MODEL, max_tokens=2000, messages=PROMPT, thinking=thinking
    )
    with client.messages.stream(
        model=MODEL, max_tokens=2000, messages=PROMPT, thinking=thinking
    ) as stream:
        streamed = stream.get_final_message()

    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.usage.output_tokens == 8 + 18
    assert streamed.content[0].type == "thinking"
    assert streamed.content[0].thinking == message.content[0].thinking
    assert streamed.content[0].signature == "fakesig00000002"
    assert streamed.usage.output_tokens == message.usage.output_tokens


def test_stop_sequences_and_max_tokens_set_the_stop_reason(client: anthropic.Anthropic) -> None:
    stopped = client.messages.create(
        model=MODEL, max_tokens=100, messages=PROMPT, stop_sequences=["test"]
    )
    cut = client.messages.create(model=MODEL, max_tokens=3, messages=PROMPT)

    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "test")
    assert stopped.content[0].text == "Echo: Say hello to the"
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 3


def test_count_tokens_counts_words(client: anthropic.Anthropic) -> None:
    counted = client.messages.count_tokens(model=MODEL, messages=PROMPT, system="Be nice")

    assert counted.input_tokens == 8


def test_beta_messages_are_served(client: anthropic.Anthropic) -> None:
    message = client.beta.messages.create(model=MODEL, max_tokens=100, messages=PROMPT)

    assert message.usage.output_tokens == 18


async def test_async_client_streams(server: FakeLLMServer) -> None:
    async with (
        anthropic.AsyncAnthropic(
            base_url=server.anthropic_base_url, api_key="test", max_retries=0
        ) as sdk,
        sdk.messages.stream(model=MODEL, max_tokens=100, messages=PROMPT) as stream,
    ):
        final = await stream.get_final_message()

    assert final.usage.output_tokens == 18
