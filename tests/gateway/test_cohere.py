"""Cohere: recorded real responses read exactly, the request the wire builds, and round trips
through the fake server.

The recorded expectations are read from the raw JSON here, with ``json`` alone, and
cross-checked against INDEX.tsv's ``usage`` column; clew reports and prices Cohere's billed
units (see :mod:`clew.providers.cohere`).
"""

from __future__ import annotations

import contextlib
import csv
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price
from hypothesis import given, settings
from hypothesis import strategies as st

from clew.errors import InvalidRequestError
from clew.providers.cohere import COHERE_WIRE, ROUTE, usage_of
from clew.providers.engine import Outcome
from clew.providers.pricing import cost_of
from clew.providers.usage import Usage
from clew.providers.wire import Prompt, Target, loads
from clew.providers.wires import wire_for
from clew.testing.cassettes import Interaction, fixtures_dir, load_cassette
from clew.testing.llm_server import FakeLLMServer
from clew.testing.llm_server.cohere_routes import COHERE_STREAM_ERROR, TEMPLATE_TOKENS

GATEWAY = fixtures_dir() / "cassettes" / "gateway"
TARGET = Target("cohere", "https://api.cohere.com", "co-key")


# -- recorded responses ----------------------------------------------------------------------
def _index_usage(column: str) -> dict[int | None, dict[str, int] | None]:
    """INDEX.tsv's usage column: ``#0 in=.. out=.. billed_in=.. ; #1 -`` → by interaction."""
    found: dict[int | None, dict[str, int] | None] = {}
    for piece in column.split(";"):
        match = re.fullmatch(r"\s*(?:#(\d+)\s+)?(.*?)\s*", piece)
        assert match is not None
        number = int(match[1]) if match[1] else None
        rest = match[2]
        found[number] = (
            None
            if rest == "-"
            else {k: int(v) for k, v in (pair.split("=") for pair in rest.split())}
        )
    return found


def _recorded() -> Iterator[Any]:
    with open(GATEWAY / "INDEX.tsv", newline="", encoding="utf-8") as index:
        rows = [r for r in csv.DictReader(index, delimiter="\t") if r["provider"] == "cohere"]
    assert len(rows) >= 15
    for row in rows:
        for number, interaction in enumerate(load_cassette(GATEWAY / row["path"])):
            if "cohere" in interaction.uri and interaction.status == 200:
                name = f"{Path(row['path']).stem}#{number}"
                yield pytest.param(row, number, interaction, id=name)


RECORDED = list(_recorded())


class Expected:
    """What one recorded response says, read from its raw JSON."""

    def __init__(self) -> None:
        self.response_id: str | None = None
        self.finish: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.usage: dict[str, Any] | None = None  # Cohere's own: billed_units, tokens ...
        self.error: str | None = None

    @property
    def text(self) -> str:
        return "".join(p["content"] for p in self.parts if p["type"] == "text")


def _message_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    parts = []
    for block in message.get("content") or []:
        if block["type"] == "text":
            parts.append({"type": "text", "content": block["text"]})
        elif block["type"] == "thinking":
            parts.append({"type": "reasoning", "content": block["thinking"]})
    if message.get("tool_plan"):
        parts.append({"type": "reasoning", "content": message["tool_plan"]})
    for call in message.get("tool_calls") or []:
        function = call["function"]
        arguments = json.loads(function["arguments"])
        part = {"type": "tool_call", "id": call["id"], "name": function["name"]}
        parts.append({**part, "arguments": arguments})
    return parts


def _sse_events(body: bytes) -> list[dict[str, Any]]:
    events = []
    for block in body.decode().split("\n\n"):
        data = [line[5:].strip() for line in block.splitlines() if line.startswith("data:")]
        if data and data[0] != "[DONE]":
            events.append(json.loads("\n".join(data)))
    return events


