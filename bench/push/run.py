"""The push benchmark's rounds: one relay pinned to a core, clients watching, pushes and
a Redis baseline at the same rate, then pushes as fast as they are answered."""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path
from typing import Any, Final

import redis.asyncio as aioredis

from harness.load import LoadProcess
from harness.processes import Children, pin
from harness.redis_server import RedisServer
from harness.relay import RelayProcess

from ..common import bench_relay
from ..context import rotated, start_relay
from ..fleet import ClientFleet
from ..rounds import (
    ANALYSIS_TIMEOUT_S,
    CONNECT_TIMEOUT_S,
    RoundPlan,
    connect_clients,
    metric_deltas,
    run_round,
)
from ..runner import progress
from .load import push_bot, push_tokens

Run = dict[str, Any]
# The rows, in the order they print; "closed" runs last in each repeat (its backlog must
# not spill into a measured round), the other two in turns.
MODES: Final = ("open", "redis", "closed")
# Limits far above any rate reached here: the benchmark measures the relay, not its limits.
UNLIMITED: Final = "1000000"


def push_relay_args(bots: int) -> list[str]:
    """The relay's push tokens (static, one per bot) and its limits lifted."""
    tokens = [
        arg
        for index, token in enumerate(push_tokens(bots))
        for arg in ("--push-token", f"{token}={push_bot(index)}")
    ]
    return [*tokens, "--push-rate", UNLIMITED, "--push-address-rate", UNLIMITED]


class PushBench:
    """One repeat's relay, clients and load generator, and the rounds run against them."""

    def __init__(
        self,
        args: argparse.Namespace,
        children: Children,
        run_dir: Path,
        relay: RelayProcess,
        bot: aioredis.Redis,
        repeat: int,
    ) -> None:
        self.args = args
        self.run_dir = run_dir
        self.relay = relay
        self.bot = bot
        self.round_id = repeat * 10
        rounds_s = 3 * (args.duration * 1.5 + args.drain_timeout + ANALYSIS_TIMEOUT_S + 30)
        self.life_s = CONNECT_TIMEOUT_S + rounds_s + 120
        self.fleet = ClientFleet(children, run_dir / f"clients-r{repeat + 1}.log", 1)
        self.load = LoadProcess(
            children,
            "bench.push.load",
            [
                "--base-url", relay.http_url,
                "--bots", str(args.bots),
                "--concurrency", str(args.concurrency),
                "--max-lifetime-s", str(self.life_s),
            ],
            run_dir / f"load-r{repeat + 1}.log",
            name="push load generator",
        )  # fmt: skip
        self.connect: dict[str, Any] = {}

    def _next_round(self) -> int:
        self.round_id += 1
        return self.round_id

    async def start(self) -> None:
        """The relay, the clients connected and counted, the load generator ready."""
        await start_relay(self.relay)
        groups = [(self.relay.ws_url, self.args.clients)]
        self.connect = await connect_clients(
            self.fleet, self.relay, groups, self.args.connect_concurrency, self.life_s
        )
        await self.load.start()
        await self.load.expect("ready", 30.0)
        # Every bot pushes once before anything is measured: its first message is the one
        # that makes it known (history, statistics), a cost paid once per bot.
        command = {
            "cmd": "open",
            "rate": self.args.rate,
            "count": self.args.bots,
            "time_limit_s": self.args.bots / self.args.rate * 1.5 + 2,
        }
        await self._push_round(command, record=False)

    async def stop(self) -> None:
        """The load generator, the clients, the relay."""
        await self.load.stop({"cmd": "quit"}, 5.0, 2.0)
        await self.fleet.stop()
        await self.relay.stop()

    async def _push_round(self, command: dict[str, Any], *, record: bool) -> Run:
        """One round of pushes (`command` without its round); the clients record each
        delivery (`record`) or only count them. Ends once every client has had every
        accepted push, or --drain-timeout after the last answer."""
        round_id = self._next_round()
        capacity = int(command.get("count", 0)) + 16 if record else 0
        await self.fleet.arm(round_id, capacity)
        metrics_before = await self.relay.metrics()
        cpu_before = self.relay.tree.cpu_times()
        await self.load.send({**command, "round": round_id})
        done = await self.load.expect("done", self.args.duration * 3 + 60)
        collect: dict[str, Any] = {
            "cmd": "collect",
            "round": round_id,
            "count": int(done["sent"]) if record else 0,
            "frames": int(done["accepted"]),
            "timeout_s": self.args.drain_timeout,
        }
        if record:
            collect["wanted"] = [done["mask"]]
        out = self.run_dir / f"round-{round_id}.json"
        all_received = await self.fleet.collect(collect, out, self.args.drain_timeout + 30)
        cpu_after = self.relay.tree.cpu_times()
        analysis = await self.fleet.analysis(out, ANALYSIS_TIMEOUT_S)
        metrics = metric_deltas(metrics_before, await self.relay.metrics())
        cpu_s = sum(cpu_after) - sum(cpu_before)
        return _push_figures(done, analysis, cpu_s, all_received, metrics, record)

    async def open_loop(self) -> Run:
        """Pushes at --rate for --duration, each delivery timed."""
        count = max(1, round(self.args.rate * self.args.duration))
        command = {
            "cmd": "open",
            "rate": self.args.rate,
            "count": count,
            "time_limit_s": self.args.duration * 1.5 + 2,
        }
        return await self._push_round(command, record=True)

    async def closed_loop(self) -> Run:
        """Pushes as fast as they are answered, --concurrency in flight; deliveries counted."""
        command = {
            "cmd": "closed",
            "duration_s": self.args.duration,
            "max_requests": self.args.max_requests,
        }
        return await self._push_round(command, record=False)

    async def redis_baseline(self) -> Run:
        """The same rate PUBLISHed straight to Redis (bench.run's scenario round)."""
        plan = RoundPlan(
            self._next_round(), self.args.rate, self.args.duration, self.args.drain_timeout
        )
        run = await run_round(self.relay, self.fleet, self.bot, self.run_dir, plan)
        run["cpu_us_per_message"] = run["relay_cpu_s"] / run["published"] * 1e6
        return run


