"""``clew serve`` as a real process on a loopback port: the Parea completion routes, keys,
validation, errors, streaming and tracing, against the fake LLM server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from clew.testing.llm_server import FakeLLMServer

from .conftest import start_gateway

KEY = "gw-test-key-1"
PAREA = "/api/parea/v1/completion"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(fake: FakeLLMServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("gateway")
    env = {
        **os.environ,
        "CLEW_GATEWAY_KEYS": f"other-key,{KEY}",
        "CLEW_OPENAI_BASE_URL": fake.openai_base_url,
        "CLEW_OPENAI_API_KEY": "sk-upstream",
        "CLEW_ANTHROPIC_BASE_URL": fake.anthropic_base_url,
        "CLEW_ANTHROPIC_API_KEY": "sk-ant-upstream",
        "CLEW_EXPORTER": "jsonl",
        "CLEW_JSONL": str(folder / "spans.jsonl"),
        "CLEW_STORE": str(folder / "traces.db"),
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "CLEW_GATEWAY_MAX_BODY_BYTES": "65536",
    }
    process, url = start_gateway(env)
    try:
        yield url
    finally:
        process.terminate()
        process.communicate(timeout=10)


def _request(**extra: Any) -> dict[str, Any]:
    return {
        "llm_configuration": {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "{{question}}"}],
        },
        "llm_inputs": {"question": "Can I return shoes?"},
        "cache": False,
        **extra,
    }


def test_a_completion_answers_with_the_seed_body(gateway: str) -> None:
    reply = httpx2.post(gateway + PAREA, json=_request(), headers={"x-user-id": KEY}, timeout=10)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    seed_002 = {
        "inference_id",
        "content",
        "latency",
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "cost",
        "model",
        "provider",
        "cache_hit",
        "status",
        "error",
        "start_timestamp",
        "end_timestamp",
    }
    assert seed_002 <= set(body)
    assert body["content"].startswith("Echo: Can I return shoes?")
    assert body["provider"] == "openai" and body["status"] == "success"
    assert body["total_tokens"] == body["input_tokens"] + body["output_tokens"] > 0
    bearer = httpx2.post(
        gateway + PAREA, json=_request(), headers={"authorization": f"Bearer {KEY}"}, timeout=10
    )
    assert bearer.status_code == 200


@pytest.mark.parametrize("headers", [{}, {"x-user-id": "wrong"}, {"authorization": "Bearer no"}])
def test_no_key_or_a_wrong_one_is_401(gateway: str, headers: dict[str, str]) -> None:
    reply = httpx2.post(gateway + PAREA, json=_request(), headers=headers, timeout=10)
    assert reply.status_code == 401
    assert reply.json()["error"]["type"] == "authentication_error"


def test_a_bad_body_is_422_in_the_seed_shape(gateway: str) -> None:
    body = _request()
    body["log_sample_rate"] = 3
    body["llm_configuration"]["model_params"] = {"temp": "hot"}
    reply = httpx2.post(gateway + PAREA, json=body, headers={"x-user-id": KEY}, timeout=10)
    assert reply.status_code == 422
    detail = reply.json()["detail"]
    assert isinstance(detail, list) and len(detail) == 2
    for item in detail:
        assert {"loc", "msg", "type"} <= set(item)
        assert isinstance(item["loc"], list) and isinstance(item["msg"], str)
    locations = {tuple(item["loc"]) for item in detail}
    assert ("body", "log_sample_rate") in locations
    assert ("body", "llm_configuration", "model_params", "temp") in locations


def test_errors_use_the_seed_004_body(gateway: str, fake: FakeLLMServer) -> None:
    missing = httpx2.post(
        gateway + PAREA,
        json={**_request(), "llm_inputs": {}},
        headers={"x-user-id": KEY},
        timeout=10,
    )
    assert missing.status_code == 400
    error = missing.json()["error"]
    assert set(error) == {"code", "message", "param", "type"}
    assert error["param"] == "llm_inputs.question"
    fake.fail_next(500, times=10)
    failed = httpx2.post(gateway + PAREA, json=_request(), headers={"x-user-id": KEY}, timeout=30)
    fake.reset_faults()
    assert failed.status_code == 502 and failed.json()["error"]["type"] == "api_error"


def _events(text: str) -> list[tuple[str | None, Any]]:
    found = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name = None
        data = None
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
        found.append((name, data))
    return found


def test_the_stream_route_sends_deltas_then_the_response(gateway: str) -> None:
    with httpx2.stream(
        "POST", gateway + PAREA + "/stream", json=_request(), headers={"x-user-id": KEY}
    ) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        events = _events(reply.read().decode())
    deltas = [data["content"] for name, data in events if name is None]
    assert len(deltas) > 3
    name, done = events[-1]
    assert name == "done" and done["content"] == "".join(deltas)


def test_a_stream_broken_by_the_provider_ends_with_an_error_event(
    gateway: str, fake: FakeLLMServer
) -> None:
    fake.break_next_stream(after=4, mode="error")
    with httpx2.stream(
        "POST", gateway + PAREA + "/stream", json=_request(), headers={"x-user-id": KEY}
    ) as reply:
        events = _events(reply.read().decode())
    assert any(name is None for name, _ in events)
    name, error = events[-1]
    assert name == "error" and error["error"]["type"] == "api_error"


def test_requests_are_traced_under_a_traceparent_and_keys_stay_out(
    gateway: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    traceparent = f"00-{trace_id}-00f067aa0ba902b7-01"
    canary = "canary-omitted-7781"
    reply = httpx2.post(
        gateway + PAREA,
        json={**_request(), "llm_inputs": {"question": canary}, "log_omit": True},
        headers={"x-user-id": KEY, "traceparent": traceparent},
        timeout=10,
    )
    assert reply.status_code == 200
    spans_file = next(Path(tmp_path_factory.getbasetemp()).glob("gateway*/spans.jsonl"))
    deadline = time.monotonic() + 10
    records: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        text = spans_file.read_text() if spans_file.exists() else ""
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
        if any(r["root_trace_id"].replace("-", "") == trace_id for r in records):
            break
        time.sleep(0.1)
    ours = [r for r in records if r["root_trace_id"].replace("-", "") == trace_id]
    assert {r["name"] for r in ours} == {"llm-openai", "upstream"}
    (llm,) = [r for r in ours if r["name"] == "llm-openai"]
    from clew.gateway.keys import key_scope

    assert llm["attributes"]["clew.gateway.key"] == key_scope(KEY)  # its name, not the key
    text = spans_file.read_text()
    assert canary not in text
    assert KEY not in text and "sk-upstream" not in text


def test_serving_beyond_loopback_without_keys_refuses_to_start() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CLEW_GATEWAY_KEYS"}
    result = subprocess.run(
        [sys.executable, "-m", "clew.cli", "serve", "--host", "0.0.0.0", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "CLEW_GATEWAY_KEYS" in result.stderr


# -- the OpenAI chat API, through the official openai SDK ------------------------------------
@pytest.fixture
def client(gateway: str) -> Iterator[Any]:
    import openai

    with openai.OpenAI(base_url=gateway + "/v1", api_key=KEY, max_retries=0) as sdk:
        yield sdk


def test_the_openai_sdk_gets_a_chat_completion(client: Any) -> None:
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Can I return shoes?"}],
        max_tokens=100,
        temperature=0,
    )
    assert reply.choices[0].message.content.startswith("Echo: Can I return shoes?")
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    extra = reply.model_extra or {}
    assert extra["provider"] == "openai" and extra["cost"] > 0
    assert reply.choices[0].model_extra["native_finish_reason"] == "stop"


def test_a_provider_prefix_routes_and_models_fall_back(client: Any, fake: FakeLLMServer) -> None:
    reply = client.chat.completions.create(
        model="anthropic/claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.model_extra["provider"] == "anthropic"
    assert reply.choices[0].model_extra["native_finish_reason"] == "end_turn"
    fake.fail_next(500, times=3)
    served = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"models": ["anthropic/claude-sonnet-4-5"]},
    )
    assert served.model_extra["provider"] == "anthropic"


def test_tool_calls_come_back_in_the_openai_shape(client: Any) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "weather in Paris"}],
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    (call,) = reply.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments)
    assert reply.choices[0].finish_reason == "tool_calls"


def test_the_openai_sdk_streams(client: Any) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Tell me about streams"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Echo: Tell me about streams")
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_errors_are_the_sdks_own_exception_types(gateway: str, client: Any) -> None:
    import openai

    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], n=2
        )
    assert bad.value.status_code == 400 and "n" in str(bad.value)
    with pytest.raises(openai.BadRequestError, match="logit_bias"):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], logit_bias={"1": 1}
        )
    with (
        openai.OpenAI(base_url=gateway + "/v1", api_key="wrong", max_retries=0) as other,
        pytest.raises(openai.AuthenticationError),
    ):
        other.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )


def test_an_error_midway_through_a_stream_reaches_the_sdk(client: Any, fake: FakeLLMServer) -> None:
    import openai

    fake.break_next_stream(after=5, mode="error")
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Tell me"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received)


def test_a_body_over_the_limit_is_413(gateway: str) -> None:
    big = _request()
    big["metadata"] = {"blob": "x" * 70_000}
    reply = httpx2.post(gateway + PAREA, json=big, headers={"x-user-id": KEY}, timeout=10)
    assert reply.status_code == 413
    assert reply.json()["error"]["code"] == "request_too_large"

    def chunks() -> Iterator[bytes]:  # no content-length: counted as it arrives
        yield json.dumps(big).encode()

    chunked = httpx2.post(
        gateway + PAREA,
        content=chunks(),
        headers={"x-user-id": KEY, "content-type": "application/json"},
    )
    assert chunked.status_code == 413


# -- legacy text completions ----------------------------------------------------------------
def test_the_openai_sdk_gets_legacy_completions(client: Any) -> None:
    reply = client.completions.create(model="gpt-4o-mini", prompt="Say this is a test")
    assert reply.object == "text_completion"
    assert reply.choices[0].text.startswith("Echo: Say this is a test")
    assert reply.choices[0].finish_reason == "stop"
    several = client.completions.create(
        model="anthropic/claude-sonnet-4-5", prompt=["first prompt", "second prompt"]
    )
    assert [c.index for c in several.choices] == [0, 1]
    assert several.choices[1].text.startswith("Echo: second prompt")
    assert (
        several.usage.total_tokens == several.usage.prompt_tokens + several.usage.completion_tokens
    )
    stream = client.completions.create(model="gpt-4o-mini", prompt="Stream this", stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks).startswith("Echo: Stream this")
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"suffix": "end"}, "suffix"),
        ({"echo": True}, "echo"),
        ({"logprobs": 2}, "logprobs"),
        ({"best_of": 3}, "best_of"),
        ({"response_format": {"type": "grammar", "grammar": "root ::= x"}}, "response_format"),
    ],
)
def test_what_a_chat_model_cannot_do_is_a_400_naming_it(
    gateway: str, extra: dict[str, Any], param: str
) -> None:
    body = {"model": "gpt-4o-mini", "prompt": "hi", **extra}
    reply = httpx2.post(
        gateway + "/v1/completions", json=body, headers={"x-user-id": KEY}, timeout=10
    )
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == param


def test_metrics_count_requests_tokens_and_errors(gateway: str, client: Any) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "m"}])
    httpx2.post(gateway + PAREA, json=_request(), headers={"x-user-id": "wrong"}, timeout=10)
    assert httpx2.get(gateway + "/metrics", timeout=10).status_code == 401  # keys guard it too
    text = httpx2.get(gateway + "/metrics", headers={"x-user-id": KEY}, timeout=10).text
    from clew.gateway.keys import key_scope

    ok = [
        line
        for line in text.splitlines()
        if line.startswith("clew_gateway_requests_total{")
        and 'route="/v1/chat/completions"' in line
        and 'status="200"' in line
        and f'key="{key_scope(KEY)}"' in line
    ]
    assert ok and float(ok[0].rsplit(" ", 1)[1]) >= 1
    assert any(
        line.startswith("clew_gateway_errors_total{") and 'code="invalid_api_key"' in line
        for line in text.splitlines()
    )
    tokens = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("clew_gateway_tokens_total{") and 'kind="output"' in line
    ]
    assert sum(tokens) > 0
    assert "clew_gateway_request_seconds_bucket" in text
    assert KEY not in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("providers: [1\n", "not valid YAML"),
        ("- a list\n", "mapping of settings"),
        ("gateway: {timeout: -1}\n", "gateway.timeout"),
        ("providers: {openia: {api_key: x}}\n", "unknown provider 'openia'"),
    ],
)
def test_a_bad_config_file_is_named_before_serving(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    from clew.cli import main

    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    assert main(["serve", "--config", str(path), "--port", "1"]) == 1
    error = capsys.readouterr().err
    assert str(path) in error and message in error
    assert main(["serve", "--config", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read the settings file" in capsys.readouterr().err


def test_a_client_that_leaves_midstream_ends_the_span(
    gateway: str, fake: FakeLLMServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    trace_id = "5cf92f3577b34da6a3ce929d0e0e4736"
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Tell me a long story"}],
        "stream": True,
    }
    headers = {"x-user-id": KEY, "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    fake.chunk_delay = 0.05  # a provider that takes its time between tokens
    try:
        with httpx2.stream(
            "POST", gateway + "/v1/chat/completions", json=body, headers=headers, timeout=10
        ) as response:
            assert response.status_code == 200
            next(response.iter_bytes())  # the first bytes, then the client is gone
    finally:
        fake.chunk_delay = 0.0
    spans_file = next(Path(tmp_path_factory.getbasetemp()).glob("gateway*")) / "spans.jsonl"
    deadline = time.monotonic() + 10
    ended: list[dict[str, Any]] = []
    while not ended and time.monotonic() < deadline:
        lines = spans_file.read_text().splitlines() if spans_file.exists() else []
        ended = [
            record
            for record in map(json.loads, lines)
            if record["root_trace_id"].replace("-", "") == trace_id
            and record["name"] == "llm-openai"
        ]
        time.sleep(0.1)
    (span,) = ended
    assert span["attributes"]["clew.stream.end"] == "closed"
    again = httpx2.post(
        gateway + "/v1/chat/completions",
        json={**body, "stream": False},
        headers={"x-user-id": KEY},
        timeout=10,
    )
    assert again.status_code == 200  # the server carries on