def _expected(interaction: Interaction, api: str) -> Expected:
    exp = Expected()
    body = interaction.response_body
    if api == "chat-v1":
        raw = json.loads(body)
        exp.response_id, exp.finish, exp.usage = (
            raw["response_id"],
            raw["finish_reason"],
            raw["meta"],
        )
        exp.parts = [{"type": "text", "content": raw["text"]}]
    elif api == "chat-stream-v1":
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        end = lines[-1]
        assert end["event_type"] == "stream-end"
        text = "".join(e["text"] for e in lines if e["event_type"] == "text-generation")
        assert text == end["response"]["text"]
        exp.response_id, exp.finish = end["response"]["response_id"], end["finish_reason"]
        exp.usage, exp.parts = end["response"]["meta"], [{"type": "text", "content": text}]
    elif api == "chat-stream":
        blocks: dict[int, dict[str, Any]] = {}
        calls: dict[int, dict[str, Any]] = {}
        plan = ""
        for event in _sse_events(body):
            delta = event.get("delta", {})
            message = delta.get("message", {})
            if event["type"] == "message-start":
                exp.response_id = event["id"]
            elif event["type"] == "content-start":
                blocks[event["index"]] = dict(message["content"])
            elif event["type"] == "content-delta":
                for key, piece in message["content"].items():
                    blocks[event["index"]][key] += piece
            elif event["type"] == "tool-plan-delta":
                plan += message["tool_plan"]
            elif event["type"] == "tool-call-start":
                calls[event["index"]] = message["tool_calls"]
            elif event["type"] == "tool-call-delta":
                piece = message["tool_calls"]["function"]["arguments"]
                calls[event["index"]]["function"]["arguments"] += piece
            elif event["type"] == "message-end":
                exp.finish, exp.usage, exp.error = (
                    delta["finish_reason"],
                    delta.get("usage"),
                    delta.get("error"),
                )
        content = [blocks[i] for i in sorted(blocks)]
        tool_calls = [calls[i] for i in sorted(calls)]
        exp.parts = _message_parts(
            {"content": content, "tool_plan": plan, "tool_calls": tool_calls}
        )
    else:
        raw = json.loads(body)
        exp.response_id, exp.finish, exp.usage = raw["id"], raw["finish_reason"], raw["usage"]
        exp.parts = _message_parts(raw["message"])
    return exp


def _check_index(row: dict[str, str], number: int, exp: Expected) -> None:
    usage = _index_usage(row["usage"])
    listed = usage[number] if number in usage else usage[None]
    if listed is None:
        assert not exp.usage
        return
    assert exp.usage is not None
    billed, tokens = exp.usage["billed_units"], exp.usage["tokens"]
    assert (listed["billed_in"], listed["billed_out"]) == (
        billed["input_tokens"],
        billed["output_tokens"],
    )
    assert (listed["in"], listed["out"]) == (tokens["input_tokens"], tokens["output_tokens"])
    assert listed.get("cached", 0) == exp.usage.get("cached_tokens", 0)


def _check(outcome: Outcome, exp: Expected, model: str | None) -> None:
    assert outcome.response_id == exp.response_id
    assert outcome.finish_reasons == [exp.finish]
    assert outcome.model is None  # Cohere does not name the model: the requested one is used
    assert outcome.messages == [
        {"role": "assistant", "parts": exp.parts, "finish_reason": exp.finish}
    ]
    if not exp.usage:  # a stream that failed before reporting usage: estimated
        assert outcome.usage is not None and outcome.usage.estimated
        assert outcome.usage.input_tokens > 0
        return
    billed = exp.usage["billed_units"]
    assert outcome.usage == Usage(
        input_uncached=billed["input_tokens"], output=billed["output_tokens"]
    )
    cost = cost_of(outcome.usage, model, "cohere")
    if model is None:
        assert cost.amount is None and cost.error == "no model name"
        return
    price_usage = PriceUsage(
        input_tokens=billed["input_tokens"], output_tokens=billed["output_tokens"]
    )
    try:
        expected = float(calc_price(price_usage, model, provider_id="cohere").total_price)
    except LookupError:
        assert (
            cost.amount is None and cost.error is not None and "not in genai-prices" in cost.error
        )
    else:
        assert cost.amount == expected


def _pieces(body: bytes, split: int | str) -> Iterator[bytes]:
    if split == "whole":
        yield body
        return
    rng = random.Random(split)
    at = 0
    while at < len(body):
        size = split if isinstance(split, int) and split < 100 else rng.randint(1, 97)
        yield body[at : at + size]
        at += size


