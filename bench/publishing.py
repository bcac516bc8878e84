"""What `bench.run` publishes: bot messages at a rate or in a burst, and who should get them."""

from __future__ import annotations

import asyncio
import fnmatch
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
import redis.asyncio as aioredis

CHANNEL = "bot:pingpong"
SOURCE = "bot"


@dataclass(frozen=True, slots=True)
class ClientFilter:
    """A connect-time query and, written out independently of the relay, what it lets through.

    The expectation is not computed with the relay's own filter code, so a bug there shows
    up as lost or unexpected deliveries rather than being mirrored here.
    """

    label: str
    query: str
    kinds: frozenset[str] | None = None  # None: every type
    bot_pattern: str | None = None  # shell-style pattern on "<channel>/<source>"; None: all

    def wants(self, channel: str, kind: str) -> bool:
        """Whether the filter lets a message of this channel and type through."""
        if self.kinds is not None and kind not in self.kinds:
            return False
        return self.bot_pattern is None or fnmatch.fnmatchcase(
            f"{channel}/{SOURCE}", self.bot_pattern
        )


@dataclass(slots=True)
class Published:
    """What a round published: how many, how fast, and each one's (channel, type)."""

    count: int
    unheard: int
    first_sent_ns: int
    elapsed_s: float
    messages: list[tuple[str, str]] = field(default_factory=list)  # (channel, type) by seq

    @property
    def rate(self) -> float:
        return self.count / self.elapsed_s if self.elapsed_s > 0 else math.nan


def message_of(seq: int, channels: Sequence[str]) -> tuple[str, str]:
    """(channel, type) of message `seq`: ping/pong alternate, and each bot gets a ping and
    then a pong in turn, so that no type filter selects the same messages as a bot filter."""
    return channels[(seq // 2) % len(channels)], "ping" if seq % 2 == 0 else "pong"


def _payload(seq: int, round_id: int, kind: str, sent_ns: int) -> bytes:
    return orjson.dumps(
        {
            "type": kind,
            "latency": 12.3,
            "timestamp": sent_ns // 1_000_000,
            "source": SOURCE,
            "seq": seq,
            "round": round_id,
            "sent_ns": sent_ns,
        }
    )


async def publish(
    bot: aioredis.Redis,
    round_id: int,
    rate: float,
    count: int,
    time_limit_s: float,
    channels: Sequence[str] = (CHANNEL,),
) -> Published:
    """Publish `count` valid bot messages at `rate`, never skipping one to catch up."""
    loop = asyncio.get_running_loop()
    interval_s = 1.0 / rate
    start = loop.time()
    first_sent_ns = 0
    unheard = 0
    published = 0
    messages: list[tuple[str, str]] = []
    last_start = start
    for seq in range(count):
        now = loop.time()
        if now - start > time_limit_s:
            break
        target = start + seq * interval_s
        if target > now:
            await asyncio.sleep(target - now)
        last_start = loop.time()
        sent_ns = time.time_ns()
        first_sent_ns = first_sent_ns or sent_ns
        channel, kind = message_of(seq, channels)
        receivers = int(await bot.publish(channel, _payload(seq, round_id, kind, sent_ns)))
        unheard += receivers == 0
        published += 1
        messages.append((channel, kind))
    # `published` slots of one interval each: exactly count/rate when on schedule.
    elapsed_s = last_start - start + interval_s
    return Published(published, unheard, first_sent_ns, elapsed_s, messages)


async def publish_burst(
    bot: aioredis.Redis, round_id: int, count: int, channel: str = CHANNEL
) -> Published:
    """`count` messages in one pipeline (one write of every PUBLISH, then the replies).

    Every message carries the same `sent_ns`, taken before the payloads are built (about
    1 ms for 1,000), so a delivery's latency is its time since the burst began.
    """
    sent_ns = time.time_ns()
    started = time.perf_counter()
    messages = [(channel, message_of(seq, (channel,))[1]) for seq in range(count)]
    async with bot.pipeline(transaction=False) as pipe:
        for seq, (_, kind) in enumerate(messages):
            pipe.publish(channel, _payload(seq, round_id, kind, sent_ns))
        replies = await pipe.execute()
    elapsed_s = time.perf_counter() - started
    unheard = sum(int(receivers) == 0 for receivers in replies)
    return Published(count, unheard, sent_ns, elapsed_s, messages)
