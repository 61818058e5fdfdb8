"""The real SDK client for a cassette's provider, pointed at a replay server, and the SDK call
that re-issues a recorded request (shared by tests)."""

from __future__ import annotations

import csv
import importlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anthropic
import openai

from clew.testing.cassettes import Interaction, fixtures_dir
from clew.testing.llm_server import ReplayServer


@contextmanager
def replay_client(
    provider: str, server: ReplayServer, uri: str, *, as_recorded: bool = False
) -> Iterator[Any]:
    """The SDK client for ``provider``, pointed at ``server``.

    With ``as_recorded``, the client is given the recorded base URL (``https://api.openai.com``
    ...), as an application would be, and its connections are delivered to ``server``: spans
    see the real host and port.

    The local server speaks plain HTTP, so the clients skip loading the CA bundle (which
    costs ~30 ms per client and would dominate this module's run time).
    """
    recorded = urlsplit(uri)
    origin = f"{recorded.scheme}://{recorded.netloc}" if as_recorded else server.url
    sdk: Any = anthropic if provider == "anthropic" else openai
    http_client = sdk.DefaultHttpxClient(
        verify=False, transport=_to_server(sdk, server) if as_recorded else None
    )
    if provider == "anthropic":
        with anthropic.Anthropic(
            base_url=origin if as_recorded else server.anthropic_base_url,
            api_key="test",
            max_retries=0,
            http_client=http_client,
        ) as client:
            yield client
    elif provider == "azure":
        with openai.AzureOpenAI(
            azure_endpoint=origin,
            api_version=parse_qs(recorded.query)["api-version"][0],
            api_key="test",
            max_retries=0,
            http_client=http_client,
        ) as client:
            yield client
    else:
        with openai.OpenAI(
            base_url=f"{origin}/v1" if as_recorded else server.openai_base_url,
            api_key="test",
            max_retries=0,
            http_client=http_client,
        ) as client:
            yield client


def _to_server(sdk: Any, server: ReplayServer) -> Any:
    """An HTTP transport of the SDK's own HTTP library that sends every request to ``server``,
    whatever host the client names."""
    httpx = importlib.import_module(sdk.DefaultHttpxClient.__mro__[1].__module__.split(".")[0])
    local = urlsplit(server.url)

    class ToReplayServer(httpx.HTTPTransport):
        def handle_request(self, request: Any) -> Any:
            request.url = request.url.copy_with(
                scheme=local.scheme, host=local.hostname, port=local.port
            )
            return super().handle_request(request)

    return ToReplayServer()


def cassette_rows() -> list[dict[str, str]]:
    """The rows of the cassettes' ``INDEX.tsv`` (path, provider, api ...)."""
    with open(fixtures_dir() / "cassettes" / "INDEX.tsv", newline="", encoding="utf-8") as index:
        return list(csv.DictReader(index, delimiter="\t"))


def sse_json(interaction: Interaction) -> list[Any]:
    """The JSON of each ``data:`` line of a recorded stream (``[DONE]`` left out)."""
    found = []
    for event in interaction.sse_events():
        for line in event.decode().splitlines():
            if line.startswith("data:") and line[5:].strip() not in ("", "[DONE]"):
                found.append(json.loads(line[5:]))
    return found


def _rest(body: dict[str, Any], *named: str) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key not in named}


def replay(client: Any, provider: str, interaction: Interaction, *, cut: bool = False) -> None:
    """Re-issue a recorded request through the SDK call that makes it, and read the answer.

    A stream is read to its end, or, with ``cut``, for its first chunk only, after which the
    client lets go of it (leaving ``with`` closes it).
    """
    if provider == "anthropic":
        _replay_anthropic(client, interaction, cut)
    else:
        _replay_openai(client, interaction, cut)


def _read(stream: Any, cut: bool) -> None:
    with stream:
        if cut:
            next(iter(stream))
        else:
            list(stream)


def _replay_openai(client: openai.OpenAI, interaction: Interaction, cut: bool) -> None:
    body = interaction.request_json()
    stream = bool(body.get("stream"))
    route = interaction.route
    if route in ("/v1/chat/completions", "/v1/completions"):
        api: Any = (
            client.chat.completions if route == "/v1/chat/completions" else client.completions
        )
        key = "messages" if route == "/v1/chat/completions" else "prompt"
        extra = _rest(body, "model", key, "stream")
        result = api.create(
            model=body["model"], stream=stream, extra_body=extra, **{key: body[key]}
        )
        if stream:
            _read(result, cut)
    elif route == "/v1/embeddings":
        client.embeddings.create(
            model=body["model"],
            input=body["input"],
            encoding_format=body.get("encoding_format", "float"),
            extra_body=_rest(body, "model", "input", "encoding_format"),
        )
    elif route == "/v1/responses":
        result = client.responses.create(stream=stream, extra_body=_rest(body, "stream"))
        if stream:
            _read(result, cut)
    else:
        raise AssertionError(f"no SDK call known for {route}")


def _replay_anthropic(client: anthropic.Anthropic, interaction: Interaction, cut: bool) -> None:
    body = interaction.request_json()
    if interaction.route == "/v1/complete":  # legacy API the SDK dropped: not an LLM route here
        client.post("/v1/complete", body=body, cast_to=object)
        return
    messages: Any = client.beta.messages if "beta=true" in interaction.uri else client.messages
    required = {"model": body["model"], "max_tokens": body["max_tokens"]}
    extra = _rest(body, "model", "max_tokens", "messages", "stream")
    if body.get("stream"):
        with messages.stream(**required, messages=body["messages"], extra_body=extra) as stream:
            if cut:
                next(iter(stream))
            else:
                stream.get_final_message()
    else:
        messages.create(**required, messages=body["messages"], extra_body=extra)