@pytest.mark.parametrize(("row", "number", "interaction"), RECORDED)
def test_a_recorded_response_is_read_exactly(
    row: dict[str, str], number: int, interaction: Interaction
) -> None:
    api = row["api"]
    exp = _expected(interaction, api)
    _check_index(row, number, exp)
    request = json.loads(interaction.request_body)
    model = request.get("model")
    if api in ("chat", "chat-v1"):
        _check(ROUTE.response(loads(interaction.response_body)), exp, model)
        _check(ROUTE.response(json.loads(interaction.response_body)), exp, model)
        return
    assert ROUTE.stream_state is not None
    if api == "chat-stream-v1":  # one JSON object per line (the wire itself speaks v2)
        state = ROUTE.stream_state(request)
        deltas = []
        for line in interaction.response_body.splitlines():
            if line.strip():
                event = loads(line)
                state.record(event)
                deltas.append(COHERE_WIRE.delta(event) or "")
        _check(state.outcome(), exp, model)
        assert "".join(deltas) == exp.text
        return
    for split in ("whole", 1, 7, 1000, 1001, 1002):  # 1000+: random piece sizes, seeded
        decoder = COHERE_WIRE.decoder()
        state = ROUTE.stream_state(request)
        events = []
        for piece in _pieces(interaction.response_body, split):
            events.extend(decoder.feed(piece))
        events.extend(decoder.close())
        for event in events:
            state.record(event)
        _check(state.outcome(), exp, model)
        assert "".join(COHERE_WIRE.delta(e) or "" for e in events) == exp.text
        errors = [COHERE_WIRE.stream_error(e) for e in events]
        assert errors == [None] * (len(events) - 1) + [exp.error]


def test_every_kind_of_recording_is_covered() -> None:
    apis = {param.values[0]["api"] for param in RECORDED}
    assert apis == {"chat", "chat-stream", "chat-v1", "chat-stream-v1"}
    assert len(RECORDED) == 18


def test_processed_tokens_are_used_when_nothing_is_billed() -> None:
    usage = {"tokens": {"input_tokens": 2935.0, "output_tokens": 4.0}, "cached_tokens": 2928}
    assert usage_of(usage) == Usage(input_uncached=7, cache_read=2928, output=4)
    assert usage_of({"billed_units": {"input_tokens": 5}}) == Usage(input_uncached=5)
    assert usage_of({}) is None
    assert usage_of(None) is None
    assert ROUTE.response(loads(b'{"id": "x", "finish_reason": "COMPLETE"}')).usage is None


# -- the request the wire builds -------------------------------------------------------------
NAMES = st.text("abcdefgh_", min_size=1, max_size=8)
TEXTS = st.text(max_size=12)
FORMATS = [
    {"type": "text"},
    {"type": "json_object"},
    {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
]
_COHERE_FORMATS = [
    {"type": "text"},
    {"type": "json_object"},
    {"type": "json_object", "json_schema": {"type": "object"}},
]
PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "temp": st.floats(0, 1),
        "top_p": st.floats(0, 1),
        "frequency_penalty": st.floats(-2, 2),
        "presence_penalty": st.floats(-2, 2),
        "max_length": st.integers(1, 4096),
        "response_format": st.sampled_from(FORMATS),
        "safe_prompt": st.booleans(),
    },
)
_OUR_NAMES = {"temp": "temperature", "max_length": "max_tokens"}
_SCHEMA = {"type": "object", "properties": {"x": {"type": "string"}}}


