"""Capped exponential backoff with jitter, shared by every reconnecting loop (pure)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Backoff", "Retries"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays whose ceiling doubles from `base_s` to at most `cap_s` seconds, jittered.

    `jitter="equal"` (the default) draws each delay from [ceiling/2, ceiling]: never less than
    half, so many relays restarting together spread out without collapsing to zero delay.
    `jitter="full"` draws it from [0, ceiling], which spreads a crowd of clients reconnecting
    to one relay the most (the WebSocket clients use it). `rand` is the random source, [0, 1].
    """

    base_s: float = 0.1
    cap_s: float = 5.0
    jitter: Literal["equal", "full"] = "equal"
    rand: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def ceiling(self, attempt: int) -> float:
        """The most retry number `attempt` (0-based) waits."""
        return min(self.cap_s, self.base_s * 2.0 ** min(attempt, 30))

    def delay(self, attempt: int, rand: Callable[[], float] | None = None) -> float:
        """Seconds to wait before retry number `attempt` (0-based)."""
        ceiling = self.ceiling(attempt)
        draw = (rand or self.rand)()
        if self.jitter == "full":
            return draw * ceiling
        return ceiling / 2 + draw * ceiling / 2


@dataclass(slots=True)
class Retries:
    """One reconnecting loop's place in a Backoff: each failure waits longer than the last,
    and a success (`reset`) starts over from the first delay."""

    backoff: Backoff
    attempt: int = 0

    def next_delay(self) -> float:
        """The delay before the next try; the one after will be drawn from a higher ceiling."""
        delay = self.backoff.delay(self.attempt)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """A connection succeeded: the next failure waits as little as the first did."""
        self.attempt = 0
