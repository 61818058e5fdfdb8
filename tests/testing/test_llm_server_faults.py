"""Fault injection, request recording and lifecycle of the fake LLM server."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import openai
import pytest

from clew.testing.llm_server import FakeLLMServer

PROMPT: list[Any] = [{"role": "user", "content": "Say hello"}]
CLAUDE = "claude-fake"


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as fake:
        yield fake


@pytest.fixture
def client(server: FakeLLMServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.openai_base_url, api_key="sk-secret", max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def claude(server: FakeLLMServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=server.anthropic_base_url, api_key="sk-ant-secret", max_retries=0
    ) as sdk:
        yield sdk


def _chat(client: openai.OpenAI, **options: Any) -> Any:
    return client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, **options)


# -- errors ----------------------------------------------------------------------------------


def test_fail_next_raises_rate_limit_error_with_retry_after(
    server: FakeLLMServer, client: openai.OpenAI
) -> None:
    server.fail_next(429, retry_after=7)

    with pytest.raises(openai.RateLimitError) as raised:
        _chat(client)

    assert raised.value.status_code == 429
    assert raised.value.response.headers["retry-after"] == "7"
    assert raised.value.code == "rate_limit_exceeded"
    assert _chat(client).choices[0].finish_reason == "stop"


def test_fail_next_times_fails_that_many_requests(
    server: FakeLLMServer, client: openai.OpenAI
) -> None:
    server.fail_next(500, times=2)

    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            _chat(client)
    assert _chat(client).usage is not None


def test_fail_next_on_a_path_leaves_other_routes_alone(
    server: FakeLLMServer, client: openai.OpenAI
) -> None:
    server.fail_next(503, path="/v1/embeddings")

    assert _chat(client).usage is not None
    with pytest.raises(openai.InternalServerError) as raised:
        client.embeddings.create(model="m", input="x")
    assert raised.value.status_code == 503


def test_fail_next_with_a_custom_body(server: FakeLLMServer, client: openai.OpenAI) -> None:
    server.fail_next(400, body={"error": {"message": "bad tool", "type": "x", "code": "y"}})

    with pytest.raises(openai.BadRequestError) as raised:
        _chat(client)

    # How the SDK words its message changes between releases; the body is the server's.
    assert "bad tool" in raised.value.message
    assert raised.value.status_code == 400
    assert raised.value.body == {"message": "bad tool", "type": "x", "code": "y"}


def test_anthropic_errors_use_the_anthropic_error_shape(
    server: FakeLLMServer, claude: anthropic.Anthropic
) -> None:
    server.fail_next(529)
    with pytest.raises(anthropic.APIStatusError) as overloaded:
        claude.messages.create(model=CLAUDE, max_tokens=10, messages=PROMPT)
    server.fail_next(429, retry_after="2")
    with pytest.raises(anthropic.RateLimitError) as limited:
        claude.messages.create(model=CLAUDE, max_tokens=10, messages=PROMPT)

    assert overloaded.value.status_code == 529
    assert overloaded.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": "req_fake00000001",
    }
    assert limited.value.response.headers["retry-after"] == "2"


def test_status_header_forces_an_error_for_one_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as raised:
        _chat(client, extra_headers={"x-fake-status": "502"})

    assert raised.value.status_code == 502
    assert _chat(client).usage is not None


def test_missing_max_tokens_is_rejected_like_anthropic_does(server: FakeLLMServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
    body = json.dumps({"model": CLAUDE, "messages": PROMPT})
    connection.request("POST", "/v1/messages", body, {"content-type": "application/json"})
    response = connection.getresponse()
    payload = json.loads(response.read())
    connection.close()

    assert response.status == 400
    assert payload["error"]["type"] == "invalid_request_error"


def test_unknown_route_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.models.list()


# -- broken streams --------------------------------------------------------------------------


def test_openai_stream_broken_with_an_error_event(
    server: FakeLLMServer, client: openai.OpenAI
) -> None:
    server.break_next_stream(after=3, mode="error")
    received = []

    with pytest.raises(openai.APIError, match="server had an error"):
        for chunk in _chat(client, stream=True):
            received.append(chunk)

    assert len(received) == 3


def test_openai_stream_broken_by_a_dropped_connection(
    server: FakeLLMServer, client: openai.OpenAI
) -> None:
    server.break_next_stream(after=4, mode="close")
    received = []

    # Which exception a dropped stream becomes is the SDK's choice and changes between
    # versions; the fake server only promises that the stream fails instead of ending.
    with pytest.raises(Exception):  # noqa: B017
        for chunk in _chat(client, stream=True):
            received.append(chunk)

    assert len(received) == 4
    assert [chunk.choices[0].finish_reason for chunk in received] == [None] * 4
    assert _chat(client).usage is not None  # the client recovers on a new connection


def test_anthropic_stream_broken_with_an_error_event(
    server: FakeLLMServer, claude: anthropic.Anthropic
) -> None:
    server.break_next_stream(after=5, mode="error")

    with (
        pytest.raises(anthropic.APIStatusError, match="overloaded_error"),
        claude.messages.stream(model=CLAUDE, max_tokens=100, messages=PROMPT) as stream,
    ):
        stream.get_final_message()


def test_anthropic_stream_broken_by_a_dropped_connection(claude: anthropic.Anthropic) -> None:
    def event_types(**options: Any) -> Iterator[str]:
        stream = claude.messages.create(
            model=CLAUDE, max_tokens=100, messages=PROMPT, stream=True, **options
        )
        with stream:
            yield from (event.type for event in stream)

    complete = list(event_types())
    headers = {"x-fake-break-after": "4", "x-fake-break-mode": "close"}
    received = []

    # As above: the SDK picks the exception (httpx's, or its own connection error).
    with pytest.raises(Exception):  # noqa: B017
        for kind in event_types(extra_headers=headers):
            received.append(kind)

    assert received[:2] == ["message_start", "content_block_start"]
    assert received == complete[: len(received)]
    assert "message_stop" not in received


def test_responses_stream_broken_with_an_error_event(client: openai.OpenAI) -> None:
    headers = {"x-fake-break-after": "2"}
    # The events as sent (how an SDK parses an error event varies between its releases).
    with client.responses.with_streaming_response.create(
        model="gpt-4.1", input="hi", stream=True, extra_headers=headers
    ) as response:
        lines = list(response.iter_lines())

    kinds = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert kinds == ["response.created", "response.in_progress", "error"]


def test_reset_faults_forgets_queued_faults(server: FakeLLMServer, client: openai.OpenAI) -> None:
    server.fail_next(500, times=3)
    server.break_next_stream()
    server.reset_faults()

    assert _chat(client).usage is not None
    assert len(list(_chat(client, stream=True))) > 3


# -- latency ---------------------------------------------------------------------------------


def test_latency_delays_the_first_byte() -> None:
    with (
        FakeLLMServer(latency=0.05) as fake,
        openai.OpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=0) as sdk,
    ):
        started = time.perf_counter()
        _chat(sdk)
        elapsed = time.perf_counter() - started

    assert elapsed >= 0.05


def test_chunk_delay_spaces_the_sse_events() -> None:
    with (
        FakeLLMServer(chunk_delay=0.005, reply_words=4) as fake,
        openai.OpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=0) as sdk,
    ):
        started = time.perf_counter()
        chunks = list(_chat(sdk, stream=True))
        elapsed = time.perf_counter() - started

    assert len(chunks) == 6
    assert elapsed >= 0.005 * 6


# -- recording and lifecycle -------------------------------------------------------------------


def test_requests_are_recorded_with_credentials_redacted(
    server: FakeLLMServer, client: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    _chat(client, temperature=0.5)
    claude.messages.create(model=CLAUDE, max_tokens=10, messages=PROMPT)

    chat, message = server.requests
    assert (chat.method, chat.path, chat.query) == ("POST", "/v1/chat/completions", "")
    assert chat.body == {"model": "gpt-4o-mini", "messages": PROMPT, "temperature": 0.5}
    assert chat.headers["authorization"] == "REDACTED"
    assert message.path == "/v1/messages"
    secrets = [v for v in [*chat.headers.values(), *message.headers.values()] if "secret" in v]
    assert secrets == []


def test_recording_can_be_turned_off() -> None:
    with (
        FakeLLMServer(record_requests=False) as fake,
        openai.OpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=0) as sdk,
    ):
        _chat(sdk)

    assert fake.requests == []


def test_concurrent_requests_get_unique_ids(server: FakeLLMServer, client: openai.OpenAI) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda _: _chat(client), range(40)))

    assert len({reply.id for reply in replies}) == 40
    assert len(server.requests) == 40


def test_keep_alive_serves_many_requests_on_one_connection(server: FakeLLMServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
    body = json.dumps({"model": "m", "messages": PROMPT})
    try:
        for _ in range(3):
            connection.request("POST", "/v1/chat/completions", body)
            response = connection.getresponse()
            assert response.status == 200 and json.loads(response.read())["usage"]
        local_port = connection.sock.getsockname()[1]
        connection.request("POST", "/v1/chat/completions", body)
        connection.getresponse().read()
        assert connection.sock.getsockname()[1] == local_port
    finally:
        connection.close()


def test_server_binds_loopback_and_frees_the_port_on_close() -> None:
    fake = FakeLLMServer().start()
    port = int(fake.url.rsplit(":", 1)[1])
    assert fake.url == f"http://127.0.0.1:{port}"
    assert fake.openai_base_url == fake.url + "/v1"
    assert fake.anthropic_base_url == fake.url

    fake.close()
    fake.close()  # idempotent

    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass
    with pytest.raises(RuntimeError, match="start"):
        _ = fake.url


def test_close_ends_idle_keep_alive_connections(server: FakeLLMServer) -> None:
    with openai.OpenAI(base_url=server.openai_base_url, api_key="t", max_retries=0) as sdk:
        _chat(sdk)
        server.close()
        with pytest.raises(openai.APIConnectionError):
            _chat(sdk)


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="latency"):
        FakeLLMServer(latency=-1)
    with pytest.raises(ValueError, match="mode"):
        FakeLLMServer().break_next_stream(mode="explode")