@st.composite
def prompts(draw: st.DrawFn) -> Prompt:
    """Prompts of every shape the gateway hands a wire: system prompts, history with tool
    calls (OpenAI's and legacy function calls) answered by tool messages, functions,
    function_call and any subset of the model parameters."""
    functions = draw(st.lists(NAMES, max_size=3, unique=True))
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": draw(TEXTS)} for _ in range(draw(st.integers(0, 2)))
    ]
    calls = 0
    for kind in draw(
        st.lists(st.sampled_from(["user", "assistant", "tools", "legacy"]), max_size=4)
    ):
        if kind == "user":
            image = {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}
            parts = st.lists(
                st.one_of(TEXTS.map(lambda t: {"type": "text", "text": t}), st.just(image))
            )
            messages.append({"role": "user", "content": draw(st.one_of(TEXTS, parts))})
        elif kind == "assistant":
            messages.append({"role": "assistant", "content": draw(TEXTS)})
        elif kind == "tools":
            ids = [f"call_{calls + n}" for n in range(draw(st.integers(1, 3)))]
            calls += len(ids)
            tool_calls = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": draw(NAMES), "arguments": json.dumps({"x": draw(TEXTS)})},
                }
                for call_id in ids
            ]
            content = draw(st.one_of(st.none(), TEXTS))
            messages.append({"role": "assistant", "content": content, "tool_calls": tool_calls})
            messages += [{"role": "tool", "tool_call_id": i, "content": draw(TEXTS)} for i in ids]
        else:
            name = draw(NAMES)
            legacy = {"name": name, "arguments": json.dumps({"x": draw(TEXTS)})}
            messages.append({"role": "assistant", "content": None, "function_call": legacy})
            messages.append({"role": "function", "name": name, "content": draw(TEXTS)})
    messages.append({"role": "user", "content": draw(TEXTS)})
    choices = [
        st.none(),
        st.sampled_from(["auto", "none", "required"]),
        NAMES.map(lambda n: {"name": n}),
    ]
    if functions:
        choices.append(st.sampled_from(functions).map(lambda n: {"name": n}))
    specs = tuple({"name": n, "description": draw(TEXTS), "parameters": _SCHEMA} for n in functions)
    return Prompt("command-r", tuple(messages), draw(PARAMS), specs, draw(st.one_of(*choices)))


def _problems(prompt: Prompt) -> set[str]:
    """The parameters Cohere cannot honour in ``prompt`` (each an InvalidRequestError)."""
    found = set()
    params = prompt.params
    if params.get("safe_prompt"):
        found.add("llm_configuration.model_params.safe_prompt")
    for key in ("frequency_penalty", "presence_penalty"):
        if not 0 <= params.get(key, 0) <= 1:
            found.add(f"llm_configuration.model_params.{key}")
    names = [f["name"] for f in prompt.functions]
    choice = prompt.function_call
    if (isinstance(choice, dict) and names != [choice["name"]]) or (
        choice == "required" and not names
    ):
        found.add("llm_configuration.function_call")
    return found


@settings(max_examples=200)
@given(prompts(), st.booleans())
def test_the_body_is_valid_for_cohere_and_carries_every_parameter(
    prompt: Prompt, stream: bool
) -> None:
    problems = _problems(prompt)
    if problems:
        with pytest.raises(InvalidRequestError) as raised:
            COHERE_WIRE.build(prompt, TARGET, stream)
        assert raised.value.param in problems
        return
    request = COHERE_WIRE.build(prompt, TARGET, stream)
    body = request.body
    assert json.loads(request.content) == body
    assert request.url == "https://api.cohere.com/v2/chat"
    assert request.headers["authorization"] == "Bearer co-key"
    assert body["model"] == "command-r" and body["stream"] is stream
    # messages: one each, roles Cohere knows, every tool message answers an earlier call
    roles = [m["role"] for m in body["messages"]]
    assert roles == [{"function": "tool"}.get(m["role"], m["role"]) for m in prompt.messages]
    called: list[str] = []
    answered: list[str] = []
    for sent, given_message in zip(body["messages"], prompt.messages, strict=True):
        if sent["role"] == "tool":
            assert sent["tool_call_id"] in called
            answered.append(sent["tool_call_id"])
            assert sent["content"] == given_message["content"]
        for call in sent.get("tool_calls", ()):
            called.append(call["id"])
            assert call["type"] == "function"
            assert isinstance(call["function"]["arguments"], str)
        if sent["role"] == "assistant":
            assert "content" in sent or sent.get("tool_calls")
    assert sorted(answered) == sorted(called)
    # every parameter under its Cohere name
    params = dict(prompt.params)
    params.pop("safe_prompt", None)
    for key, value in params.items():
        if key == "top_p":
            assert body["p"] == min(max(value, 0.01), 0.99)
        elif key == "response_format":
            assert body["response_format"] == _COHERE_FORMATS[FORMATS.index(value)]
        else:
            assert body[_OUR_NAMES.get(key, key)] == value
    assert not {"temp", "top_p", "max_length", "safe_prompt", "functions"} & set(body)
    names = [f["name"] for f in prompt.functions]
    assert [t["function"]["name"] for t in body.get("tools", ())] == names
    assert all(t["function"]["parameters"] == _SCHEMA for t in body.get("tools", ()))
    choice = prompt.function_call
    expected_choice = (
        "REQUIRED"
        if choice == "required" or isinstance(choice, dict)
        else "NONE"
        if choice == "none" and names
        else None
    )
    assert body.get("tool_choice") == expected_choice


