"""The stream states read a stream's JSON (the completion gateway's path) exactly as they read
the SDK's objects (the instrumentation's path): the same outcome, for every recorded stream and
for the fake server's streams, cut into random pieces."""

from __future__ import annotations

import csv
import dataclasses
import json
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic._models import construct_type as anthropic_construct
from hypothesis import given, settings
from hypothesis import strategies as st
from openai._models import construct_type as openai_construct
from openai.types.chat import ChatCompletionChunk
from openai.types.completion import Completion

from clew.providers.anthropic import MessagesStreamState
from clew.providers.openai import ChatStreamState
from clew.providers.wire import SseDecoder
from clew.testing.cassettes import Interaction, fixtures_dir, load_cassette
from clew.testing.llm_server import FakeLLMServer

CASSETTES = fixtures_dir() / "cassettes"


def _streams() -> list[Any]:
    found = []
    with open(CASSETTES / "INDEX.tsv", newline="", encoding="utf-8") as index:
        rows = list(csv.DictReader(index, delimiter="\t"))
    for row in rows:
        for number, interaction in enumerate(load_cassette(CASSETTES / row["path"])):
            if (
                interaction.is_stream
                and interaction.status == 200
                and interaction.route
                in (
                    "/v1/chat/completions",
                    "/v1/completions",
                    "/v1/messages",
                )
            ):
                found.append(pytest.param(interaction, id=f"{row['path']}#{number}"))
    return found


def _decode(body: bytes, cuts: list[int]) -> list[Any]:
    decoder = SseDecoder()
    events: list[Any] = []
    start = 0
    for cut in sorted({c % (len(body) + 1) for c in cuts}):
        events.extend(decoder.feed(body[start:cut]))
        start = cut
    events.extend(decoder.feed(body[start:]))
    events.extend(decoder.close())
    return events


def _sdk(route: str, event: dict[str, Any]) -> Any:
    """The SDK's object for an event, built as the SDK's own stream builds it (leniently)."""
    if route == "/v1/messages":
        return anthropic_construct(type_=anthropic.types.RawMessageStreamEvent, value=event)
    kind = Completion if route == "/v1/completions" else ChatCompletionChunk
    return openai_construct(type_=kind, value=event)


def _outcomes(route: str, body: dict[str, Any], events: list[Any]) -> tuple[Any, Any]:
    factory = MessagesStreamState if route == "/v1/messages" else ChatStreamState
    from_json, from_sdk = factory(body), factory(body)
    for event in events:
        if isinstance(event, dict) and event.get("type") in ("ping", "error"):
            continue  # not a message event (the SDK raises on error events itself)
        from_json.record(event)
        from_sdk.record(_sdk(route, event))
    return dataclasses.asdict(from_json.outcome()), dataclasses.asdict(from_sdk.outcome())


@pytest.mark.parametrize("interaction", _streams())
def test_a_recorded_stream_reads_the_same_as_json_and_as_sdk_objects(
    interaction: Interaction,
) -> None:
    body = interaction.request_json() or {}
    events = _decode(interaction.response_body, [])
    assert events, "the stream has events"
    from_json, from_sdk = _outcomes(interaction.route, body, events)
    assert from_json == from_sdk
    assert from_json["usage"] is not None


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(["openai", "anthropic"]),
    tools=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=12),
)
def test_fake_streams_read_the_same_in_any_pieces(kind: str, tools: bool, cuts: list[int]) -> None:
    request: dict[str, Any] = {
        "model": "gpt-4o-mini" if kind == "openai" else "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "call the lookup tool please"}],
        "stream": True,
        "max_tokens": 200,
    }
    if kind == "openai":
        request["stream_options"] = {"include_usage": True}
    if tools:
        schema = {"type": "object", "properties": {"q": {"type": "string"}}}
        request["tools"] = (
            [{"type": "function", "function": {"name": "lookup", "parameters": schema}}]
            if kind == "openai"
            else [{"name": "lookup", "input_schema": schema}]
        )
    path = "/v1/chat/completions" if kind == "openai" else "/v1/messages"
    with FakeLLMServer() as server, httpx2.Client() as client:
        raw = client.post(server.url + path, content=json.dumps(request)).content
    whole = _decode(raw, [])
    pieces = _decode(raw, cuts)
    assert pieces == whole
    route = "/v1/messages" if kind == "anthropic" else "/v1/chat/completions"
    from_json, from_sdk = _outcomes(route, request, pieces)
    assert from_json == from_sdk
    parts = from_json["messages"][0]["parts"]
    assert any(p["type"] == "tool_call" for p in parts) is tools


@settings(max_examples=200, deadline=None)
@given(
    messages=st.lists(
        st.fixed_dictionaries(
            {
                "role": st.sampled_from(["system", "user", "assistant"]),
                "content": st.one_of(
                    st.text(),
                    st.just("my key is sk-abcdefghijklmnopqrstuvwxyz0123"),
                    st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": st.text()})),
                ),
            },
            optional={"name": st.text(max_size=8)},
        ),
        max_size=6,
    )
)
def test_text_only_input_messages_take_the_short_path_to_the_same_json(
    messages: list[dict[str, Any]],
) -> None:
    from clew.providers.openai import _chat_messages, _text_only
    from clew.tracer.serialize import to_json

    converted = _chat_messages(messages)
    assert _text_only(converted)
    assert to_json(converted, plain=True) == to_json(converted)
