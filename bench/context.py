"""What every part of `bench.run` is handed: the run's processes and flags, and the Part shape."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import redis.asyncio as aioredis

from harness.processes import Children
from harness.relay import RelayProcess

from .common import bench_relay, fd_room
from .fleet import ClientFleet

Run = dict[str, Any]
# A part's runs so far, by row (a client count, a policy, …), one per repeat.
Runs = dict[Any, list[Run]]
T = TypeVar("T")


def client_procs(args: argparse.Namespace, clients: int) -> int:
    """Client processes for `clients` connections: --client-procs, else 2 above 8,000."""
    if args.client_procs:
        return int(args.client_procs)
    return 2 if clients > 8000 else 1


def rotated(rows: Sequence[T], repeat: int) -> list[T]:
    """`rows` starting at `repeat` (mod their count), so that drift in the machine's load
    hits every row alike over the repeats: each goes first, and last, in turn."""
    shift = repeat % len(rows) if rows else 0
    return [*rows[shift:], *rows[:shift]]


@dataclass(frozen=True, slots=True)
class Bench:
    """One run of `bench.run`: its children, Redis (and its pid, for pinning) and publisher,
    run directory and flags."""

    children: Children
    redis_url: str
    bot: aioredis.Redis
    run_dir: Path
    args: argparse.Namespace
    redis_pid: int | None = None

    def relay(
        self, label: str, extra_args: Sequence[str] = (), cores: Iterable[int] | None = None
    ) -> RelayProcess:
        """A relay with --relay-args, then `extra_args`; its log in the run directory;
        pinned to `cores` if given."""
        return bench_relay(
            self.children,
            self.redis_url,
            self.run_dir / f"relay-{label}.log",
            [*self.args.relay_args, *extra_args],
            cores,
        )

    def fleet(self, label: str, clients: int, cores: Iterable[int] | None = None) -> ClientFleet:
        """Client processes (not yet started) for `clients` connections; pinned to `cores`
        if given."""
        procs = client_procs(self.args, clients)
        return ClientFleet(self.children, self.run_dir / f"clients-{label}.log", procs, cores)

    def progress_label(self, repeat: int) -> str:
        """ ", run r/K" for progress lines."""
        return f"run {repeat + 1}/{self.args.repeat}"


async def start_relay(relay: RelayProcess) -> dict[str, int]:
    """Start the relay, touch its HTTP plane once (so its lazy set-up is not billed to the
    clients), and say how many clients its file descriptors leave room for."""
    await relay.start()
    await relay.health()
    await relay.metrics()
    await asyncio.sleep(0.3)  # the relay settles after its first requests
    return fd_room(relay)


@dataclass(frozen=True, slots=True)
class Part:
    """One part of `bench.run`: its flags, one round of its rows, its results and its section.

    `run` adds one run per row to `runs` (keyed by row) for repeat number `repeat`
    (counted from 0);
    `result` turns the runs into the part's entry in the results (its JSON); `render`
    turns that entry back into Markdown lines and notes, given the run's flags.
    """

    key: str
    add_flags: Callable[[argparse.ArgumentParser], None]
    enabled: Callable[[argparse.Namespace], bool]
    client_counts: Callable[[argparse.Namespace], list[int]]
    run: Callable[[Bench, Runs, int], Awaitable[None]]
    result: Callable[[argparse.Namespace, Runs], Any]
    render: Callable[[Any, dict[str, Any]], tuple[list[str], list[str]]]
