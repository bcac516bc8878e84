"""The soak's run: start everything, publish with faults on their timers, finish, analyse."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import time
from pathlib import Path
from typing import Any, Final

import orjson

from harness.load import LoadProcess
from harness.processes import Children, HarnessError
from harness.redis_server import RedisServer
from harness.relay import RelayProcess

from ..common import RELAY_ARGS
from ..runner import cancel_on_sigterm
from .analysis import analyse, latency_summary
from .faults import Publisher, at, fault_plan, kill_redis, kill_worker, port_below_ephemeral
from .relaylog import SoakLog

SETUP_BUDGET_S: Final = 240.0  # start-up and shutdown time allowed on top of --duration
PROGRESS_EVERY_S: Final = 10.0


def progress(text: str) -> None:
    """A progress line on stderr."""
    print(f"soak: {text}", file=sys.stderr, flush=True)


def relay_rss(relay: RelayProcess) -> dict[str, Any]:
    """RSS in bytes: the supervisor, each worker (by index), anything else under it."""
    by_pid = relay.tree.rss_by_pid()
    index_of = {pid: index for index, pid in relay.worker_pids().items()}
    root = relay.tree.root.pid
    out: dict[str, Any] = {"supervisor": by_pid.pop(root, 0), "workers": {}, "other": 0}
    for pid, rss in by_pid.items():
        if pid in index_of:
            out["workers"][str(index_of[pid])] = rss
        else:
            out["other"] += rss
    out["child_pids"] = sorted(by_pid)
    out["total"] = out["supervisor"] + out["other"] + sum(out["workers"].values())
    return out


async def clients_per_worker(relay: RelayProcess) -> dict[str, int]:
    """Clients per worker index, from the merged /healthz (its "workers" list)."""
    out: dict[str, int] = {}
    with contextlib.suppress(Exception):
        for worker in (await relay.health()).get("workers", []):
            if isinstance(worker, dict) and "worker" in worker:
                out[str(worker["worker"])] = int(worker.get("clients", -1))
    return out


def _distinct_workers(event: str) -> Any:
    """A log match for `event` from a worker not seen before (count=N: N workers)."""
    seen: set[Any] = set()

    def match(record: dict[str, Any]) -> bool:
        if record.get("event") != event or record.get("worker") in seen:
            return False
        seen.add(record.get("worker"))
        return True

    return match


class Soak:
    """One soak: its Redis (on a port below the ephemeral range), relay, load and publisher."""

    def __init__(self, args: argparse.Namespace, children: Children, run_dir: Path) -> None:
        self.args = args
        self.run_dir = run_dir
        self.redis = RedisServer(port=port_below_ephemeral(random.Random(args.seed)))
        self.log = SoakLog()
        self.relay = RelayProcess(
            self.redis.url, *RELAY_ARGS,
            "--workers", str(args.workers),
            "--history-retention", "0",
            "--log-stages",  # each message's `received` line, read by the accounting
            log_path=run_dir / "relay.log",
            children=children,
            log_keep=self.log.take,
        )  # fmt: skip
        self.log.follower = self.relay.log
        self.load = LoadProcess(
            children, "bench.soak.load",
            [
                "--url", self.relay.ws_url_with("events=pingpong,relay"),
                "--clients", str(args.clients),
                "--churn", str(args.churn),
                "--seed", str(args.seed),
                "--out", str(run_dir / "sessions.json"),
                "--lifetime-s", str(args.duration + SETUP_BUDGET_S),
            ],
            run_dir / "load.log",
            latest_only=("status",),
        )  # fmt: skip
        self.publisher = Publisher(self.redis.url, args.rate)
        self.kills, self.worker_at = fault_plan(args)
        self.result: dict[str, Any] = {
            "args": {k: v for k, v in vars(args).items() if k != "json"},
            "redis_kills": [],
            "worker_kill": {},
        }
        self.result["args"]["json"] = str(args.json) if args.json else None
        self.rss: dict[str, Any] = {"start": {}, "before_worker_kill": {}, "series": []}
        self.t0 = 0.0
        self.ready: dict[str, Any] = {}

    def status(self) -> dict[str, Any]:
        """The load process's latest status (its ready line until the first)."""
        return self.load.latest.get("status", self.ready)

    async def start(self) -> None:
        """Redis, the relay with every worker subscribed, the clients all open."""
        args, relay = self.args, self.relay
        await self.redis.start()
        progress(f"redis-server on port {self.redis.port}")
        await relay.start_process()
        for event in ("listening", "redis_subscribed"):
            await relay.wait_for(_distinct_workers(event), count=args.workers, timeout=60.0)
        progress(f"relay with {args.workers} workers: {relay.worker_pids()}")
        await self.load.start()
        self.ready = ready = await self.load.expect("ready", 180.0)
        progress(
            f"{ready['open']} clients connected in {ready['connect_s']} s "
            f"({ready['connect_failures']} connect failures), on workers {ready['by_worker']}"
        )
        self.result["ready"] = ready
        if ready["open"] < args.clients:
            raise HarnessError(f"only {ready['open']} of {args.clients} clients connected")
        self.rss["before_publish"] = relay_rss(relay)

    async def _snapshot(self, into: dict[str, Any]) -> None:
        into.update(relay_rss(self.relay))
        into["clients"] = await clients_per_worker(self.relay)
        into["at_s"] = round(time.time() - self.t0, 1)

    async def _take_rss_start(self) -> None:
        await self._snapshot(self.rss["start"])
        progress(f"RSS at start: {self.rss['start']['total'] / 2**20:.1f} MiB")

    async def _kill_redis(self) -> None:
        kill = await kill_redis(self.redis, self.args.redis_down, self.t0)
        self.result["redis_kills"].append(kill)
        progress(f"redis killed and restarted: {kill}")

    async def _kill_worker(self) -> None:
        # The last RSS untouched by the kill: afterwards the survivor takes the killed
        # worker's clients, and its RSS keeps that high-water mark.
        await self._snapshot(self.rss["before_worker_kill"])
        self.result["worker_kill"].update(
            kill_worker(self.relay, self.args.worker_kill_index, self.t0)
        )
        progress(f"worker killed: {self.result['worker_kill']}")

    def _faults(self) -> list[asyncio.Task[None]]:
        """Each fault on its own timer, so that faults may overlap (a worker killed while
        Redis is down, say) when the offsets say so."""
        args, t0 = self.args, self.t0
        warmup = min(args.warmup, (self.kills[0] if self.kills else args.duration) - 5.0)
        warmup = min(warmup, (self.worker_at or args.duration) - 5.0, args.duration / 2)
        faults = [asyncio.create_task(at(t0 + max(1.0, warmup), self._take_rss_start))]
        faults += [asyncio.create_task(at(t0 + t, self._kill_redis)) for t in self.kills]
        if self.worker_at is not None:
            faults.append(asyncio.create_task(at(t0 + self.worker_at, self._kill_worker)))
        return faults

    async def publish(self) -> None:
        """--duration of publishing, with churn on and the faults on their timers."""
        self.t0 = time.time() + 0.5
        self.result["t0"] = self.t0
        await self.load.send({"cmd": "churn", "on": True})
        publishing = asyncio.create_task(self.publisher.run(self.t0, self.t0 + self.args.duration))
        faults = self._faults()
        next_progress = 0.0
        try:
            while not publishing.done():
                await asyncio.sleep(0.2)
                next_progress = self._tick_progress(next_progress)
                for task in faults:
                    if task.done():
                        task.result()  # a fault that failed ends the run here
            await publishing
            await asyncio.wait_for(asyncio.gather(*faults), 30.0)
        finally:
            for task in [publishing, *faults]:
                task.cancel()

    def _tick_progress(self, next_at: float) -> float:
        elapsed = time.time() - self.t0
        if elapsed < next_at:
            return next_at
        rss = relay_rss(self.relay)
        status = self.status()
        self.rss["series"].append(
            {
                "at_s": round(elapsed, 1),
                "rss_total": rss["total"],
                "rss_workers": rss["workers"],
                "open": status.get("open"),
                "open_by_worker": status.get("by_worker"),
            }
        )
        failed = self.publisher.ok.count(False)
        progress(
            f"t={elapsed:5.0f} s  published {len(self.publisher.ok)} ({failed} failed)  "
            f"clients open {status.get('open', '?')} {status.get('by_worker', {})}  "
            f"sessions {status.get('sessions', '?')}  RSS {rss['total'] / 2**20:.1f} MiB"
        )
        return next_at + PROGRESS_EVERY_S

    async def finish(self) -> list[dict[str, Any]]:
        """The last messages' arrival, the end RSS with clients still on; then every
        session closed and read back."""
        await asyncio.sleep(self.args.margin + 1.0)
        self.rss["end"] = {}
        await self._snapshot(self.rss["end"])
        metrics = await self.relay.metrics() or {}
        self.result["metrics"] = {k: v for k, v in metrics.items() if not k.endswith("_created")}
        self.result["load_status_end"] = self.status()
        await self.load.send({"cmd": "finish"})
        done = await self.load.expect("done", 60.0)
        sessions: list[dict[str, Any]] = orjson.loads((self.run_dir / "sessions.json").read_bytes())
        self.result["finished_at"] = time.time()
        self.result["rss"] = {
            **self.rss,
            "start": self.rss["start"] or None,
            "before_worker_kill": self.rss["before_worker_kill"] or None,
        }
        self.result["load"] = {k: v for k, v in done.items() if k != "latency_hist_ms"}
        self.result["latency"] = latency_summary(done.get("latency_hist_ms", {}))
        return sessions

    async def stop(self) -> None:
        """The load, then the relay (timed: its shutdown is a figure), then Redis."""
        await self.load.stop(None, 15.0, 3.0)
        started = time.monotonic()
        await self.relay.stop(grace_s=15.0)
        self.result["relay_stop_s"] = round(time.monotonic() - started, 2)
        process = self.relay.process
        self.result["relay_exit_code"] = None if process is None else process.returncode
        self.redis.stop()


async def soak(args: argparse.Namespace, children: Children, run_dir: Path) -> dict[str, Any]:
    """The whole soak; its result (as --json writes it)."""
    cancel_on_sigterm()
    run = Soak(args, children, run_dir)
    try:
        async with asyncio.timeout(args.duration + SETUP_BUDGET_S):
            await run.start()
            await run.publish()
            sessions = await run.finish()
    finally:
        await run.stop()
    result = run.result
    result["run_dir"] = str(run_dir)
    (run_dir / "publish.json").write_bytes(orjson.dumps(vars(run.publisher)))
    analyse(result, sessions, run.publisher, run.log, args)
    return result
