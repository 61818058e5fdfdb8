"""The Gemini / Vertex AI adapter: recorded responses read exactly, request building, the
stream decoder, authentication, and round trips through the fake server."""

from __future__ import annotations

import csv
import itertools
import json
import re
import sys
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import genai_prices
import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clew.errors import AuthenticationError, InvalidRequestError
from clew.providers import gemini_http
from clew.providers.engine import Outcome
from clew.providers.gemini import GEMINI_WIRE, ROUTE, GenerateContentStreamState
from clew.providers.gemini_http import GeminiStreamDecoder, endpoint_url
from clew.providers.pricing import cost_of
from clew.providers.wire import HttpRequest, Prompt, Target, loads
from clew.providers.wires import wire_for
from clew.testing.cassettes import Interaction, load_cassette
from clew.testing.llm_server import FakeLLMServer

GATEWAY = Path(__file__).resolve().parents[1] / "fixtures" / "cassettes" / "gateway"
# Vertex's integer enums, as the recordings use them (1 = STOP, 2 = MAX_TOKENS).
FINISH_NAMES = {1: "STOP", 2: "MAX_TOKENS", 3: "SAFETY"}


# -- the recordings ------------------------------------------------------------------------------
def _rows() -> list[dict[str, str]]:
    with open(GATEWAY / "INDEX.tsv", newline="") as stream:
        rows = list(csv.DictReader(stream, delimiter="\t"))
    return [r for r in rows if r["provider"] in ("gemini", "vertexai")]


def _index_usage(column: str, number: int) -> dict[str, int] | None:
    """The INDEX.tsv usage of interaction ``number`` (``#1 in=3520 out=2 ...``)."""
    entries = [e.strip() for e in column.split(";")]
    if not entries[0].startswith("#"):
        entries = [f"#0 {entries[0]}"]
    for entry in entries:
        label, _, rest = entry.partition(" ")
        if label == f"#{number}":
            pairs = dict(re.findall(r"(\w+)=(\d+)", rest))
            return {key: int(value) for key, value in pairs.items()} or None
    return None


def _cases() -> Iterator[Any]:
    for row in _rows():
        for number, interaction in enumerate(load_cassette(GATEWAY / row["path"])):
            yield pytest.param(row, number, interaction, id=f"{Path(row['path']).stem}#{number}")


CASES = list(_cases())
# The interactions that are not generateContent calls: an explicit cache's creation and deletion.
NOT_GENERATE = {
    ("test_google_model_cached_content", 0): "POST /v1beta/cachedContents",
    ("test_google_model_cached_content", 3): "DELETE /v1beta/cachedContents/",
}


def _method(interaction: Interaction) -> str | None:
    match = re.search(r":(generateContent|streamGenerateContent)\b", interaction.uri)
    return match.group(1) if match else None


def _chunks(interaction: Interaction) -> list[dict[str, Any]]:
    """The response's JSON objects, read independently of clew: one, or each stream chunk."""
    body = interaction.response_body.strip()
    if body.startswith(b"data:"):
        return [json.loads(event[5:]) for event in body.split(b"\r\n\r\n") if event.strip()]
    value = json.loads(body)
    return value if isinstance(value, list) else [value]


