"""The OpenAI wire format's providers (Azure, Groq, Mistral, OpenRouter, Together, Cerebras):
every recorded response in tests/fixtures/cassettes/gateway is read exactly by the shared
OpenAI parser, as clew.completion reads it: content, tool calls, finish reason, every token
count, and cost equal to genai-prices (or the provider's own reported cost)."""

from __future__ import annotations

import csv
import json
import re
from typing import Any

import pytest
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price
from hypothesis import given, settings
from hypothesis import strategies as st

from clew.gateway.answer import Answer
from clew.providers.openai_http import OPENAI_WIRE
from clew.providers.pricing import PRICE_PROVIDERS, cost_of
from clew.providers.wire import SseDecoder
from clew.testing.cassettes import Interaction, fixtures_dir, load_cassette
from clew.tracer.serialize import to_json

GATEWAY = fixtures_dir() / "cassettes" / "gateway"
PROVIDERS = ("azure", "groq", "mistral", "openrouter", "together", "cerebras")


def _rows() -> list[dict[str, str]]:
    with open(GATEWAY / "INDEX.tsv", newline="", encoding="utf-8") as index:
        return [r for r in csv.DictReader(index, delimiter="\t") if r["provider"] in PROVIDERS]


def _cases() -> list[Any]:
    cases = []
    for row in _rows():
        usages = [u.strip() for u in row["usage"].split(";")]
        for number, interaction in enumerate(load_cassette(GATEWAY / row["path"])):
            recorded = usages[number] if len(usages) > 1 else usages[0]
            recorded = re.sub(r"^#\d+\s*", "", recorded)
            case_id = f"{row['path'].rsplit('/', 1)[-1]}#{number}"
            cases.append(pytest.param(row, interaction, recorded, id=case_id))
    return cases


CASES = _cases()


# -- what the recording says, read with json alone --------------------------------------------
def _events(body: bytes) -> list[dict[str, Any]]:
    events = []
    for block in re.split(rb"\r?\n\r?\n", body):
        for line in block.splitlines():
            if line.startswith(b"data:"):
                data = line[5:].strip()
                if data and data != b"[DONE]":
                    events.append(json.loads(data))
    return events


def _is_stream(interaction: Interaction) -> bool:
    # some recordings lost the content-type header: the body says it is a stream
    return interaction.is_stream or interaction.response_body.lstrip().startswith(b"data:")


def _text(content: Any) -> str:
    if isinstance(content, list):  # Mistral: text and thinking parts
        return "".join(p.get("text", "") for p in content if p.get("type") == "text")
    return content or ""


def _expected(interaction: Interaction) -> dict[str, Any]:
    if _is_stream(interaction):
        text: list[str] = []
        calls: dict[int, list[Any]] = {}
        finish = None
        usage: dict[str, Any] | None = None
        for event in _events(interaction.response_body):
            if event.get("usage"):
                usage = event["usage"]
            elif (event.get("x_groq") or {}).get("usage"):
                usage = event["x_groq"]["usage"]
            for choice in event.get("choices") or ():
                if choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta") or {}
                text.append(_text(delta.get("content")))
                for call in delta.get("tool_calls") or ():
                    slot = calls.setdefault(call.get("index", 0), [None, None, ""])
                    slot[0] = call.get("id") or slot[0]
                    function = call.get("function") or {}
                    slot[1] = function.get("name") or slot[1]
                    slot[2] += function.get("arguments") or ""
                finish = choice.get("finish_reason") or finish
        tool_calls = [tuple(calls[i]) for i in sorted(calls)]
        return {"text": "".join(text), "calls": tool_calls, "finish": finish, "usage": usage}
    body = json.loads(interaction.response_body)
    choice = body["choices"][0]
    message = choice.get("message") or {}  # Azure: a filtered answer has none
    tool_calls = [
        (c.get("id"), c["function"]["name"], c["function"]["arguments"])
        for c in message.get("tool_calls") or ()
    ]
    return {
        "text": _text(message.get("content")),
        "calls": tool_calls,
        "finish": choice.get("finish_reason"),
        "usage": body.get("usage"),
        "model": body.get("model"),
    }


def _tokens(usage: dict[str, Any]) -> tuple[int, int, int, int]:
    details = usage.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") or usage.get("cached_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return usage["prompt_tokens"], usage["completion_tokens"], cached, reasoning


