"""What the history benchmark measures: Redis memory, event-loop stalls, endpoint timings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import redis.asyncio as aioredis

from pingpong_relay.redis_io.history import stream_key
from pingpong_relay.redis_io.rollup_store import HOURS_PREFIX, MINUTES_PREFIX

from .synthetic import BOT


@dataclass(frozen=True, slots=True)
class Memory:
    """Redis memory after one stage: in all, and the bot's stream and rollups."""

    stage: str
    used_memory: int
    stream_entries: int
    stream_bytes: int
    minute_fields: int
    minute_bytes: int
    hour_fields: int
    hour_bytes: int


async def memory(redis: aioredis.Redis, stage: str) -> Memory:
    """Redis memory now, as `stage`."""

    async def usage(key: str) -> int:
        value = await asyncio.wait_for(redis.memory_usage(key, samples=0), 60.0)
        return int(value or 0)

    info = await asyncio.wait_for(redis.info("memory"), 10.0)
    return Memory(
        stage=stage,
        used_memory=int(info["used_memory"]),
        stream_entries=int(await redis.xlen(stream_key(BOT))),
        stream_bytes=await usage(stream_key(BOT)),
        minute_fields=int(await redis.hlen(MINUTES_PREFIX + BOT)),
        minute_bytes=await usage(MINUTES_PREFIX + BOT),
        hour_fields=int(await redis.hlen(HOURS_PREFIX + BOT)),
        hour_bytes=await usage(HOURS_PREFIX + BOT),
    )


class LoopLag:
    """How late a 10 ms sleep wakes up: how long the event loop was blocked at a stretch."""

    def __init__(self) -> None:
        self.lags_ms: list[float] = []

    async def run(self) -> None:
        """Measures until cancelled."""
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            self.lags_ms.append((time.perf_counter() - before - 0.01) * 1000)


async def watch_heartbeats(url: str, delays_ms: list[float]) -> None:
    """A WebSocket client: publish → arrival of each live message, by the bot's timestamp."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            url, heartbeat=None, timeout=aiohttp.ClientWSTimeout(ws_close=2.0)
        ) as ws,
    ):
        async for frame in ws:
            if frame.type is not aiohttp.WSMsgType.TEXT:
                continue
            arrived = time.time_ns() / 1e6
            body = orjson.loads(frame.data)
            if body.get("type") == "bot:pingpong":
                # The bot's timestamp is 2 ms before it published (see _message).
                delays_ms.append(arrived - (float(body["data"]["timestamp"]) + 2))


@dataclass(slots=True)
class Timing:
    """One endpoint's timed requests: times, statuses, the last body."""

    label: str
    times_ms: list[float] = field(default_factory=list)
    statuses: set[int] = field(default_factory=set)
    size: int = 0
    body: Any = None


async def time_endpoint(
    session: aiohttp.ClientSession,
    url: str,
    params: dict[str, str],
    label: str,
    requests: int,
    warmups: int,
) -> Timing:
    """`warmups` untimed requests, then `requests` timed ones, one after another."""
    timing = Timing(label)
    for attempt in range(warmups + requests):
        started = time.perf_counter()
        async with session.get(url, params=params) as response:
            body = await response.read()
            status = response.status
        elapsed = (time.perf_counter() - started) * 1000
        if attempt < warmups:
            continue
        timing.times_ms.append(elapsed)
        timing.statuses.add(status)
        timing.size = len(body)
        timing.body = orjson.loads(body) if body[:1] == b"{" else body[:200]
    return timing


def slow_commands(entries: Sequence[dict[str, Any]]) -> list[tuple[str, list[float]]]:
    """SLOWLOG entries grouped by command name and key (ids in bounds reduced to "…")."""
    groups: dict[str, list[float]] = {}
    for entry in entries:
        command = entry["command"]
        words = (
            command.decode(errors="replace") if isinstance(command, bytes) else command
        ).split()
        name = " ".join(
            w if not w[:1].isdigit() else "<id>"
            for w in [w.upper() for w in words[:1]] + words[1:4]
        )
        groups.setdefault(name, []).append(float(entry["duration"]))
    return sorted(groups.items(), key=lambda item: -max(item[1]))
