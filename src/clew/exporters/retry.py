"""How long and how often the export pipeline retries one batch."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long and how often one batch is retried.

    Attributes:
        initial_backoff: the first backoff's upper bound, in seconds.
        max_backoff: no backoff is longer (unless the backend's ``Retry-After`` says so).
        budget: seconds from a batch's first attempt after which it is given up.
        max_attempts: give up after this many attempts (``None``: the budget decides).
    """

    initial_backoff: float = 0.5
    max_backoff: float = 15.0
    budget: float = 30.0
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.initial_backoff <= self.max_backoff:
            raise ValueError("need 0 < initial_backoff <= max_backoff")
        if self.budget < 0:
            raise ValueError("budget must be >= 0")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")

    def backoff(self, failures: int) -> float:
        """Full jitter: uniform in [0, min(max_backoff, initial_backoff * 2**(failures-1))]."""
        cap = min(self.max_backoff, self.initial_backoff * 2 ** max(failures - 1, 0))
        return random.uniform(0.0, cap)