def _expected(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    text, thought, calls, kinds = [], [], [], []
    finish = usage = model = response_id = None
    for chunk in chunks:
        usage = chunk.get("usageMetadata", usage)
        model = chunk.get("modelVersion", model)
        response_id = chunk.get("responseId", response_id)
        for candidate in chunk.get("candidates", []):
            assert candidate.get("index", 0) == 0  # one candidate in every recording
            finish = candidate.get("finishReason", finish)
            for part in candidate.get("content", {}).get("parts", []):
                if "text" in part:
                    (thought if part.get("thought") else text).append(part["text"])
                    if part["text"]:
                        kinds.append("reasoning" if part.get("thought") else "text")
                elif "functionCall" in part:
                    calls.append((part["functionCall"]["name"], part["functionCall"]["args"]))
                    kinds.append("tool_call")
                elif "executableCode" in part:
                    kinds.append("executable_code")
                elif "codeExecutionResult" in part:
                    kinds.append("code_execution_result")
    assert usage is not None
    return {
        "text": "".join(text),
        "thought": "".join(thought),
        "calls": calls,
        "kinds": kinds,
        "finish": FINISH_NAMES.get(finish, finish) if isinstance(finish, int) else finish,
        "usage": usage,
        "model": model,
        "response_id": response_id,
    }


def _parts(outcome: Outcome, kind: str) -> list[dict[str, Any]]:
    assert outcome.messages is not None and len(outcome.messages) == 1
    return [p for p in outcome.messages[0]["parts"] if p["type"] == kind]


def _check(outcome: Outcome, expected: dict[str, Any], row: dict[str, str], number: int) -> None:
    assert "".join(p["content"] for p in _parts(outcome, "text")) == expected["text"]
    assert "".join(p["content"] for p in _parts(outcome, "reasoning")) == expected["thought"]
    calls = [(p["name"], p["arguments"]) for p in _parts(outcome, "tool_call")]
    assert calls == expected["calls"]
    assert outcome.finish_reasons == ([expected["finish"]] if expected["finish"] else [])
    assert outcome.model == expected["model"]
    assert outcome.response_id == expected["response_id"]
    raw = expected["usage"]
    prompt, cached = raw.get("promptTokenCount", 0), raw.get("cachedContentTokenCount", 0)
    candidates, thoughts = raw.get("candidatesTokenCount", 0), raw.get("thoughtsTokenCount", 0)
    tool = raw.get("toolUsePromptTokenCount", 0)
    assert prompt + candidates + thoughts + tool == raw["totalTokenCount"]
    # The recorded counts, as INDEX.tsv lists them.
    listed = _index_usage(row["usage"], number)
    assert listed is not None
    assert listed.get("in", 0) == prompt and listed.get("out", 0) == candidates
    assert listed.get("thoughts", 0) == thoughts and listed.get("tool_prompt", 0) == tool
    assert listed.get("cached", 0) == cached and listed["total"] == raw["totalTokenCount"]
    usage = outcome.usage
    assert usage is not None and not usage.estimated
    assert usage.input_tokens == prompt + tool
    assert (usage.input_uncached, usage.cache_read, usage.cache_write) == (
        prompt - cached + tool,
        cached,
        0,
    )
    assert (usage.output, usage.reasoning) == (candidates + thoughts, thoughts)
    # The cost, as genai-prices computes it for Google's usage.
    price_usage = genai_prices.Usage(
        input_tokens=prompt + tool, cache_read_tokens=cached, output_tokens=candidates + thoughts
    )
    price = genai_prices.calc_price(price_usage, expected["model"], provider_id="google")
    cost = cost_of(usage, outcome.model, "vertexai")
    assert cost.error is None and cost.amount == float(price.total_price) > 0
    if not any(isinstance(d.get("modality"), int) for d in raw.get("promptTokensDetails", [])):
        # genai-prices' own extraction agrees (it cannot read Vertex's integer modalities)
        extracted = genai_prices.extract_usage({"usageMetadata": raw}, provider_id="google").usage
        assert (extracted.input_tokens or 0, extracted.cache_read_tokens or 0) == (
            prompt + tool,
            cached,
        )
        assert (extracted.output_tokens or 0) == candidates + thoughts


OTHER = [c for c in CASES if _method(c.values[2]) is None]
ERRORS = [c for c in CASES if _method(c.values[2]) and c.values[2].status >= 400]
RESPONSES = [
    c for c in CASES if _method(c.values[2]) == "generateContent" and c.values[2].status == 200
]
STREAMS = [c for c in CASES if _method(c.values[2]) == "streamGenerateContent"]


def test_every_gemini_recording_is_read() -> None:
    assert len(CASES) == len(OTHER) + len(ERRORS) + len(RESPONSES) + len(STREAMS)
    assert (len(ERRORS), len(RESPONSES), len(STREAMS)) == (3, 16, 13)
    assert {(Path(c.values[0]["path"]).stem, c.values[1]) for c in OTHER} == set(NOT_GENERATE)


@pytest.mark.parametrize(("row", "number", "interaction"), OTHER)
def test_calls_that_are_not_generate_content_are_known_and_left_out(
    row: dict[str, str], number: int, interaction: Interaction
) -> None:
    # cachedContents calls: not a completion, so no adapter reads them
    reason = NOT_GENERATE[(Path(row["path"]).stem, number)]
    host = "https://generativelanguage.googleapis.com"
    assert f"{interaction.method} {interaction.uri}".replace(host, "").startswith(reason)


@pytest.mark.parametrize(("row", "number", "interaction"), ERRORS)
def test_recorded_error_gives_googles_message(
    row: dict[str, str], number: int, interaction: Interaction
) -> None:
    assert row["api"].startswith("error(") and row["usage"] == "error"
    error = json.loads(interaction.response_body)["error"]
    read = GEMINI_WIRE.error_message(interaction.status, loads(interaction.response_body))
    assert read == error["message"] and len(read) > 20


@pytest.mark.parametrize(("row", "number", "interaction"), RESPONSES)
def test_recorded_response_is_read_exactly(
    row: dict[str, str], number: int, interaction: Interaction
) -> None:
    outcome = ROUTE.response(loads(interaction.response_body))
    expected = _expected(_chunks(interaction))
    _check(outcome, expected, row, number)
    kinds = [p["type"] for m in outcome.messages or () for p in m["parts"]]
    assert kinds == expected["kinds"]
    assert outcome.plain == all(k == "text" for k in kinds)


def _pieces(data: st.DataObject, body: bytes) -> list[bytes]:
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(body) - 1)), max_size=40)))
    bounds = [0, *cuts, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize(("row", "number", "interaction"), STREAMS)
@settings(max_examples=15)
@given(data=st.data())
def test_recorded_stream_is_read_exactly(
    row: dict[str, str], number: int, interaction: Interaction, data: st.DataObject
) -> None:
    assert interaction.status == 200
    body = interaction.response_body
    decoder = GEMINI_WIRE.decoder()
    state = GenerateContentStreamState({"contents": []})
    deltas, events = [], []
    for piece in _pieces(data, body):
        events.extend(decoder.feed(piece))
    events.extend(decoder.close())
    for event in events:
        assert GEMINI_WIRE.stream_error(event) is None
        state.record(event)
        deltas.append(GEMINI_WIRE.delta(event) or "")
    chunks = _chunks(interaction)
    assert events == chunks
    expected = _expected(chunks)
    outcome = state.outcome()
    _check(outcome, expected, row, number)
    assert "".join(deltas) == expected["text"]


def test_recorded_requests_give_their_attributes() -> None:
    checked = 0
    for case in CASES:
        body = case.values[2].request_json()
        if not isinstance(body, dict) or "contents" not in body or "ttl" in body:
            continue
        attrs = ROUTE.request(body)
        config = body.get("generationConfig") or {}
        for key, name in (("temperature", "temperature"), ("topK", "top_k"), ("seed", "seed")):
            assert attrs.get(f"gen_ai.request.{name}") == config.get(key)
        content = ROUTE.content(body, 1 << 20)
        messages = json.loads(content["gen_ai.input.messages"])
        assert [m["role"] for m in messages] == [
            {"model": "assistant"}.get(c["role"], c["role"])
            if not all("functionResponse" in p for p in c["parts"])
            else "tool"
            for c in body["contents"]
        ]
        checked += 1
    assert checked >= 25
    extra = next(c for c in CASES if "extra_params" in c.id).values[2].request_json()
    assert ROUTE.request(extra) == {
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.top_p": 0.95,
        "gen_ai.request.top_k": 2.0,
        "gen_ai.request.max_tokens": 5,
        "gen_ai.request.stop_sequences": ("\n\n\n",),
        "gen_ai.request.presence_penalty": -1.5,
        "gen_ai.request.frequency_penalty": 1.0,
        "gen_ai.request.seed": 12345,
    }


def test_a_model_genai_prices_does_not_know_has_no_cost() -> None:
    outcome = ROUTE.response(
        loads(
            b'{"modelVersion": "gemini-from-the-future-9",'
            b' "usageMetadata": {"promptTokenCount": 3}}'
        )
    )
    assert outcome.usage is not None and outcome.usage.input_tokens == 3
    cost = cost_of(outcome.usage, outcome.model, "vertexai")
    assert cost.amount is None and "gemini-from-the-future-9" in (cost.error or "")


def test_reading_edge_cases() -> None:
    blocked = ROUTE.response(loads(b'{"promptFeedback": {"blockReason": 2}}'))
    assert blocked.finish_reasons == ["OTHER"] and blocked.messages is None
    assert blocked.usage is None
    two = ROUTE.response(
        loads(
            b'{"candidates": [{"index": 1, "finishReason": 9,'
            b' "content": {"parts": [{"text": "b"}]}},'
            b' {"index": 0, "finishReason": "STOP", "content": {"parts": [{"text": "a"},'
            b' {"functionCall": {"id": "c1", "name": "f", "args": {"x": 1}}}]}}]}'
        )
    )
    assert two.finish_reasons == ["STOP", "MALFORMED_FUNCTION_CALL"]
    assert two.messages is not None
    assert two.messages[0]["parts"][1] == {
        "type": "tool_call",
        "id": "c1",
        "name": "f",
        "arguments": {"x": 1},
    }
    state = GenerateContentStreamState(
        {"contents": [{"role": "user", "parts": [{"text": "hi there"}]}]}
    )
    state.record(loads(b'{"candidates": [{"content": {"parts": [{"text": "one two"}]}}]}'))
    estimated = state.outcome()
    assert estimated.usage is not None and estimated.usage.estimated
    assert estimated.usage.input_tokens > 0 and estimated.usage.output > 0


# -- the stream decoder ---------------------------------------------------------------------------
_STRINGS = st.text(alphabet=st.sampled_from('ab"\\{}[],:é😀 \n'), max_size=12)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | _STRINGS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_STRINGS, inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=50)
@given(
    st.lists(st.dictionaries(_STRINGS, _VALUES, max_size=3), min_size=1, max_size=4),
    st.booleans(),
    st.data(),
)
def test_decoder_reads_both_framings_in_any_pieces(
    objects: list[dict[str, Any]], sse: bool, data: st.DataObject
) -> None:
    if sse:
        body = b"".join(b"data: " + json.dumps(o).encode() + b"\r\n\r\n" for o in objects)
    else:
        body = b"[" + b",\r\n".join(json.dumps(o, indent=1).encode() for o in objects) + b"]"
    decoder = GeminiStreamDecoder()
    events = []
    for piece in _pieces(data, b"  \n" + body):
        events.extend(decoder.feed(piece))
    events.extend(decoder.close())
    assert events == objects


