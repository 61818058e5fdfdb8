"""The completion cache: sealing, the SQLite and Redis backends, and ``open_cache``.

The Redis tests run against a real ``redis-server`` started for this module; they fail (not
skip) when it is not installed.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import sqlite3
import string
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from clew.errors import ConfigurationError
from clew.gateway.cache import (
    REDIS_PREFIX,
    CompletionCache,
    RedisCache,
    SqliteCache,
    open_cache,
    open_sealed,
    seal,
)
from clew.gateway.cache.sealing import OVERHEAD, derive

from .conftest import free_port

MATERIAL_CANARY = "MATERIALCANARY7f3a"
MATERIAL = f'{{"messages":[{{"content":"{MATERIAL_CANARY}","role":"user"}}],"scope":""}}'.encode()


def material(n: int) -> bytes:
    return MATERIAL + b"#%d" % n


def response(n: int, size: int = 300) -> bytes:
    """A value that tells which material it belongs to (and is not all the same byte)."""
    head = f"RESPONSECANARY-{n}-".encode()
    return (head + bytes(range(256)) * (size // 256 + 1))[:size]


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


# --- sealing --------------------------------------------------------------------------------

CANARY_TEXT = st.text(string.ascii_letters + string.digits, min_size=8, max_size=40)


@settings(max_examples=100)
@given(st.binary(max_size=300), st.binary(max_size=5000))
def test_sealed_values_open_to_themselves(key: bytes, value: bytes) -> None:
    sealed = seal(key, value)
    assert len(sealed) == len(value) + OVERHEAD
    assert open_sealed(key, sealed) == value


def test_sealing_twice_gives_different_bytes() -> None:
    assert seal(MATERIAL, b"same value") != seal(MATERIAL, b"same value")


@settings(max_examples=100)
@given(st.binary(max_size=2000), st.data())
def test_a_flipped_bit_anywhere_opens_to_none(value: bytes, data: st.DataObject) -> None:
    sealed = bytearray(seal(MATERIAL, value))
    bit = data.draw(st.integers(0, len(sealed) * 8 - 1))
    sealed[bit // 8] ^= 1 << (bit % 8)
    assert open_sealed(MATERIAL, bytes(sealed)) is None


@given(st.binary(max_size=200), st.binary(max_size=200), st.binary(max_size=500))
def test_a_value_sealed_under_one_material_does_not_open_under_another(
    one: bytes, other: bytes, value: bytes
) -> None:
    if one != other:
        assert open_sealed(other, seal(one, value)) is None


@pytest.mark.parametrize("sealed", [b"", b"x" * (OVERHEAD - 1)])
def test_truncated_values_open_to_none(sealed: bytes) -> None:
    assert open_sealed(MATERIAL, sealed) is None
    assert open_sealed(MATERIAL, seal(MATERIAL, b"value")[:-1]) is None


@settings(max_examples=100)
@given(CANARY_TEXT, st.binary(max_size=2000), st.binary(max_size=2000))
def test_sealed_bytes_never_hold_the_plaintext(canary: str, before: bytes, after: bytes) -> None:
    value = before + canary.encode() + after
    sealed = seal(MATERIAL + canary.encode(), value)
    assert canary.encode() not in sealed
    assert MATERIAL_CANARY.encode() not in sealed


def test_the_lookup_id_and_the_keys_differ_per_material() -> None:
    one, other = derive(material(1)), derive(material(2))
    assert len(one[0]) == 64 and int(one[0], 16) >= 0
    assert all(a != b for a, b in zip(one, other, strict=True))
    assert one[1] != one[2]


# --- SQLite ---------------------------------------------------------------------------------


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[SqliteCache]:
    with SqliteCache(tmp_path / "deep" / "folder" / "cache.db", ttl=None, max_bytes=1 << 20) as c:
        yield c


def test_sqlite_hit_and_miss(cache: SqliteCache) -> None:
    assert cache.get(material(1)) is None
    cache.put(material(1), response(1))
    assert cache.get(material(1)) == response(1)
    assert cache.get(material(2)) is None
    cache.put(material(1), response(11))  # replaces
    assert cache.get(material(1)) == response(11)
    assert cache.get(b"") is None
    cache.put(b"", b"")
    assert cache.get(b"") == b""
    stats = cache.stats()
    assert (stats["hits"], stats["misses"], stats["errors"]) == (3, 3, 0)
    assert (stats["entries"], stats["bytes"]) == (2, len(response(11)) + 2 * OVERHEAD)
    assert cache.path.is_file()


async def test_sqlite_async_calls(cache: SqliteCache) -> None:
    assert await cache.aget(material(1)) is None
    await cache.aput(material(1), response(1))
    assert await cache.aget(material(1)) == response(1)
    assert cache.get(material(1)) == response(1)
    await cache.aclose()
    assert await cache.aget(material(1)) is None


def test_sqlite_expired_entries_are_misses_and_deleted(tmp_path: Path) -> None:
    clock = Clock()
    with SqliteCache(tmp_path / "c.db", ttl=60, max_bytes=1 << 20, clock=clock) as cache:
        cache.put(material(1), response(1))
        clock.now += 59
        assert cache.get(material(1)) == response(1)
        clock.now += 1
        assert cache.get(material(1)) is None
        assert cache.stats()["entries"] == 0
        cache.put(material(1), response(1))  # a new entry lives a full ttl again
        clock.now += 30
        assert cache.get(material(1)) == response(1)


def test_sqlite_without_ttl_keeps_entries(tmp_path: Path) -> None:
    clock = Clock()
    with SqliteCache(tmp_path / "c.db", ttl=None, max_bytes=1 << 20, clock=clock) as cache:
        cache.put(material(1), response(1))
        clock.now += 10 * 365 * 86400
        assert cache.get(material(1)) == response(1)


def _total_in_file(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as conn:
        count, total = conn.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM completion_cache"
        ).fetchone()
    conn.close()
    return int(count), int(total)


def test_sqlite_evicts_least_recently_used_entries_first(tmp_path: Path) -> None:
    clock = Clock()
    size = 1000 - OVERHEAD  # 1000 bytes stored each
    with SqliteCache(tmp_path / "c.db", ttl=None, max_bytes=10_000, clock=clock) as cache:
        for n in range(10):
            clock.now += 1
            cache.put(material(n), response(n, size))
        assert cache.stats()["evictions"] == 0
        clock.now += 1
        assert cache.get(material(0)) == response(0, size)  # 0 is now the most recent
        clock.now += 1
        cache.put(material(10), response(10, size))  # 11000 > 10000: down to 9000
        found = [n for n in range(11) if cache.get(material(n)) is not None]
        assert found == [0, *range(3, 11)]
        stats = cache.stats()
        assert stats["evictions"] == 2
        assert (stats["entries"], stats["bytes"]) == (9, 9000)
        assert _total_in_file(cache.path) == (9, 9000)


def test_sqlite_evicts_expired_entries_before_live_ones(tmp_path: Path) -> None:
    clock = Clock()
    with SqliteCache(tmp_path / "c.db", ttl=100, max_bytes=10_000, clock=clock) as cache:
        cache.put(material(0), response(0, 4000))
        clock.now += 50
        cache.put(material(1), response(1, 4000))
        clock.now += 60  # 0 expired, 1 did not
        cache.put(material(2), response(2, 4000))
        assert cache.get(material(1)) == response(1, 4000)
        assert cache.get(material(2)) == response(2, 4000)
        assert cache.stats()["evictions"] == 1


@settings(max_examples=12, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 3000)), min_size=1, max_size=40))
def test_sqlite_total_stays_under_max_bytes(puts: list[tuple[int, int]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.db"
        with SqliteCache(path, ttl=None, max_bytes=8000) as cache:
            for n, size in puts:
                cache.put(material(n), response(n, size))
                stats = cache.stats()
                assert stats["bytes"] <= 8000
                assert (stats["entries"], stats["bytes"]) == _total_in_file(path)
            n, size = puts[-1]
            assert cache.get(material(n)) == response(n, size)


def test_sqlite_does_not_store_a_value_larger_than_max_bytes(tmp_path: Path) -> None:
    with SqliteCache(tmp_path / "c.db", ttl=None, max_bytes=1000) as cache:
        cache.put(material(1), response(1, 1000 - OVERHEAD + 1))
        assert cache.get(material(1)) is None
        cache.put(material(2), response(2, 1000 - OVERHEAD))
        assert cache.get(material(2)) == response(2, 1000 - OVERHEAD)
        assert cache.stats()["too_big"] == 1


def test_sqlite_from_several_threads(cache: SqliteCache) -> None:
    failures: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for i in range(150):
                n = (seed * 7 + i) % 25
                if i % 3 == 0:
                    cache.put(material(n), response(n, 500 + n))
                else:
                    found = cache.get(material(n))
                    assert found is None or found == response(n, 500 + n)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    stats = cache.stats()
    assert stats["errors"] == 0 and stats["hits"] > 0
    assert all(cache.get(material(n)) == response(n, 500 + n) for n in range(25))


def _other_process(path: str, ours: range, theirs: range) -> None:
    """In a spawned process: read the parent's entries, write our own at the same time."""
    with SqliteCache(Path(path), ttl=None, max_bytes=1 << 20) as cache:
        for n in ours:
            cache.put(material(n), response(n))
        missing = [n for n in theirs if cache.get(material(n)) != response(n)]
        errors = cache.stats()["errors"]
    if missing or errors:
        sys.exit(f"missing {missing}, errors {errors}")


