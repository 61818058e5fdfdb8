"""Reading vcrpy cassettes and matching requests to recorded interactions."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import openai
import pytest

from clew.testing.cassettes import (
    CassetteReplayer,
    Interaction,
    canonical_route,
    fixtures_dir,
    load_cassette,
)
from clew.testing.llm_server import FakeLLMServer, ReplayServer

CASSETTES = fixtures_dir() / "cassettes"
PROMPT = [{"role": "user", "content": "hi"}]


def _interaction(body: str, *, model: str = "m", stream: bool = False) -> Interaction:
    return Interaction(
        method="POST",
        uri="https://api.openai.com/v1/chat/completions",
        request_body=json.dumps({"model": model, "stream": stream}),
        status=200,
        response_headers=(("content-type", "application/json"),),
        response_body=body.encode(),
    )


def _write_cassette(tmp_path: Path, body_yaml: str) -> Path:
    path = tmp_path / "cassette.yaml"
    path.write_text(
        "interactions:\n"
        "- request:\n"
        '    body: \'{"model": "m"}\'\n'
        "    headers: {}\n"
        "    method: POST\n"
        "    uri: https://api.openai.com/v1/embeddings\n"
        "  response:\n" + body_yaml + "version: 1\n"
    )
    return path


def test_fixtures_dir_finds_the_shared_fixtures() -> None:
    assert (fixtures_dir() / "cassettes" / "INDEX.tsv").is_file()


def test_fixtures_dir_honours_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLEW_FIXTURES_DIR", str(tmp_path))

    assert fixtures_dir() == tmp_path.resolve()


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/v1/chat/completions", "/v1/chat/completions"),
        ("/v1/messages?beta=true", "/v1/messages"),
        ("//openai/deployments/gpt/chat/completions?api-version=1", "/v1/chat/completions"),
        ("/openai/v1/responses", "/v1/responses"),
        ("/chat/completions/", "/v1/chat/completions"),
    ],
)
def test_canonical_route(path: str, route: str) -> None:
    assert canonical_route(path) == route


def test_gzip_binary_bodies_are_decoded_and_transfer_headers_dropped() -> None:
    (interaction,) = load_cassette(CASSETTES / "openllmetry/test_chat/test_chat_tools.yaml")

    assert interaction.response_json()["usage"]["prompt_tokens"] == 68
    assert interaction.header("content-encoding") is None
    assert interaction.header("content-type") == "application/json"
    assert interaction.header("x-request-id") == "req_3a31633b38b5bb2bdc2747e25055c78c"
    assert interaction.route == "/v1/chat/completions"


def test_old_httpx_format_is_read() -> None:
    (interaction,) = load_cassette(CASSETTES / "dd-trace-py/chat_completion_error.yaml")

    assert interaction.status == 401
    assert interaction.response_json()["error"]["code"] == "invalid_api_key"
    assert interaction.request_json()["n"] == 2


def test_sse_bodies_split_into_events() -> None:
    path = CASSETTES / "otel-contrib/test_chat_completion_streaming.yaml"
    (interaction,) = load_cassette(path)

    events = interaction.sse_events()
    assert interaction.is_stream
    assert events[-1] == b"data: [DONE]\n\n"
    assert b"".join(events).strip() == interaction.response_body.strip()


def test_base64_gzip_written_by_hand_is_decoded(tmp_path: Path) -> None:
    payload = base64.b64encode(gzip.compress(b'{"ok": true}')).decode()
    path = _write_cassette(
        tmp_path,
        "    body:\n"
        f"      string: !!binary |\n        {payload}\n"
        "    headers:\n      Content-Encoding:\n      - gzip\n"
        "    status:\n      code: 200\n      message: OK\n",
    )

    (interaction,) = load_cassette(path)

    assert interaction.response_json() == {"ok": True}
    assert interaction.response_headers == ()


def test_a_file_that_is_not_a_cassette_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text("just: a mapping\n")

    with pytest.raises(ValueError, match="not a vcrpy cassette"):
        load_cassette(path)


def test_replayer_serves_repeated_requests_in_order() -> None:
    replayer = CassetteReplayer([_interaction("one"), _interaction("two")])

    first = replayer.match("POST", "/v1/chat/completions", {"model": "m"})
    second = replayer.match("POST", "/v1/chat/completions", {"model": "m"})

    assert first is not None and second is not None
    assert (first.response_body, second.response_body) == (b"one", b"two")
    assert replayer.match("POST", "/v1/chat/completions") is None
    assert replayer.unplayed == []


def test_replayer_prefers_the_same_model_and_stream_flag() -> None:
    replayer = CassetteReplayer(
        [
            _interaction("plain"),
            _interaction("streamed", stream=True),
            _interaction("other", model="x"),
        ]
    )

    streamed = replayer.match("POST", "/v1/chat/completions", {"model": "m", "stream": True})
    other = replayer.match("POST", "/v1/chat/completions", {"model": "x"})

    assert streamed is not None and streamed.response_body == b"streamed"
    assert other is not None and other.response_body == b"other"
    assert [i.response_body for i in replayer.unplayed] == [b"plain"]


def test_replayer_ignores_other_routes_and_can_repeat() -> None:
    replayer = CassetteReplayer([_interaction("only")], allow_repeats=True)

    assert replayer.match("POST", "/v1/embeddings") is None
    assert replayer.match("GET", "/v1/chat/completions") is None
    for _ in range(3):
        again = replayer.match("POST", "/v1/chat/completions")
        assert again is not None and again.response_body == b"only"


def test_replay_server_answers_an_unrecorded_request_with_404() -> None:
    path = CASSETTES / "otel-contrib/test_chat_completion_with_content.yaml"
    with (
        ReplayServer(path) as server,
        openai.OpenAI(base_url=server.openai_base_url, api_key="t", max_retries=0) as client,
    ):
        client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
        with pytest.raises(openai.NotFoundError, match="No recorded interaction"):
            client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)


def test_fake_server_replays_a_stream_with_chunk_delay_and_faults() -> None:
    path = CASSETTES / "otel-contrib/test_chat_completion_streaming.yaml"
    with (
        FakeLLMServer(cassette=path, chunk_delay=0.001) as server,
        openai.OpenAI(base_url=server.openai_base_url, api_key="t", max_retries=0) as client,
    ):
        server.fail_next(429)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="gpt-4", messages=PROMPT, stream=True)
        chunks = list(client.chat.completions.create(model="gpt-4", messages=PROMPT, stream=True))

    assert chunks[0].id == "chatcmpl-ASYMZ4oSykiIFK4lXLReDiKyAjsQl"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 17
    assert server.unplayed == []
