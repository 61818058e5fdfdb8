"""The in-process front of the completion cache: the same answers as the shared cache, from
memory, for a bounded time and size."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from clew.gateway.cache import MemoryFront, SqliteCache


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _front(tmp_path: Path, **options: object) -> tuple[MemoryFront, SqliteCache, Clock]:
    clock = Clock()
    inner = SqliteCache(tmp_path / "cache.db", ttl=3600, max_bytes=1 << 20, clock=clock)
    return MemoryFront(inner, clock=clock, **options), inner, clock  # type: ignore[arg-type]


def test_a_repeat_is_answered_from_memory_with_the_shared_answer(tmp_path: Path) -> None:
    front, inner, _ = _front(tmp_path)
    front.put(b"request-1", b"answer-1")
    before = inner.stats()["hits"]
    assert front.get(b"request-1") == b"answer-1" == inner.get(b"request-1")
    assert front.stats()["memory_hits"] == 1
    assert inner.stats()["hits"] == before + 1  # only the direct read reached the file
    assert front.get(b"request-2") is None


def test_an_answer_from_another_process_is_kept_after_the_first_read(tmp_path: Path) -> None:
    front, _, clock = _front(tmp_path)
    other = SqliteCache(tmp_path / "cache.db", ttl=3600, max_bytes=1 << 20, clock=clock)
    other.put(b"shared", b"from elsewhere")
    assert front.get(b"shared") == b"from elsewhere"
    assert front.get(b"shared") == b"from elsewhere"
    assert front.stats()["memory_hits"] == 1


def test_memory_forgets_after_its_lifetime_and_reads_the_shared_cache_again(
    tmp_path: Path,
) -> None:
    front, inner, clock = _front(tmp_path, lifetime=60.0)
    front.put(b"r", b"a")
    inner.clear()  # as another process's clear() would
    assert front.get(b"r") == b"a"  # within the lifetime: still in memory
    clock.now += 61
    assert front.get(b"r") is None


def test_memory_lifetime_never_exceeds_the_ttl(tmp_path: Path) -> None:
    clock = Clock()
    inner = SqliteCache(tmp_path / "cache.db", ttl=5, max_bytes=1 << 20, clock=clock)
    front = MemoryFront(inner, lifetime=60.0, clock=clock)
    front.put(b"r", b"a")
    clock.now += 6
    assert front.get(b"r") is None


@settings(max_examples=50, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=40),
    max_items=st.integers(min_value=1, max_value=10),
)
def test_memory_stays_within_its_bounds(sizes: list[int], max_items: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        inner = SqliteCache(Path(folder) / "c.db", ttl=None, max_bytes=1 << 20)
        front = MemoryFront(inner, max_items=max_items, max_bytes=2000)
        for number, size in enumerate(sizes):
            front.put(f"m{number}".encode(), b"x" * size)
            stats = front.stats()
            assert stats["memory_entries"] <= max_items
            assert stats["memory_bytes"] <= 2000
        # the last answer put is the one most recently used: kept unless it alone is too big
        last = f"m{len(sizes) - 1}".encode()
        assert front.get(last) == b"x" * sizes[-1]
        inner.close()


def test_clear_forgets_memory_and_shared_entries(tmp_path: Path) -> None:
    front, inner, _ = _front(tmp_path)
    front.put(b"r", b"a")
    front.clear()
    assert front.get(b"r") is None and inner.get(b"r") is None
