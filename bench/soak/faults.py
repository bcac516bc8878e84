"""The soak's load on the relay: the publisher, and the faults it injects on a timetable."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from harness.processes import HarnessError, free_port
from harness.redis_server import RedisServer
from harness.relay import RelayProcess

from .session import SOURCE

CHANNEL: Final = "bot:pingpong"
FAULT_TAIL_S: Final = 15.0  # no Redis kill this close to the end: the last outage must heal


def port_below_ephemeral(rng: random.Random) -> int:
    """A free loopback port below the ephemeral range, for the restartable Redis.

    While redis-server is down, an outgoing connection (a worker's reconnect attempt, a
    client's connect) must not be handed its port as a local port: that would keep the
    restarted server from binding it, or let a reconnect attempt connect to itself.
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return free_port()
    for _ in range(200):
        port = rng.randrange(max(1025, low - 10_000), low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return free_port()


class Publisher:
    """`--rate` msg/s with a global seq; records when each PUBLISH went out and how it fared."""

    def __init__(self, redis_url: str, rate: float) -> None:
        self.redis_url = redis_url
        self.rate = rate
        self.t_send: list[float] = []
        self.t_ack: list[float] = []
        self.ok: list[bool] = []
        self.receivers: list[int] = []
        self.stamp: list[int] = []
        self.late_slots = 0

    async def run(self, start_at: float, stop_at: float) -> None:
        """Publishes from `start_at` until `stop_at` (epoch seconds)."""
        # No retries: a PUBLISH that fails while Redis is down is recorded as failed,
        # not silently repeated later under the same seq.
        client = aioredis.Redis.from_url(
            self.redis_url,
            socket_connect_timeout=0.5,
            socket_timeout=1.0,
            retry=Retry(NoBackoff(), 0),
        )
        interval = 1.0 / self.rate
        slot = start_at
        rng = random.Random(7)
        try:
            while True:
                now = time.time()
                if slot >= stop_at or now >= stop_at + 5.0:
                    return
                if slot > now:
                    await asyncio.sleep(slot - now)
                seq = len(self.t_send)
                t_send = time.time()
                stamp = int(t_send * 1000)
                payload = orjson.dumps(
                    {
                        "type": "ping",
                        "latency": round(rng.uniform(1.0, 50.0), 3),
                        "timestamp": stamp,
                        "source": SOURCE,
                        "seq": seq,
                    }
                )
                receivers = -1
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    receivers = int(await asyncio.wait_for(client.publish(CHANNEL, payload), 2.0))
                self.t_send.append(t_send)
                self.t_ack.append(time.time())
                self.ok.append(receivers >= 0)
                self.receivers.append(receivers)
                self.stamp.append(stamp)
                slot += interval
                if slot < time.time() - 1.0:  # more than a second behind: skip, count
                    skipped = int((time.time() - slot) / interval)
                    self.late_slots += skipped
                    slot += skipped * interval
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.aclose(), 2.0)


def fault_plan(args: argparse.Namespace) -> tuple[list[float], float | None]:
    """Offsets (s from the first publish) of the Redis kills, and of the worker kill."""
    kills: list[float] = []
    if args.redis_kill_every > 0:
        k = 1
        while k * args.redis_kill_every < args.duration - FAULT_TAIL_S and k < 10_000:
            kills.append(k * args.redis_kill_every)
            k += 1
    worker_at: float | None = args.worker_kill_at
    if worker_at is None:
        worker_at = args.duration / 2
        # The default stays clear of a Redis kill (15 s), so the two faults do not overlap.
        near = [t for t in kills if abs(t - worker_at) < 15.0]
        if near and args.redis_kill_every > 30:
            worker_at = near[0] + args.redis_kill_every / 2
    if worker_at is not None and (worker_at <= 0 or worker_at >= args.duration - 5):
        worker_at = None
    return kills, worker_at


async def at(when: float, action: Callable[[], Awaitable[None]]) -> None:
    """Runs `action` at wall-clock time `when`."""
    await asyncio.sleep(max(0.0, when - time.time()))
    await action()


async def kill_redis(redis: RedisServer, down_s: float, t0: float) -> dict[str, Any]:
    """SIGKILL redis-server, and after `down_s` start it again on the same port."""
    killed_at = time.time()
    redis.kill()
    await asyncio.sleep(down_s)
    spawned_at = time.time()
    await redis.start()
    ready_at = time.time()
    return {
        "killed_at": killed_at,
        "ready_at": ready_at,
        "at_s": round(killed_at - t0, 2),
        "down_s": round(ready_at - killed_at, 3),
        "start_s": round(ready_at - spawned_at, 3),
    }


def kill_worker(relay: RelayProcess, index: int, t0: float) -> dict[str, Any]:
    """SIGKILL one worker of the relay (its pid checked to be a child of the relay)."""
    pids = relay.worker_pids()
    kids = {p.pid for p in relay.tree.root.children(recursive=False)}
    if index not in pids:
        raise HarnessError(f"no worker {index} among {pids}")
    pid = pids[index]
    if pid not in kids:
        raise HarnessError(f"worker {index} pid {pid} is not a child of the relay ({kids})")
    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)
    return {"worker": index, "pid": pid, "killed_at": killed_at, "at_s": round(killed_at - t0, 2)}