def test_a_truncated_json_stream_ends_with_an_error_event() -> None:
    decoder = GeminiStreamDecoder()
    assert decoder.feed(b'[{"candidates": []},\r\n{"candidates": [{"content"') == [
        {"candidates": []}
    ]
    (last,) = decoder.close()
    assert "malformed stream element" in (GEMINI_WIRE.stream_error(last) or "")
    assert GeminiStreamDecoder().close() == []


# -- building requests ----------------------------------------------------------------------------
def _target(project: str | None = None, key: str | None = "k", **options: str) -> Target:
    if project:
        options["project"] = project
    base = GEMINI_WIRE.default_base_url(Target("vertexai", "", key, options)) or ""
    return Target("vertexai", base, key, options)


def _build(prompt: Prompt, target: Target | None = None, stream: bool = False) -> HttpRequest:
    return GEMINI_WIRE.build(prompt, target or _target(), stream)


def _user(text: str = "hi") -> dict[str, Any]:
    return {"role": "user", "content": text}


@pytest.mark.parametrize(
    ("params", "config"),
    [
        ({"temp": 0.3}, {"temperature": 0.3}),
        ({"top_p": 0.9}, {"topP": 0.9}),
        ({"max_length": 64}, {"maxOutputTokens": 64}),
        ({"frequency_penalty": 0.5}, {"frequencyPenalty": 0.5}),
        ({"presence_penalty": -0.5}, {"presencePenalty": -0.5}),
        ({"response_format": {"type": "json_object"}}, {"responseMimeType": "application/json"}),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"schema": {"type": "object"}},
                }
            },
            {"responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}},
        ),
        ({"response_format": {"type": "text"}}, None),
        ({"safe_prompt": False, "frequency_penalty": 0}, {"frequencyPenalty": 0}),
    ],
)
def test_each_parameter_has_its_gemini_name(
    params: dict[str, Any], config: dict[str, Any] | None
) -> None:
    body = _build(Prompt("gemini-2.5-flash", (_user(),), params)).body
    assert body.get("generationConfig") == config
    assert ROUTE.request(body).get("gen_ai.request.temperature") == params.get("temp")


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"safe_prompt": True}, "llm_configuration.model_params.safe_prompt"),
        ({"logit_bias": {"1": 2}}, "llm_configuration.model_params.logit_bias"),
        ({"response_format": {"type": "xml"}}, "llm_configuration.model_params.response_format"),
    ],
)
def test_unsupported_parameters_are_refused(params: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        _build(Prompt("gemini-2.5-flash", (_user(),), params))
    assert caught.value.param == param


FUNCTIONS = (
    {"name": "get_weather", "description": "Weather", "parameters": {"type": "object"}},
    {"name": "lookup"},
)


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        (None, None),
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        ({"name": "lookup"}, {"mode": "ANY", "allowedFunctionNames": ["lookup"]}),
    ],
)
def test_functions_and_function_call(choice: Any, config: dict[str, Any] | None) -> None:
    body = _build(Prompt("m", (_user(),), functions=FUNCTIONS, function_call=choice)).body
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather",
                    "parametersJsonSchema": {"type": "object"},
                },
                {"name": "lookup"},
            ]
        }
    ]
    assert body.get("toolConfig") == (config and {"functionCallingConfig": config})


