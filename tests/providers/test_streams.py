"""The stream lifecycle: a stream's span ends exactly once, however the stream ends."""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from provider_helpers import llm_spans, only_llm_span

from clew.providers import instrument_openai
from clew.testing import SpanCapture
from clew.testing.llm_server import FakeLLMServer

MESSAGES = [{"role": "user", "content": "Tell me a story"}]
WITH_USAGE: dict[str, Any] = {"stream_options": {"include_usage": True}}


def create(client: OpenAI, **extra: Any) -> Any:
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, **extra
    )


def test_exhausted_stream_records_the_final_usage_chunk(
    openai_client: OpenAI, clew_spans: SpanCapture
) -> None:
    chunks = list(create(openai_client, **WITH_USAGE))
    record = only_llm_span(clew_spans)
    usage = chunks[-1].usage
    assert chunks[-1].choices == []  # usage arrives after the finish reason
    assert record["input_tokens"] == usage.prompt_tokens
    assert record["output_tokens"] == usage.completion_tokens
    attrs = record["attributes"]
    assert attrs["clew.stream.end"] == "exhausted"
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["gen_ai.response.id"] == chunks[0].id
    assert "clew.usage.estimated" not in attrs
    assert 0 < record["time_to_first_token"] <= record["latency"]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    output = json.loads(attrs["gen_ai.output.messages"])
    assert output[0]["parts"] == [{"type": "text", "content": text}]


def test_the_user_sees_exactly_the_chunks_of_an_uninstrumented_stream(
    server: FakeLLMServer, clew_spans: SpanCapture
) -> None:
    with OpenAI(base_url=server.openai_base_url, api_key="sk-x") as client:
        bare = [c.model_dump() for c in create(client, **WITH_USAGE)]
        with instrument_openai():
            traced = [c.model_dump() for c in create(client, **WITH_USAGE)]
    for chunks in (bare, traced):
        for chunk in chunks:
            chunk["id"] = "x"
    assert traced == bare
    assert len(llm_spans(clew_spans)) == 1


def test_include_usage_is_never_added_and_usage_is_estimated_instead(
    openai_client: OpenAI, server: FakeLLMServer, clew_spans: SpanCapture
) -> None:
    chunks = list(create(openai_client))
    assert "stream_options" not in server.requests[-1].body
    assert all(c.usage is None for c in chunks)
    record = only_llm_span(clew_spans)
    assert record["attributes"]["clew.usage.estimated"] is True
    assert record["output_tokens"] > 0
    assert record["input_tokens"] > 0
    assert record["cost"] > 0


def test_break_ends_the_span(openai_client: OpenAI, clew_spans: SpanCapture) -> None:
    stream = create(openai_client, **WITH_USAGE)
    for _ in stream:
        break
    record = only_llm_span(clew_spans)
    assert record["attributes"]["clew.stream.end"] == "closed"
    assert record["status"] == "success"
    stream.close()
    assert len(llm_spans(clew_spans)) == 1


def test_close_ends_the_span(openai_client: OpenAI, clew_spans: SpanCapture) -> None:
    stream = create(openai_client)
    next(stream)
    next(stream)
    assert llm_spans(clew_spans) == []
    stream.close()
    record = only_llm_span(clew_spans)
    assert record["attributes"]["clew.stream.end"] == "closed"
    assert json.loads(record["attributes"]["gen_ai.output.messages"])[0]["parts"]


def test_leaving_with_ends_the_span(openai_client: OpenAI, clew_spans: SpanCapture) -> None:
    with create(openai_client) as stream:
        next(stream)
    assert only_llm_span(clew_spans)["attributes"]["clew.stream.end"] == "closed"


def test_garbage_collection_ends_an_unread_stream(
    openai_client: OpenAI, clew_spans: SpanCapture
) -> None:
    stream = create(openai_client)
    del stream
    gc.collect()
    record = only_llm_span(clew_spans)
    assert record["attributes"]["clew.stream.end"] == "dropped"