def _push_figures(
    done: dict[str, Any],
    analysis: dict[str, Any],
    cpu_s: float,
    all_received: bool,
    metrics: dict[str, float],
    recorded: bool,
) -> Run:
    """A push round's columns: offered and accepted rates, answers, delivery, CPU, loss."""
    accepted = int(done["accepted"])
    elapsed_s = float(done["elapsed_s"])
    clients = int(analysis["clients"])
    received = int(analysis["delivered"]) if recorded else int(analysis["overflow"])
    latency = analysis["latency_ms"]
    return {
        **{key: value for key, value in done.items() if key != "mask"},
        "clients": clients,
        "offered_per_s": float(done["sent"]) / elapsed_s if elapsed_s > 0 else math.nan,
        "accepted_per_s": accepted / elapsed_s if elapsed_s > 0 else math.nan,
        "non_200": int(done["sent"]) - accepted,
        "p50_ms": latency["p50"] if recorded else math.nan,
        "p99_ms": latency["p99"] if recorded else math.nan,
        "max_ms": latency["max"] if recorded else math.nan,
        "expected": accepted * clients,
        "received": received,
        "lost": accepted * clients - received,
        "duplicates": analysis["duplicates"],
        "out_of_order": analysis["out_of_order"],
        "malformed": analysis["malformed"],
        "stale": analysis["stale"],
        "disconnected": analysis["disconnected"],
        "all_received": all_received,
        "relay_cpu_s": cpu_s,
        "cpu_us_per_message": cpu_s / accepted * 1e6 if accepted else math.nan,
        "client_cpu_s": analysis["client_cpu_s"],
        "client_wall_s": analysis["client_wall_s"],
        "relay_metrics": metrics,
    }


async def _one_repeat(
    args: argparse.Namespace,
    children: Children,
    run_dir: Path,
    redis_url: str,
    bot: aioredis.Redis,
    repeat: int,
    relay_core: int | None,
) -> dict[str, Run]:
    """A fresh relay and clients; each mode once (open loop and Redis in turns, then closed)."""
    cores = None if relay_core is None else [relay_core]
    extra = [*push_relay_args(args.bots), *args.relay_args]
    relay = bench_relay(children, redis_url, run_dir / f"relay-r{repeat + 1}.log", extra, cores)
    bench = PushBench(args, children, run_dir, relay, bot, repeat)
    runs: dict[str, Run] = {}
    label = f"run {repeat + 1}/{args.repeat}"
    try:
        progress(f"push: {args.clients:,} clients connecting, {label}")
        await bench.start()
        for mode in [*rotated(["open", "redis"], repeat), "closed"]:
            measure = {
                "open": bench.open_loop,
                "redis": bench.redis_baseline,
                "closed": bench.closed_loop,
            }[mode]
            run = await measure()
            runs[mode] = {**run, "connect": bench.connect}
            progress(f"  {mode}: {_progress_line(run)}")
    finally:
        await bench.stop()
    return runs


def _progress_line(run: Run) -> str:
    if "accepted_per_s" in run:
        timed = "" if math.isnan(run["p50_ms"]) else f"p50 {run['p50_ms']:.2f} ms, "
        timed += "" if math.isnan(run["p99_ms"]) else f"p99 {run['p99_ms']:.2f} ms, "
        return f"{run['accepted_per_s']:,.0f} pushes/s accepted, {timed}lost {run['lost']:,}"
    return f"p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms, lost {run['lost']:,}"


async def run(args: argparse.Namespace, children: Children, run_dir: Path) -> dict[str, Any]:
    """Every repeat; the raw results, with where each process ran."""
    cores = sorted(os.sched_getaffinity(0))
    relay_core = cores[0] if len(cores) >= 2 else None
    others = set(cores[1:]) if len(cores) >= 2 else None
    if others is not None:
        # This harness, and what it starts from here on (clients, load generator), inherit it.
        os.sched_setaffinity(0, others)
    started = time.monotonic()
    redis_server = RedisServer()
    await redis_server.start()
    if others is not None and redis_server.process is not None:
        pin(redis_server.process.pid, others)
    bot = aioredis.from_url(redis_server.url, socket_timeout=10)
    runs: dict[str, list[Run]] = {mode: [] for mode in MODES}
    try:
        for repeat in range(args.repeat):
            for mode, result in (
                await _one_repeat(
                    args, children, run_dir, redis_server.url, bot, repeat, relay_core
                )
            ).items():
                runs[mode].append(result)
    finally:
        await bot.aclose()
        redis_server.stop()
    pinned = (
        f"relay on core {relay_core}; Redis, clients, load generator and harness on "
        f"{sorted(others or ())}"
        if relay_core is not None
        else "not pinned (one core)"
    )
    return {"pinned": pinned, "elapsed_s": time.monotonic() - started, "runs": runs}