@pytest.mark.parametrize(
    ("functions", "choice"),
    [(FUNCTIONS, {"name": "missing"}), ((), "required"), ((), {"name": "x"}), (FUNCTIONS, "any")],
)
def test_a_function_call_that_cannot_be_honoured_is_refused(functions: Any, choice: Any) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        _build(Prompt("m", (_user(),), functions=functions, function_call=choice))
    assert caught.value.param == "llm_configuration.function_call"


def test_messages_become_alternating_contents() -> None:
    messages = (
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
        _user("first"),
        _user("second"),
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
                {"type": "image_url", "image_url": "https://x.test/cat.webp?size=2"},
                {"type": "image_url", "image_url": {"url": "data:text/plain,a%20b"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
                {"id": "c2", "function": {"name": "lookup", "arguments": "[1]"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c2", "content": "42"},
        {"role": "tool", "tool_call_id": "c1", "content": '{"temp": 21}'},
        {"role": "assistant", "content": "Done."},
        {"role": "assistant", "content": ""},
        {
            "role": "assistant",
            "content": None,
            "function_call": {"name": "lookup", "arguments": ""},
        },
        {"role": "function", "content": "plain"},
    )
    body = _build(Prompt("m", messages)).body
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Use tools."}]}
    assert body["contents"] == [
        {
            "role": "user",
            "parts": [
                {"text": "first"},
                {"text": "second"},
                {"text": "look"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBO"}},
                {
                    "fileData": {
                        "mimeType": "image/webp",
                        "fileUri": "https://x.test/cat.webp?size=2",
                    }
                },
                {"inlineData": {"mimeType": "text/plain", "data": "YSBi"}},
            ],
        },
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "lookup", "args": {"value": [1]}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "lookup", "response": {"output": 42}}},
                {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
            ],
        },
        {
            "role": "model",
            "parts": [{"text": "Done."}, {"functionCall": {"name": "lookup", "args": {}}}],
        },
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "lookup", "response": {"output": "plain"}}}],
        },
    ]
    content = ROUTE.content(body, 1 << 20)
    messages_read = json.loads(content["gen_ai.input.messages"])
    assert [m["role"] for m in messages_read] == ["user", "assistant", "tool", "assistant", "tool"]
    assert messages_read[1]["parts"][0] == {
        "type": "tool_call",
        "id": None,
        "name": "get_weather",
        "arguments": {"city": "Paris"},
    }
    assert json.loads(content["gen_ai.system_instructions"])[1]["content"] == "Use tools."


