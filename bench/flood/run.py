"""The flood's steps, in order: real bot up, flood, look, silence, restart, back, expiry."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import time
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

from harness.processes import Children, HarnessError, pin
from harness.redis_server import RedisServer
from harness.relay import RelayProcess
from harness.web import WebhookReceiver, http_server
from pingpong_relay.redis_io.history import (
    BOTS_KEY,
    ESTABLISHED_KEY,
    PRUNE_INTERVAL_S,
    SEEN_TTL_MS,
)

from ..common import bench_relay
from ..runner import progress
from .bot import (
    REAL,
    RealBot,
    bot_labels,
    flood,
    junk_streams,
    metric,
    used_memory,
    wait_until,
)
from .report import render


class Flood:
    """One flood run: its Redis, webhook receiver, real bot and (re)started relays.

    Each step adds its figures to `figures`, which `render` turns into the table.
    """

    def __init__(
        self,
        args: argparse.Namespace,
        children: Children,
        run_dir: Path,
        redis_url: str,
        webhook: WebhookReceiver,
        relay_core: int | None,
    ) -> None:
        self.args = args
        self.children = children
        self.run_dir = run_dir
        self.redis_url = redis_url
        self.redis = aioredis.from_url(redis_url)
        self.webhook = webhook
        self.bot = RealBot(self.redis)
        self.relay_core = relay_core
        self.relay: RelayProcess | None = None
        self.figures: dict[str, Any] = {}
        self.relay_args = [
            "--history-retention", f"{args.retention:g}s",
            "--silence-timeout", f"{args.silence_timeout:g}",
            "--silence-for", f"{args.silence_for:g}",
            "--evaluation-interval", "0.5",
            "--webhook-url", webhook.url,
            "--webhook-lease", "2",
            *shlex.split(args.relay_args),
        ]  # fmt: skip

    @property
    def restart_watch_s(self) -> float:
        """Long enough after a restart for any silence alert it would re-fire to be posted."""
        return float(self.args.silence_timeout + self.args.silence_for + 3.0)

    async def _start_relay(self, name: str) -> tuple[RelayProcess, float, dict[str, Any]]:
        """A relay, pinned; returns it, the seconds from spawn to its bots_seeded, and that line."""
        cores = None if self.relay_core is None else [self.relay_core]
        relay = bench_relay(
            self.children, self.redis_url, self.run_dir / name, self.relay_args, cores
        )
        self.relay = relay
        started = time.perf_counter()
        await relay.start()
        seeded = await relay.wait_for("bots_seeded", timeout=60.0)
        return relay, time.perf_counter() - started, seeded

    async def _get(self, path: str) -> Any:
        assert self.relay is not None
        _, body = await self.relay.get(path)
        return orjson.loads(body)

    async def _real_up(self) -> bool:
        return REAL in (await self._get("/bots"))["bots"]

    async def real_bot_up(self) -> RelayProcess:
        """The first relay, and the real bot publishing until the relay shows it."""
        relay, _, _ = await self._start_relay("relay-1.log")
        self.bot.start()
        progress("real bot publishing once a second; waiting for it to be established")
        await wait_until("the real bot's status", self._real_up, 30.0)
        await asyncio.sleep(2.0)  # established: heard several times over a second or more
        return relay

    async def publish_flood(self, relay: RelayProcess) -> None:
        """The junk, and what it cost the relay and Redis until the relay recorded it all."""
        args, f = self.args, self.figures
        f["rss_before"] = relay.tree.rss_bytes()
        f["memory_before"] = await used_memory(self.redis)
        received_before = await metric(relay, "pingpong_messages_received_total")
        recorded_before = await metric(relay, "pingpong_history_recorded_total")
        cpu_before = sum(relay.tree.cpu_times())
        progress(f"publishing {args.junk:,} one-message bot ids, {args.batch} per pipeline")
        started = time.perf_counter()
        await flood(self.redis, args.junk, args.batch)
        f["published_s"] = time.perf_counter() - started

        async def counted(name: str, before: float) -> bool:
            return bool(await metric(relay, name) >= before + args.junk)

        received = "pingpong_messages_received_total"
        recorded = "pingpong_history_recorded_total"
        await wait_until(
            "the relay to receive the flood",
            lambda: counted(received, received_before),
            args.timeout,
        )
        f["received_s"] = time.perf_counter() - started
        await wait_until(
            "the relay to record the flood",
            lambda: counted(recorded, recorded_before),
            args.timeout,
        )
        f["recorded_s"] = time.perf_counter() - started
        f["cpu_flood"] = sum(relay.tree.cpu_times()) - cpu_before
        f["rss_after"] = relay.tree.rss_bytes()
        f["memory_after"] = await used_memory(self.redis)
        f["flood_ended"] = time.monotonic()
        progress(f"flood received in {f['received_s']:.1f} s, recorded in {f['recorded_s']:.1f} s")

    async def look(self, relay: RelayProcess) -> None:
        """The real bot's status and count, and the bots the relay tracks, after the flood."""
        f = self.figures
        f["bots"] = (await self._get("/bots"))["bots"]
        f["real_status"] = f["bots"].get(REAL, {}).get("status", "none")
        stats = await self._get(f"/stats?window=1m&bot={REAL}")
        f["real_count"] = stats.get("bots", {}).get(REAL, {}).get("count")
        _, body = await relay.get("/metrics")
        f["labels"] = bot_labels(body.decode())
        f["evicted"] = await metric(relay, "pingpong_bots_evicted_total")
        f["untracked"] = await metric(relay, "pingpong_bot_messages_untracked_total")

    async def silence(self) -> None:
        """The real bot stops; how long until its silence alert is posted."""
        progress("stopping the real bot; waiting for its silence alert")
        self.bot.running.clear()
        stopped = time.monotonic()

        def firing(alert: dict[str, Any]) -> bool:
            return (alert.get("bot"), alert.get("state")) == (REAL, "firing")

        async def fired() -> bool:
            return any(
                (a.get("bot"), a.get("rule"), a.get("state")) == (REAL, "silence", "firing")
                for a in self.webhook.since(stopped)
            )

        await wait_until("the real bot's silence alert", fired, 60.0)
        self.figures["fired_s"] = self.webhook.first_since(stopped, firing)
        self.figures["junk_posts"] = sum(1 for a in self.webhook.alerts if a.get("bot") != REAL)

    async def restart(self, relay: RelayProcess) -> RelayProcess:
        """A new relay on the same Redis: its seed, and what it posts in the next seconds."""
        progress("restarting the relay")
        await relay.stop()
        restarted = time.monotonic()
        relay, seed_s, seeded = await self._start_relay("relay-2.log")
        await asyncio.sleep(self.restart_watch_s)
        f = self.figures
        f["seed_s"], f["seeded"] = seed_s, seeded
        f["after_restart"] = len(self.webhook.since(restarted))
        f["restart_status"] = (await self._get("/bots"))["bots"].get(REAL, {}).get("status", "none")
        f["rss_restarted"] = relay.tree.rss_bytes()
        return relay

    async def come_back(self) -> None:
        """The real bot publishes again: is its alert's resolution posted?"""
        self.bot.running.set()
        back = time.monotonic()

        async def resolved() -> bool:
            return any(
                (a.get("bot"), a.get("state")) == (REAL, "resolved")
                for a in self.webhook.since(back)
            )

        try:
            await wait_until("the real bot's alert to resolve", resolved, 15.0)
        except HarnessError:
            self.figures["resolution"] = "no"
            return
        delay = self.webhook.first_since(back, lambda alert: True) or 0.0
        self.figures["resolution"] = f"yes, {delay:.1f} s after its first message"

    async def expiry(self) -> None:
        """Waits for the junk's history to expire; Redis's memory then."""
        f, redis = self.figures, self.redis
        if self.args.no_expiry:
            f["expiry"], f["memory_expired"] = "not waited for (--no-expiry)", None
            return
        # The streams expire after the retention, the fingerprints after SEEN_TTL_MS,
        # and the index is pruned within PRUNE_INTERVAL_S.
        settle_s = max(self.args.retention, SEEN_TTL_MS / 1000) + PRUNE_INTERVAL_S + 2
        wait_s = max(0.0, f["flood_ended"] + settle_s - time.monotonic())
        progress(f"waiting {wait_s:.0f} s for the junk's history to expire")
        await asyncio.sleep(wait_s)

        async def expired() -> bool:
            return await junk_streams(redis) == 0 and int(await redis.zcard(BOTS_KEY)) <= 1

        await wait_until("the junk's history to expire", expired, 120.0, interval_s=2.0)
        expired_s = time.monotonic() - f["flood_ended"]
        f["memory_expired"] = await used_memory(redis)
        f["expiry"] = (
            f"{expired_s:.0f} s after the flood; index: "
            f"{int(await redis.zcard(BOTS_KEY))} bot(s), "
            f"{int(await redis.zcard(ESTABLISHED_KEY))} established; "
            f"{int(await redis.dbsize())} keys in Redis"
        )

    async def measure(self) -> dict[str, Any]:
        """Every step in turn; the figures."""
        relay = await self.real_bot_up()
        await self.publish_flood(relay)
        await self.look(relay)
        await self.silence()
        await self.restart(relay)
        await self.come_back()
        await self.expiry()
        return self.figures

    async def close(self) -> None:
        """Stops the bot and the relay, and closes the Redis client."""
        await self.bot.stop()
        if self.relay is not None:
            await self.relay.stop()
        await self.redis.aclose()


async def run(args: argparse.Namespace, children: Children, run_dir: Path) -> str:
    """The whole flood; its Markdown report."""
    cores = sorted(os.sched_getaffinity(0))
    relay_core = cores[0] if len(cores) >= 2 else None
    others = set(cores[1:]) if len(cores) >= 2 else None
    if others is not None:
        os.sched_setaffinity(0, others)  # this harness: publisher, bot, receiver
    redis_server = RedisServer()
    await redis_server.start()
    if others is not None and redis_server.process is not None:
        pin(redis_server.process.pid, others)
    webhook = WebhookReceiver()
    try:
        async with http_server("/hook", webhook.handle, webhook.port):
            run = Flood(args, children, run_dir, redis_server.url, webhook, relay_core)
            try:
                figures = await run.measure()
            finally:
                await run.close()
    finally:
        redis_server.stop()
    pinned = (
        f"relay on core {relay_core}, harness and Redis on {sorted(others or ())}"
        if relay_core is not None
        else "not pinned (one core)"
    )
    return render(args, figures, pinned, run.restart_watch_s)
