"""Heartbeat statistics over sliding windows: pure, bounded memory, the clock passed in."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final

from pingpong_relay.defaults import MAX_CLOCK_SKEW_S, WINDOWS
from pingpong_relay.histogram import LogHistogram, bucket_key
from pingpong_relay.time_slots import SLOTS_PER_WINDOW, Ring, Slot

__all__ = [
    "ESTABLISHED_MESSAGES",
    "ESTABLISHED_SPAN_S",
    "SLOTS_PER_WINDOW",
    "StatsBook",
    "WindowedStats",
]

# A bot is *established* once it has been heard ESTABLISHED_MESSAGES times over at least
# ESTABLISHED_SPAN_S (first to latest message). One message, or a burst of them, is not
# enough: a real bot publishes again and again over time, a flood of made-up ids does not.
# Until then a bot may be evicted to make room for a newcomer and raises no alert; the
# history applies the same test to each bot's stream (redis_io/history.py), so a restarted relay
# brings back established bots only.
ESTABLISHED_MESSAGES: Final = 3
ESTABLISHED_SPAN_S: Final = 1.0


def _check_window(window: str) -> None:
    if window not in WINDOWS:
        raise ValueError(f"unknown window {window!r}; expected one of {', '.join(WINDOWS)}")


class WindowedStats:
    """Counts, latency, publish interval and transit time of one stream over each of WINDOWS.

    Each window is a ring of SLOTS_PER_WINDOW time slots, so a message counts in a window for
    between (window − window/60) and window seconds after its receipt (59–60 s for "1m"), and
    memory is bounded by 4 × 60 slots of three histograms whatever the message rate.

    A transit time beyond ±`max_clock_skew_s` says the bot's clock is wrong, not that the
    message took that long (the design's example timestamp, 1234567890, is in 1970): such a
    message counts as clock skew instead, and in every other figure as usual.
    """

    __slots__ = ("_first_seen_s", "_last_seen_s", "_max_skew_ms", "_rings", "_total")

    def __init__(self, max_clock_skew_s: float = MAX_CLOCK_SKEW_S) -> None:
        if not max_clock_skew_s > 0:
            raise ValueError(f"max_clock_skew_s must be > 0, not {max_clock_skew_s!r}")
        self._max_skew_ms = max_clock_skew_s * 1000.0
        self._rings = {name: Ring(window_s) for name, window_s in WINDOWS.items()}
        self._first_seen_s: float | None = None
        self._last_seen_s: float | None = None
        self._total = 0

    def record(
        self,
        now_s: float,
        kind: str,
        latency_ms: float | None,
        bot_timestamp_ms: float | None,
    ) -> float | None:
        """Count one message received at `now_s` (the relay's clock, seconds since epoch).

        `kind` other than "ping" or "pong" counts as a message of neither kind. A `now_s`
        earlier than the previous one counts as the previous one: a clock stepped back must
        not reopen recycled slots nor make intervals negative. Returns the transit time in
        ms when it is past the clock-skew bound (counted as clock skew, not as a transit),
        else None.
        """
        if not math.isfinite(now_s):
            raise ValueError(f"now_s must be finite, not {now_s!r}")
        last_s = self._last_seen_s
        if last_s is not None and now_s < last_s:
            now_s = last_s
        interval_ms = None if last_s is None else (now_s - last_s) * 1000.0
        transit_ms = None if bot_timestamp_ms is None else now_s * 1000.0 - bot_timestamp_ms
        if latency_ms is not None and not math.isfinite(latency_ms):
            latency_ms = None
        if transit_ms is not None and not math.isfinite(transit_ms):
            transit_ms = None
        skewed_ms = None
        if transit_ms is not None and abs(transit_ms) > self._max_skew_ms:
            skewed_ms, transit_ms = transit_ms, None
        # Keys once per message, not once per window.
        latency_key = 0 if latency_ms is None else bucket_key(latency_ms)
        interval_key = 0 if interval_ms is None else bucket_key(interval_ms)
        transit_key = 0 if transit_ms is None else bucket_key(transit_ms)
        is_ping = kind == "ping"
        is_pong = kind == "pong"
        for ring in self._rings.values():
            slot = ring.slot_for(now_s)
            slot.messages += 1
            if is_ping:
                slot.ping += 1
            elif is_pong:
                slot.pong += 1
            if latency_ms is not None:
                ring.insert(slot, "latency", latency_ms, latency_key)
            if interval_ms is not None:
                ring.insert(slot, "interval", interval_ms, interval_key)
            if transit_ms is not None:
                slot.transit.insert_keyed(transit_ms, transit_key)
            elif skewed_ms is not None:
                slot.clock_skew += 1
        if self._first_seen_s is None:
            self._first_seen_s = now_s
        self._last_seen_s = now_s
        self._total += 1
        return skewed_ms

    def _live(self, window: str, now_s: float) -> list[Slot]:
        _check_window(window)
        if self._last_seen_s is not None and now_s < self._last_seen_s:
            now_s = self._last_seen_s
        return self._rings[window].live(now_s)

    def _merged(self, window: str, name: str, now_s: float) -> LogHistogram:
        _check_window(window)
        if self._last_seen_s is not None and now_s < self._last_seen_s:
            now_s = self._last_seen_s
        return self._rings[window].merged(now_s, name)

    def summary(self, window: str, now_s: float) -> dict[str, Any]:
        """The window's figures as a JSON-ready dict; floats rounded to 3 decimals."""
        slots = self._live(window, now_s)
        latency, interval, transit = LogHistogram(), LogHistogram(), LogHistogram()
        count = ping = pong = skewed = 0
        for slot in slots:
            count += slot.messages
            ping += slot.ping
            pong += slot.pong
            skewed += slot.clock_skew
            latency.merge(slot.latency)
            interval.merge(slot.interval)
            transit.merge(slot.transit)
        return {
            "window": window,
            "count": count,
            "ping": ping,
            "pong": pong,
            "rate_per_s": round(count / WINDOWS[window], 3),
            "latency_ms": latency.describe(),
            "interval_ms": interval.describe((0.5, 0.95)),
            "transit_ms": {
                **transit.describe(),
                "negative": transit.negative_count,
            },
            "clock_skew": {"messages": skewed},
            "clock_skew_suspected": skewed > 0 or transit.negative_count > 0,
        }

    def latency_quantile(self, window: str, q: float, now_s: float) -> float | None:
        """The latency quantile `q` (0 to 1) over `window`, in ms; None with no latency in it."""
        return self._merged(window, "latency", now_s).quantile(q)

    def typical_interval_s(self, now_s: float) -> float | None:
        """The median publish interval over "5m", in seconds; None under two messages."""
        if sum(slot.messages for slot in self._live("5m", now_s)) < 2:
            return None
        median_ms = self._merged("5m", "interval", now_s).quantile(0.5)
        return None if median_ms is None else median_ms / 1000.0

    def slot_count(self) -> int:
        """Slots allocated so far: at most len(WINDOWS) × SLOTS_PER_WINDOW."""
        return sum(slot is not None for ring in self._rings.values() for slot in ring.slots)

    def bucket_count(self) -> int:
        """Histogram buckets held by all slots, a measure of memory use."""
        return sum(
            slot.bucket_count()
            for ring in self._rings.values()
            for slot in ring.slots
            if slot is not None
        )

    @property
    def last_seen_s(self) -> float | None:
        """When the last message was received (or the seeded time), in clock seconds."""
        return self._last_seen_s

    def is_established(self) -> bool:
        """Heard ESTABLISHED_MESSAGES times over at least ESTABLISHED_SPAN_S."""
        return (
            self._total >= ESTABLISHED_MESSAGES
            and self._first_seen_s is not None
            and self._last_seen_s is not None
            and self._last_seen_s - self._first_seen_s >= ESTABLISHED_SPAN_S
        )

    def seed(self, last_seen_s: float) -> None:
        """When the bot was last heard of before this process (from the history)."""
        if self._last_seen_s is None:
            self._last_seen_s = last_seen_s

    @property
    def total(self) -> int:
        """Every message recorded since this process began tracking the stream, windows aside."""
        return self._total


class StatsBook:
    """WindowedStats per bot, for at most `max_bots` bots, and for all messages together.

    A bot is *on probation* until it is established (ESTABLISHED_MESSAGES over
    ESTABLISHED_SPAN_S, or seeded from the history, which applies the same test). When the
    book is full, a newcomer takes the slot of the bot on probation heard least recently;
    established bots are never evicted by newcomers, and a newcomer that finds every slot
    established is refused. `on_evict(bot)` is called for each bot evicted, so that
    whatever else is kept per bot (statuses, metric series) can go with it, and
    `on_clock_skew(bot, transit_ms)` for each message past ±`max_clock_skew_s`.
    """

    __slots__ = (
        "_bots",
        "_max_bots",
        "_max_clock_skew_s",
        "_on_clock_skew",
        "_on_evict",
        "_overall",
        "_probation",
    )

    def __init__(
        self,
        max_bots: int = 1000,
        on_evict: Callable[[str], None] | None = None,
        *,
        max_clock_skew_s: float = MAX_CLOCK_SKEW_S,
        on_clock_skew: Callable[[str, float], None] | None = None,
    ) -> None:
        if max_bots < 0:
            raise ValueError(f"max_bots must be >= 0, not {max_bots!r}")
        self._max_bots = max_bots
        self._bots: dict[str, WindowedStats] = {}
        # Bots on probation, least recently heard first: the eviction order.
        self._probation: OrderedDict[str, None] = OrderedDict()
        self._max_clock_skew_s = max_clock_skew_s
        self._overall = WindowedStats(max_clock_skew_s)
        self._on_evict = on_evict
        self._on_clock_skew = on_clock_skew

    def record(
        self,
        bot_id: str,
        now_s: float,
        kind: str,
        latency_ms: float | None,
        bot_timestamp_ms: float | None,
    ) -> bool:
        """Count a message overall and for its bot; False when the bot is beyond the cap."""
        skewed_ms = self._overall.record(now_s, kind, latency_ms, bot_timestamp_ms)
        if skewed_ms is not None and self._on_clock_skew is not None:
            self._on_clock_skew(bot_id, skewed_ms)
        stats = self._bots.get(bot_id)
        if stats is None:
            stats = self._admit(bot_id)
            if stats is None:
                return False
            self._probation[bot_id] = None
        stats.record(now_s, kind, latency_ms, bot_timestamp_ms)
        if bot_id in self._probation:
            if stats.is_established():
                del self._probation[bot_id]
            else:
                self._probation.move_to_end(bot_id)
        return True

    def _admit(self, bot_id: str) -> WindowedStats | None:
        """A new bot's statistics, evicting one on probation if the book is full."""
        if len(self._bots) >= self._max_bots:
            if not self._probation:
                return None
            evicted, _ = self._probation.popitem(last=False)
            del self._bots[evicted]
            if self._on_evict is not None:
                self._on_evict(evicted)
        stats = self._bots[bot_id] = WindowedStats(self._max_clock_skew_s)
        return stats

    def seed(self, bot_id: str, last_seen_s: float) -> bool:
        """Track a bot known from the history (established there); False when every slot is
        taken by an established bot."""
        stats = self._bots.get(bot_id)
        if stats is None:
            stats = self._admit(bot_id)
            if stats is None:
                return False
        self._probation.pop(bot_id, None)
        stats.seed(last_seen_s)
        return True

    def is_established(self, bot_id: str) -> bool:
        """Tracked and past probation."""
        return bot_id in self._bots and bot_id not in self._probation

    def forget(self, bot_id: str) -> bool:
        """Stop tracking a bot (not an eviction: on_evict is not called); False if it was
        not tracked."""
        if self._bots.pop(bot_id, None) is None:
            return False
        self._probation.pop(bot_id, None)
        return True

    def silent_since(self, before_s: float) -> list[str]:
        """Tracked bots last heard before `before_s` (seeded ones by their history time)."""
        return [
            bot
            for bot, stats in self._bots.items()
            if stats.last_seen_s is not None and stats.last_seen_s < before_s
        ]

    def __len__(self) -> int:
        return len(self._bots)

    @property
    def on_probation(self) -> int:
        """How many tracked bots are not established yet (the ones a newcomer may evict)."""
        return len(self._probation)

    def bots(self) -> list[str]:
        """Every tracked bot, sorted."""
        return sorted(self._bots)

    def get(self, bot_id: str) -> WindowedStats | None:
        """A tracked bot's statistics; None when the book does not track it."""
        return self._bots.get(bot_id)

    @property
    def overall(self) -> WindowedStats:
        """The statistics of every message together, bots beyond the cap included."""
        return self._overall

    @property
    def max_bots(self) -> int:
        """How many bots the book tracks at most."""
        return self._max_bots

    @property
    def max_clock_skew_s(self) -> float:
        """How far a bot's timestamp may be from the relay's clock and count as a transit."""
        return self._max_clock_skew_s

    def summary(self, window: str, now_s: float, bot: str | None = None) -> dict[str, Any]:
        """Overall and per-bot summaries (only `bot`'s when given; KeyError if unknown)."""
        _check_window(window)
        if bot is None:
            names = self.bots()
        elif bot in self._bots:
            names = [bot]
        else:
            raise KeyError(bot)
        return {
            "window": window,
            "generated_at_ms": round(now_s * 1000.0),
            "overall": self._overall.summary(window, now_s),
            "bots": {name: self._bots[name].summary(window, now_s) for name in names},
        }