def _build(*messages: dict[str, Any], stream: bool = False, **kwargs: Any) -> dict[str, Any]:
    prompt = Prompt("command-a-03-2025", messages or ({"role": "user", "content": "Hi"},), **kwargs)
    return dict(COHERE_WIRE.build(prompt, TARGET, stream).body)


def test_messages_map_onto_cohere_roles() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}
    body = _build(
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": [{"type": "text", "text": "Look"}, image]},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
        {"role": "assistant", "content": "It is 42."},
        {"role": "user", "content": "Thanks"},
    )
    assert body == {
        "model": "command-a-03-2025",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Look"}, image]},
            {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
            {"role": "assistant", "content": "It is 42."},
            {"role": "user", "content": "Thanks"},
        ],
        "stream": False,
    }


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ({"role": "tool", "content": "42"}, "llm_configuration.messages"),
        ({"role": "critic", "content": "x"}, "llm_configuration.messages"),
        ({"role": "user", "content": [{"type": "input_audio"}]}, "llm_configuration.messages"),
    ],
)
def test_a_message_cohere_cannot_take_is_refused(message: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        _build(message)
    assert raised.value.param == param
    with pytest.raises(InvalidRequestError):
        COHERE_WIRE.build(Prompt("command-r", ()), TARGET, False)


def test_model_params_take_cohere_names() -> None:
    params = {"temp": 0.3, "top_p": 0.5, "frequency_penalty": 0.2, "presence_penalty": 0.1}
    body = _build(params={**params, "max_length": 100, "safe_prompt": False})
    assert {k: body[k] for k in ("temperature", "p", "frequency_penalty", "presence_penalty")} == {
        "temperature": 0.3,
        "p": 0.5,
        "frequency_penalty": 0.2,
        "presence_penalty": 0.1,
    }
    assert body["max_tokens"] == 100 and "safe_prompt" not in body
    assert _build(params={"top_p": 1.0})["p"] == 0.99  # Cohere's p stops at 0.99
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    json_schema = {"type": "json_schema", "json_schema": {"name": "A", "schema": schema}}
    assert _build(params={"response_format": json_schema})["response_format"] == {
        "type": "json_object",
        "json_schema": schema,
    }
    assert _build(params={"response_format": {"type": "json_object"}})["response_format"] == {
        "type": "json_object"
    }


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"safe_prompt": True}, "safe_prompt"),
        ({"frequency_penalty": -0.5}, "frequency_penalty"),
        ({"presence_penalty": 1.5}, "presence_penalty"),
        ({"response_format": {"type": "grammar"}}, "response_format"),
        ({"response_format": {"type": "json_schema"}}, "response_format"),
    ],
)
def test_a_parameter_cohere_cannot_honour_is_refused(params: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        _build(params=params)
    assert raised.value.param == f"llm_configuration.model_params.{param}"


WEATHER = {"name": "get_weather", "description": "Weather", "parameters": _SCHEMA}
TIME = {"name": "get_time", "parameters": _SCHEMA, "strict": True}


def test_functions_become_tools_and_function_call_a_tool_choice() -> None:
    body = _build(functions=(WEATHER, TIME))
    assert body["tools"] == [
        {"type": "function", "function": WEATHER},
        {"type": "function", "function": {"name": "get_time", "parameters": _SCHEMA}},
    ]
    assert "tool_choice" not in body and "strict_tools" not in body
    assert _build(functions=(TIME,))["strict_tools"] is True
    assert _build(functions=(WEATHER,), function_call="none")["tool_choice"] == "NONE"
    assert _build(functions=(WEATHER, TIME), function_call="required")["tool_choice"] == "REQUIRED"
    forced = _build(functions=(WEATHER,), function_call={"name": "get_weather"})
    assert forced["tool_choice"] == "REQUIRED"  # the one function: exactly what was asked
    assert "tool_choice" not in _build(functions=(WEATHER,), function_call="auto")


@pytest.mark.parametrize(
    ("functions", "function_call"),
    [
        ((WEATHER, TIME), {"name": "get_weather"}),  # Cohere cannot force one of several
        ((WEATHER,), {"name": "get_time"}),
        ((), {"name": "get_time"}),
        ((), "required"),
        ((WEATHER,), "sometimes"),
    ],
)
def test_a_function_call_cohere_cannot_honour_is_refused(
    functions: tuple[dict[str, Any], ...], function_call: Any
) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        _build(functions=functions, function_call=function_call)
    assert raised.value.param == "llm_configuration.function_call"


def test_the_url_headers_and_stream_flag() -> None:
    prompt = Prompt("command-r", ({"role": "user", "content": "Hi"},))
    for base in ("https://api.cohere.com", "https://api.cohere.com/", "https://api.cohere.com/v2"):
        request = COHERE_WIRE.build(prompt, Target("cohere", base, "k"), True)
        assert request.url == "https://api.cohere.com/v2/chat"
        assert request.body["stream"] is True
    keyless = COHERE_WIRE.build(prompt, Target("cohere", "http://proxy.test"), False)
    assert "authorization" not in keyless.headers and keyless.url == "http://proxy.test/v2/chat"
    assert COHERE_WIRE.default_base_url(TARGET) == "https://api.cohere.com"
    assert COHERE_WIRE.name == "cohere-chat" and COHERE_WIRE.operation == "chat"
    assert wire_for("cohere") is COHERE_WIRE


def test_the_route_reads_request_parameters_and_content() -> None:
    body = {
        "model": "command-r",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "tool_plan": "I will look.",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "Sun"}]},
        ],
        "tools": [{"type": "function", "function": WEATHER}],
        "temperature": 0.2,
        "p": 0.9,
        "k": 40,
        "max_tokens": 10,
        "seed": 7,
        "stop_sequences": ["END"],
        "frequency_penalty": 0.1,
        "presence_penalty": 0.3,
        "response_format": {"type": "json_object"},
        "stream": True,
    }
    assert ROUTE.request(body) == {
        "gen_ai.request.model": "command-r",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.top_k": 40,
        "gen_ai.request.max_tokens": 10,
        "gen_ai.request.seed": 7,
        "gen_ai.request.stop_sequences": ("END",),
        "gen_ai.request.frequency_penalty": 0.1,
        "gen_ai.request.presence_penalty": 0.3,
        "gen_ai.output.type": "json",
        "gen_ai.request.stream": True,
    }
    attrs = ROUTE.content(body, 100_000)
    assert json.loads(attrs["gen_ai.tool.definitions"]) == [{"type": "function", **WEATHER}]
    assert json.loads(attrs["gen_ai.input.messages"]) == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Weather?"}]},
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "content": "I will look."},
                {"type": "tool_call", "id": "c1", "name": "w", "arguments": {}},
            ],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "Sun"}]},
    ]
    v1 = {
        "message": "Hi",
        "preamble": "Be kind.",
        "chat_history": [{"role": "CHATBOT", "message": "Yo"}],
    }
    attrs = ROUTE.content(v1, 100_000)
    assert json.loads(attrs["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "Be kind."}
    ]
    assert json.loads(attrs["gen_ai.input.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Yo"}]},
        {"role": "user", "parts": [{"type": "text", "content": "Hi"}]},
    ]