def test_an_error_mid_stream_fails_the_span_and_reaches_the_caller(
    openai_client: OpenAI, server: FakeLLMServer, clew_spans: SpanCapture
) -> None:
    server.break_next_stream(after=4, mode="error")
    seen = []
    with pytest.raises(openai.APIError):
        for chunk in create(openai_client):
            seen.append(chunk)
    assert len(seen) == 4
    record = only_llm_span(clew_spans)
    assert record["status"] == "error"
    assert record["attributes"]["clew.stream.end"] == "error"
    assert record["attributes"]["error.type"] == "openai.APIError"


def test_a_dropped_connection_mid_stream_fails_the_span(
    openai_client: OpenAI, server: FakeLLMServer, clew_spans: SpanCapture
) -> None:
    server.break_next_stream(after=3, mode="close")
    with pytest.raises(Exception) as raised:  # which one is the SDK's choice
        list(create(openai_client))
    record = only_llm_span(clew_spans)
    assert record["status"] == "error"
    kind = type(raised.value)
    assert record["attributes"]["error.type"] == f"{kind.__module__}.{kind.__qualname__}"


def test_next_after_exhaustion_keeps_one_span(
    openai_client: OpenAI, clew_spans: SpanCapture
) -> None:
    stream = create(openai_client)
    while True:
        try:
            next(stream)
        except StopIteration:
            break
    with pytest.raises(StopIteration):
        next(stream)
    assert only_llm_span(clew_spans)["attributes"]["clew.stream.end"] == "exhausted"


def _stream_tool_call(client: OpenAI, name: str, properties: dict[str, Any]) -> list[str]:
    """Stream a call of tool ``name``; returns the argument pieces the chunks carried."""
    parameters = {"type": "object", "properties": properties}
    tools = [{"type": "function", "function": {"name": name, "parameters": parameters}}]
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"call {name}"}],
            tools=tools,  # type: ignore[arg-type]
            stream=True,
        )
    )
    return [
        tc.function.arguments
        for c in chunks
        if c.choices
        for tc in c.choices[0].delta.tool_calls or ()
        if tc.function and tc.function.arguments
    ]


def test_tool_call_deltas_are_assembled(openai_client: OpenAI, clew_spans: SpanCapture) -> None:
    pieces = _stream_tool_call(openai_client, "get_weather", {"city": {"type": "string"}})
    assert len(pieces) > 1  # really streamed in parts
    record = only_llm_span(clew_spans)
    (message,) = json.loads(record["attributes"]["gen_ai.output.messages"])
    assert message["finish_reason"] == "tool_calls"
    assert message["parts"][0]["name"] == "get_weather"
    assert message["parts"][0]["arguments"] == json.loads("".join(pieces))


def test_secret_named_tool_arguments_are_redacted_in_a_stream(
    openai_client: OpenAI, clew_spans: SpanCapture
) -> None:
    # Text-only output skips the look for secret-named keys; tool arguments must not.
    pieces = _stream_tool_call(openai_client, "login", {"api_key": {"type": "string"}})
    secret = json.loads("".join(pieces))["api_key"]
    text = only_llm_span(clew_spans)["attributes"]["gen_ai.output.messages"]
    assert secret not in text
    (message,) = json.loads(text)
    assert message["parts"][0]["arguments"] == {"api_key": "[REDACTED]"}


# -- async -----------------------------------------------------------------------------------
async def acreate(client: AsyncOpenAI, **extra: Any) -> Any:
    return await client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, **extra
    )


async def test_async_exhausted(async_openai_client: AsyncOpenAI, clew_spans: SpanCapture) -> None:
    chunks = [c async for c in await acreate(async_openai_client, **WITH_USAGE)]
    record = only_llm_span(clew_spans)
    assert record["output_tokens"] == chunks[-1].usage.completion_tokens
    assert record["attributes"]["clew.stream.end"] == "exhausted"
    assert record["time_to_first_token"] > 0


async def test_async_break(async_openai_client: AsyncOpenAI, clew_spans: SpanCapture) -> None:
    stream = await acreate(async_openai_client)
    async for _ in stream:
        break
    await stream.close()
    for _ in range(5):
        await asyncio.sleep(0)
    record = only_llm_span(clew_spans)
    assert record["attributes"]["clew.stream.end"] == "closed"