def _index_tokens(recorded: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", recorded)}


# -- the reading ------------------------------------------------------------------------------
def _read(interaction: Interaction, cuts: list[int]) -> Any:
    body = interaction.request_json() or {}
    if not _is_stream(interaction):
        return OPENAI_WIRE.route.response(json.loads(interaction.response_body)), []
    assert OPENAI_WIRE.route.stream_state is not None
    state = OPENAI_WIRE.route.stream_state(body)
    decoder = SseDecoder()
    data = interaction.response_body
    pieces, start = [], 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        pieces.append(data[start:cut])
        start = cut
    deltas: list[str] = []
    errors: list[str] = []
    for piece in pieces:
        for event in decoder.feed(piece):
            error = OPENAI_WIRE.stream_error(event)
            if error is not None:
                errors.append(error)
                continue
            state.record(event)
            deltas.append(OPENAI_WIRE.delta(event) or "")
    for event in decoder.close():
        state.record(event)
    return state.outcome(), ["".join(deltas), *errors]


@pytest.mark.parametrize(("row", "interaction", "recorded"), CASES)
def test_every_recorded_response_is_read_exactly(
    row: dict[str, str], interaction: Interaction, recorded: str
) -> None:
    provider = row["provider"]
    if interaction.status >= 400:
        text = OPENAI_WIRE.error_message(interaction.status, interaction.response_json())
        assert text and text == (interaction.response_json()["error"]["message"])
        return
    expected = _expected(interaction)
    outcome, streamed = _read(interaction, [])
    if outcome.plain:  # the fast path of to_json gives what the general path gives
        assert to_json(outcome.messages, plain=True) == to_json(outcome.messages)
    answer = Answer(provider, "requested", outcome)
    for limit in (65536, 256):  # the memo a cached answer is served from = the general path
        assert answer.rendered(limit) == (
            to_json(outcome.messages, limit) if outcome.messages else None,
            to_json(answer.content(), limit),
        )
    text, calls = answer.text_and_calls()
    assert text == expected["text"]
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        (i, n, json.loads(a)) for i, n, a in expected["calls"]
    ]
    assert (outcome.finish_reasons or [None])[0] == expected["finish"]
    if streamed:
        assert streamed[0] == expected["text"]  # the deltas a caller is given add up
    usage = expected["usage"]
    got = outcome.usage
    assert got is not None
    if usage is None:  # a stream asked without include_usage: estimated, and marked so
        assert got.estimated and recorded == "-"
        return
    assert not got.estimated
    prompt, completion, cached, reasoning = _tokens(usage)
    assert (got.input_tokens, got.output, got.cache_read, got.reasoning) == (
        prompt,
        completion,
        cached,
        reasoning,
    )
    index = _index_tokens(recorded)
    assert (index["in"], index["out"]) == (prompt, completion)
    assert index.get("cached", 0) == cached and index.get("thoughts", 0) == reasoning
    # cost: the provider's own, else genai-prices for the recorded usage, else unknown
    model = outcome.model or expected.get("model") or ""
    cost = cost_of(got, model, provider, outcome.reported_cost)
    if isinstance(usage.get("cost"), int | float):
        assert cost.amount == pytest.approx(usage["cost"]) and cost.source == "provider"
        return
    try:
        price = PriceUsage(
            input_tokens=prompt, output_tokens=completion, cache_read_tokens=cached or None
        )
        price_id = PRICE_PROVIDERS.get(provider)
        assert price_id is not None
        wanted: float | None = float(calc_price(price, model, provider_id=price_id).total_price)
    except (LookupError, AssertionError):
        wanted = None
    if wanted is None:
        assert cost.amount is None and cost.error
    else:
        assert cost.amount == pytest.approx(wanted, rel=1e-12)


STREAMS = [c for c in CASES if _is_stream(c.values[1]) and c.values[1].status == 200]


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_streams_read_the_same_in_any_pieces(data: st.DataObject) -> None:
    _row, interaction, _ = data.draw(st.sampled_from(STREAMS)).values
    cuts = data.draw(st.lists(st.integers(0, 100_000), max_size=20))
    whole, _ = _read(interaction, [])
    pieces, _ = _read(interaction, cuts)
    assert pieces == whole
