"""clew.completion with deployed prompts, the cache (SQLite and a real Redis), the
environment's provider settings, and async fallbacks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis

import clew
from clew.errors import InvalidRequestError
from clew.testing import SpanCapture
from clew.testing.llm_server import FakeLLMServer


def _deployment(**extra: Any) -> dict[str, Any]:
    return {
        "id": "support-answer",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "model_params": {"temp": 0.1, "max_length": 120},
        "messages": [
            {"role": "system", "content": "You answer about {{topic}}."},
            {"role": "user", "content": "{{question}}"},
        ],
        **extra,
    }


def test_a_deployment_is_filled_and_served(server: FakeLLMServer, spans: SpanCapture) -> None:
    clew.deployments.add(_deployment())
    clew.deployments.add(_deployment(model="gpt-4o"))  # version 2 is the latest
    reply = clew.completion(
        {
            "deployment_id": "support-answer",
            "llm_inputs": {"topic": "refunds", "question": "Can I return shoes?", "unused": 1},
            "cache": False,
        }
    )
    assert reply.model == "gpt-4o"
    sent = server.requests[-1].body
    assert sent["messages"] == [
        {"role": "system", "content": "You answer about refunds."},
        {"role": "user", "content": "Can I return shoes?"},
    ]
    assert sent["temperature"] == 0.1 and sent["max_tokens"] == 120
    (record,) = [r for r in spans.records() if r["name"] == "llm-openai"]
    assert record["deployment_id"] == "support-answer"
    assert record["attributes"]["clew.deployment_version"] == 2


def test_a_deployment_missing_a_variable_sends_nothing(server: FakeLLMServer) -> None:
    clew.deployments.add(_deployment())
    with pytest.raises(InvalidRequestError) as caught:
        clew.completion({"deployment_id": "support-answer", "llm_inputs": {"topic": "x"}})
    assert caught.value.param == "llm_inputs.question"
    assert "question" in caught.value.message
    assert server.requests == []


def test_the_request_overrides_the_deployment_and_history_comes_first(
    server: FakeLLMServer,
) -> None:
    clew.deployments.add(_deployment(fallbacks=["anthropic/claude-sonnet-4-5"]))
    history = [
        {"role": "user", "content": "Earlier {{not a template}}"},
        {"role": "assistant", "content": "Earlier answer"},
    ]
    server.fail_next(500, times=3)
    reply = clew.completion(
        {
            "deployment_id": "support-answer",
            "llm_inputs": {"topic": "refunds", "question": "And boots?"},
            "llm_configuration": {"model_params": {"max_length": 50}, "history": history},
            "cache": False,
        }
    )
    assert reply.provider == "anthropic"  # the deployment's fallback served
    sent = server.requests[-1].body
    assert sent["max_tokens"] == 50 and sent["temperature"] == 0.1
    assert sent["system"] == "You answer about refunds."
    assert [m["content"] for m in sent["messages"]] == [
        "Earlier {{not a template}}",
        "Earlier answer",
        "And boots?",
    ]


def test_a_cache_hit_costs_nothing_and_the_span_records_the_saving(
    server: FakeLLMServer, spans: SpanCapture
) -> None:
    request = {
        "llm_configuration": {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "messages": [{"content": "cache me"}],
        }
    }
    first = clew.completion(request)
    second = clew.completion(request)
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert second.cost == 0.0 and first.cost and first.cost > 0
    assert second.content == first.content and second.output_tokens == first.output_tokens
    assert len(server.requests) == 1
    hit = [r for r in spans.records() if r["attributes"].get("clew.cache_hit") is True]
    assert hit[0]["attributes"]["clew.cost_saved"] == pytest.approx(first.cost)
    assert hit[0]["attributes"]["clew.attempts"] == 0
    # cache=False neither reads nor writes
    third = clew.completion({**request, "cache": False})
    assert third.cache_hit is False and len(server.requests) == 2
    # a stream is served from the same entry
    with clew.stream_completion(request) as stream:
        text = "".join(stream)
    assert stream.response is not None and stream.response.cache_hit is True
    assert text == first.content and len(server.requests) == 2


def test_the_cache_is_scoped(server: FakeLLMServer) -> None:
    from clew.gateway.completion import completion

    request = {
        "llm_configuration": {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "messages": [{"content": "scoped"}],
        }
    }
    completion(request, scope="team-a")
    assert completion(request, scope="team-b").cache_hit is False
    assert completion(request, scope="team-a").cache_hit is True


def test_a_redis_cache_is_shared_by_processes(
    server: FakeLLMServer,
    redis_server: str,
    tmp_path: Path,
) -> None:
    clew.configure(gateway={"cache_url": redis_server})
    request = {
        "llm_configuration": {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "messages": [{"content": "canary-redis-4411 shared answer"}],
        }
    }
    first = clew.completion(request)
    raw = redis.Redis.from_url(redis_server)
    keys = [k for k in raw.keys("clew:cache:*")]
    assert keys and all(b"canary-redis-4411" not in raw.get(k) for k in keys)
    # another process (a fresh interpreter) with the same CLEW_CACHE_URL hits
    import json
    import os
    import subprocess
    import sys

    code = (
        "import clew, json, sys\n"
        "clew.configure(exporter='none', providers={'openai': {'base_url': sys.argv[1],"
        " 'api_key': 'k'}})\n"
        "r = clew.completion(json.loads(sys.argv[2]))\n"
        "print(json.dumps([r.cache_hit, r.content]))\n"
    )
    env = {**os.environ, "CLEW_CACHE_URL": redis_server, "CLEW_STORE": str(tmp_path / "t.db")}
    out = subprocess.run(
        [sys.executable, "-c", code, server.openai_base_url, json.dumps(request)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    hit, content = json.loads(out.stdout)
    assert hit is True and content == first.content
    assert len(server.requests) == 1


def test_provider_settings_come_from_the_environment(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    clew.configure(providers={})
    monkeypatch.setenv("CLEW_GROQ_BASE_URL", server.openai_base_url)
    monkeypatch.setenv("GROQ_API_KEY", "gsk-from-env")
    clew.configure()
    reply = clew.completion(
        {
            "cache": False,
            "llm_configuration": {
                "provider": "groq",
                "model": "llama-3.1-8b-instant",
                "messages": [{"content": "hello"}],
            },
        }
    )
    assert reply.provider == "groq" and reply.content
    monkeypatch.delenv("GROQ_API_KEY")
    monkeypatch.setenv("CLEW_GROQ_API_KEY", "gsk-clew")
    clew.configure()
    assert clew.completion(
        {
            "cache": False,
            "llm_configuration": {
                "provider": "groq",
                "model": "m",
                "messages": [{"content": "hi"}],
            },
        }
    ).content


async def test_async_calls_fall_back_and_run_concurrently(server: FakeLLMServer) -> None:
    server.fail_next(503, times=3)

    def request(i: int) -> dict[str, Any]:
        return {
            "cache": False,
            "fallback_strategy": ["anthropic/claude-sonnet-4-5"],
            "llm_configuration": {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "messages": [{"content": f"question {i}"}],
            },
        }

    replies = await asyncio.gather(*(clew.acompletion(request(i)) for i in range(8)))
    assert all(r.content for r in replies)
    assert {r.provider for r in replies} <= {"openai", "anthropic"}
    assert len({r.trace_id for r in replies}) == 8
