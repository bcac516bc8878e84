"""The history benchmark's steps: load, backfill, trim, a relay, timed requests, checks."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Final

import aiohttp
import orjson
import redis.asyncio as aioredis

from harness.processes import Children
from harness.redis_server import RedisServer
from harness.relay import RelayProcess
from pingpong_relay.redis_io.history import stream_key
from pingpong_relay.redis_io.rollup_store import CURSOR_KEY, RollupStore

from ..common import bench_relay
from ..runner import cancel_on_sigterm, progress
from .check import check_analytics, expected_analytics
from .measure import LoopLag, Timing, memory, slow_commands, time_endpoint, watch_heartbeats
from .report import render
from .synthetic import BOT, DAY_MS, SyntheticBot, redis_ms

TIMED_WINDOWS: Final = ("30d", "7d", "24h")
SLOWLOG_US: Final = 10_000  # Redis commands at least this slow are listed


class HistoryRun:
    """One run: its Redis (and client), the synthetic bot, the relay, and background tasks.

    Each step adds its figures to `figures`, which `render` turns into the report.
    """

    def __init__(
        self, args: argparse.Namespace, children: Children, run_dir: Path, redis_port: int
    ) -> None:
        self.args = args
        self.children = children
        self.run_dir = run_dir
        self.redis = aioredis.Redis(
            host="127.0.0.1", port=redis_port, socket_connect_timeout=5, socket_timeout=300
        )
        self.redis_url = f"redis://127.0.0.1:{redis_port}/0"
        self.relay: RelayProcess | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        self.figures: dict[str, Any] = {"memories": [], "problems": []}

    def _task(self, coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coroutine, name=name)
        self.tasks.append(task)
        return task

    async def load(self) -> SyntheticBot:
        """--days of the bot straight into its stream; then it goes on live."""
        bot = SyntheticBot(await redis_ms(self.redis), self.args.days, self.args.seed)
        progress(f"bench.history: Redis {self.redis_url}; loading {self.args.days} d of {BOT}")
        started = time.perf_counter()
        await bot.catch_up(self.redis)
        self.figures["load_s"] = time.perf_counter() - started
        self.figures["loaded"] = bot.seq
        self._task(bot.live(self.redis), "bot")
        self.figures["memories"].append(await memory(self.redis, "after load"))
        return bot

    async def backfill(self) -> None:
        """The relay's own rollup pass over the whole stream, and the loop stalls it causes."""
        progress("bench.history: RollupStore.roll_up() over the whole stream (backfill)")
        lag = LoopLag()
        ticker = self._task(lag.run(), "loop-lag")
        started = time.perf_counter()
        roll_up = RollupStore(self.redis).roll_up()
        minutes = await asyncio.wait_for(roll_up, self.args.backfill_timeout)
        self.figures["backfill_s"] = time.perf_counter() - started
        ticker.cancel()
        self.figures["minutes"] = minutes
        self.figures["lags_ms"] = sorted(lag.lags_ms)
        self.figures["memories"].append(await memory(self.redis, "after rollups"))

    async def trim(self) -> None:
        """XTRIM MINID to --keep-raw-days, as the relay's retention does."""
        keep = self.args.keep_raw_days
        cutoff = await redis_ms(self.redis) - keep * DAY_MS
        progress(f"bench.history: XTRIM MINID to {keep} d")
        started = time.perf_counter()
        trim = self.redis.xtrim(stream_key(BOT), minid=cutoff, approximate=False)
        self.figures["trimmed"] = int(await asyncio.wait_for(trim, 300.0))
        self.figures["trim_s"] = time.perf_counter() - started
        self.figures["memories"].append(await memory(self.redis, f"after trim to {keep} d"))

    async def start_relay(self, bot: SyntheticBot) -> list[float]:
        """The relay on that Redis, and a WebSocket client timing the live heartbeats."""
        progress("bench.history: starting the relay")
        retention = ("--history-retention", str(self.args.keep_raw_days * 86_400))
        self.relay = bench_relay(
            self.children, self.redis_url, self.run_dir / "relay.log", retention
        )
        await self.relay.start()
        bot.publish_mode = True
        delays: list[float] = []
        self._task(watch_heartbeats(self.relay.ws_url, delays), "ws")
        await asyncio.sleep(1.5)  # the relay's first rollup pass, and a live message or two
        delays.clear()
        return delays

    def _endpoints(self, since: int) -> list[tuple[str, str, dict[str, str]]]:
        endpoints: list[tuple[str, str, dict[str, str]]] = [
            (f"/analytics window={w}", "/analytics", {"bot": BOT, "window": w})
            for w in TIMED_WINDOWS
        ]
        history = {"bot": BOT, "limit": "1000"}
        return [
            *endpoints,
            ("/history limit=1000", "/history", history),
            ("/history limit=1000 since=3 d ago", "/history", {**history, "since": str(since)}),
        ]

    async def time_endpoints(self, delays: list[float]) -> list[Timing]:
        """--requests sequential requests to each endpoint; Redis's SLOWLOG meanwhile."""
        assert self.relay is not None
        args, redis = self.args, self.redis
        endpoints = self._endpoints(await redis_ms(redis) - 3 * DAY_MS)
        progress(f"bench.history: timing {len(endpoints)} endpoints × {args.requests}")
        await redis.config_set("slowlog-log-slower-than", SLOWLOG_US)
        await redis.config_set("slowlog-max-len", 1024)
        await redis.slowlog_reset()
        timed_from = time.perf_counter()
        url = self.relay.http_url
        timings = [
            await time_endpoint(
                self.session, url + path, params, label, args.requests, args.warmups
            )
            for label, path, params in endpoints
        ]
        self.figures["timed_s"] = time.perf_counter() - timed_from
        self.figures["live_delays"] = list(delays)
        self.figures["slow"] = slow_commands(await redis.slowlog_get(1024))
        watcher = self.tasks[-1]
        done = watcher.done() and not watcher.cancelled()
        self.figures["watcher_error"] = repr(watcher.exception()) if done else None
        self.figures["timings"] = timings
        return timings

    async def check(self, bot: SyntheticBot, timings: list[Timing]) -> None:
        """Each window's analytics against the generator; every endpoint's answers."""
        assert self.relay is not None
        checks: list[list[str]] = []
        problems: list[str] = self.figures["problems"]
        for window in TIMED_WINDOWS:
            await bot.settled()
            params = {"bot": BOT, "window": window}
            async with self.session.get(
                self.relay.http_url + "/analytics", params=params
            ) as response:
                body = orjson.loads(await response.read())
            if response.status != 200:
                problems.append(f"{window}: HTTP {response.status}: {body}")
                continue
            cells, found = check_analytics(window, body, expected_analytics(bot, window, body))
            checks.append(cells)
            problems += found
        problems += _timing_problems(timings)
        self.figures["checks"] = checks
        self.figures["relay_log"] = [orjson.dumps(r).decode() for r in self.relay.log.warnings()]
        cursor = await self.redis.hget(CURSOR_KEY, BOT)
        self.figures["cursor"] = int(cursor or 0)

    async def measure(self) -> dict[str, Any]:
        """Every step in turn; the figures."""
        bot = await self.load()
        await self.backfill()
        await self.trim()
        delays = await self.start_relay(bot)
        timings = await self.time_endpoints(delays)
        await self.check(bot, timings)
        self.figures["gaps"] = bot.gaps
        return self.figures

    async def close(self) -> None:
        """Cancels the background tasks, stops the relay, closes the clients."""
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 5.0)
        if self.relay is not None:
            await self.relay.stop()
        await self.session.close()
        await self.redis.aclose()


def _timing_problems(timings: list[Timing]) -> list[str]:
    problems = []
    for timing in timings:
        if timing.statuses != {200}:
            problems.append(f"{timing.label}: HTTP statuses {sorted(timing.statuses)}")
        elif timing.label.startswith("/history"):
            items = timing.body.get("items", [])
            if len(items) != 1000 or not timing.body.get("next_after"):
                problems.append(
                    f"{timing.label}: {len(items)} items, next_after "
                    f"{timing.body.get('next_after')!r} (expected 1000 and a cursor)"
                )
    return problems


async def run(args: argparse.Namespace, children: Children, run_dir: Path) -> str:
    """The whole run; its Markdown report."""
    cancel_on_sigterm()
    redis_server = RedisServer()
    await redis_server.start()
    history = HistoryRun(args, children, run_dir, redis_server.port)
    try:
        figures = await history.measure()
    finally:
        await history.close()
        redis_server.stop()
    return render(args, figures, SLOWLOG_US)
