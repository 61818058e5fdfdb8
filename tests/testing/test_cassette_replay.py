"""Every recorded provider response replays through the real SDK with the recorded usage.

One test per row of ``tests/fixtures/cassettes/INDEX.tsv``: the cassette is served by a
:class:`ReplayServer`, each recorded request is re-issued through the matching ``openai`` /
``anthropic`` SDK call (chosen from the recorded path and ``stream`` flag), and the usage the
SDK parses must equal the usage column of the index; recorded errors must raise the SDK's
exception for that status.

Explicit exclusions: none. Every cassette replays. The one recording of an API the current
SDK no longer wraps, Anthropic's legacy Text Completions (``POST /v1/complete``, removed from
``anthropic`` 1.x+), is replayed through the SDK's generic ``Anthropic.post`` instead, and its
recorded stop reason is compared (it recorded no usage).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from clew.testing.cassettes import Interaction, fixtures_dir, load_cassette
from clew.testing.llm_server import ReplayServer
from replay_clients import replay_client

CASSETTES = fixtures_dir() / "cassettes"

# Cassettes that cannot be replayed through the current SDKs, with the reason. Keep small.
EXCLUDED: dict[str, str] = {}

Usage = dict[str, int]


def _rows() -> list[dict[str, str]]:
    with open(CASSETTES / "INDEX.tsv", newline="", encoding="utf-8") as index:
        return list(csv.DictReader(index, delimiter="\t"))


def _params() -> Iterator[Any]:
    for row in _rows():
        marks = [pytest.mark.skip(reason=EXCLUDED[row["path"]])] if row["path"] in EXCLUDED else []
        yield pytest.param(row, id=row["path"], marks=marks)


def _expected_usage(cell: str) -> list[Usage | None]:
    """Parse the index's usage column: ``in=12 out=5; none recorded; -`` per interaction."""
    result: list[Usage | None] = []
    for part in cell.split(";"):
        part = part.strip()
        if part in ("-", "none recorded"):
            result.append(None)
            continue
        usage: Usage = {}
        for item in part.split():
            key, _, value = item.partition("=")
            usage["cache_read" if key == "cached/cache_read" else key] = int(value)
        result.append(usage)
    return result


def _nonzero(usage: dict[str, int | None]) -> Usage:
    return {key: value for key, value in usage.items() if value}


def _openai_usage(usage: Any) -> Usage | None:
    if usage is None:
        return None
    if hasattr(usage, "input_tokens"):  # Responses API
        cached = getattr(usage.input_tokens_details, "cached_tokens", None)
        reasoning = getattr(usage.output_tokens_details, "reasoning_tokens", None)
        return _nonzero(
            {
                "in": usage.input_tokens,
                "out": usage.output_tokens,
                "cache_read": cached,
                "reasoning": reasoning,
            }
        )
    completion = getattr(usage, "completion_tokens", None)
    cached = getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", None)
    details = getattr(usage, "completion_tokens_details", None)
    reasoning = getattr(details, "reasoning_tokens", None)
    return _nonzero(
        {"in": usage.prompt_tokens, "out": completion, "cache_read": cached, "reasoning": reasoning}
    )


def _anthropic_usage(usage: Any) -> Usage:
    return _nonzero(
        {
            "in": usage.input_tokens,
            "out": usage.output_tokens,
            "cache_read": usage.cache_read_input_tokens,
            "cache_creation": usage.cache_creation_input_tokens,
        }
    )


def _rest(body: dict[str, Any], *named: str) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key not in named}


