"""Per-key limits: the counters against a model of them (in the process and in a real Redis),
and two ``clew serve`` processes sharing them through one redis-server."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clew.errors import RateLimitError
from clew.gateway import keys
from clew.gateway.keys import GatewayKey
from clew.gateway.limits import DAY, MINUTE, Limiter
from clew.testing.llm_server import FakeLLMServer

from .conftest import free_port, start_gateway

T0 = 20_833 * 86400.0  # a UTC midnight (in 2027)
assert T0 % DAY == 0


class Model:
    """What the limits must do, written plainly: counts per minute and per day."""

    def __init__(self, key: GatewayKey) -> None:
        self.key = key
        self.requests: dict[int, int] = {}
        self.tokens: dict[int, int] = {}
        self.cost: dict[int, float] = {}

    def admit(self, now: float) -> tuple[str, int] | None:
        minute, day = int(now // MINUTE), int(now // DAY)
        key = self.key
        if key.rpm is not None and self.requests.get(minute, 0) >= key.rpm:
            return "rate_limit_exceeded", math.ceil(MINUTE - now % MINUTE)
        if key.tpm is not None and self.tokens.get(minute, 0) >= key.tpm:
            return "rate_limit_exceeded", math.ceil(MINUTE - now % MINUTE)
        if key.budget_usd_per_day is not None and self.cost.get(day, 0) >= key.budget_usd_per_day:
            return "budget_exceeded", math.ceil(DAY - now % DAY)
        self.requests[minute] = self.requests.get(minute, 0) + 1
        return None

    def spend(self, now: float, tokens: int, cost: float) -> None:
        minute, day = int(now // MINUTE), int(now // DAY)
        self.tokens[minute] = self.tokens.get(minute, 0) + tokens
        self.cost[day] = self.cost.get(day, 0.0) + cost


limits = st.builds(
    lambda rpm, tpm, budget: GatewayKey("k", "abcdef0123456789", rpm, tpm, budget),
    st.none() | st.integers(1, 5),
    st.none() | st.integers(1, 200),
    st.none() | st.sampled_from([0.125, 0.5, 2.0]),
)
steps = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.5, 7.0, 59.0, 61.0, 3600.0, 86400.0]),  # time passing
        st.integers(0, 120),  # tokens of the answer
        st.sampled_from([0.0, 0.125, 0.25, 1.0]),  # its cost (exact in binary)
    ),
    max_size=40,
)


def _run(limiter: Limiter, clock: list[float], key: GatewayKey, script: Any) -> list[Any]:
    async def go() -> list[Any]:
        seen: list[Any] = []
        for wait, tokens, cost in script:
            clock[0] += wait
            try:
                await limiter.admit(key)
            except RateLimitError as exc:
                seen.append((exc.code, exc.retry_after))
                continue
            seen.append(None)
            await limiter.spend(key, tokens, cost)
        await limiter.aclose()
        return seen

    return asyncio.run(go())


def _expected(key: GatewayKey, start: float, script: Any) -> list[Any]:
    model, now, seen = Model(key), start, []
    for wait, tokens, cost in script:
        now += wait
        refused = model.admit(now)
        seen.append(refused)
        if refused is None and key.limited:
            model.spend(now, tokens, cost)
    return seen


@settings(max_examples=150, deadline=None)
@given(key=limits, script=steps, offset=st.floats(0, DAY - 1))
def test_in_process_counters_follow_the_model(key: GatewayKey, script: Any, offset: float) -> None:
    clock = [T0 + offset]
    got = _run(Limiter(clock=lambda: clock[0]), clock, key, script)
    assert got == _expected(key, T0 + offset, script)
    if key.rpm is not None:  # whatever happens, no minute lets more than rpm in
        assert sum(1 for s in got if s is None) <= key.rpm * (1 + len(script))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=limits, script=steps, offset=st.floats(0, DAY - 1))
def test_redis_counters_follow_the_same_model(
    redis_server: str, key: GatewayKey, script: Any, offset: float
) -> None:
    with redis.Redis.from_url(redis_server) as raw:
        raw.flushdb()
    clock = [T0 + offset]
    got = _run(Limiter(redis_server, clock=lambda: clock[0]), clock, key, script)
    assert got == _expected(key, T0 + offset, script)


def test_a_key_without_limits_is_never_counted(redis_server: str) -> None:
    key = GatewayKey("free", "0" * 16)
    with redis.Redis.from_url(redis_server) as raw:
        raw.flushdb()
        _run(Limiter(redis_server), [0.0], key, [(0.0, 10, 1.0)] * 5)
        assert raw.dbsize() == 0


def test_a_redis_outage_falls_back_to_the_process(caplog: pytest.LogCaptureFixture) -> None:
    key = GatewayKey("k", "1" * 16, rpm=2)
    clock = [T0]
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with caplog.at_level(logging.WARNING, logger="clew.gateway.limits"):
        got = _run(Limiter(dead, clock=lambda: clock[0]), clock, key, [(0.0, 1, 0.0)] * 3)
    assert got == [None, None, ("rate_limit_exceeded", 60)]
    warnings = [r for r in caplog.records if "Redis failed" in r.getMessage()]
    assert len(warnings) == 1  # once a minute, not once a request


# -- two servers, one Redis --------------------------------------------------------------------
@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("limits") / "traces.db"


@pytest.fixture(scope="module")
def two_servers(
    fake: FakeLLMServer, redis_server: str, store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    folder = store.parent
    settings_file = folder / "gateway.yaml"  # the providers given by --config, not the env
    settings_file.write_text(
        f"providers:\n  openai:\n    base_url: {fake.openai_base_url}\n"
        "    api_key: sk-upstream\n"
        f"  anthropic:\n    base_url: {fake.anthropic_base_url}\n"
        "    api_key: sk-ant-upstream\n"
    )
    env = {
        **os.environ,
        "CLEW_GATEWAY_KEYS": "env-key",
        "CLEW_STORE": str(store),
        "CLEW_CACHE_URL": redis_server,
        "CLEW_EXPORTER": "none",
    }
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "CLEW_OPENAI_API_KEY"):
        env.pop(name, None)
    first, a = start_gateway(env, "--config", str(settings_file))
    try:
        second, b = start_gateway(env, "--config", str(settings_file))
        try:
            yield a, b
        finally:
            second.terminate()
            second.communicate(timeout=10)
    finally:
        first.terminate()
        first.communicate(timeout=10)


def _chat(url: str, key: str, model: str = "gpt-4o-mini") -> httpx2.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return httpx2.post(
        url + "/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


def _early_in_the_minute() -> None:
    """Tests of per-minute limits run where their requests fit in one minute window."""
    into = time.time() % MINUTE
    if into > 50:
        time.sleep(MINUTE - into + 0.1)


def test_requests_per_minute_are_shared_by_two_servers(
    two_servers: tuple[str, str], store: Path
) -> None:
    key, _ = keys.create("rpm-team", rpm=3, store=store)
    time.sleep(1.1)  # the servers reread the keys once a second
    _early_in_the_minute()
    replies = [_chat(two_servers[i % 2], key) for i in range(5)]
    assert [r.status_code for r in replies] == [200, 200, 200, 429, 429], replies[-1].text
    refused = replies[3]
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert "rpm-team" in refused.json()["error"]["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert _chat(two_servers[0], "env-key").status_code == 200  # other keys are not held


def test_tokens_per_minute_and_the_daily_budget_are_shared(
    two_servers: tuple[str, str], store: Path
) -> None:
    tpm, _ = keys.create("tpm-team", tpm=5, store=store)
    budget, _ = keys.create("budget-team", budget_usd_per_day=1e-9, store=store)
    time.sleep(1.1)
    _early_in_the_minute()
    a, b = two_servers
    assert _chat(a, tpm).status_code == 200  # let in under the limit; its tokens then count
    over = _chat(b, tpm)
    assert over.status_code == 429 and "tokens per minute" in over.json()["error"]["message"]
    assert _chat(a, budget).status_code == 200
    spent = _chat(b, budget)
    assert spent.status_code == 429
    assert spent.json()["error"]["code"] == "budget_exceeded"
    assert 1 <= int(spent.headers["retry-after"]) <= DAY


def test_a_key_keeps_to_its_models(two_servers: tuple[str, str], store: Path) -> None:
    import openai

    key, _ = keys.create("mini-only", models=["gpt-4o-mini"], store=store)
    time.sleep(1.1)
    client = openai.OpenAI(base_url=two_servers[0] + "/v1", api_key=key, max_retries=0)
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(
            model="anthropic/claude-3-5-haiku-latest",
            messages=[{"role": "user", "content": "hi"}],
        )
    assert "mini-only" in str(refused.value) and "claude-3-5-haiku-latest" in str(refused.value)
    with pytest.raises(openai.PermissionDeniedError):  # a fallback is checked too
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"models": ["anthropic/claude-3-5-haiku-latest"]},
        )
    assert [m.id for m in client.models.list()] == ["gpt-4o-mini"]
    everything = httpx2.get(
        two_servers[1] + "/v1/models", headers={"x-user-id": "env-key"}, timeout=10
    ).json()["data"]
    ids = {m["id"] for m in everything}
    assert {"openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-latest"} <= ids
    assert {m["owned_by"] for m in everything} == {"openai", "anthropic"}  # configured ones


def test_a_revoked_key_is_refused_within_a_second(
    two_servers: tuple[str, str], store: Path
) -> None:
    key, _ = keys.create("short-lived", store=store)
    time.sleep(1.1)
    assert _chat(two_servers[1], key).status_code == 200
    keys.revoke("short-lived", store=store)
    time.sleep(1.1)
    assert _chat(two_servers[1], key).status_code == 401


def test_metrics_name_the_key_and_time_the_upstream(
    two_servers: tuple[str, str], store: Path
) -> None:
    key, _ = keys.create("metered", store=store)
    time.sleep(1.1)
    assert _chat(two_servers[0], key).status_code == 200
    text = httpx2.get(two_servers[0] + "/metrics", headers={"x-user-id": key}, timeout=10).text
    assert 'key="metered"' in text and key not in text
    lines = [
        line
        for line in text.splitlines()
        if line.startswith("clew_gateway_upstream_seconds_count")
        and 'provider="openai"' in line
        and 'model="gpt-4o-mini"' in line
    ]
    assert lines and float(lines[0].split()[-1]) >= 1
