"""The history benchmark's synthetic bot: days of one message a second, with known outages."""

from __future__ import annotations

import asyncio
import math
import random
import time
from array import array
from bisect import bisect_left, bisect_right
from typing import Final

import orjson
import redis.asyncio as aioredis

from pingpong_relay.redis_io.history import (
    BOTS_KEY,
    ESTABLISHED_KEY,
    FIRST_KEY,
    SEQ_KEY,
    stream_key,
)
from pingpong_relay.rollups import GAP_FLOOR_MS, HOUR_MS, MINUTE_MS, hour_of
from pingpong_relay.subscriptions import bot_id

from ..runner import progress
from ..stats import percentile

CHANNEL: Final = "bot:pingpong"
SOURCE: Final = "gate"
BOT: Final = bot_id(CHANNEL, SOURCE)
DAY_MS: Final = 24 * HOUR_MS
BATCH: Final = 10_000  # commands per pipeline execute while loading
JITTER_MS: Final = 40  # each message leaves up to this long after its whole second
# (fraction of the span before its end, minute of the hour it starts at, minutes long):
# one across an hour boundary, one inside an hour, one in the last day's minutes.
OUTAGE_PLAN: Final = ((0.70, 53.0, 18.0), (0.17, 12.5, 29.0), (0.014, 31.25, 7.0))


async def redis_ms(redis: aioredis.Redis) -> int:
    """Redis's clock, ms since the epoch."""
    seconds, micros = await asyncio.wait_for(redis.time(), 10.0)
    return int(seconds) * 1000 + int(micros) // 1000


def local_ms() -> int:
    """This machine's clock, ms since the epoch."""
    return time.time_ns() // 1_000_000


class SyntheticBot:
    """One bot at one message a second (ping, pong, ping, …), silent during planned outages.

    It remembers every message's time and latency and every gap ≥ GAP_FLOOR_MS, which is
    all the analytics can be checked against. Until `publish_mode` is set it writes its
    stream directly (explicit ids `<ms>-0`, as the relay's script lays entries out); after,
    it PUBLISHes and lets the relay record.
    """

    def __init__(self, end_ms: int, days: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.start_ms = end_ms - days * DAY_MS
        span = end_ms - self.start_ms
        self.outages: list[tuple[int, int]] = []
        for fraction, minute, minutes in OUTAGE_PLAN:
            begin = hour_of(end_ms - int(fraction * span)) + int(minute * MINUTE_MS)
            while begin + minutes * MINUTE_MS > end_ms - 10 * MINUTE_MS:
                begin -= HOUR_MS  # over before the load ends, whatever --days
            self.outages.append((begin, begin + int(minutes * MINUTE_MS)))
        self.tick = 0
        self.next_ms = self._schedule()
        self.seq = 0
        self.times = array("q")
        self.latencies = array("d")
        self.gaps: list[tuple[int, int]] = []  # (last message before, first after)
        self.last_ms: int | None = None
        self.publish_mode = False
        self.expected_total = days * 86_400 - sum((b - a) // 1000 for a, b in self.outages)

    def _schedule(self) -> int:
        while True:
            nominal = self.start_ms + self.tick * 1000
            self.tick += 1
            if not any(a <= nominal < b for a, b in self.outages):
                return nominal + self.rng.randrange(JITTER_MS)

    def _latency(self) -> float:
        if self.rng.random() < 0.003:
            return round(self.rng.uniform(250.0, 1200.0), 1)
        return round(self.rng.lognormvariate(math.log(42.0), 0.3), 1)

    def _message(self, at_ms: int, latency: float) -> bytes:
        kind = "ping" if self.seq % 2 == 0 else "pong"
        return orjson.dumps(
            {"type": kind, "latency": latency, "timestamp": at_ms - 2, "source": SOURCE}
        )

    def _note(self, at_ms: int, latency: float) -> None:
        if self.last_ms is not None and at_ms - self.last_ms >= GAP_FLOOR_MS:
            self.gaps.append((self.last_ms, at_ms))
        self.times.append(at_ms)
        self.latencies.append(latency)
        self.seq += 1
        self.last_ms = at_ms

    async def write_until(
        self, redis: aioredis.Redis, until_ms: int, started: float | None = None
    ) -> None:
        """Every message due by `until_ms`, straight into the stream, BATCH per pipeline."""
        key = stream_key(BOT)
        while self.next_ms <= until_ms:
            pipe = redis.pipeline(transaction=False)
            if self.seq == 0:
                pipe.hsetnx(FIRST_KEY, BOT, f"{self.next_ms}-0")
            for _ in range(BATCH):
                if self.next_ms > until_ms:
                    break
                at_ms, latency = self.next_ms, self._latency()
                raw = self._message(at_ms, latency)
                self._note(at_ms, latency)
                pipe.execute_command(
                    "XADD", key, f"{at_ms}-0",
                    "channel", CHANNEL, "relay_ms", at_ms - 1, "seq", self.seq, "raw", raw,
                )  # fmt: skip
                self.next_ms = self._schedule()
            # As the relay's script scores them: the bot's last append, and established.
            if self.last_ms is not None:
                pipe.zadd(BOTS_KEY, {BOT: self.last_ms})
                pipe.zadd(ESTABLISHED_KEY, {BOT: self.last_ms})
            pipe.set(SEQ_KEY, self.seq)
            await asyncio.wait_for(pipe.execute(), 120.0)
            if started is not None and self.seq % (20 * BATCH) < BATCH:
                rate = self.seq / max(1e-9, time.perf_counter() - started)
                progress(
                    f"  loaded {self.seq:,} / ~{self.expected_total:,} entries ({rate:,.0f}/s)"
                )

    async def catch_up(self, redis: aioredis.Redis) -> None:
        """Every message due until now (Redis's clock), straight into the stream."""
        started = time.perf_counter()
        while True:
            now = await redis_ms(redis)
            if self.next_ms > now:
                return
            await self.write_until(redis, now, started)

    async def live(self, redis: aioredis.Redis) -> None:
        """From the end of the load on: one message a second, written or published."""
        while True:
            await asyncio.sleep(max(0.0, (self.next_ms - local_ms()) / 1000))
            if not self.publish_mode:
                await self.write_until(redis, max(self.next_ms, await redis_ms(redis)))
                continue
            at_ms, latency = local_ms(), self._latency()
            raw = self._message(at_ms, latency)
            await asyncio.wait_for(redis.publish(CHANNEL, raw), 10.0)
            self._note(at_ms, latency)
            self.next_ms = self._schedule()

    async def settled(self) -> None:
        """Waits (≤ 3 s) for a moment ≥ 300 ms after a message and ≥ 300 ms before the next."""
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            now = local_ms()
            if (self.last_ms is None or now - self.last_ms >= 300) and self.next_ms - now >= 300:
                return
            await asyncio.sleep(0.05)

    def count(self, from_ms: int, to_ms: int) -> int:
        """Messages sent in [from_ms, to_ms]."""
        return bisect_right(self.times, to_ms) - bisect_left(self.times, from_ms)

    def latency_quantiles(self, from_ms: int, to_ms: int) -> tuple[float, float]:
        """p50 and p99 of the latencies sent in [from_ms, to_ms]."""
        lo, hi = bisect_left(self.times, from_ms), bisect_right(self.times, to_ms)
        values = sorted(self.latencies[lo:hi])
        return percentile(values, 0.5), percentile(values, 0.99)
