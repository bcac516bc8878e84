"""The time slots of a statistics window: a ring of SLOTS_PER_WINDOW slots, each with its
counts and histograms, recycled as time passes (pure; `stats.WindowedStats` keeps one ring
per window)."""

from __future__ import annotations

from typing import Final

from pingpong_relay.histogram import LogHistogram

__all__ = ["SLOTS_PER_WINDOW", "Ring", "Slot"]

SLOTS_PER_WINDOW: Final = 60


class Slot:
    """What one stream recorded in one time slot; `index` is ⌊start / width⌋."""

    __slots__ = (
        "clock_skew",
        "index",
        "interval",
        "latency",
        "messages",
        "ping",
        "pong",
        "transit",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.messages = 0
        self.ping = 0
        self.pong = 0
        self.clock_skew = 0  # messages whose transit was past the bound, so not in `transit`
        self.latency = LogHistogram()
        self.interval = LogHistogram()
        self.transit = LogHistogram()

    def reset(self, index: int) -> None:
        """Empties the slot for time slot `index`, reusing its objects (no allocation)."""
        self.index = index
        self.messages = self.ping = self.pong = self.clock_skew = 0
        self.latency.clear()
        self.interval.clear()
        self.transit.clear()

    def bucket_count(self) -> int:
        """Histogram buckets the slot holds, a measure of its memory."""
        return (
            self.latency.bucket_count() + self.interval.bucket_count() + self.transit.bucket_count()
        )


class Ring:
    """SLOTS_PER_WINDOW slots of width window / SLOTS_PER_WINDOW, recycled as time passes.

    `merged` keeps, per histogram, what the live slots before the newest add up to: only
    the newest slot takes new values, so until time moves to the next slot a query merges
    two histograms rather than up to SLOTS_PER_WINDOW (alert rules ask on every message).
    """

    __slots__ = ("_older", "slots", "width_s")

    def __init__(self, window_s: float) -> None:
        self.width_s = window_s / SLOTS_PER_WINDOW
        self.slots: list[Slot | None] = [None] * SLOTS_PER_WINDOW
        # histogram name -> (newest slot index, merged histograms of the live slots before it)
        self._older: dict[str, tuple[int, LogHistogram]] = {}

    def slot_for(self, now_s: float) -> Slot:
        """The slot that takes values received at `now_s`, emptied if it held older ones."""
        index = int(now_s // self.width_s)
        if self._older and any(index < newest for newest, _ in self._older.values()):
            self._older.clear()  # a value for a slot already summed up (a clock stepped back)
        position = index % SLOTS_PER_WINDOW
        slot = self.slots[position]
        if slot is None:
            slot = self.slots[position] = Slot(index)
        elif slot.index != index:
            slot.reset(index)
        return slot

    def live(self, now_s: float) -> list[Slot]:
        """The slots whose start lies in (now − window, now]."""
        newest = int(now_s // self.width_s)
        oldest = newest - SLOTS_PER_WINDOW + 1
        return [s for s in self.slots if s is not None and oldest <= s.index <= newest]

    def merged(self, now_s: float, name: str) -> LogHistogram:
        """The live slots' histograms `name` ("latency", "interval") merged into a new one."""
        newest = int(now_s // self.width_s)
        cached = self._older.get(name)
        if cached is None or cached[0] != newest:
            older = LogHistogram()
            oldest = newest - SLOTS_PER_WINDOW + 1
            for slot in self.slots:
                if slot is not None and oldest <= slot.index < newest:
                    older.merge(getattr(slot, name))
            cached = self._older[name] = (newest, older)
        merged = LogHistogram()
        merged.merge(cached[1])
        current = self.slots[newest % SLOTS_PER_WINDOW]
        if current is not None and current.index == newest:
            merged.merge(getattr(current, name))
        return merged
