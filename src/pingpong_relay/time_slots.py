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

    `merged` keeps what the live slots' histograms of one name add up to, and `insert`
    keeps that sum up to date as values arrive, until time moves to the next slot: alert
    rules ask for a quantile on every message, and then read one histogram instead of
    merging up to SLOTS_PER_WINDOW.
    """

    __slots__ = ("_sums", "slots", "width_s")

    def __init__(self, window_s: float) -> None:
        self.width_s = window_s / SLOTS_PER_WINDOW
        self.slots: list[Slot | None] = [None] * SLOTS_PER_WINDOW
        # histogram name -> (newest slot index, the live slots' histograms merged)
        self._sums: dict[str, tuple[int, LogHistogram]] = {}

    def slot_for(self, now_s: float) -> Slot:
        """The slot that takes values received at `now_s`, emptied if it held older ones."""
        index = int(now_s // self.width_s)
        if self._sums and any(index < newest for newest, _ in self._sums.values()):
            self._sums.clear()  # a value for a slot already summed up (a clock stepped back)
        position = index % SLOTS_PER_WINDOW
        slot = self.slots[position]
        if slot is None:
            slot = self.slots[position] = Slot(index)
        elif slot.index != index:
            slot.reset(index)
        return slot

    def insert(self, slot: Slot, name: str, value: float, key: int) -> None:
        """Adds `value` (bucket `key`) to `slot`'s histogram `name`, and to the kept sum."""
        getattr(slot, name).insert_keyed(value, key)
        summed = self._sums.get(name)
        if summed is not None and summed[0] == slot.index:
            summed[1].insert_keyed(value, key)

    def live(self, now_s: float) -> list[Slot]:
        """The slots whose start lies in (now − window, now]."""
        newest = int(now_s // self.width_s)
        oldest = newest - SLOTS_PER_WINDOW + 1
        return [s for s in self.slots if s is not None and oldest <= s.index <= newest]

    def merged(self, now_s: float, name: str) -> LogHistogram:
        """The live slots' histograms `name` ("latency", "interval") merged: kept, so read
        it and do not change it."""
        newest = int(now_s // self.width_s)
        summed = self._sums.get(name)
        if summed is None or summed[0] != newest:
            merged = LogHistogram()
            oldest = newest - SLOTS_PER_WINDOW + 1
            for slot in self.slots:
                if slot is not None and oldest <= slot.index <= newest:
                    merged.merge(getattr(slot, name))
            summed = self._sums[name] = (newest, merged)
        return summed[1]