# -- round trips through the fake server -----------------------------------------------------
QUESTION = {"role": "user", "content": "What is the weather like in Paris today"}


def _send(
    server: FakeLLMServer, prompt: Prompt, client: httpx2.Client | None = None
) -> tuple[int, Any, dict[str, str]]:
    request = COHERE_WIRE.build(prompt, Target("cohere", server.url, "co-key"), False)
    with httpx2.Client() if client is None else contextlib.nullcontext(client) as http:
        response = http.post(request.url, content=request.content, headers=dict(request.headers))
    return response.status_code, loads(response.content), dict(response.headers)


def _stream(server: FakeLLMServer, prompt: Prompt) -> tuple[list[Any], Outcome]:
    request = COHERE_WIRE.build(prompt, Target("cohere", server.url, "co-key"), True)
    assert ROUTE.stream_state is not None
    decoder, state, events = COHERE_WIRE.decoder(), ROUTE.stream_state(request.body), []
    with (
        httpx2.Client() as client,
        client.stream(
            "POST", request.url, content=request.content, headers=dict(request.headers)
        ) as response,
    ):
        assert response.status_code == 200
        for data in response.iter_bytes():
            events.extend(decoder.feed(data))
    events.extend(decoder.close())
    for event in events:
        state.record(event)
    return events, state.outcome()


