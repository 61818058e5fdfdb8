"""Gateway keys: made once, kept hashed, listed, revoked; ``clew keys`` on the command line;
the server's key ring rereading the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clew.cli import main
from clew.errors import ConfigurationError, StoreError
from clew.gateway import keys
from clew.gateway.keys import KeyRing, hash_key, key_scope


def test_a_key_is_shown_once_and_stored_only_as_its_hash(tmp_path: Path) -> None:
    store = tmp_path / "traces.db"
    key, record = keys.create("team-a", rpm=10, models=["gpt-4o-mini"], store=store)
    assert key.startswith("clew-") and len(key) > 40
    assert record.scope == key_scope(key) and record.prefix == key[:12]
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert key.encode() not in raw
    assert hash_key(key).encode() in raw
    (listed,) = keys.list(store)
    assert (listed.name, listed.rpm, listed.tpm, listed.models) == (
        "team-a",
        10,
        None,
        ("gpt-4o-mini",),
    )
    assert listed.limits() == {"rpm": 10, "models": ["gpt-4o-mini"]}


def test_a_name_in_use_is_refused_until_revoked(tmp_path: Path) -> None:
    store = tmp_path / "traces.db"
    first, _ = keys.create("team-a", store=store)
    with pytest.raises(StoreError, match="revoke it first"):
        keys.create("team-a", store=store)
    assert keys.revoke("team-a", store=store) is True
    assert keys.revoke("team-a", store=store) is False
    second, _ = keys.create("team-a", store=store)
    assert second != first
    (listed,) = keys.list(store)
    assert listed.scope == key_scope(second)


@pytest.mark.parametrize(
    ("name", "limits", "message"),
    [
        ("has space", {}, "no spaces"),
        ("", {}, "no spaces"),
        ("a,b", {}, "no spaces"),
        ("ok", {"rpm": 0}, "--rpm"),
        ("ok", {"tpm": -5}, "--tpm"),
        ("ok", {"budget_usd_per_day": 0.0}, "--budget-usd-per-day"),
        ("ok", {"models": [" ", ""]}, "--models"),
    ],
)
def test_bad_names_and_limits_say_what_to_do(
    tmp_path: Path, name: str, limits: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        keys.create(name, store=tmp_path / "t.db", **limits)  # type: ignore[arg-type]
    assert not (tmp_path / "t.db").exists()


def test_the_key_ring_finds_configured_and_stored_keys_and_forgets_revoked_ones(
    tmp_path: Path,
) -> None:
    store = tmp_path / "traces.db"
    ring = KeyRing(["env-key"], store, refresh=0.0)
    assert ring.any()
    found = ring.find("env-key")
    assert found is not None and found.name == key_scope("env-key") and not found.limited
    assert ring.find("nope") is None
    key, _ = keys.create("team-a", tpm=100, store=store)
    made = ring.find(key)
    assert made is not None and made.name == "team-a" and made.tpm == 100 and made.limited
    keys.revoke("team-a", store=store)
    assert ring.find(key) is None
    assert not KeyRing([], tmp_path / "missing.db", refresh=0.0).any()


def test_the_key_ring_rereads_at_most_once_per_refresh(tmp_path: Path) -> None:
    store = tmp_path / "traces.db"
    ring = KeyRing([], store, refresh=3600.0)
    assert not ring.any()  # read now: no keys
    key, _ = keys.create("late", store=store)
    assert ring.find(key) is None  # not reread within the hour


def test_clew_keys_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path / "traces.db")
    argv = ["keys", "create", "team-a", "--rpm", "5", "--budget-usd-per-day", "2.5"]
    assert main([*argv, "--models", "gpt-4o-mini,anthropic/claude", "--store", store]) == 0
    out = capsys.readouterr().out
    key = out.strip().splitlines()[-1]
    assert key.startswith("clew-") and "shown this once" in out
    assert main(["keys", "list", "--store", store]) == 0
    table = capsys.readouterr().out
    assert "team-a" in table and "rpm=5" in table and key[:12] in table and key not in table
    assert main(["keys", "list", "--store", store, "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["models"] == ["gpt-4o-mini", "anthropic/claude"]
    assert listed["budget_usd_per_day"] == 2.5 and "key" not in listed
    assert main(["keys", "create", "team-a", "--store", store]) == 1
    assert "in use" in capsys.readouterr().err
    assert main(["keys", "revoke", "team-a", "--store", store]) == 0
    assert main(["keys", "revoke", "team-a", "--store", store]) == 1
    assert "no key in use" in capsys.readouterr().err
    assert main(["keys", "list", "--store", store]) == 0
    assert "No gateway keys" in capsys.readouterr().out
    assert main(["keys", "create", "x", "--rpm", "0", "--store", store]) == 2
    assert main(["keys"]) == 2
