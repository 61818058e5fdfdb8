"""AWS Bedrock (Converse / ConverseStream): every recorded response read exactly, the request
``build()`` makes, SigV4 signing, and round trips through the fake server.

Expected values are read here from the raw recordings (the JSON, or the event-stream frames
decoded with botocore directly), never from clew's parsers.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import genai_prices
import httpx2
import pytest
from botocore.credentials import Credentials  # type: ignore[import-untyped]
from botocore.eventstream import EventStreamBuffer  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from clew import attributes as a
from clew.errors import AuthenticationError, InvalidRequestError
from clew.providers.bedrock import BEDROCK_WIRE, ROUTE, BedrockWire
from clew.providers.pricing import cost_of
from clew.providers.wire import HttpRequest, Prompt, Target, loads
from clew.testing.cassettes import Interaction, fixtures_dir, load_cassette
from clew.testing.llm_server import FakeLLMServer, ReplayServer
from clew.testing.llm_server.bedrock_routes import BEDROCK_STREAM_ERROR, event_frame

GATEWAY = fixtures_dir() / "cassettes" / "gateway"
REGION = "us-east-1"
FAKE_KEYS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


def _index() -> list[dict[str, str]]:
    with open(GATEWAY / "INDEX.tsv", newline="") as stream:
        rows = list(csv.DictReader(stream, delimiter="\t"))
    return [row for row in rows if row["provider"] == "aws_bedrock"]


# InvokeModel / InvokeModelWithResponseStream rows (api "invoke", "invoke-stream") carry each
# model's native body, not Converse's: the Converse adapter does not speak that API.
CONVERSE_APIS = ("converse", "converse-stream")
ROWS = [row for row in _index() if row["api"] in CONVERSE_APIS]
ERROR_ROWS = [
    row for row in _index() if row["api"] in ("error(converse)", "error(converse-stream)")
]


def _cases(api: str) -> Iterator[Any]:
    for row in ROWS:
        if row["api"] != api:
            continue
        for n, interaction in enumerate(load_cassette(GATEWAY / row["path"])):
            if interaction.status == 200:
                yield pytest.param(row, n, interaction, id=f"{Path(row['path']).stem}#{n}")


CONVERSE_CASES = list(_cases("converse"))
STREAM_CASES = list(_cases("converse-stream"))


def test_the_index_rows_are_split_by_api() -> None:
    apis = {row["api"] for row in _index()}
    assert {"invoke", "invoke-stream"} <= apis  # present, and left out on purpose
    assert len(ROWS) == 14 and len(CONVERSE_CASES) == 13 and len(STREAM_CASES) == 10
    assert len(ERROR_ROWS) == 2


def _index_usage(row: dict[str, str], n: int) -> dict[str, int]:
    """The INDEX.tsv ``usage`` column of interaction ``n`` (``#0 in=.. out=.. ; #1 ...``)."""
    pieces = [p.strip() for p in row["usage"].split(";")]
    piece = next((p for p in pieces if p.startswith(f"#{n} ")), pieces[0] if n == 0 else "")
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", piece)}


def _model_of(interaction: Interaction) -> str:
    return unquote(urlsplit(interaction.uri).path.split("/")[2])


def _expected_blocks(content: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    blocks: list[tuple[Any, ...]] = []
    for block in content:
        if "text" in block:
            blocks.append(("text", block["text"]))
        elif "toolUse" in block:
            use = block["toolUse"]
            blocks.append(("tool_call", use["toolUseId"], use["name"], use["input"]))
        elif "reasoningContent" in block:
            blocks.append(("reasoning", block["reasoningContent"]["reasoningText"]["text"]))
        else:
            raise AssertionError(f"an unexpected block in a recording: {block}")
    return blocks


def _read_parts(parts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    read: list[tuple[Any, ...]] = []
    for part in parts:
        if part["type"] == "tool_call":
            read.append(("tool_call", part["id"], part["name"], part["arguments"]))
        else:
            read.append((part["type"], part["content"]))
    return read


def _check_usage_and_cost(
    row: dict[str, str], n: int, raw: dict[str, Any], usage: Any, model: str
) -> None:
    assert usage is not None and not usage.estimated
    assert usage.input_uncached == raw["inputTokens"]
    assert usage.output == raw["outputTokens"]
    assert usage.cache_read == raw.get("cacheReadInputTokens", 0)
    assert usage.cache_write == raw.get("cacheWriteInputTokens", 0)
    assert usage.input_tokens + usage.output == raw["totalTokens"]
    recorded = _index_usage(row, n)
    assert (recorded["in"], recorded["out"], recorded["total"]) == (
        raw["inputTokens"],
        raw["outputTokens"],
        raw["totalTokens"],
    )
    assert recorded.get("cached", 0) == usage.cache_read
    assert recorded.get("cache_write", 0) == usage.cache_write
    # genai-prices reads the same usage its own way (inputTokens + cache = all input).
    extracted = genai_prices.extract_usage({"usage": raw, "model": model}, provider_id="aws").usage
    assert (extracted.input_tokens, extracted.output_tokens) == (usage.input_tokens, usage.output)
    assert (extracted.cache_read_tokens or 0, extracted.cache_write_tokens or 0) == (
        usage.cache_read,
        usage.cache_write,
    )
    price = genai_prices.calc_price(extracted, model, provider_id="aws").total_price
    cost = cost_of(usage, model, "aws_bedrock")
    assert cost.amount == float(price) and cost.amount > 0


# -- recorded Converse responses ------------------------------------------------------------
@pytest.mark.parametrize(("row", "n", "interaction"), CONVERSE_CASES)
def test_a_recorded_converse_response_is_read_exactly(
    row: dict[str, str], n: int, interaction: Interaction
) -> None:
    raw = json.loads(interaction.response_body)
    outcome = ROUTE.response(loads(interaction.response_body))
    assert outcome.finish_reasons == [raw["stopReason"]]
    assert outcome.model is None and outcome.response_id is None
    assert outcome.messages is not None and len(outcome.messages) == 1
    message = outcome.messages[0]
    assert message["role"] == "assistant" and message["finish_reason"] == raw["stopReason"]
    assert _read_parts(message["parts"]) == _expected_blocks(raw["output"]["message"]["content"])
    _check_usage_and_cost(row, n, raw["usage"], outcome.usage, _model_of(interaction))


def _frames(body: bytes) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    buffer = EventStreamBuffer()
    buffer.add_data(body)
    return [(dict(m.headers), json.loads(m.payload)) for m in buffer]


def _expected_stream(body: bytes) -> tuple[list[tuple[Any, ...]], str, dict[str, Any]]:
    """Blocks, stop reason and usage of a recorded stream, from its frames."""
    blocks: dict[int, dict[str, Any]] = {}
    stop, usage = "", {}
    for headers, payload in _frames(body):
        assert headers[":message-type"] == "event"
        kind = headers[":event-type"]
        if kind == "contentBlockStart":
            use = payload["start"]["toolUse"]
            blocks[payload["contentBlockIndex"]] = {"toolUse": {**use, "input": ""}}
        elif kind == "contentBlockDelta":
            delta = payload["delta"]
            block = blocks.setdefault(payload["contentBlockIndex"], {})
            if "text" in delta:
                block["text"] = block.get("text", "") + delta["text"]
            elif "toolUse" in delta:
                block["toolUse"]["input"] += delta["toolUse"]["input"]
            elif "text" in delta["reasoningContent"]:
                reasoning = block.setdefault("reasoningContent", {"reasoningText": {"text": ""}})
                reasoning["reasoningText"]["text"] += delta["reasoningContent"]["text"]
        elif kind == "messageStop":
            stop = payload["stopReason"]
        elif kind == "metadata":
            usage = payload["usage"]
    content = [blocks[i] for i in sorted(blocks)]
    for block in content:
        if "toolUse" in block:
            block["toolUse"]["input"] = json.loads(block["toolUse"]["input"] or "{}")
    return _expected_blocks(content), stop, usage


def _pieces(body: bytes, sizes: list[int]) -> Iterator[bytes]:
    start, n = 0, 0
    while start < len(body):
        size = sizes[n % len(sizes)]
        yield body[start : start + size]
        start, n = start + size, n + 1


@pytest.mark.parametrize(("row", "n", "interaction"), STREAM_CASES)
@settings(max_examples=10)
@given(sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=12))
def test_a_recorded_stream_is_read_exactly_however_its_bytes_arrive(
    row: dict[str, str], n: int, interaction: Interaction, sizes: list[int]
) -> None:
    body = interaction.response_body
    assert interaction.header("content-type") == "application/vnd.amazon.eventstream"
    expected_blocks, stop, raw_usage = _expected_stream(body)
    decoder = BEDROCK_WIRE.decoder()
    events: list[Any] = []
    for piece in _pieces(body, sizes):
        events.extend(decoder.feed(piece))
    events.extend(decoder.close())
    frames = _frames(body)
    assert events == [
        {**{k: v for k, v in payload.items() if k != "p"}, "type": headers[":event-type"]}
        for headers, payload in frames
    ]
    assert ROUTE.stream_state is not None
    state = ROUTE.stream_state(json.loads(interaction.request_body))
    deltas = []
    for event in events:
        assert BEDROCK_WIRE.stream_error(event) is None
        state.record(event)
        deltas.append(BEDROCK_WIRE.delta(event) or "")
    outcome = state.outcome()
    assert outcome.finish_reasons == [stop]
    assert outcome.messages is not None
    parts = _read_parts(outcome.messages[0]["parts"])
    assert parts == expected_blocks
    assert "".join(deltas) == "".join(p[1] for p in parts if p[0] == "text")
    _check_usage_and_cost(row, n, raw_usage, outcome.usage, _model_of(interaction))


@pytest.mark.parametrize("row", ERROR_ROWS, ids=lambda row: Path(row["path"]).stem)
def test_a_recorded_error_gives_bedrocks_message(row: dict[str, str]) -> None:
    (interaction,) = load_cassette(GATEWAY / row["path"])
    assert interaction.status == 400
    expected = json.loads(interaction.response_body)["message"]
    assert expected == "The provided model identifier is invalid."
    assert BEDROCK_WIRE.error_message(400, loads(interaction.response_body)) == expected
    assert BEDROCK_WIRE.error_message(403, {"Message": "Denied."}) == "Denied."
    assert BEDROCK_WIRE.error_message(502, b"Bad gateway") == "Bad gateway"


def test_an_unknown_model_has_no_cost() -> None:
    usage = ROUTE.response(loads(b'{"usage": {"inputTokens": 3, "outputTokens": 4}}')).usage
    assert usage is not None
    cost = cost_of(usage, "does-not-exist", "aws_bedrock")
    assert cost.amount is None and "not in genai-prices" in (cost.error or "")


# -- what build() sends ----------------------------------------------------------------------
TARGET = Target(
    "aws_bedrock", f"https://bedrock-runtime.{REGION}.amazonaws.com", None, {"region": REGION}
)
MODELS = (
    "amazon.nova-micro-v1:0",
    "arn:aws:bedrock:us-east-1:012345678901:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0",
)
NAMES = ("get_weather", "lookup", "send_mail")
TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
# The seed's parameters; the last four ask for something Converse cannot do unless neutral.
PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "temp": st.floats(0, 1),
        "top_p": st.floats(0, 1),
        "max_length": st.integers(1, 8192),
        "frequency_penalty": st.sampled_from([0, 0.5]),
        "presence_penalty": st.sampled_from([0, -1.0]),
        "safe_prompt": st.booleans(),
        "response_format": st.sampled_from([{"type": "text"}, {"type": "json_object"}]),
    },
)
CONVERSE_NAMES = {"temp": "temperature", "top_p": "topP", "max_length": "maxTokens"}


