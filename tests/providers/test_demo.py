"""``clew demo`` runs offline, stores its trace, and prints the tree with tokens and cost."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

import clew
from clew.demo import run_demo


@pytest.fixture
def sqlite_store() -> Iterator[None]:
    clew.configure(exporter="sqlite")
    yield
    clew.configure(exporter="none", project="tests")


def test_the_demo_runs_without_a_key_and_prints_the_stored_tree(sqlite_store: None) -> None:
    out = io.StringIO()
    assert run_demo([], out=out) == 0
    text = out.getvalue()
    assert "fake OpenAI server" in text
    for name in ("answer", "retrieve", "get_weather", "chat gpt-4o-mini"):
        assert name in text
    assert text.count("chat gpt-4o-mini") == 3
    assert "$0.0000" in text
    assert "clew show " in text


def test_live_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = io.StringIO()
    assert run_demo(["--live"], out=out) == 2
    assert "OPENAI_API_KEY" in out.getvalue()


def test_the_demo_asks_every_provider_through_the_gateway(sqlite_store: None) -> None:
    from clew.demo import GATEWAY_MODELS

    out = io.StringIO()
    assert run_demo([], out=out) == 0
    text = out.getvalue()
    gateway = text[text.index("clew.completion: one request shape") :]
    rows = [line.split() for line in gateway.splitlines()[2:14]]
    assert [row[0] for row in rows] == list(GATEWAY_MODELS)
    assert len(GATEWAY_MODELS) == 12
    for row in rows:
        assert row[2] == "18+18"  # tokens in + out, as the fake server reports them
        assert row[3].startswith("$") or row[3] == "unknown"
    assert "cache_hit=True, cost=0.0" in text
    assert "served by anthropic/claude-sonnet-4-5" in text
