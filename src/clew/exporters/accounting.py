"""Where every span offered to an export pipeline ends up, counted.

The accounting rule: every span offered is counted once as ``enqueued``, and ends up in
exactly one of ``exported`` (delivered; ``replayed`` counts those delivered from the spill
directory), ``dropped`` (the queue was full, or the pipeline shut down), ``failed`` (given up,
or refused), on disk (``spilled``; still in ``spill_pending`` until replayed), or still
``queued`` (waiting or in flight). With one process per spill directory, at any quiet moment::

    enqueued == exported + dropped + failed + spill_pending + queued
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

__all__ = ["Accounting", "Stats"]

Stats = dict[str, int | str | None]


def _read(counter: itertools.count[int]) -> int:
    # itertools.count is the one counter app threads can bump atomically without a lock;
    # its repr, "count(N)", is the only way to read it that is not deprecated.
    return int(repr(counter)[6:-1])


class Accounting:
    """A pipeline's counters. ``offer`` and ``drop`` are called by application threads and
    take no lock; everything else is the worker's, under :attr:`lock` (which also guards the
    worker's taking of spans off the queue, so a snapshot never counts a span twice)."""

    def __init__(self) -> None:
        self._offered = itertools.count()
        self._dropped = itertools.count()
        self.offer: Callable[[], int] = self._offered.__next__
        """Count one span offered (application threads; no lock)."""
        self.drop: Callable[[], int] = self._dropped.__next__
        """Count one span dropped (application threads; no lock)."""
        self.lock = threading.Lock()
        self.exported = self.failed = self.spilled = self.replayed = self.in_flight = 0
        self.last_error: str | None = None

    @property
    def dropped(self) -> int:
        """Spans dropped so far."""
        return _read(self._dropped)

    def settle(
        self,
        *,
        exported: int = 0,
        failed: int = 0,
        spilled: int = 0,
        replayed: int = 0,
        error: str | None = None,
    ) -> None:
        """Count where the batch in flight went (and the last error, if any)."""
        with self.lock:
            self.exported += exported
            self.failed += failed
            self.spilled += spilled
            self.replayed += replayed
            self.in_flight = 0
            if error is not None:
                self.last_error = error

    def snapshot(self, queued: int, spill_pending: int) -> Stats:
        """The counters, with the spans still ``queued`` (read under :attr:`lock`) and those
        ``spill_pending`` on disk."""
        return {
            "enqueued": _read(self._offered),
            "exported": self.exported,
            "dropped": _read(self._dropped),
            "failed": self.failed,
            "spilled": self.spilled,
            "replayed": self.replayed,
            "queued": queued + self.in_flight,
            "spill_pending": spill_pending,
            "last_error": self.last_error,
        }