@pytest.mark.parametrize(
    "messages",
    [
        ({"role": "system", "content": "only a system prompt"},),
        (_user(""),),
        ({"role": "tool", "tool_call_id": "nope", "content": "x"},),
        (_user(), {"role": "assistant", "tool_calls": [{"id": "a", "function": {}}]}),
        ({"role": "user", "content": [{"type": "file", "file": {"file_id": "f"}}]},),
        ({"role": "user", "content": [{"type": "image_url", "image_url": {}}]},),
    ],
)
def test_messages_gemini_cannot_take_are_refused(messages: tuple[dict[str, Any], ...]) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        _build(Prompt("m", messages))
    assert caught.value.param == "llm_configuration.messages"


def test_urls_and_keys() -> None:
    assert wire_for("vertexai") is GEMINI_WIRE and GEMINI_WIRE.name == "gemini"
    prompt = Prompt("models/gemini-2.5-flash", (_user(),))
    gemini = _build(prompt)
    assert gemini.url == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    )
    assert gemini.headers["x-goog-api-key"] == "k" and "authorization" not in gemini.headers
    assert "model" not in gemini.body and json.loads(gemini.content) == gemini.body
    assert _build(prompt, stream=True).url.endswith(
        "/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    vertex = _build(prompt, _target("my-proj"))
    assert vertex.url == (
        "https://us-central1-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-central1"
        "/publishers/google/models/gemini-2.5-flash:generateContent"
    )
    assert vertex.body == gemini.body and vertex.headers["x-goog-api-key"] == "k"
    assert GEMINI_WIRE.prepare(vertex, _target("my-proj")) is vertex
    europe = _target("p", location="europe-west4")
    assert _build(prompt, europe).url.startswith(
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/p/locations/europe-west4/"
    )
    world = _build(prompt, _target("p", location="global"), stream=True)
    assert world.url == (
        "https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/google"
        "/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    beta = Target("vertexai", "https://proxy.test/v1beta1/", None, {"project": "p"})
    assert endpoint_url(beta, "gemini-2.0-flash", False) == (
        "https://proxy.test/v1beta1/projects/p/locations/us-central1/publishers/google/models/"
        "gemini-2.0-flash:generateContent"
    )
    keyless = _build(prompt, _target(key=None))
    assert keyless.headers == {"content-type": "application/json"}
    with pytest.raises(AuthenticationError, match="GEMINI_API_KEY") as caught:
        GEMINI_WIRE.prepare(keyless, _target(key=None))
    assert caught.value.param == "provider_api_key"
    proxy = Target("vertexai", "http://127.0.0.1:9", None)
    assert GEMINI_WIRE.prepare(_build(prompt, proxy), proxy).headers == keyless.headers
    with pytest.raises(InvalidRequestError):
        _build(Prompt("", (_user(),)))


def _fake_google_auth(monkeypatch: pytest.MonkeyPatch, fail: bool = False) -> list[str]:
    calls: list[str] = []
    exceptions = types.ModuleType("google.auth.exceptions")

    class GoogleAuthError(Exception):
        pass

    exceptions.GoogleAuthError = GoogleAuthError  # type: ignore[attr-defined]

    class Credentials:
        valid = False
        token: str | None = None

        def refresh(self, request: object) -> None:
            calls.append(f"refresh {type(request).__name__}")
            if fail:
                raise GoogleAuthError("Reauthentication is needed.")
            self.valid, self.token = True, f"token-{len(calls)}"

    auth = types.ModuleType("google.auth")

    def default(scopes: list[str]) -> tuple[Credentials, str]:
        calls.append(f"default {scopes[0]}")
        return Credentials(), "project"

    auth.default = default  # type: ignore[attr-defined]
    transport = types.ModuleType("google.auth.transport.requests")
    transport.Request = type("Request", (), {})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google.auth", auth)
    monkeypatch.setitem(sys.modules, "google.auth.exceptions", exceptions)
    monkeypatch.setitem(sys.modules, "google.auth.transport.requests", transport)
    return calls


def test_vertex_without_a_key_uses_application_default_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _fake_google_auth(monkeypatch)
    target = _target("p", key=None)
    request = _build(Prompt("gemini-2.5-flash", (_user(),)), target)
    assert "authorization" not in request.headers and "x-goog-api-key" not in request.headers
    signed = GEMINI_WIRE.prepare(request, target)
    assert signed.headers["authorization"] == "Bearer token-2"
    assert signed.body == request.body and signed.content == request.content
    assert GEMINI_WIRE.prepare(request, target).headers["authorization"] == "Bearer token-2"
    assert calls == ["default https://www.googleapis.com/auth/cloud-platform", "refresh Request"]
    gemini_http._Credentials.credentials.valid = False  # the token expired: refreshed again
    assert GEMINI_WIRE.prepare(request, target).headers["authorization"] == "Bearer token-3"
    assert calls[1:] == ["refresh Request", "refresh Request"]


def test_application_default_credentials_that_fail_are_an_authentication_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_google_auth(monkeypatch, fail=True)
    target = _target("p", key=None)
    with pytest.raises(AuthenticationError, match="Reauthentication is needed"):
        GEMINI_WIRE.prepare(_build(Prompt("m", (_user(),)), target), target)


def test_missing_google_auth_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "google.auth", None)
    target = _target("p", key=None)
    with pytest.raises(AuthenticationError) as caught:
        GEMINI_WIRE.prepare(_build(Prompt("m", (_user(),)), target), target)
    assert "pip install 'clew[vertexai]'" in caught.value.message
    assert "CLEW_VERTEXAI_API_KEY" in caught.value.message
    assert caught.value.status_code == 401


# -- a property over prompts ----------------------------------------------------------------------
_WORDS = st.text(alphabet="abc xyz", min_size=1, max_size=12).filter(str.strip)
_PARAM_VALUES = {
    "temp": st.floats(0, 2),
    "top_p": st.floats(0, 1),
    "max_length": st.integers(1, 4096),
    "frequency_penalty": st.floats(-2, 2),
    "presence_penalty": st.floats(-2, 2),
    "response_format": st.sampled_from(
        [{"type": "text"}, {"type": "json_object"}, {"type": "json_schema", "json_schema": {}}]
    ),
    "safe_prompt": st.booleans(),
}
_GEMINI_NAMES = {
    "temp": "temperature",
    "top_p": "topP",
    "max_length": "maxOutputTokens",
    "frequency_penalty": "frequencyPenalty",
    "presence_penalty": "presencePenalty",
}


@st.composite
def _prompts(draw: st.DrawFn) -> Prompt:
    names = draw(st.lists(st.sampled_from(["alpha", "beta", "gamma"]), unique=True, max_size=3))
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(_WORDS)})
    open_calls: list[str] = []
    for turn in range(draw(st.integers(1, 7))):
        kind = draw(st.sampled_from(["user", "assistant", "calls", "tool"]))
        if kind == "calls" and names:
            ids = [f"call{turn}_{n}" for n in range(draw(st.integers(1, 2)))]
            calls = [
                {"id": i, "function": {"name": draw(st.sampled_from(names)), "arguments": "{}"}}
                for i in ids
            ]
            messages.append({"role": "assistant", "content": None, "tool_calls": calls})
            open_calls = ids
        elif kind == "tool" and open_calls:
            messages.append({"role": "tool", "tool_call_id": open_calls.pop(), "content": "ok"})
        else:
            messages.append(
                {"role": "assistant" if kind == "assistant" else "user", "content": draw(_WORDS)}
            )
    messages.append(_user(draw(_WORDS)))
    params = draw(st.fixed_dictionaries({}, optional=_PARAM_VALUES))
    functions = tuple({"name": n, "parameters": {"type": "object"}} for n in names)
    choice = draw(
        st.sampled_from([None, "auto", "none", "required", *({"name": n} for n in names)])
    )
    return Prompt("gemini-2.5-flash", tuple(messages), params, functions, choice)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as running:
        yield running