async def test_async_close(async_openai_client: AsyncOpenAI, clew_spans: SpanCapture) -> None:
    stream = await acreate(async_openai_client)
    await stream.__anext__()
    await stream.close()
    assert only_llm_span(clew_spans)["attributes"]["clew.stream.end"] == "closed"


async def test_async_with(async_openai_client: AsyncOpenAI, clew_spans: SpanCapture) -> None:
    async with await acreate(async_openai_client) as stream:
        await stream.__anext__()
    assert only_llm_span(clew_spans)["attributes"]["clew.stream.end"] == "closed"


async def test_async_gc(async_openai_client: AsyncOpenAI, clew_spans: SpanCapture) -> None:
    stream = await acreate(async_openai_client)
    del stream
    gc.collect()
    assert only_llm_span(clew_spans)["attributes"]["clew.stream.end"] == "dropped"


async def test_async_error_mid_stream(
    async_openai_client: AsyncOpenAI, server: FakeLLMServer, clew_spans: SpanCapture
) -> None:
    server.break_next_stream(after=2, mode="error")
    with pytest.raises(openai.APIError):
        async for _ in await acreate(async_openai_client):
            pass
    record = only_llm_span(clew_spans)
    assert record["status"] == "error"
    assert record["attributes"]["clew.stream.end"] == "error"


async def test_a_stream_ended_in_another_task_does_not_break_context(
    async_openai_client: AsyncOpenAI, clew_spans: SpanCapture
) -> None:
    stream = await acreate(async_openai_client)

    async def consume() -> int:
        return len([c async for c in stream])

    assert await asyncio.create_task(consume()) > 0
    assert only_llm_span(clew_spans)["attributes"]["clew.stream.end"] == "exhausted"


def _state_of(state: Any) -> Any:
    return (
        state.response_id,
        state.model,
        state.usage,
        {i: (c.text, c.finish_reason, c.tools) for i, c in state.choices.items()},
    )


def _chunk(index: int, content: str | None, finish: str | None = None, **extra: Any) -> Any:
    from openai.types.chat import ChatCompletionChunk

    choice = {"index": index, "delta": {"content": content, **extra}, "finish_reason": finish}
    return ChatCompletionChunk.model_validate(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [choice],
        }
    )


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param(lambda: [_chunk(0, "a"), _chunk(0, "b", "stop")], id="one-choice"),
        pytest.param(  # two choices although the request asked for one: the general path
            lambda: [
                _chunk(0, "a"),
                _chunk(1, "x"),
                _chunk(0, "b", "stop"),
                _chunk(1, "y", "length"),
            ],
            id="index-1-arrives",
        ),
        pytest.param(
            lambda: [
                _chunk(
                    0,
                    None,
                    tool_calls=[
                        {"index": 0, "id": "t1", "function": {"name": "f", "arguments": '{"a"'}}
                    ],
                ),
                _chunk(
                    0,
                    None,
                    "tool_calls",
                    tool_calls=[{"index": 0, "function": {"arguments": ": 1}"}}],
                ),
            ],
            id="tool-call-deltas",
        ),
    ],
)
def test_the_chunk_short_path_keeps_what_the_general_path_keeps(chunks: Any) -> None:
    from clew.providers.openai import ChatStreamState

    body = {"model": "m", "messages": MESSAGES}
    short, general = ChatStreamState(body), ChatStreamState(body)
    general.single = False
    for chunk in chunks():
        short.record(chunk)
        general.record(chunk)
    assert _state_of(short) == _state_of(general)
    assert short.choices  # something was kept


def test_a_chunk_that_is_not_an_sdk_model_is_read_on_the_general_path() -> None:
    from types import SimpleNamespace

    from clew.providers.openai import ChatStreamState

    state = ChatStreamState({"model": "m", "messages": MESSAGES})
    state.record(_chunk(0, "a"))
    odd = SimpleNamespace(
        id="c1", choices=[SimpleNamespace(index=0, text="b", finish_reason="stop")]
    )
    state.record(odd)  # no usage, no delta: the short path gives up, nothing is lost
    assert not state.single
    assert state.choices[0].text == ["a", "b"]
    assert state.choices[0].finish_reason == "stop"
