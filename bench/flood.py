"""`python -m bench.flood`: a flood of made-up bot ids against one relay, with a real bot.

Starts its own redis-server and relay (the relay pinned to one core, this harness and
Redis to the other, where there are two), a local webhook receiver, and a real bot that
publishes once a second. Then publishes `--junk` one-message bot ids (pipelined, in
batches) and measures what they cost the relay and Redis, whether the real bot is still
monitored (status, statistics, its silence alert once it stops), what a relay restart
costs and sends, and Redis's memory once the junk's history has expired (`--retention`,
short here so that it can be watched). Prints Markdown; exits 0 unless the harness fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import orjson
import psutil
import redis.asyncio as aioredis
from aiohttp import web

from pingpong_relay.parsing import positive_float, positive_int
from pingpong_relay.redis_io.history import (
    BOTS_KEY,
    ESTABLISHED_KEY,
    PRUNE_INTERVAL_S,
    SEEN_TTL_MS,
    STREAM_PREFIX,
)

from .procs import BenchError, Children, RedisServer, RelayProcess, free_port, report_main

CHANNEL: Final = "bot:pingpong"
REAL_SOURCE: Final = "real"
REAL: Final = f"{CHANNEL}/{REAL_SOURCE}"
SILENCE_TIMEOUT_S: Final = 3.0
SILENCE_FOR_S: Final = 2.0


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _mb(value: float) -> str:
    return f"{value / 1e6:,.1f} MB"


async def _wait(
    what: str, check: Callable[[], Any], timeout_s: float, interval_s: float = 0.2
) -> Any:
    """Polls `check` (a coroutine function) until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(interval_s)  # the relay's or Redis's state, polled
    raise BenchError(f"timed out after {timeout_s:g} s waiting for {what}")


class WebhookReceiver:
    """A loopback HTTP server that keeps every alert POSTed to it, with its arrival time."""

    def __init__(self) -> None:
        self.port = free_port()
        self.posts: list[tuple[float, dict[str, Any]]] = []
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        self.posts.append((time.monotonic(), await request.json()))
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def since(self, at: float) -> list[dict[str, Any]]:
        return [body for when, body in self.posts if when >= at]


