"""The flood's actors: one real bot at a heartbeat a second, and the junk bot ids."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import orjson
import redis.asyncio as aioredis

from harness.processes import HarnessError
from harness.relay import RelayProcess
from pingpong_relay.redis_io.history import STREAM_PREFIX

CHANNEL: Final = "bot:pingpong"
REAL_SOURCE: Final = "real"
REAL: Final = f"{CHANNEL}/{REAL_SOURCE}"
T = TypeVar("T")


class RealBot:
    """One bot publishing a heartbeat a second while `running` is set."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.running = asyncio.Event()
        self.sent = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Starts publishing, in a task of its own."""
        self.running.set()
        self._task = asyncio.create_task(self._run(), name="real-bot")

    async def _run(self) -> None:
        while True:
            await self.running.wait()
            kind = "ping" if self.sent % 2 == 0 else "pong"
            body = {
                "type": kind,
                "latency": 40.0,
                "timestamp": time.time_ns() // 1_000_000,
                "source": REAL_SOURCE,
            }
            await self.redis.publish(CHANNEL, orjson.dumps(body))
            self.sent += 1
            await asyncio.sleep(1.0)  # the bot's own cadence

    async def stop(self) -> None:
        """Stops it for good."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def flood(redis: aioredis.Redis, count: int, batch: int) -> None:
    """`count` one-message bot ids, `batch` PUBLISHes per pipeline, one pipeline at a time."""
    now_ms = time.time_ns() // 1_000_000
    for start in range(0, count, batch):
        pipe = redis.pipeline(transaction=False)
        for i in range(start, min(count, start + batch)):
            body = {"type": "ping", "latency": 12.0, "timestamp": now_ms, "source": f"junk-{i}"}
            pipe.publish(CHANNEL, orjson.dumps(body))
        await asyncio.wait_for(pipe.execute(), 60.0)


async def wait_until(
    what: str, check: Callable[[], Awaitable[T]], timeout_s: float, interval_s: float = 0.2
) -> T:
    """Polls `check` until it returns something truthy; that."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(interval_s)  # the relay's or Redis's state, polled
    raise HarnessError(f"timed out after {timeout_s:g} s waiting for {what}")


async def metric(relay: RelayProcess, name: str) -> float:
    """One unlabelled series of the relay's /metrics; 0 when missing."""
    values = await relay.metrics()
    return float((values or {}).get(name, 0.0))


async def used_memory(redis: aioredis.Redis) -> int:
    """Redis's `used_memory`, bytes."""
    info = await redis.info("memory")
    return int(info["used_memory"])


async def junk_streams(redis: aioredis.Redis) -> int:
    """How many junk bots still have a history stream."""
    count = 0
    async for _ in redis.scan_iter(match=f"{STREAM_PREFIX}{CHANNEL}/junk-*", count=5000):
        count += 1
    return count


def bot_labels(text: str) -> int:
    """How many distinct bot label values a /metrics page has."""
    return len(
        {
            line.split('bot="', 1)[1].split('"', 1)[0]
            for line in text.splitlines()
            if not line.startswith("#") and 'bot="' in line
        }
    )


def mb(value: float) -> str:
    """Bytes as "N.N MB"."""
    return f"{value / 1e6:,.1f} MB"