@pytest.fixture(scope="module")
def client() -> Iterator[httpx2.Client]:
    with httpx2.Client() as shared:
        yield shared


@settings(max_examples=100)
@given(prompt=_prompts())
def test_any_prompt_builds_a_body_gemini_accepts(
    prompt: Prompt, server: FakeLLMServer, client: httpx2.Client
) -> None:
    target = Target("vertexai", server.url, "k")
    if prompt.params.get("safe_prompt") or (
        prompt.function_call == "required" and not prompt.functions
    ):
        with pytest.raises(InvalidRequestError) as caught:
            GEMINI_WIRE.build(prompt, target, False)
        assert caught.value.param in (
            "llm_configuration.model_params.safe_prompt",
            "llm_configuration.function_call",
        )
        return
    request = GEMINI_WIRE.build(prompt, target, False)
    body = request.body
    roles = [c["role"] for c in body["contents"]]
    assert set(roles) <= {"user", "model"} and roles[-1] == "user"
    assert all(a != b for a, b in itertools.pairwise(roles))
    called = {
        c["id"]: c["function"]["name"] for m in prompt.messages for c in m.get("tool_calls") or ()
    }
    answers = [m["tool_call_id"] for m in prompt.messages if m["role"] == "tool"]
    responses = [
        p["functionResponse"]["name"]
        for c in body["contents"]
        for p in c["parts"]
        if "functionResponse" in p
    ]
    assert responses == [called[i] for i in answers]
    config = body.get("generationConfig", {})
    for key, name in _GEMINI_NAMES.items():
        if key in prompt.params:
            assert config[name] == prompt.params[key]
    kind = (prompt.params.get("response_format") or {}).get("type")
    assert (config.get("responseMimeType") == "application/json") == (
        kind in ("json_object", "json_schema")
    )
    declared = [d["name"] for t in body.get("tools", []) for d in t["functionDeclarations"]]
    assert declared == [f["name"] for f in prompt.functions]
    mode = body.get("toolConfig", {}).get("functionCallingConfig", {}).get("mode")
    expected_mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}.get(
        str(prompt.function_call)
    )
    if isinstance(prompt.function_call, Mapping):
        expected_mode = "ANY"
    assert mode == (expected_mode if prompt.functions else None)
    reply = client.post(request.url, headers=dict(request.headers), content=request.content)
    assert reply.status_code == 200, reply.text