def test_sqlite_shared_by_two_processes(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with SqliteCache(path, ttl=None, max_bytes=1 << 20) as cache:
        for n in range(20):
            cache.put(material(n), response(n))
        child = multiprocessing.get_context("spawn").Process(
            target=_other_process, args=(str(path), range(100, 140), range(20))
        )
        child.start()
        for n in range(20, 60):  # while the child writes too
            cache.put(material(n), response(n))
        child.join(30)
        assert child.exitcode == 0
        assert all(cache.get(material(n)) == response(n) for n in range(100, 140))
        stats = cache.stats()
        assert stats["errors"] == 0
        assert (stats["entries"], stats["bytes"]) == _total_in_file(path) == (100, 100 * 332)


def test_sqlite_file_holds_no_plaintext(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
    canaries = [MATERIAL_CANARY.encode(), b"RESPONSECANARY"]

    def leaked() -> list[str]:
        return [
            f"{canary!r} in {file.name}"
            for file in files
            if file.exists()
            for canary in canaries
            if canary in file.read_bytes()
        ]

    cache = SqliteCache(path, ttl=None, max_bytes=1 << 20)
    for n in range(50):
        cache.put(material(n), response(n, 50 + 40 * n))
    assert all(cache.get(material(n)) == response(n, 50 + 40 * n) for n in range(50))
    assert files[1].stat().st_size > 0  # the entries are in the WAL now
    assert leaked() == []
    cache.close()
    assert path.stat().st_size > 0
    assert leaked() == []


def test_a_corrupt_file_is_a_miss_and_nothing_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.db"
    path.write_bytes(b"this is not an SQLite database, " * 200)
    with SqliteCache(path, ttl=None, max_bytes=1 << 20, backoff=0.0) as cache:
        with caplog.at_level(logging.WARNING, logger="clew.gateway.cache"):
            assert cache.get(material(1)) is None
            cache.put(material(1), response(1))
            assert cache.get(material(1)) is None
            cache.clear()
            stats = cache.stats()
        assert stats["errors"] == 4 and stats["misses"] == 2 and stats["hits"] == 0
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        # once per kind of failure (reading, writing, clearing), not once per call
        assert len(warnings) == 3
        assert "cannot read" in warnings[0].getMessage()
    assert path.read_bytes() == b"this is not an SQLite database, " * 200


def test_a_broken_file_is_left_alone_for_a_while(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    path.write_bytes(b"garbage" * 1000)
    with SqliteCache(path, ttl=None, max_bytes=1 << 20, backoff=60) as cache:
        assert cache.get(material(1)) is None
        for _ in range(10):
            assert cache.get(material(1)) is None
            cache.put(material(1), response(1))
        stats = cache.stats()
        assert (stats["errors"], stats["skipped"], stats["misses"]) == (1, 20, 11)


@pytest.mark.parametrize(
    "alter",
    [
        "UPDATE completion_cache SET value = substr(value, 1, 40) || substr(value, 42)",
        "UPDATE completion_cache SET value = CAST(value AS TEXT) || 'x'",  # not even a blob
        "UPDATE completion_cache SET value = x''",
    ],
)
def test_an_altered_entry_is_a_miss_and_an_error(cache: SqliteCache, alter: str) -> None:
    cache.put(material(1), response(1))
    cache.put(material(2), response(2))
    cache.close()
    with sqlite3.connect(cache.path) as conn:
        conn.execute(alter + " WHERE id = ?", (derive(material(1))[0],))
    conn.close()
    with SqliteCache(cache.path, ttl=None, max_bytes=1 << 20) as again:
        assert again.get(material(1)) is None
        assert again.get(material(2)) == response(2)
        stats = again.stats()
        assert (stats["errors"], stats["misses"], stats["hits"]) == (1, 1, 1)


def test_sqlite_reads_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "c.db"
    with SqliteCache(path, ttl=60, max_bytes=1 << 20, timeout=0.5, clock=clock) as cache:
        cache.put(material(1), response(1))
        cache.put(material(2), response(2))
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            started = time.monotonic()
            for _ in range(300):  # hits (their use times are due to be written: skipped)
                assert cache.get(material(1)) == response(1)
            clock.now += 61
            assert cache.get(material(2)) is None  # expired (its delete is skipped)
            assert time.monotonic() - started < 0.3
            cache.put(material(3), response(3))  # waits 0.5 s, then is dropped
            assert time.monotonic() - started >= 0.5
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        stats = cache.stats()
        assert (stats["errors"], stats["skipped"]) == (1, 0)  # a busy file is not left alone
        cache.put(material(3), response(3))
        assert cache.get(material(3)) == response(3)


def test_sqlite_after_close_misses_quietly(cache: SqliteCache) -> None:
    cache.put(material(1), response(1))
    cache.close()
    cache.close()
    assert cache.get(material(1)) is None
    cache.put(material(2), response(2))
    assert cache.stats()["errors"] == 0


# --- Redis ----------------------------------------------------------------------------------


@pytest.fixture
def raw(redis_server: str) -> Iterator[redis.Redis]:
    """A plain client on an emptied server."""
    with redis.Redis.from_url(redis_server) as client:
        client.flushdb()
        yield client


@pytest.fixture
def rcache(redis_server: str, raw: redis.Redis) -> Iterator[RedisCache]:
    with RedisCache(redis_server, ttl=60, max_bytes=1 << 20) as c:
        yield c


def test_redis_hit_and_miss(rcache: RedisCache, raw: redis.Redis) -> None:
    assert rcache.get(material(1)) is None
    rcache.put(material(1), response(1))
    assert rcache.get(material(1)) == response(1)
    assert rcache.get(material(2)) is None
    stats = rcache.stats()
    assert (stats["hits"], stats["misses"], stats["errors"]) == (1, 2, 0)
    key = REDIS_PREFIX + derive(material(1))[0]
    assert raw.keys("*") == [key.encode()]
    assert 59_000 < raw.pttl(key) <= 60_000


def test_redis_entries_expire(redis_server: str, raw: redis.Redis) -> None:
    with RedisCache(redis_server, ttl=0.05, max_bytes=1 << 20) as cache:
        cache.put(material(1), response(1))
        assert cache.get(material(1)) == response(1)
        time.sleep(0.15)
        assert cache.get(material(1)) is None


def test_redis_without_ttl_sets_no_expiry(redis_server: str, raw: redis.Redis) -> None:
    with RedisCache(redis_server, ttl=None, max_bytes=1 << 20) as cache:
        cache.put(material(1), response(1))
        assert raw.pttl(REDIS_PREFIX + derive(material(1))[0]) == -1


def test_two_redis_caches_share_entries(redis_server: str, rcache: RedisCache) -> None:
    with RedisCache(redis_server, ttl=60, max_bytes=1 << 20) as other:
        rcache.put(material(1), response(1))
        assert other.get(material(1)) == response(1)
        other.put(material(2), response(2))
        assert rcache.get(material(2)) == response(2)


def test_redis_holds_no_plaintext(rcache: RedisCache, raw: redis.Redis) -> None:
    for n in range(20):
        rcache.put(material(n), response(n, 100 + 50 * n))
    keys = raw.keys("*")
    assert len(keys) == 20
    for key in keys:
        assert isinstance(key, bytes) and key.startswith(REDIS_PREFIX.encode())
        assert MATERIAL_CANARY.encode() not in key
        stored = raw.get(key)
        assert stored is not None
        assert b"RESPONSECANARY" not in stored and MATERIAL_CANARY.encode() not in stored


def test_redis_does_not_store_a_value_larger_than_max_bytes(
    redis_server: str, raw: redis.Redis
) -> None:
    with RedisCache(redis_server, ttl=60, max_bytes=1000) as cache:
        cache.put(material(1), response(1, 1000))
        assert raw.keys("*") == []
        assert cache.stats()["too_big"] == 1


def test_redis_clear_deletes_only_its_keys(rcache: RedisCache, raw: redis.Redis) -> None:
    for n in range(5):
        rcache.put(material(n), response(n))
    raw.set("someone-else", b"x")
    rcache.clear()
    assert raw.keys("*") == [b"someone-else"]
    assert rcache.get(material(1)) is None


async def test_redis_async_calls(rcache: RedisCache) -> None:
    assert await rcache.aget(material(1)) is None
    await rcache.aput(material(1), response(1))
    assert await rcache.aget(material(1)) == response(1)
    assert rcache.get(material(1)) == response(1)
    await rcache.aclose()


def test_redis_async_connections_close_with_their_event_loop(
    redis_server: str, raw: redis.Redis
) -> None:
    def clients() -> int:
        return len(raw.client_list())

    alone = clients()
    cache = RedisCache(redis_server, ttl=60, max_bytes=1 << 20)

    async def use() -> bytes | None:
        await cache.aput(material(1), response(1))
        assert clients() == alone + 1
        return await cache.aget(material(1))

    for _ in range(3):  # a new loop each time, never closed by hand
        assert asyncio.run(use()) == response(1)
    deadline = time.monotonic() + 2
    while clients() > alone and time.monotonic() < deadline:
        time.sleep(0.01)
    assert clients() == alone
    cache.close()


def test_redis_close_closes_the_connections_of_an_open_loop(
    redis_server: str, raw: redis.Redis
) -> None:
    alone = len(raw.client_list())
    cache = RedisCache(redis_server, ttl=60, max_bytes=1 << 20)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(cache.aput(material(1), response(1)))
        assert len(raw.client_list()) == alone + 1
        cache.close()
    finally:
        loop.close()
    assert len(raw.client_list()) == alone


async def test_redis_close_from_inside_the_loop(redis_server: str, raw: redis.Redis) -> None:
    alone = len(raw.client_list())
    cache = RedisCache(redis_server, ttl=60, max_bytes=1 << 20)
    await cache.aput(material(1), response(1))
    assert len(raw.client_list()) == alone + 1
    cache.close()
    for _ in range(100):
        await asyncio.sleep(0.01)
        if len(raw.client_list()) == alone:
            break
    assert len(raw.client_list()) == alone


def test_a_dead_redis_costs_one_call_and_raises_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with RedisCache(url, ttl=60, max_bytes=1 << 20) as cache:
        with caplog.at_level(logging.WARNING, logger="clew.gateway.cache"):
            started = time.monotonic()
            assert cache.get(material(1)) is None
            assert time.monotonic() - started < 1.5
            started = time.monotonic()
            for _ in range(100):
                assert cache.get(material(1)) is None
                cache.put(material(1), response(1))
            assert time.monotonic() - started < 0.1
            assert asyncio.run(cache.aget(material(1))) is None
        stats = cache.stats()
        assert (stats["errors"], stats["skipped"], stats["misses"]) == (1, 201, 102)
        assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


async def test_a_dead_redis_async(caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://user:secret@127.0.0.1:{free_port()}/0"
    cache = RedisCache(url, ttl=60, max_bytes=1 << 20, backoff=0.0)
    with caplog.at_level(logging.WARNING, logger="clew.gateway.cache"):
        assert await cache.aget(material(1)) is None
        await cache.aput(material(1), response(1))
        assert await cache.aget(material(1)) is None
    await cache.aclose()
    assert cache.stats()["errors"] == 3
    assert "secret" not in caplog.text and "***@127.0.0.1" in caplog.text
    assert len(caplog.records) == 2  # a read and a write failed: two kinds


def test_redis_without_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ImportError, match=r"pip install 'clew\[redis\]'"):
        RedisCache("redis://127.0.0.1:6379/0", ttl=60, max_bytes=1000)


# --- open_cache -----------------------------------------------------------------------------


def test_open_cache_defaults_to_sqlite(tmp_path: Path) -> None:
    with open_cache(None, tmp_path / "cache.db", 60, 1000) as cache:
        assert isinstance(cache, SqliteCache) and cache.path == tmp_path / "cache.db"
        assert (cache.ttl, cache.max_bytes) == (60, 1000)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///relative/cache.db", Path("relative/cache.db")),
        ("sqlite:////absolute/cache.db", Path("/absolute/cache.db")),
        ("some/file.db", Path("some/file.db")),
        ("/abs/file.db", Path("/abs/file.db")),
    ],
)
def test_open_cache_sqlite_forms(url: str, path: Path) -> None:
    cache = open_cache(url, Path("unused.db"), None, 1000)
    assert isinstance(cache, SqliteCache) and cache.path == path
    cache.close()


@pytest.mark.parametrize(
    "url", ["redis://localhost:6379/0", "rediss://:pw@host:6380/1", "unix:///tmp/redis.sock"]
)
def test_open_cache_redis_forms(url: str) -> None:
    cache = open_cache(url, Path("unused.db"), 60, 1000)  # connects on first use only
    assert isinstance(cache, RedisCache) and cache.url == url
    assert "pw" not in repr(cache)
    cache.close()


@pytest.mark.parametrize(
    "url", ["", "  ", "http://example.com/cache", "memcached://host", "sqlite://", "sqlite:///"]
)
def test_open_cache_rejects_other_urls(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"redis://.*sqlite:///"):
        open_cache(url, Path("unused.db"), 60, 1000)


@pytest.mark.parametrize(("ttl", "max_bytes"), [(0, 1000), (-1, 1000), (60, 0)])
def test_bad_limits_are_configuration_errors(ttl: float, max_bytes: int) -> None:
    with pytest.raises(ConfigurationError):
        open_cache(None, Path("unused.db"), ttl, max_bytes)


def test_every_cache_is_a_completion_cache() -> None:
    assert issubclass(SqliteCache, CompletionCache) and issubclass(RedisCache, CompletionCache)