def _call_openai(client: openai.OpenAI, interaction: Interaction) -> Usage | None:
    """Re-issue a recorded OpenAI request with the SDK; return the usage it parsed."""
    body = interaction.request_json()
    stream = bool(body.get("stream"))
    route = interaction.route
    if route == "/v1/chat/completions":
        extra = _rest(body, "model", "messages", "stream")
        if not stream:
            reply = client.chat.completions.create(
                model=body["model"], messages=body["messages"], extra_body=extra
            )
            assert reply.id == interaction.response_json()["id"]
            return _openai_usage(reply.usage)
        chunks = client.chat.completions.create(
            model=body["model"], messages=body["messages"], stream=True, extra_body=extra
        )
        with chunks:
            usages = [chunk.usage for chunk in chunks if chunk.usage is not None]
        return _openai_usage(usages[-1]) if usages else None
    if route == "/v1/completions":
        extra = _rest(body, "model", "prompt", "stream")
        if not stream:
            completion = client.completions.create(
                model=body["model"], prompt=body["prompt"], extra_body=extra
            )
            return _openai_usage(completion.usage)
        with client.completions.create(
            model=body["model"], prompt=body["prompt"], stream=True, extra_body=extra
        ) as pieces:
            usages = [piece.usage for piece in pieces if piece.usage is not None]
        return _openai_usage(usages[-1]) if usages else None
    if route == "/v1/embeddings":
        embeddings = client.embeddings.create(
            model=body["model"],
            input=body["input"],
            encoding_format=body.get("encoding_format", "float"),
            extra_body=_rest(body, "model", "input", "encoding_format"),
        )
        return {"in": embeddings.usage.prompt_tokens}
    if route == "/v1/responses":
        extra = _rest(body, "stream")
        if not stream:
            response = client.responses.create(extra_body=extra)
            assert response.id == interaction.response_json()["id"]
            return _openai_usage(response.usage)
        with client.responses.create(stream=True, extra_body=extra) as events:
            finals = [e for e in events if e.type in ("response.completed", "response.incomplete")]
        return _openai_usage(finals[-1].response.usage) if finals else None
    raise AssertionError(f"no SDK call known for {route}")


def _call_anthropic(client: anthropic.Anthropic, interaction: Interaction) -> Usage | None:
    """Re-issue a recorded Anthropic request with the SDK; return the usage it parsed."""
    body = interaction.request_json()
    if interaction.route == "/v1/complete":
        completion = client.post("/v1/complete", body=body, cast_to=object)
        assert isinstance(completion, dict)
        assert completion["stop_reason"] == interaction.response_json()["stop_reason"]
        return None
    assert interaction.route == "/v1/messages"
    messages: Any = client.beta.messages if "beta=true" in interaction.uri else client.messages
    required = {"model": body["model"], "max_tokens": body["max_tokens"]}
    extra = _rest(body, "model", "max_tokens", "messages", "stream")
    if not body.get("stream"):
        message = messages.create(**required, messages=body["messages"], extra_body=extra)
        assert message.id == interaction.response_json()["id"]
        return _anthropic_usage(message.usage)
    with messages.stream(**required, messages=body["messages"], extra_body=extra) as stream:
        final = stream.get_final_message()
    return _anthropic_usage(final.usage)


_ERRORS = {
    "openai": {
        400: openai.BadRequestError,
        401: openai.AuthenticationError,
        404: openai.NotFoundError,
    },
    "anthropic": {401: anthropic.AuthenticationError},
}


def test_the_index_lists_every_cassette() -> None:
    # gateway/ holds the completion gateway's recordings, with an INDEX.tsv of their own
    # (tests/gateway reads them).
    on_disk = {
        str(p.relative_to(CASSETTES))
        for p in CASSETTES.rglob("*.yaml")
        if p.relative_to(CASSETTES).parts[0] != "gateway"
    }
    assert on_disk == {row["path"] for row in _rows()}
    gateway = CASSETTES / "gateway"
    with open(gateway / "INDEX.tsv", newline="", encoding="utf-8") as index:
        listed = {row["path"] for row in csv.DictReader(index, delimiter="\t")}
    recorded = {
        str(p.relative_to(gateway))
        for p in gateway.rglob("*")
        if p.suffix in (".yaml", ".json") and p.parent.name != "licenses"
    }
    assert recorded == listed


# The recordings name models the anthropic SDK now warns about as deprecated.
@pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")
@pytest.mark.parametrize("row", list(_params()))
def test_cassette_replays_through_the_sdk_with_the_recorded_usage(row: dict[str, str]) -> None:
    path = CASSETTES / row["path"]
    interactions = load_cassette(path)
    expected = _expected_usage(row["usage"])
    statuses = [int(s) for s in row["http_status"].split(",")]
    assert len(interactions) == int(row["interactions"]) == len(expected) == len(statuses)
    provider = row["provider"]
    errors = _ERRORS["anthropic" if provider == "anthropic" else "openai"]
    call = _call_anthropic if provider == "anthropic" else _call_openai
    with (
        ReplayServer(path) as server,
        replay_client(provider, server, interactions[0].uri) as client,
    ):
        for interaction, usage, status in zip(interactions, expected, statuses, strict=True):
            assert interaction.status == status
            if status >= 400:
                with pytest.raises(errors[status]) as raised:
                    call(client, interaction)
                assert raised.value.status_code == status
                continue
            assert call(client, interaction) == usage
        assert server.unplayed == []
