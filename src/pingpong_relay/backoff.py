"""Capped exponential backoff with jitter, shared by every reconnecting loop (pure)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays that double from `base_s` to at most `cap_s` seconds, each jittered down to
    no less than half its ceiling."""

    base_s: float = 0.1
    cap_s: float = 5.0

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `attempt` (0-based)."""
        ceiling: float = min(self.cap_s, self.base_s * 2.0 ** min(attempt, 30))
        # "Equal jitter": never less than half the ceiling, so many relays or clients
        # restarting together spread out without collapsing to zero delay.
        return ceiling / 2 + rand() * ceiling / 2