@st.composite
def prompts(draw: st.DrawFn) -> tuple[Prompt, list[tuple[Any, ...]]]:
    """A prompt, and the blocks (role, kind, ...) its messages hold, in order."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": text} for text in draw(st.lists(TEXT, max_size=2))
    ]
    given: list[tuple[Any, ...]] = []
    calls = 0
    for _ in range(draw(st.integers(1, 4))):
        for _ in range(draw(st.integers(1, 2))):  # two user messages in a row are merged
            text = draw(TEXT)
            as_parts = draw(st.booleans())
            messages.append(
                {"role": "user", "content": [{"type": "text", "text": text}] if as_parts else text}
            )
            given.append(("user", "text", text))
        kind = draw(st.sampled_from(["text", "tools", "nothing"]))
        if kind == "text":
            text = draw(TEXT)
            messages.append({"role": "assistant", "content": text})
            given.append(("assistant", "text", text))
        elif kind == "tools":
            said = draw(st.one_of(st.none(), TEXT))
            message: dict[str, Any] = {"role": "assistant", "content": said, "tool_calls": []}
            if said:
                given.append(("assistant", "text", said))
            results = []
            for _ in range(draw(st.integers(1, 2))):
                calls += 1
                call_id, name = f"call_{calls}", draw(st.sampled_from(NAMES))
                arguments = {"n": draw(st.integers(0, 9))}
                function = {"name": name, "arguments": json.dumps(arguments)}
                message["tool_calls"].append(
                    {"id": call_id, "type": "function", "function": function}
                )
                given.append(("assistant", "toolUse", call_id, name, arguments))
                results.append((call_id, draw(TEXT)))
            messages.append(message)
            for call_id, text in results:
                messages.append({"role": "tool", "tool_call_id": call_id, "content": text})
                given.append(("user", "toolResult", call_id, text))
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=3))
    functions = tuple(
        {
            "name": name,
            "description": draw(st.sampled_from(["", f"Calls {name}."])),
            "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}},
        }
        for name in names
    )
    choices: list[Any] = [None, "auto", "required", "none", {"name": "get_weather"}]
    prompt = Prompt(
        model=draw(st.sampled_from(MODELS)),
        messages=tuple(messages),
        params=draw(PARAMS),
        functions=functions,
        function_call=draw(st.sampled_from(choices)),
    )
    return prompt, given


def _refusals(prompt: Prompt, given: list[tuple[Any, ...]]) -> set[str]:
    """The ``param`` of every InvalidRequestError the prompt deserves."""
    wrong = set()
    params = prompt.params
    for key, neutral in (("frequency_penalty", 0), ("presence_penalty", 0), ("safe_prompt", False)):
        if key in params and params[key] != neutral:
            wrong.add(f"llm_configuration.model_params.{key}")
    if params.get("response_format", {}).get("type", "text") != "text":
        wrong.add("llm_configuration.model_params.response_format")
    names = {f["name"] for f in prompt.functions}
    choice = prompt.function_call
    if not names and any(block[1] == "toolUse" for block in given):
        wrong.add("llm_configuration.functions")
    if (names and choice == "none") or (not names and choice not in (None, "auto", "none")):
        wrong.add("llm_configuration.function_call")
    if isinstance(choice, dict) and names and choice["name"] not in names:
        wrong.add("llm_configuration.function_call")
    return wrong


def _sent_blocks(body: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    sent: list[tuple[Any, ...]] = []
    for message in body["messages"]:
        for block in message["content"]:
            if "text" in block:
                sent.append((message["role"], "text", block["text"]))
            elif "toolUse" in block:
                use = block["toolUse"]
                sent.append(
                    (message["role"], "toolUse", use["toolUseId"], use["name"], use["input"])
                )
            else:
                result = block["toolResult"]
                (content,) = result["content"]
                sent.append((message["role"], "toolResult", result["toolUseId"], content["text"]))
    return sent


@settings(max_examples=150)
@given(case=prompts(), stream=st.booleans())
def test_build_sends_what_converse_wants(
    case: tuple[Prompt, list[tuple[Any, ...]]], stream: bool
) -> None:
    prompt, given = case
    refusals = _refusals(prompt, given)
    if refusals:
        with pytest.raises(InvalidRequestError) as raised:
            BEDROCK_WIRE.build(prompt, TARGET, stream)
        assert raised.value.param in refusals
        return
    request = BEDROCK_WIRE.build(prompt, TARGET, stream)
    body = request.body
    action = "converse-stream" if stream else "converse"
    assert request.url == f"{TARGET.base_url}/model/{quote(prompt.model, safe='')}/{action}"
    assert request.content == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    assert set(body) <= {"messages", "system", "inferenceConfig", "toolConfig"}
    # Roles alternate, starting with the user's; nothing given is lost or reordered.
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["user", "assistant"] * (len(roles) // 2) + ["user"] * (len(roles) % 2)
    assert _sent_blocks(body) == given
    # Every toolResult answers a toolUse of the turn before.
    for before, message in zip(body["messages"], body["messages"][1:], strict=False):
        answered = {b["toolResult"]["toolUseId"] for b in message["content"] if "toolResult" in b}
        asked = {b["toolUse"]["toolUseId"] for b in before["content"] if "toolUse" in b}
        assert answered <= asked
    systems = [m["content"] for m in prompt.messages if m["role"] == "system"]
    assert body.get("system", []) == [{"text": text} for text in systems]
    expected_config = {
        CONVERSE_NAMES[k]: v for k, v in prompt.params.items() if k in CONVERSE_NAMES
    }
    assert body.get("inferenceConfig", {}) == expected_config
    if not prompt.functions:
        assert "toolConfig" not in body
        return
    tools = body["toolConfig"]["tools"]
    assert [t["toolSpec"]["name"] for t in tools] == [f["name"] for f in prompt.functions]
    for tool, function in zip(tools, prompt.functions, strict=True):
        assert tool["toolSpec"]["inputSchema"] == {"json": function["parameters"]}
        assert tool["toolSpec"].get("description", "") == function["description"]
    choice = prompt.function_call
    expected_choice: dict[str, Any] | None = None
    if choice == "auto":
        expected_choice = {"auto": {}}
    elif choice == "required":
        expected_choice = {"any": {}}
    elif isinstance(choice, Mapping):
        expected_choice = {"tool": {"name": choice["name"]}}
    assert body["toolConfig"].get("toolChoice") == expected_choice


def _prompt(*messages: dict[str, Any], **fields: Any) -> Prompt:
    return Prompt(model="amazon.nova-micro-v1:0", messages=tuple(messages), **fields)


USER = {"role": "user", "content": "Hello"}


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("frequency_penalty", 0.2),
        ("presence_penalty", 0.1),
        ("safe_prompt", True),
        ("response_format", {"type": "json_object"}),
        ("response_format", {"type": "json_schema", "json_schema": {"schema": {}}}),
    ],
)
def test_a_parameter_converse_lacks_is_refused(param: str, value: Any) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        BEDROCK_WIRE.build(_prompt(USER, params={param: value}), TARGET, False)
    assert raised.value.param == f"llm_configuration.model_params.{param}"
    assert "aws_bedrock" in raised.value.message


def test_function_call_none_is_refused_with_functions_and_fine_without() -> None:
    functions = ({"name": "lookup", "parameters": {"type": "object"}},)
    with pytest.raises(InvalidRequestError, match='toolChoice "none"') as raised:
        BEDROCK_WIRE.build(_prompt(USER, functions=functions, function_call="none"), TARGET, False)
    assert raised.value.param == "llm_configuration.function_call"
    body = BEDROCK_WIRE.build(_prompt(USER, function_call="none"), TARGET, False).body
    assert "toolConfig" not in body


@pytest.mark.parametrize(
    "messages",
    [
        (),
        ({"role": "system", "content": "Be brief."},),
        ({"role": "assistant", "content": "Hi"}, USER),
    ],
)
def test_a_conversation_must_start_with_the_user(messages: tuple[dict[str, Any], ...]) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        BEDROCK_WIRE.build(_prompt(*messages), TARGET, False)
    assert raised.value.param == "llm_configuration.messages"


def test_images_legacy_function_messages_and_converse_blocks() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    s3 = {"type": "image_url", "image_url": "s3://bucket/cat.jpeg"}
    prompt = _prompt(
        {
            "role": "developer",
            "content": [{"type": "text", "text": "Rules."}, {"cachePoint": {"type": "default"}}],
        },
        {"role": "user", "content": [{"type": "text", "text": "Look"}, image, s3]},
        {
            "role": "assistant",
            "content": None,
            "function_call": {"name": "lookup", "arguments": '{"q": 1}'},
        },
        {"role": "function", "name": "lookup", "content": "found"},
        functions=({"name": "lookup", "parameters": {"type": "object"}},),
    )
    body = BEDROCK_WIRE.build(prompt, TARGET, False).body
    assert body["system"] == [{"text": "Rules."}, {"cachePoint": {"type": "default"}}]
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"text": "Look"},
                {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}},
                {
                    "image": {
                        "format": "jpeg",
                        "source": {"s3Location": {"uri": "s3://bucket/cat.jpeg"}},
                    }
                },
            ],
        },
        {
            "role": "assistant",
            "content": [{"toolUse": {"toolUseId": "lookup", "name": "lookup", "input": {"q": 1}}}],
        },
        {
            "role": "user",
            "content": [{"toolResult": {"toolUseId": "lookup", "content": [{"text": "found"}]}}],
        },
    ]
    web = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    with pytest.raises(InvalidRequestError, match="data: URLs or s3://"):
        BEDROCK_WIRE.build(_prompt({"role": "user", "content": [web]}), TARGET, False)
    audio = {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}
    with pytest.raises(InvalidRequestError, match="input_audio"):
        BEDROCK_WIRE.build(_prompt({"role": "user", "content": [audio]}), TARGET, False)


# -- the span attributes of a request ------------------------------------------------------
def test_the_route_reads_a_converse_request() -> None:
    body: dict[str, Any] = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": "Hi"},
                    {"image": {"format": "png", "source": {"bytes": "AAAA"}}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "s"}}},
                    {"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {"q": 1}}},
                ],
            },
            {
                "role": "user",
                "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "42"}]}}],
            },
        ],
        "system": [{"text": "Be brief."}, {"cachePoint": {"type": "default"}}],
        "inferenceConfig": {
            "maxTokens": 100,
            "temperature": 0.5,
            "topP": 0.9,
            "stopSequences": ["END"],
        },
        "toolConfig": {"tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {}}}}]},
    }
    assert ROUTE.request(body) == {
        a.GEN_AI_REQUEST_MAX_TOKENS: 100,
        a.GEN_AI_REQUEST_TEMPERATURE: 0.5,
        a.GEN_AI_REQUEST_TOP_P: 0.9,
        a.GEN_AI_REQUEST_STOP_SEQUENCES: ("END",),
    }
    assert ROUTE.request({"messages": [], "inferenceConfig": {"stopSequences": []}}) == {}
    content = ROUTE.content(body, 100_000)
    assert json.loads(content[a.GEN_AI_SYSTEM_INSTRUCTIONS]) == [
        {"type": "text", "content": "Be brief."}
    ]
    assert json.loads(content[a.GEN_AI_TOOL_DEFINITIONS]) == [  # the conventions' flat shape
        {"type": "function", "name": "lookup", "parameters": {}}
    ]
    assert json.loads(content[a.GEN_AI_INPUT_MESSAGES]) == [
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": "Hi"},
                {"type": "blob", "modality": "image", "content": "[inline data omitted]"},
            ],
        },
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "content": "hmm"},
                {"type": "tool_call", "id": "t1", "name": "lookup", "arguments": {"q": 1}},
            ],
        },
        {"role": "user", "parts": [{"type": "tool_call_response", "id": "t1", "response": "42"}]},
    ]


# -- signing --------------------------------------------------------------------------------
def _header(request: HttpRequest, name: str) -> str | None:
    return next((v for k, v in request.headers.items() if k.lower() == name), None)


def _sigv4(request: HttpRequest, secret: str, region: str) -> str:
    """The SigV4 signature of ``request``, computed from the AWS specification (not botocore):
    a non-S3 service signs the path URI-encoded twice."""
    authorization = _header(request, "authorization") or ""
    signed = re.search(r"SignedHeaders=([^,]+)", authorization)
    assert signed is not None
    amz_date = _header(request, "x-amz-date") or ""
    parts = urlsplit(request.url)
    headers = {k.lower(): v.strip() for k, v in request.headers.items()}
    headers["host"] = parts.netloc
    names = signed.group(1).split(";")
    canonical = "\n".join(
        [
            "POST",
            quote(parts.path, safe="/~"),
            parts.query,
            "".join(f"{name}:{headers[name]}\n" for name in names),
            signed.group(1),
            hashlib.sha256(request.content).hexdigest(),
        ]
    )
    scope = f"{amz_date[:8]}/{region}/bedrock/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + secret).encode()
    for part in (amz_date[:8], region, "bedrock", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize("model", MODELS)
def test_a_request_is_sigv4_signed(model: str) -> None:
    keys = Credentials("AKIDEXAMPLE", "secret/key+1", "session-token")
    wire = BedrockWire(ROUTE, credentials=lambda: keys)
    built = wire.build(Prompt(model=model, messages=(USER,)), TARGET, False)
    signed = wire.prepare(built, TARGET)
    authorization = _header(signed, "authorization") or ""
    amz_date = _header(signed, "x-amz-date") or ""
    assert re.fullmatch(r"\d{8}T\d{6}Z", amz_date)
    assert authorization.startswith(
        f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{amz_date[:8]}/{REGION}/bedrock/aws4_request, "
    )
    signed_headers = re.search(r"SignedHeaders=([^,]+)", authorization)
    assert signed_headers is not None
    assert set(signed_headers.group(1).split(";")) >= {
        "content-type",
        "host",
        "x-amz-date",
        "x-amz-security-token",
    }
    assert authorization.endswith(f"Signature={_sigv4(signed, 'secret/key+1', REGION)}")
    assert _header(signed, "x-amz-security-token") == "session-token"
    assert (signed.url, signed.body, signed.content) == (built.url, built.body, built.content)
    assert "authorization" not in {k.lower() for k in built.headers}  # build() holds no secret


def _isolate_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_the_default_credential_chain_is_botocores(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _isolate_aws(monkeypatch, tmp_path)
    wire = BedrockWire(ROUTE)
    with pytest.raises(AuthenticationError) as raised:
        wire.prepare(wire.build(_prompt(USER), TARGET, False), TARGET)
    for hint in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "CLEW_AWS_BEDROCK_API_KEY"):
        assert hint in raised.value.message
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    wire = BedrockWire(ROUTE)
    signed = wire.prepare(wire.build(_prompt(USER), TARGET, False), TARGET)
    assert "Credential=AKIDFROMENV/" in (_header(signed, "authorization") or "")
    assert (_header(signed, "authorization") or "").endswith(_sigv4(signed, "env-secret", REGION))


def test_an_api_key_is_a_bearer_token_and_nothing_is_signed() -> None:
    def no_lookup() -> None:
        raise AssertionError("an API key needs no AWS credentials")

    wire = BedrockWire(ROUTE, credentials=no_lookup)
    target = Target("aws_bedrock", TARGET.base_url, "bedrock-api-key-1", {"region": REGION})
    signed = wire.prepare(wire.build(_prompt(USER), target, False), target)
    assert _header(signed, "authorization") == "Bearer bedrock-api-key-1"
    assert _header(signed, "x-amz-date") is None


def test_a_region_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        BEDROCK_WIRE.default_base_url(TARGET) == "https://bedrock-runtime.us-east-1.amazonaws.com"
    )
    for options in ({}, {"region": "us-east-1.evil.example/"}):
        with pytest.raises(InvalidRequestError, match="CLEW_AWS_BEDROCK_REGION or AWS_REGION"):
            BEDROCK_WIRE.default_base_url(Target("aws_bedrock", "", None, options))
    wire = BedrockWire(ROUTE, credentials=lambda: FAKE_KEYS)
    elsewhere = Target("aws_bedrock", "http://127.0.0.1:9", None, {})
    with pytest.raises(InvalidRequestError, match="CLEW_AWS_BEDROCK_REGION"):
        wire.prepare(wire.build(_prompt(USER), elsewhere, False), elsewhere)
    # A bedrock-runtime URL names its region.
    named = Target("aws_bedrock", "https://bedrock-runtime.eu-west-3.amazonaws.com", None, {})
    signed = wire.prepare(wire.build(_prompt(USER), named, False), named)
    assert "/eu-west-3/bedrock/aws4_request" in (_header(signed, "authorization") or "")


def test_without_botocore_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n == "botocore" or n.startswith("botocore.")]:
        monkeypatch.setitem(sys.modules, name, None)
    wire = BedrockWire(ROUTE)
    request = wire.build(_prompt(USER), TARGET, False)  # a plain call builds without botocore
    with pytest.raises(AuthenticationError, match=re.escape("pip install 'clew[bedrock]'")):
        wire.prepare(request, TARGET)
    with pytest.raises(InvalidRequestError, match=re.escape("pip install 'clew[bedrock]'")):
        wire.build(_prompt(USER), TARGET, True)
    keyed = Target("aws_bedrock", TARGET.base_url, "k", {"region": REGION})
    assert _header(wire.prepare(request, keyed), "authorization") == "Bearer k"


# -- the event-stream decoder ----------------------------------------------------------------
def test_the_fake_frames_are_what_botocore_decodes() -> None:
    frame = event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "é"}})
    ((headers, payload),) = _frames(frame)
    assert headers == {
        ":event-type": "contentBlockDelta",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert payload == {"contentBlockIndex": 0, "delta": {"text": "é"}}
    buffer = EventStreamBuffer()
    buffer.add_data(BEDROCK_STREAM_ERROR)
    (message,) = list(buffer)
    assert message.headers[":message-type"] == "exception"
    assert message.headers[":exception-type"] == "modelStreamErrorException"


def test_a_corrupt_or_cut_stream_is_a_stream_error() -> None:
    frame = event_frame("messageStart", {"role": "assistant"})
    decoder = BEDROCK_WIRE.decoder()
    (event,) = decoder.feed(frame[:-1] + bytes([frame[-1] ^ 1]))
    assert "corrupt event-stream frame" in (BEDROCK_WIRE.stream_error(event) or "")
    assert decoder.feed(frame) == [] and decoder.close() == []
    decoder = BEDROCK_WIRE.decoder()
    assert decoder.feed(frame + frame[:7]) == [{"type": "messageStart", "role": "assistant"}]
    (event,) = decoder.close()
    assert BEDROCK_WIRE.stream_error(event) == (
        "eventStreamError: the event stream ended inside a frame (7 bytes unread)"
    )
    (event,) = BEDROCK_WIRE.decoder().feed(BEDROCK_STREAM_ERROR)
    assert BEDROCK_WIRE.stream_error(event) == (
        "modelStreamErrorException: The model stream had an error. Try your request again."
    )


# -- round trips through the fake server ----------------------------------------------------
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
}
SIGNING = BedrockWire(ROUTE, credentials=lambda: FAKE_KEYS)


def _target(server: FakeLLMServer) -> Target:
    return Target("aws_bedrock", server.url, None, {"region": REGION})


def _post(server: FakeLLMServer, prompt: Prompt) -> httpx2.Response:
    target = _target(server)
    request = SIGNING.prepare(SIGNING.build(prompt, target, False), target)
    with httpx2.Client() as client:
        return client.post(request.url, content=request.content, headers=dict(request.headers))


def _stream(server: FakeLLMServer, prompt: Prompt) -> tuple[httpx2.Response, list[Any]]:
    target = _target(server)
    request = SIGNING.prepare(SIGNING.build(prompt, target, True), target)
    decoder = SIGNING.decoder()
    events: list[Any] = []
    with (
        httpx2.Client() as client,
        client.stream(
            "POST", request.url, content=request.content, headers=dict(request.headers)
        ) as response,
    ):
        for data in response.iter_bytes():
            events.extend(decoder.feed(data))
    events.extend(decoder.close())
    return response, events


def _read_stream(prompt: Prompt, events: list[Any]) -> Any:
    assert ROUTE.stream_state is not None
    state = ROUTE.stream_state(SIGNING.build(prompt, TARGET, True).body)
    for event in events:
        state.record(event)
    return state.outcome()


def test_a_converse_call_round_trips() -> None:
    prompt = _prompt(
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Tell me about the weather in Paris"},
        params={"temp": 0.2, "max_length": 100},
    )
    with FakeLLMServer(reply_words=9) as server:
        response = _post(server, prompt)
        (recorded,) = server.requests
    assert response.status_code == 200
    assert response.headers["x-amzn-requestid"].startswith("00000000-0000-4000-8000-")
    assert recorded.path == "/model/amazon.nova-micro-v1%3A0/converse"
    assert recorded.headers["authorization"] == "REDACTED" and "x-amz-date" in recorded.headers
    assert recorded.body == SIGNING.build(prompt, TARGET, False).body
    outcome = ROUTE.response(loads(response.content))
    assert outcome.finish_reasons == ["end_turn"]
    assert outcome.messages is not None
    text = "Echo: Tell me about the weather in this is"  # six prompt words, then filler
    assert outcome.messages[0]["parts"] == [{"type": "text", "content": text}]
    assert outcome.usage is not None
    assert (outcome.usage.input_tokens, outcome.usage.output) == (9, 9)  # words in, words out


def test_tool_calls_round_trip_and_the_answer_follows() -> None:
    ask = {"role": "user", "content": "What is the weather in Paris? Use get_weather."}
    with FakeLLMServer() as server:
        first = ROUTE.response(loads(_post(server, _prompt(ask, functions=(WEATHER,))).content))
        assert first.finish_reasons == ["tool_use"]
        assert first.messages is not None
        said, call = first.messages[0]["parts"]
        assert said == {"type": "text", "content": "I will call get_weather."}
        assert call == {
            "type": "tool_call",
            "id": "tooluse_fake00000001_0_0",
            "name": "get_weather",
            "arguments": {"location": "example location"},
        }
        tool_call = {
            "id": call["id"],
            "type": "function",
            "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])},
        }
        history = (
            ask,
            {"role": "assistant", "content": said["content"], "tool_calls": [tool_call]},
            {"role": "tool", "tool_call_id": call["id"], "content": "Sunny, 21 C"},
        )
        response = _post(server, _prompt(*history, functions=(WEATHER,)))
        assert response.status_code == 200, response.text  # the fake checks Converse's rules
        second = ROUTE.response(loads(response.content))
        assert second.finish_reasons == ["end_turn"]
        forced = _prompt(USER, functions=(WEATHER,), function_call={"name": "get_weather"})
        third = ROUTE.response(loads(_post(server, forced).content))
        assert third.messages is not None
        assert [p["type"] for p in third.messages[0]["parts"]] == ["tool_call"]
        cut = ROUTE.response(loads(_post(server, _prompt(USER, params={"max_length": 3})).content))
        assert cut.finish_reasons == ["max_tokens"]
        assert cut.usage is not None and cut.usage.output == 3


def test_the_prompt_cache_is_priced_as_genai_prices_prices_it() -> None:
    cached = "word " * 40
    prompt = Prompt(
        model="us.anthropic.claude-3-7-sonnet-20250219-v1:0",
        messages=(
            {
                "role": "system",
                "content": [{"type": "text", "text": cached}, {"cachePoint": {"type": "default"}}],
            },
            USER,
        ),
    )
    with FakeLLMServer(reply_words=5) as server:
        raw = [json.loads(_post(server, prompt).content)["usage"] for _ in range(2)]
    assert raw[0] == {
        "inputTokens": 1,
        "cacheReadInputTokens": 0,
        "cacheWriteInputTokens": 40,
        "outputTokens": 5,
        "totalTokens": 46,
    }
    assert raw[1]["cacheReadInputTokens"] == 40 and raw[1]["cacheWriteInputTokens"] == 0
    for usage in raw:
        read = ROUTE.response(loads(json.dumps({"usage": usage}))).usage
        assert read is not None
        extracted = genai_prices.extract_usage(
            {"usage": usage, "model": prompt.model}, provider_id="aws"
        ).usage
        price = genai_prices.calc_price(extracted, prompt.model, provider_id="aws").total_price
        assert cost_of(read, prompt.model, "aws_bedrock").amount == float(price)


@pytest.mark.parametrize("functions", [(), (WEATHER,)])
def test_a_stream_says_what_the_plain_call_says(functions: tuple[dict[str, Any], ...]) -> None:
    prompt = _prompt(
        {"role": "user", "content": "Paris weather? Use get_weather"}, functions=functions
    )
    with FakeLLMServer() as server:
        plain = ROUTE.response(loads(_post(server, prompt).content))
        response, events = _stream(server, prompt)
    assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
    assert events[0] == {"type": "messageStart", "role": "assistant"}
    assert [e["type"] for e in events[-2:]] == ["messageStop", "metadata"]
    streamed = _read_stream(prompt, events)
    assert plain.messages is not None and streamed.messages is not None
    # The ids differ (request numbers); all else is the same.
    for part in plain.messages[0]["parts"] + streamed.messages[0]["parts"]:
        part.pop("id", None)
    assert streamed.messages == plain.messages
    assert (streamed.usage, streamed.finish_reasons) == (plain.usage, plain.finish_reasons)
    text = "".join(p["content"] for p in plain.messages[0]["parts"] if p["type"] == "text")
    assert "".join(SIGNING.delta(e) or "" for e in events) == text


def test_faults_come_in_bedrocks_shape() -> None:
    with FakeLLMServer() as server:
        server.fail_next(429, retry_after=1)
        response = _post(server, _prompt(USER))
        assert response.status_code == 429 and response.headers["retry-after"] == "1"
        assert SIGNING.error_message(429, loads(response.content)) == "Rate limit reached."
        server.break_next_stream(after=2, mode="error")
        _, events = _stream(server, _prompt(USER))
        target = _target(server)
        request = SIGNING.build(_prompt(USER), target, False)
        body = {**request.body, "messages": [*request.body["messages"], USER]}
        with httpx2.Client() as client:
            refused = client.post(request.url, json=body)
    assert [e["type"] for e in events] == ["messageStart", "contentBlockDelta", "exception"]
    assert [SIGNING.stream_error(e) for e in events] == [
        None,
        None,
        "modelStreamErrorException: The model stream had an error. Try your request again.",
    ]
    broken = _read_stream(_prompt(USER), events[:2])
    assert broken.finish_reasons == [] and broken.usage is not None and broken.usage.estimated
    assert refused.status_code == 400
    assert SIGNING.error_message(400, loads(refused.content)).startswith(
        "A conversation must alternate between user and assistant roles."
    )


def test_a_recorded_stream_replays_through_the_wire() -> None:
    (path,) = [
        row["path"]
        for row in ROWS
        if row["path"].endswith("/test_anthropic_converse_stream_with_tool_use.yaml")
    ]
    prompt = Prompt(
        model="anthropic.claude-3-sonnet-20240229-v1:0",
        messages=({"role": "user", "content": "What is the weather in Barcelona?"},),
        functions=(WEATHER,),
    )
    with ReplayServer(GATEWAY / path) as server:
        _, events = _stream(server, prompt)
        assert server.unplayed == []
    outcome = _read_stream(prompt, events)
    assert outcome.finish_reasons == ["tool_use"]
    assert outcome.messages is not None
    assert outcome.messages[0]["parts"][1] == {
        "type": "tool_call",
        "id": "tooluse_yypYDr71TwCwByoyao4-Vg",
        "name": "get_weather",
        "arguments": {"location": "Barcelona"},
    }
