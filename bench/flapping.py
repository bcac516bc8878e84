"""Flapping bots for the notification benchmark: bots that publish, fall silent, come back.

`python -m bench.flapping REDIS_URL --bots 50` runs in a process of its own (the
benchmark's load stays out of the harness's loop): each bot sends a heartbeat every
--interval for --up seconds, then nothing for --down seconds, and again, its phase
offset so the bots do not all flap together. Against a relay with a short silence
timeout (e.g. --silence-timeout 1 --silence-for 0) every down period is an alert that
fires and resolves, which is what --notify channels are sent. Runs until killed or
--duration has passed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Sequence

import orjson
import redis.asyncio as aioredis

from pingpong_relay.parsing import positive_float, positive_int

from .publishing import CHANNEL

__all__ = ["flap", "main"]


async def _bot(
    redis: aioredis.Redis, source: str, offset_s: float, args: argparse.Namespace
) -> None:
    await asyncio.sleep(offset_s)
    period_s = args.up + args.down
    while True:
        up_until = time.monotonic() + args.up
        while time.monotonic() < up_until:
            body = {
                "type": "ping",
                "latency": 20.0,
                "timestamp": time.time_ns() // 1_000_000,
                "source": source,
            }
            await redis.publish(CHANNEL, orjson.dumps(body))
            await asyncio.sleep(args.interval)
        await asyncio.sleep(max(0.0, period_s - args.up))


async def flap(args: argparse.Namespace) -> None:
    """Every bot's task, until --duration has passed (0: until cancelled)."""
    redis = aioredis.from_url(args.redis_url)
    period_s = args.up + args.down
    tasks = [
        asyncio.create_task(
            _bot(redis, f"flap-{n}", period_s * n / args.bots, args), name=f"flap-{n}"
        )
        for n in range(1, args.bots + 1)
    ]
    try:
        if args.duration > 0:
            await asyncio.sleep(args.duration)
        else:
            await asyncio.Event().wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await redis.aclose()


def build_parser() -> argparse.ArgumentParser:
    """The flapping bots' flags."""
    parser = argparse.ArgumentParser(prog="python -m bench.flapping", description=__doc__)
    parser.add_argument("redis_url")
    parser.add_argument("--bots", type=positive_int, default=50, help="bots that flap")
    parser.add_argument("--up", type=positive_float, default=3.0, help="seconds publishing")
    parser.add_argument("--down", type=positive_float, default=3.0, help="seconds silent")
    parser.add_argument(
        "--interval", type=positive_float, default=0.25, help="seconds between heartbeats"
    )
    parser.add_argument(
        "--duration", type=float, default=0.0, help="seconds to run (0: until killed)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the flapping bots; 0 when --duration passed or the process was interrupted."""
    args = build_parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(flap(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
