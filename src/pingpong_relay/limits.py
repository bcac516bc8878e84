"""Rate limits: token buckets for client frames and bot messages, and the bot allow-list (pure).

Also a throttle for repeated log lines. Each takes the time from its caller.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import translate
from typing import Final

__all__ = [
    "CONNECTION_REFUSAL_REASONS",
    "BotAllowList",
    "BotRateLimiter",
    "LogThrottle",
    "TokenBucket",
]

# Why a WebSocket upgrade is refused before it happens (ws.admission): the label values of
# pingpong_connections_refused_total, each exported from the start so rate() sees the first.
CONNECTION_REFUSAL_REASONS: Final = ("per_ip", "per_ip_rate", "origin", "capacity")


@dataclass(slots=True)
class TokenBucket:
    """Allows `rate_per_s` on average with bursts of up to `burst`."""

    rate_per_s: float
    burst: float
    tokens: float = -1.0
    updated_s: float = 0.0

    def allow(self, now_s: float) -> bool:
        """Takes a token at `now_s` (the caller's clock, seconds); False, taking none, when the
        bucket is empty: the event is over the rate."""
        if self.tokens < 0:  # first use: a full bucket
            self.tokens = self.burst
            self.updated_s = now_s
        if now_s > self.updated_s:  # a clock stepping back must not earn tokens later
            self.tokens = min(self.burst, self.tokens + (now_s - self.updated_s) * self.rate_per_s)
            self.updated_s = now_s
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class BotRateLimiter:
    """Per-bot buckets, so one runaway bot cannot flood every dashboard; bounded in size."""

    def __init__(self, rate_per_s: float, max_bots: int = 10_000) -> None:
        self.rate_per_s = rate_per_s
        self._buckets: dict[str, TokenBucket] = {}
        self._max_bots = max_bots
        self.dropped: dict[str, int] = {}

    def allow(self, bot: str, now_s: float) -> bool:
        """Whether a message from `bot` at `now_s` is within `rate_per_s` (with ten seconds'
        burst); a refused one is counted in `dropped`."""
        bucket = self._buckets.get(bot)
        if bucket is None:
            if len(self._buckets) >= self._max_bots:
                self._buckets.clear()  # forget idle bots rather than grow without bound
            # Ten seconds' worth of burst: a bot catching up after a stall never trips it,
            # while one stuck in a loop is held to the rate within seconds.
            bucket = self._buckets[bot] = TokenBucket(
                self.rate_per_s, max(1.0, 10 * self.rate_per_s)
            )
        if bucket.allow(now_s):
            return True
        self.dropped[bot] = self.dropped.get(bot, 0) + 1
        return False

    def take_dropped(self) -> dict[str, int]:
        """What was dropped since the last call (for one log line per interval)."""
        dropped, self.dropped = self.dropped, {}
        return dropped


class BotAllowList:
    """--accept-bots: shell-style patterns a bot id must match (case-sensitive, like alert
    rules' `bots`); no pattern accepts every bot. One compiled expression for all of them,
    so a message costs one match whatever the number of patterns."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(patterns)
        self._match = (
            re.compile("|".join(f"(?:{translate(pattern)})" for pattern in self.patterns)).match
            if self.patterns
            else None
        )

    def accepts(self, bot: str) -> bool:
        """Whether `bot` matches one of the patterns (any bot does when there are none)."""
        return self._match is None or self._match(bot) is not None


@dataclass(slots=True)
class LogThrottle:
    """At most one log line per `interval_s` for each kind of event (a refusal, an
    eviction), saying how many there were since the last line: a flood of them costs one
    line per interval, not one each (pure: the caller passes the clock)."""

    interval_s: float = 10.0
    _pending: dict[str, int] = field(default_factory=dict)
    _logged_at: dict[str, float] = field(default_factory=dict)

    def note(self, reason: str, now_s: float) -> int:
        """Counts one refusal; returns how many to log now (0: not yet)."""
        self._pending[reason] = self._pending.get(reason, 0) + 1
        last = self._logged_at.get(reason)
        if last is not None and now_s - last < self.interval_s:
            return 0
        return self._take(reason, now_s)

    def due_at(self, reason: str) -> float | None:
        """When the refusals held back for `reason` may be logged, or None if there are none."""
        if not self._pending.get(reason):
            return None
        return self._logged_at.get(reason, 0.0) + self.interval_s

    def flush(self, reason: str, now_s: float) -> int:
        """The refusals held back, once their interval is over (0: none, or not yet)."""
        due = self.due_at(reason)
        if due is None or now_s < due:
            return 0
        return self._take(reason, now_s)

    def _take(self, reason: str, now_s: float) -> int:
        count = self._pending.pop(reason, 0)
        self._logged_at[reason] = now_s
        return count
