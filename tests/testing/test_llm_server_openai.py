"""The fake LLM server answers the real ``openai`` SDK on every OpenAI endpoint."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from typing import Any

import openai
import pydantic
import pytest

from clew.testing.llm_server import FakeLLMServer

# 6 words, so 6 prompt tokens: the fake server counts a whitespace-separated word as a token.
PROMPT: list[Any] = [{"role": "user", "content": "Say hello to the test suite"}]
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as fake:
        yield fake


@pytest.fixture
def client(server: FakeLLMServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0) as sdk:
        yield sdk


# -- chat completions ------------------------------------------------------------------------


def test_chat_reply_echoes_the_prompt_with_word_counted_usage(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)

    choice = reply.choices[0]
    assert choice.message.content is not None
    assert choice.message.content.startswith("Echo: Say hello to the test suite")
    assert choice.finish_reason == "stop"
    assert reply.model == "gpt-4o-mini"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (6, 18)
    assert reply.usage.total_tokens == 24


def test_chat_replies_are_deterministic_with_unique_ids(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    second = client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)

    assert first.choices[0].message.content == second.choices[0].message.content
    assert (first.id, second.id) == ("chatcmpl-fake00000001", "chatcmpl-fake00000002")


def test_chat_stream_sends_usage_after_the_finish_chunk(client: openai.OpenAI) -> None:
    with client.chat.completions.create(
        model="gpt-4o-mini",
        messages=PROMPT,
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        chunks = list(stream)

    assert 19 <= len(chunks) <= 22
    *body, finish, usage = chunks
    assert finish.choices[0].finish_reason == "stop" and finish.usage is None
    assert usage.choices == [] and usage.usage is not None
    assert (usage.usage.prompt_tokens, usage.usage.completion_tokens) == (6, 18)
    text = "".join(c.choices[0].delta.content or "" for c in body)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    assert text == reply.choices[0].message.content


def test_chat_stream_without_include_usage_has_no_usage(client: openai.OpenAI) -> None:
    with client.chat.completions.create(
        model="gpt-4o-mini", messages=PROMPT, stream=True
    ) as stream:
        chunks = list(stream)

    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_chat_n_returns_n_choices_and_sums_completion_tokens(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, n=3)

    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert len({c.message.content for c in reply.choices}) == 3
    assert reply.usage is not None and reply.usage.completion_tokens == 3 * 18


def test_chat_max_tokens_cuts_the_reply_with_finish_reason_length(
    client: openai.OpenAI,
) -> None:
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=PROMPT, max_completion_tokens=4
    )

    assert reply.choices[0].finish_reason == "length"
    assert reply.choices[0].message.content == "Echo: Say hello to"
    assert reply.usage is not None and reply.usage.completion_tokens == 4


def test_chat_stop_sequence_ends_the_reply(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, stop=["test"])

    assert reply.choices[0].message.content == "Echo: Say hello to the"
    assert reply.choices[0].finish_reason == "stop"


def test_chat_stream_helper_accumulates_the_final_completion(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model="gpt-4o-mini", messages=PROMPT, stream_options={"include_usage": True}
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()

    assert "".join(deltas) == final.choices[0].message.content
    assert final.usage is not None and final.usage.completion_tokens == 18


def test_chat_tool_call_is_returned_when_the_user_asks_for_it(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
    )

    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls or []
    assert len(calls) == 1 and calls[0].type == "function"
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"city": "example city", "unit": "celsius"}


def test_chat_tool_call_stream_splits_arguments_and_assembles(client: openai.OpenAI) -> None:
    request = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Look it up"}],
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    }
    with client.chat.completions.create(**request, stream=True) as stream:
        chunks = list(stream)
    with client.chat.completions.stream(**request) as helper:
        final = helper.get_final_completion()

    argument_chunks = [
        c
        for c in chunks
        if c.choices
        and c.choices[0].delta.tool_calls
        and c.choices[0].delta.tool_calls[0].id is None
    ]
    assert len(argument_chunks) >= 4
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    calls = final.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather"]
    assert json.loads(calls[0].function.arguments) == {"city": "example city", "unit": "celsius"}


def test_chat_after_a_tool_result_replies_with_text(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
        tools=[WEATHER_TOOL],
    )

    assert reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.tool_calls is None


def test_chat_parallel_tool_calls_for_every_named_tool(client: openai.OpenAI) -> None:
    time_tool = {"type": "function", "function": {"name": "get_time", "parameters": {}}}
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Call get_weather and get_time please"}],
        tools=[WEATHER_TOOL, time_tool],
    )

    calls = reply.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert len({c.id for c in calls}) == 2


def test_chat_legacy_functions_return_a_function_call(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=PROMPT,
        functions=[WEATHER_TOOL["function"]],
        function_call={"name": "get_weather"},
    )

    choice = reply.choices[0]
    assert choice.finish_reason == "function_call"
    assert choice.message.function_call is not None
    assert choice.message.function_call.name == "get_weather"
    assert json.loads(choice.message.function_call.arguments)["city"] == "example city"


def test_chat_parse_fills_a_json_schema_response_format(client: openai.OpenAI) -> None:
    class Answer(pydantic.BaseModel):
        city: str
        degrees: int

    reply = client.chat.completions.parse(
        model="gpt-4o-mini", messages=PROMPT, response_format=Answer
    )

    assert reply.choices[0].message.parsed == Answer(city="example city", degrees=1)


def test_chat_json_object_response_format_returns_json(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=PROMPT, response_format={"type": "json_object"}
    )

    content = reply.choices[0].message.content or ""
    assert json.loads(content)["reply"].startswith("Echo:")


def test_chat_reasoning_models_report_reasoning_tokens(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="o3-mini", messages=PROMPT)

    assert reply.usage is not None and reply.usage.completion_tokens_details is not None
    assert reply.usage.completion_tokens_details.reasoning_tokens == 16
    assert reply.usage.completion_tokens == 18 + 16


def test_chat_repeated_long_prompt_reports_cached_tokens(client: openai.OpenAI) -> None:
    long_prompt = [{"role": "user", "content": "word " * 1100}]

    first = client.chat.completions.create(model="gpt-4o-mini", messages=long_prompt)
    second = client.chat.completions.create(model="gpt-4o-mini", messages=long_prompt)

    assert first.usage is not None and second.usage is not None
    assert first.usage.prompt_tokens_details is not None
    assert second.usage.prompt_tokens_details is not None
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details.cached_tokens == 1024


def test_reply_words_sets_the_reply_length() -> None:
    with (
        FakeLLMServer(reply_words=3) as fake,
        openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0) as sdk,
    ):
        reply = sdk.chat.completions.create(model="m", messages=PROMPT)
        longer = sdk.chat.completions.create(
            model="m", messages=PROMPT, extra_headers={"x-fake-reply-words": "40"}
        )

    assert reply.choices[0].message.content == "Echo: Say hello"
    assert longer.usage is not None and longer.usage.completion_tokens == 40


# -- legacy completions ------------------------------------------------------------------------


def test_completions_default_to_16_tokens_and_finish_reason_length(
    client: openai.OpenAI,
) -> None:
    completion = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Tell me a joke")

    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 16)


def test_completions_list_prompt_n_echo_and_logprobs(client: openai.OpenAI) -> None:
    completion = client.completions.create(
        model="gpt-3.5-turbo-instruct",
        prompt=["first prompt", "second one"],
        n=2,
        echo=True,
        logprobs=1,
        max_tokens=5,
        suffix="!",
    )

    assert [c.index for c in completion.choices] == [0, 1, 2, 3]
    assert completion.choices[2].text.startswith("second one Echo:")
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.tokens is not None
    assert "".join(logprobs.tokens) == completion.choices[0].text
    assert completion.usage is not None and completion.usage.completion_tokens == 4 * 5


def test_completions_stream_with_usage(client: openai.OpenAI) -> None:
    with client.completions.create(
        model="gpt-3.5-turbo-instruct",
        prompt="Tell me a joke",
        max_tokens=100,
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        pieces = list(stream)

    *text, usage = pieces
    assert text[-1].choices[0].finish_reason == "stop"
    assert usage.choices == [] and usage.usage is not None
    assert usage.usage.completion_tokens == len(text) == 18


# -- embeddings ------------------------------------------------------------------------------


def test_embeddings_float_vectors_are_deterministic_unit_vectors(client: openai.OpenAI) -> None:
    first = client.embeddings.create(
        model="text-embedding-3-small", input=["hello world", "bye"], encoding_format="float"
    )
    again = client.embeddings.create(
        model="text-embedding-3-small", input="hello world", encoding_format="float"
    )

    vector = first.data[0].embedding
    assert len(vector) == 1536 and abs(sum(x * x for x in vector) - 1.0) < 1e-4
    assert again.data[0].embedding == vector != first.data[1].embedding
    assert first.usage.prompt_tokens == 3


def test_embeddings_base64_matches_the_float_vector(client: openai.OpenAI) -> None:
    floats = client.embeddings.create(
        model="m", input="hello", dimensions=8, encoding_format="float"
    )
    encoded = client.embeddings.create(
        model="m", input="hello", dimensions=8, encoding_format="base64"
    )
    default = client.embeddings.create(model="m", input="hello", dimensions=8)

    raw = base64.b64decode(str(encoded.data[0].embedding))
    decoded = struct.unpack("<8f", raw)
    assert decoded == pytest.approx(floats.data[0].embedding, abs=1e-6)
    assert default.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)


# -- responses ---------------------------------------------------------------------------------


def test_responses_create_returns_text_and_usage(client: openai.OpenAI) -> None:
    response = client.responses.create(model="gpt-4.1", input="Say hello", instructions="Be brief")

    assert response.output_text.startswith("Echo: Say hello")
    assert response.status == "completed"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (4, 18)


def test_responses_stream_follows_the_real_event_sequence(client: openai.OpenAI) -> None:
    with client.responses.create(model="gpt-4.1", input="Say hello", stream=True) as stream:
        events = list(stream)

    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds.count("response.output_text.delta") == 18
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response
    assert final.usage is not None and final.usage.output_tokens == 18


def test_responses_stream_helper_and_function_call(client: openai.OpenAI) -> None:
    tool = {
        "type": "function",
        "name": "get_weather",
        "parameters": WEATHER_TOOL["function"]["parameters"],
    }
    with client.responses.stream(
        model="gpt-4.1",
        input="What is the weather in Oslo?",
        tools=[tool],
    ) as stream:
        deltas = [e for e in stream if e.type == "response.function_call_arguments.delta"]
        final = stream.get_final_response()

    call = final.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert len(deltas) >= 4
    assert "".join(d.delta for d in deltas) == call.arguments


def test_responses_max_output_tokens_makes_an_incomplete_response(client: openai.OpenAI) -> None:
    response = client.responses.create(model="gpt-4.1", input="Say hello", max_output_tokens=5)

    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None and response.usage.output_tokens == 5


def test_responses_reasoning_model_adds_a_reasoning_item(client: openai.OpenAI) -> None:
    response = client.responses.create(model="o4-mini", input="Say hello")

    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.usage is not None
    assert response.usage.output_tokens_details.reasoning_tokens == 16


# -- other clients -----------------------------------------------------------------------------


async def test_async_client_streams_and_creates(server: FakeLLMServer) -> None:
    async with openai.AsyncOpenAI(
        base_url=server.openai_base_url, api_key="test", max_retries=0
    ) as sdk:
        reply = await sdk.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
        stream = await sdk.chat.completions.create(
            model="gpt-4o-mini",
            messages=PROMPT,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]

    assert reply.usage is not None and chunks[-1].usage == reply.usage


def test_azure_client_paths_are_served(server: FakeLLMServer) -> None:
    with openai.AzureOpenAI(
        azure_endpoint=server.url, api_version="2024-06-01", api_key="test", max_retries=0
    ) as azure:
        reply = azure.chat.completions.create(model="my-deployment", messages=PROMPT)

    assert reply.usage is not None and reply.usage.prompt_tokens == 6
    assert server.requests[-1].path == "/openai/deployments/my-deployment/chat/completions"
    assert server.requests[-1].headers["api-key"] == "REDACTED"
