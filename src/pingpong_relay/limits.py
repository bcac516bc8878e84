"""Rate limits: token buckets for client frames and bot messages (pure, clock passed in)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import translate


@dataclass(slots=True)
class TokenBucket:
    """Allows `rate_per_s` on average with bursts of up to `burst`."""

    rate_per_s: float
    burst: float
    tokens: float = -1.0
    updated_s: float = 0.0

    def allow(self, now_s: float) -> bool:
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
        return self._match is None or self._match(bot) is not None