class RealBot:
    """One bot publishing a heartbeat a second while `running` is set."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.running = asyncio.Event()
        self.sent = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
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
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def _flood(redis: aioredis.Redis, count: int, batch: int) -> None:
    """`count` one-message bot ids, `batch` PUBLISHes per pipeline, one pipeline at a time."""
    now_ms = time.time_ns() // 1_000_000
    for start in range(0, count, batch):
        pipe = redis.pipeline(transaction=False)
        for i in range(start, min(count, start + batch)):
            body = {"type": "ping", "latency": 12.0, "timestamp": now_ms, "source": f"junk-{i}"}
            pipe.publish(CHANNEL, orjson.dumps(body))
        await asyncio.wait_for(pipe.execute(), 60.0)


def webhook_delay(webhook: WebhookReceiver, since: float) -> float:
    return next(when - since for when, b in webhook.posts if when >= since)


def _pin(pid: int, cores: set[int]) -> bool:
    with contextlib.suppress(psutil.Error, OSError, ValueError):
        psutil.Process(pid).cpu_affinity(sorted(cores))
        return True
    return False


async def _metric(relay: RelayProcess, name: str) -> float:
    values = await relay.metrics()
    return float((values or {}).get(name, 0.0))


async def _used_memory(redis: aioredis.Redis) -> int:
    info = await redis.info("memory")
    return int(info["used_memory"])


async def _junk_streams(redis: aioredis.Redis) -> int:
    count = 0
    async for _ in redis.scan_iter(match=f"{STREAM_PREFIX}{CHANNEL}/junk-*", count=5000):
        count += 1
    return count


def _bot_labels(text: str) -> int:
    return len(
        {
            line.split('bot="', 1)[1].split('"', 1)[0]
            for line in text.splitlines()
            if not line.startswith("#") and 'bot="' in line
        }
    )


async def _start_relay(
    children: Children, redis_url: str, log_path: Path, args: Sequence[str], core: int | None
) -> tuple[RelayProcess, float, dict[str, Any]]:
    """A relay, pinned; returns it, the seconds from spawn to its bots_seeded, and that line."""
    relay = RelayProcess(children, redis_url, log_path, args)
    started = time.perf_counter()
    await relay.start()
    if core is not None and relay.process is not None:
        _pin(relay.process.pid, {core})
    await relay.wait_event(lambda r: r.get("event") == "bots_seeded", 60.0)
    elapsed = time.perf_counter() - started
    seeded = next(r for r in relay.records if r.get("event") == "bots_seeded")
    return relay, elapsed, seeded


async def run(args: argparse.Namespace, children: Children, run_dir: Path) -> str:
    cores = sorted(os.sched_getaffinity(0))
    relay_core = cores[0] if len(cores) >= 2 else None
    others = set(cores[1:]) if len(cores) >= 2 else None
    if others is not None:
        os.sched_setaffinity(0, others)  # this harness: publisher, bot, receiver

    redis_server = RedisServer(children, run_dir)
    await redis_server.start()
    if others is not None and redis_server.process is not None:
        _pin(redis_server.process.pid, others)
    redis = aioredis.from_url(redis_server.url)
    webhook = WebhookReceiver()
    await webhook.start()
    bot = RealBot(redis)
    relay_args = [
        "--history-retention", f"{args.retention:g}s",
        "--silence-timeout", f"{SILENCE_TIMEOUT_S:g}",
        "--silence-for", f"{SILENCE_FOR_S:g}",
        "--evaluation-interval", "0.5",
        "--webhook-url", webhook.url,
        "--webhook-lease", "2",
        *shlex.split(args.relay_args),
    ]  # fmt: skip
    rows: list[tuple[str, str]] = []
    relay: RelayProcess | None = None
    try:
        relay, _, _ = await _start_relay(
            children, redis_server.url, run_dir / "relay-1.log", relay_args, relay_core
        )
        bot.start()
        _progress("real bot publishing once a second; waiting for it to be established")

        async def real_up() -> bool:
            assert relay is not None
            _, body = await _http_get(relay, "/bots")
            return REAL in orjson.loads(body)["bots"]

        await _wait("the real bot's status", real_up, 30.0)
        await asyncio.sleep(2.0)
        rss_before = relay.rss_bytes()
        memory_before = await _used_memory(redis)
        received_before = await _metric(relay, "pingpong_messages_received_total")
        recorded_before = await _metric(relay, "pingpong_history_recorded_total")
        cpu_before = sum(relay.cpu_times())

        _progress(f"publishing {args.junk:,} one-message bot ids, {args.batch} per pipeline")
        flood_started = time.perf_counter()
        await _flood(redis, args.junk, args.batch)
        published_s = time.perf_counter() - flood_started

        async def relayed() -> bool:
            assert relay is not None
            got = await _metric(relay, "pingpong_messages_received_total")
            return got >= received_before + args.junk

        async def recorded() -> bool:
            assert relay is not None
            got = await _metric(relay, "pingpong_history_recorded_total")
            return got >= recorded_before + args.junk

        await _wait("the relay to receive the flood", relayed, args.timeout)
        received_s = time.perf_counter() - flood_started
        await _wait("the relay to record the flood", recorded, args.timeout)
        recorded_s = time.perf_counter() - flood_started
        cpu_flood = sum(relay.cpu_times()) - cpu_before
        rss_after = relay.rss_bytes()
        memory_after = await _used_memory(redis)
        flood_ended = time.monotonic()
        _progress(f"flood received in {received_s:.1f} s, recorded in {recorded_s:.1f} s")

        _, body = await _http_get(relay, "/bots")
        bots = orjson.loads(body)["bots"]
        real_status = bots.get(REAL, {}).get("status", "none")
        _, body = await _http_get(relay, f"/stats?window=1m&bot={REAL}")
        real_count = orjson.loads(body).get("bots", {}).get(REAL, {}).get("count")
        _, body = await _http_get(relay, "/metrics")
        labels = _bot_labels(body.decode())
        evicted = await _metric(relay, "pingpong_bots_evicted_total")
        untracked = await _metric(relay, "pingpong_bot_messages_untracked_total")

        _progress("stopping the real bot; waiting for its silence alert")
        bot.running.clear()
        stopped = time.monotonic()

        async def fired() -> bool:
            return any(
                (b.get("bot"), b.get("rule"), b.get("state")) == (REAL, "silence", "firing")
                for b in webhook.since(stopped)
            )

        await _wait("the real bot's silence alert", fired, 60.0)
        fired_s = next(
            when - stopped
            for when, b in webhook.posts
            if when >= stopped and (b.get("bot"), b.get("state")) == (REAL, "firing")
        )
        junk_posts = sum(1 for _, b in webhook.posts if b.get("bot") != REAL)

        _progress("restarting the relay")
        await relay.stop()
        restarted = time.monotonic()
        relay, seed_s, seeded = await _start_relay(
            children, redis_server.url, run_dir / "relay-2.log", relay_args, relay_core
        )
        # Long enough for any silence alert the restart would re-fire to be posted.
        await asyncio.sleep(SILENCE_TIMEOUT_S + SILENCE_FOR_S + 3.0)
        after_restart = webhook.since(restarted)
        _, body = await _http_get(relay, "/bots")
        restart_status = orjson.loads(body)["bots"].get(REAL, {}).get("status", "none")
        rss_restarted = relay.rss_bytes()
        bot.running.set()
        back = time.monotonic()

        async def resolved() -> bool:
            return any(
                (b.get("bot"), b.get("state")) == (REAL, "resolved") for b in webhook.since(back)
            )

        try:
            await _wait("the real bot's alert to resolve", resolved, 15.0)
            resolution = f"yes, {webhook_delay(webhook, back):.1f} s after its first message"
        except BenchError:
            resolution = "no"

        if args.no_expiry:
            expiry = "not waited for (--no-expiry)"
            memory_expired = None
        else:
            # The streams expire after the retention, the fingerprints after SEEN_TTL_MS,
            # and the index is pruned within PRUNE_INTERVAL_S.
            settle_s = max(args.retention, SEEN_TTL_MS / 1000) + PRUNE_INTERVAL_S + 2
            wait_s = max(0.0, flood_ended + settle_s - time.monotonic())
            _progress(f"waiting {wait_s:.0f} s for the junk's history to expire")
            await asyncio.sleep(wait_s)

            async def expired() -> bool:
                streams = await _junk_streams(redis)
                return streams == 0 and int(await redis.zcard(BOTS_KEY)) <= 1

            await _wait("the junk's history to expire", expired, 120.0, interval_s=2.0)
            expired_s = time.monotonic() - flood_ended
            memory_expired = await _used_memory(redis)
            expiry = (
                f"{expired_s:.0f} s after the flood; index: "
                f"{int(await redis.zcard(BOTS_KEY))} bot(s), "
                f"{int(await redis.zcard(ESTABLISHED_KEY))} established; "
                f"{int(await redis.dbsize())} keys in Redis"
            )
        memories = [_mb(memory_before), _mb(memory_after)]
        if memory_expired is not None:
            memories.append(_mb(memory_expired))
        seed_line = f"{seed_s:.2f} s" + (
            f" (the seed itself {seeded['seconds']:.3f} s)" if "seconds" in seeded else ""
        )
        rows = [
            ("junk bot ids published", f"{args.junk:,} in {published_s:.1f} s"),
            ("relay received / recorded the flood", f"{received_s:.1f} s / {recorded_s:.1f} s"),
            ("relay RSS before → after the flood", f"{_mb(rss_before)} → {_mb(rss_after)}"),
            ("relay CPU during the flood (user+sys)", f"{cpu_flood:.1f} s"),
            ("Redis used_memory before → after flood → after expiry", " → ".join(memories)),
            (f"junk history gone (retention {args.retention:g} s)", expiry),
            (
                "bots tracked / evicted / untracked messages",
                f"{len(bots)} / {evicted:,.0f} / {untracked:,.0f}",
            ),
            ("bot label values in /metrics", f"{labels}"),
            ("real bot after the flood: status, 1m count", f"{real_status}, {real_count}"),
            (
                "real bot stopped → its silence alert posted",
                f"{fired_s:.1f} s later "
                f"(timeout {SILENCE_TIMEOUT_S:g} s + for {SILENCE_FOR_S:g} s)",
            ),
            ("webhook posts for junk ids", f"{junk_posts}"),
            ("restart: spawn → bots_seeded", seed_line),
            (
                "restart: bots seeded, alerts taken over",
                f"{seeded['bots']:,}, {seeded.get('alerts_restored', '—')}",
            ),
            ("restart: real bot's status", restart_status),
            ("restart: webhook posts in the next 8 s", f"{len(after_restart)}"),
            ("restart: relay RSS", _mb(rss_restarted)),
            ("real bot back: its alert's resolution posted", resolution),
        ]
    finally:
        await bot.stop()
        if relay is not None:
            await relay.stop()
        await webhook.stop()
        await redis.aclose()
        await redis_server.stop()
    pinned = (
        f"relay on core {relay_core}, harness and Redis on {sorted(others or ())}"
        if relay_core is not None
        else "not pinned (one core)"
    )
    lines = [
        f"## Flood: {args.junk:,} one-message bot ids",
        "",
        f"Relay default `--max-bots` (256) unless `--relay-args` says otherwise; "
        f"`--history-retention {args.retention:g}s`; {pinned}.",
        "",
        "| measure | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
    ]
    return "\n".join(lines)


async def _http_get(relay: RelayProcess, path: str) -> tuple[int, bytes]:
    import aiohttp

    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
        session.get(relay.http_url + path) as response,
    ):
        return response.status, await response.read()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.flood",
        description="A flood of one-message bot ids against a relay with one real bot.",
    )
    parser.add_argument("--junk", type=positive_int, default=50_000, help="junk bot ids")
    parser.add_argument(
        "--batch", type=positive_int, default=1000, help="PUBLISHes per pipeline (one at a time)"
    )
    parser.add_argument(
        "--retention",
        type=positive_float,
        default=60.0,
        help="the relay's --history-retention in seconds: short, so the expiry can be seen",
    )
    parser.add_argument(
        "--timeout", type=positive_float, default=600.0, help="bound on each wait for the relay"
    )
    parser.add_argument("--relay-args", default="", help="extra relay arguments (one string)")
    parser.add_argument(
        "--no-expiry",
        action="store_true",
        help="do not wait for the junk's history to expire (e.g. against a relay that "
        "never expires it)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the run directory")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return report_main("bench.flood", build_parser().parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