def _text(outcome: Outcome) -> str:
    assert outcome.messages is not None
    return "".join(p["content"] for p in outcome.messages[0]["parts"] if p["type"] == "text")


def test_a_chat_round_trip_stream_and_not() -> None:
    prompt = Prompt("command-r", ({"role": "system", "content": "Be brief."}, QUESTION))
    with FakeLLMServer() as server:
        status, body, _ = _send(server, prompt)
        events, streamed = _stream(server, prompt)
        sent = server.requests[0]
    assert status == 200
    assert sent.path == "/v2/chat" and sent.headers["authorization"] == "REDACTED"
    assert sent.body == COHERE_WIRE.build(prompt, TARGET, False).body
    outcome = ROUTE.response(body)
    text = (
        "Echo: What is the weather like in "
        "this is a deterministic reply from the clew fake llm server"
    )
    assert _text(outcome) == text
    assert outcome.finish_reasons == ["COMPLETE"]
    billed_in = len(
        ["Be", "brief.", "What", "is", "the", "weather", "like", "in", "Paris", "today"]
    )
    assert body["usage"]["tokens"]["input_tokens"] == billed_in + TEMPLATE_TOKENS
    assert outcome.usage == Usage(input_uncached=billed_in, output=18)
    assert cost_of(outcome.usage, "command-r", "cohere").amount == float(
        calc_price(
            PriceUsage(input_tokens=billed_in, output_tokens=18), "command-r", provider_id="cohere"
        ).total_price
    )
    assert _text(streamed) == text
    assert "".join(COHERE_WIRE.delta(e) or "" for e in events) == text
    assert streamed.usage == outcome.usage and streamed.finish_reasons == ["COMPLETE"]
    assert streamed.response_id == "00000000-0000-4000-8000-000000000002"
    assert not any(COHERE_WIRE.stream_error(e) for e in events)


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_round_trip(stream: bool) -> None:
    tools = (WEATHER, TIME)
    named = Prompt("command-r", (QUESTION,), functions=tools)
    required = Prompt(
        "command-r",
        ({"role": "user", "content": "Hello"},),
        functions=tools,
        function_call="required",
    )
    refused = Prompt("command-r", (QUESTION,), functions=tools, function_call="none")
    with FakeLLMServer() as server:
        if stream:
            outcomes = [_stream(server, p)[1] for p in (named, required, refused)]
        else:
            outcomes = [ROUTE.response(_send(server, p)[1]) for p in (named, required, refused)]
    for outcome, number, words in zip(outcomes[:2], (1, 2), (8, 1), strict=True):
        assert outcome.finish_reasons == ["TOOL_CALL"]
        assert outcome.messages is not None
        assert outcome.messages[0]["parts"] == [
            {"type": "reasoning", "content": "I will call get_weather."},
            {
                "type": "tool_call",
                "id": f"get_weather_fake{number:08d}_0_0",
                "name": "get_weather",
                "arguments": {"x": "example x"},
            },
        ]
        # output: the plan's 4 words and a token per 4 characters of '{"x":"example x"}'
        assert outcome.usage == Usage(input_uncached=words, output=4 + 4)
    assert outcomes[2].finish_reasons == ["COMPLETE"] and _text(outcomes[2]).startswith("Echo:")