# -- round trips through the fake server ----------------------------------------------------------
def _post(client: httpx2.Client, request: HttpRequest) -> httpx2.Response:
    return client.post(request.url, headers=dict(request.headers), content=request.content)


def _stream(client: httpx2.Client, request: HttpRequest) -> tuple[Outcome, list[Any], str]:
    decoder = GEMINI_WIRE.decoder()
    state = GenerateContentStreamState(request.body)
    events: list[Any] = []
    headers = dict(request.headers)
    with client.stream("POST", request.url, headers=headers, content=request.content) as response:
        assert response.status_code == 200
        for data in response.iter_bytes():
            events.extend(decoder.feed(data))
    events.extend(decoder.close())
    for event in events:
        state.record(event)
    text = "".join(GEMINI_WIRE.delta(e) or "" for e in events)
    return state.outcome(), events, text


@pytest.mark.parametrize("project", [None, "proj"])
def test_round_trip_text_and_stream(
    server: FakeLLMServer, client: httpx2.Client, project: str | None
) -> None:
    options = {"project": project} if project else {}
    target = Target("vertexai", server.url, "secret", options)
    prompt = Prompt("gemini-2.5-flash", (_user("Tell me about the sea please"),), {"temp": 0.1})
    request = GEMINI_WIRE.build(prompt, target, False)
    reply = _post(client, request)
    assert reply.status_code == 200
    outcome = ROUTE.response(loads(reply.content))
    text = (
        "Echo: Tell me about the sea please this is a deterministic reply from the clew fake "
        "llm server"
    )
    assert outcome.messages == [
        {"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": "STOP"}
    ]
    assert outcome.usage is not None and outcome.usage.output == server.reply_words == 18
    assert outcome.usage.input_tokens == 6 and outcome.model == "gemini-2.5-flash"
    assert "x-goog-api-key" in server.requests[-1].headers  # the value may be redacted
    streamed, events, deltas = _stream(client, GEMINI_WIRE.build(prompt, target, True))
    assert len(events) == 18 and deltas == text
    assert streamed.messages == outcome.messages and streamed.usage == outcome.usage
    assert streamed.finish_reasons == ["STOP"]


