"""Batches that could not be delivered, kept on disk until the backend answers again.

One file per batch, named ``<time_ns>-<pid>-<seq>-k<kind hash>-n<spans>.spill`` so a directory
listing sorts oldest first across processes and tells the payload kind and span count without
opening anything. A file is ``clew-spill 1 <payload kind>\\n`` followed by the payload. Files are
written to a temporary name and renamed, so a reader never sees half a batch; several processes
may share a directory (after ``fork()`` or across a restart), and only the one holding the
directory's lock replays.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process per spill directory
    fcntl = None  # type: ignore[assignment]

_logger = logging.getLogger(__name__)
_MAGIC = b"clew-spill 1 "
_SUFFIX = ".spill"


@dataclass(frozen=True, slots=True)
class SpillEntry:
    """One spilled batch on disk."""

    path: Path
    spans: int


class SpillDir:
    """A directory of spilled payloads of one kind, capped in bytes.

    Args:
        path: the directory (created if missing).
        kind: the payload kind; files of another kind are left alone.
        max_bytes: once the directory holds this much, new batches are refused.
    """

    def __init__(self, path: str | os.PathLike[str], *, kind: str, max_bytes: int) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._kind = kind.encode()
        self._tag = f"-k{zlib.crc32(self._kind):08x}-"
        self._max_bytes = max_bytes
        self._seq = itertools.count()
        self._last_ns = 0

    def entries(self) -> list[SpillEntry]:
        """Spilled batches, oldest first."""
        found: list[SpillEntry] = []
        try:
            names = sorted(
                e.name
                for e in os.scandir(self.path)
                if e.name.endswith(_SUFFIX) and self._tag in e.name
            )
        except OSError:
            return found
        for name in names:
            spans = _span_count(name)
            if spans is not None:
                found.append(SpillEntry(self.path / name, spans))
        return found

    def pending_spans(self) -> int:
        """Spans waiting on disk, whoever spilled them."""
        return sum(e.spans for e in self.entries())

    def size(self) -> int:
        """Bytes of spilled batches on disk."""
        total = 0
        for entry in self.entries():
            with contextlib.suppress(OSError):  # replayed meanwhile by another process
                total += entry.path.stat().st_size
        return total

    def write(self, payload: bytes, spans: int) -> str | None:
        """Store one batch; ``None`` on success, else why it was refused."""
        header = _MAGIC + self._kind + b"\n"
        if self.size() + len(header) + len(payload) > self._max_bytes:
            return f"spill directory {self.path} is full ({self._max_bytes} bytes)"
        pid = os.getpid()
        self._last_ns = stamp = max(time.time_ns(), self._last_ns + 1)  # never backwards
        name = f"{stamp:020d}-{pid}-{next(self._seq):08d}{self._tag}n{spans}{_SUFFIX}"
        tmp = self.path / f".{name}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(header)
                f.write(payload)
            os.replace(tmp, self.path / name)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            return f"cannot write to spill directory {self.path}: {exc}"
        return None

    def read(self, entry: SpillEntry) -> bytes | None:
        """The payload of ``entry``; ``None`` if it is gone, unreadable or of another kind."""
        try:
            data = entry.path.read_bytes()
        except OSError:
            return None
        header, sep, payload = data.partition(b"\n")
        if not sep or header != _MAGIC + self._kind:
            return None
        return payload

    def remove(self, entry: SpillEntry) -> None:
        """Forget a batch that was delivered or will never be."""
        entry.path.unlink(missing_ok=True)

    def quarantine(self, entry: SpillEntry) -> None:
        """Move an unreadable file aside so replay does not stall on it."""
        try:
            os.replace(entry.path, entry.path.with_suffix(".bad"))
        except OSError:
            entry.path.unlink(missing_ok=True)

    @contextmanager
    def replay_lock(self) -> Iterator[bool]:
        """Hold the directory's replay lock if free; yields whether it is held."""
        if fcntl is None:
            yield True
            return
        try:
            fd = os.open(self.path / ".replay.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            yield True
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _span_count(name: str) -> int | None:
    stem = name[: -len(_SUFFIX)]
    _, _, count = stem.rpartition("-n")
    return int(count) if count.isdigit() else None


def spill_subdir(spill_dir: str | os.PathLike[str], name: str) -> Path:
    """The spill directory of the exporter called ``name`` under a shared ``spill_dir``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "exporter"
    return Path(spill_dir) / safe