def test_a_tool_result_is_answered_and_max_tokens_cuts() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    history = (
        QUESTION,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "Sunny"},
    )
    with FakeLLMServer() as server:
        status, body, _ = _send(server, Prompt("command-r", history, functions=(WEATHER,)))
        _, cut, _ = _send(server, Prompt("command-r", (QUESTION,), {"max_length": 5}))
        _, json_body, _ = _send(
            server, Prompt("command-r", (QUESTION,), {"response_format": {"type": "json_object"}})
        )
    assert status == 200
    answer = ROUTE.response(body)
    assert answer.finish_reasons == ["COMPLETE"] and _text(answer).startswith("Echo: What is")
    limited = ROUTE.response(cut)
    assert limited.finish_reasons == ["MAX_TOKENS"]
    assert _text(limited) == "Echo: What is the weather" and limited.usage is not None
    assert limited.usage.output == 5
    assert "reply" in json.loads(_text(ROUTE.response(json_body)))


def test_faults_come_in_cohere_shape() -> None:
    prompt = Prompt("command-r", (QUESTION,))
    with FakeLLMServer() as server:
        server.fail_next(429, retry_after=1)
        status, body, headers = _send(server, prompt)
        server.fail_next(503)
        unavailable = _send(server, prompt)
        server.break_next_stream(after=2, mode="error")
        events, outcome = _stream(server, prompt)
        bad = Prompt(
            "command-r", ({"role": "tool", "tool_call_id": "nope", "content": "x"}, QUESTION)
        )
        refused = _send(server, bad)
    assert (status, headers["retry-after"]) == (429, "1")
    assert body == {"message": "Rate limit reached."}
    assert COHERE_WIRE.error_message(429, body) == "Rate limit reached."
    assert COHERE_WIRE.error_message(503, unavailable[1]) == "The engine is currently overloaded."
    assert COHERE_WIRE.error_message(500, b"upstream down") == "upstream down"
    # a broken stream: two events, then Cohere's failed message-end
    assert [e["type"] for e in events] == ["message-start", "content-start", "message-end"]
    error = _sse_events(COHERE_STREAM_ERROR)[0]["delta"]["error"]
    assert [COHERE_WIRE.stream_error(e) for e in events] == [None, None, error]
    assert outcome.finish_reasons == ["ERROR"]
    assert outcome.usage is not None and outcome.usage.estimated
    assert COHERE_WIRE.stream_error(loads(b'{"type": "error", "message": "boom"}')) == "boom"
    # a body Cohere refuses: a tool message answering no call
    assert refused[0] == 400
    assert COHERE_WIRE.error_message(400, refused[1]).startswith("invalid request: messages[0]")


@pytest.fixture(scope="module")
def cohere_server() -> Iterator[tuple[FakeLLMServer, httpx2.Client]]:
    with FakeLLMServer(record_requests=False) as server, httpx2.Client() as client:
        yield server, client


@settings(max_examples=40)
@given(prompts())
def test_the_fake_cohere_api_accepts_every_body_the_wire_builds(
    cohere_server: tuple[FakeLLMServer, httpx2.Client], prompt: Prompt
) -> None:
    if _problems(prompt):
        return
    server, client = cohere_server
    status, body, _ = _send(server, prompt, client)
    assert status == 200, body
    outcome = ROUTE.response(body)
    assert outcome.finish_reasons[0] in ("COMPLETE", "MAX_TOKENS", "TOOL_CALL")
    assert outcome.usage is not None and outcome.usage.input_tokens >= 1


@pytest.mark.parametrize("stream", [False, True])
def test_thinking_is_read_as_reasoning(stream: bool) -> None:
    request = COHERE_WIRE.build(Prompt("command-a-reasoning-08-2025", (QUESTION,)), TARGET, stream)
    body = {**request.body, "thinking": {"type": "enabled"}}
    with FakeLLMServer() as server, httpx2.Client() as client:
        response = client.post(server.url + "/v2/chat", json=body)
    if stream:
        decoder = COHERE_WIRE.decoder()
        assert ROUTE.stream_state is not None
        state = ROUTE.stream_state(body)
        for event in [*decoder.feed(response.content), *decoder.close()]:
            state.record(event)
        outcome = state.outcome()
    else:
        outcome = ROUTE.response(loads(response.content))
    assert outcome.messages is not None
    parts = outcome.messages[0]["parts"]
    assert parts[0] == {
        "type": "reasoning",
        "content": "Thinking about: What is the weather like in",
    }
    assert parts[1]["type"] == "text" and parts[1]["content"].startswith("Echo: What is")
    assert outcome.usage == Usage(input_uncached=8, output=8 + 18)