def test_round_trip_tools_thoughts_and_limits(server: FakeLLMServer, client: httpx2.Client) -> None:
    target = Target("vertexai", server.url, "k")
    forced = Prompt(
        "gemini-2.5-flash", (_user("hello"),), functions=FUNCTIONS, function_call={"name": "lookup"}
    )
    outcome = ROUTE.response(loads(_post(client, GEMINI_WIRE.build(forced, target, False)).content))
    assert outcome.messages is not None
    assert [(p["type"], p["name"]) for p in outcome.messages[0]["parts"]] == [
        ("tool_call", "lookup")
    ]
    streamed, _, _ = _stream(client, GEMINI_WIRE.build(forced, target, True))
    assert streamed.messages == outcome.messages
    # The call answered: the model replies with text.
    history = (
        _user("What is the weather?"),
        {
            "role": "assistant",
            "tool_calls": [{"id": "x", "function": {"name": "get_weather", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "x", "content": "sunny"},
    )
    answered = ROUTE.response(
        loads(
            _post(
                client,
                GEMINI_WIRE.build(Prompt("m", history, functions=FUNCTIONS), target, False),
            ).content
        )
    )
    assert answered.messages is not None and answered.messages[0]["parts"][0]["type"] == "text"
    # Thoughts, two candidates, and a cut at maxOutputTokens, through a body given as is.
    request = GEMINI_WIRE.build(
        Prompt("m", (_user("think hard about it"),), {"max_length": 4}), target, False
    )
    body = {
        **request.body,
        "generationConfig": {
            **request.body["generationConfig"],
            "candidateCount": 2,
            "thinkingConfig": {"includeThoughts": True},
        },
    }
    raw = client.post(request.url, headers=dict(request.headers), json=body)
    read = ROUTE.response(loads(raw.content))
    assert read.finish_reasons == ["MAX_TOKENS", "MAX_TOKENS"]
    assert read.messages is not None and read.messages[0]["parts"][0] == {
        "type": "reasoning",
        "content": "Thinking about: think hard about it",
    }
    assert read.usage is not None and read.usage.reasoning == 6 and read.usage.output == 6 + 8
    assert ROUTE.request(body)["gen_ai.request.choice.count"] == 2


def test_round_trip_faults(server: FakeLLMServer, client: httpx2.Client) -> None:
    target = Target("vertexai", server.url, "k", {"project": "p"})
    prompt = Prompt("gemini-2.5-flash", (_user("hello"),))
    server.fail_next(429, retry_after=1)
    refused = _post(client, GEMINI_WIRE.build(prompt, target, False))
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert refused.json() == {
        "error": {"code": 429, "message": "Rate limit reached.", "status": "RESOURCE_EXHAUSTED"}
    }
    assert GEMINI_WIRE.error_message(429, loads(refused.content)) == "Rate limit reached."
    server.break_next_stream(after=3, mode="error")
    outcome, events, text = _stream(client, GEMINI_WIRE.build(prompt, target, True))
    assert [GEMINI_WIRE.stream_error(e) for e in events] == [
        None,
        None,
        None,
        "An internal error has occurred.",
    ]
    assert text == "Echo: hello this" and outcome.finish_reasons == []
    bad = client.post(
        GEMINI_WIRE.build(prompt, target, False).url,
        json={"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]},
    )
    assert bad.status_code == 400
    assert (
        GEMINI_WIRE.error_message(400, loads(bad.content))
        == "Please use a valid role: user, model."
    )
    assert GEMINI_WIRE.error_message(404, loads(b'[{"error": {"message": "gone"}}]')) == "gone"
    assert GEMINI_WIRE.error_message(502, b"Bad Gateway") == "Bad Gateway"


def test_usage_is_never_summed_across_chunks() -> None:
    state = GenerateContentStreamState({})
    for count in (5, 9, 12):
        state.record(
            loads(
                json.dumps(
                    {"usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": count}}
                )
            )
        )
    usage = state.outcome().usage
    assert usage is not None and (usage.input_tokens, usage.output) == (7, 12)
