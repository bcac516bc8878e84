"""The client processes of `bench.run` (bench.clients), driven over pipes as one fleet."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from harness.load import LoadProcess
from harness.processes import Children

from .common import split_evenly
from .stats import merge_rounds


class ClientFleet:
    """The client processes (bench.clients), commanded line by line.

    With `procs` > 1 every group's clients are split evenly over that many processes (each
    has its own fd limit, and its own core to read with); commands go to all of them, and
    a round's analysis is merged from theirs, percentiles recomputed from their latencies.
    `cores` pins every process to those CPUs.
    """

    def __init__(
        self,
        children: Children,
        log_path: Path,
        procs: int = 1,
        cores: Iterable[int] | None = None,
    ) -> None:
        self.children = children
        self.log_path = log_path
        self.procs = max(1, procs)
        self.cores = None if cores is None else sorted(cores)
        self.processes: list[LoadProcess] = []
        self.ready: dict[str, Any] = {}

    def _log_path(self, index: int) -> Path:
        if self.procs == 1:
            return self.log_path
        return self.log_path.with_name(f"{self.log_path.stem}.{index}{self.log_path.suffix}")

    async def start(
        self,
        groups: Sequence[tuple[str, int]],
        lifetime_s: float,
        concurrency: int,
        timeout_s: float,
    ) -> None:
        """Connect every group's clients: (URL with path and query, count) per group."""
        total = sum(count for _, count in groups)
        self.procs = max(1, min(self.procs, total))
        shares = [split_evenly(count, self.procs) for _, count in groups]
        # The handshakes in flight at once, over all processes together.
        per_process = max(1, concurrency // self.procs)
        for index in range(self.procs):
            group_args = [
                arg
                for (url, _), share in zip(groups, shares, strict=True)
                for arg in ("--group", url, str(share[index]))
            ]
            process = LoadProcess(
                self.children,
                "bench.clients",
                [
                    *group_args,
                    "--connect-concurrency", str(per_process),
                    "--max-lifetime-s", str(lifetime_s),
                ],
                self._log_path(index),
                name="client process" + (f" {index}" if self.procs > 1 else ""),
                cores=self.cores,
            )  # fmt: skip
            await process.start()
            self.processes.append(process)
        readies = await self.expect("ready", timeout_s)
        errors = sorted({error for ready in readies for error in ready.get("errors", [])})
        self.ready = {
            "connected": sum(int(ready["connected"]) for ready in readies),
            "failed": sum(int(ready["failed"]) for ready in readies),
            "errors": errors[:5],
            "connect_s": max(float(ready["connect_s"]) for ready in readies),
            "nofile": min(int(ready["nofile"]) for ready in readies),
            "procs": self.procs,
            "connected_each": [int(ready["connected"]) for ready in readies],
        }

    async def send(self, command: dict[str, Any]) -> None:
        """The same command to every client process."""
        for process in self.processes:
            await process.send(command)

    async def expect(self, event: str, timeout_s: float) -> list[dict[str, Any]]:
        """The next event of every client process, which must be `event`; one per process."""
        return list(
            await asyncio.gather(*(process.expect(event, timeout_s) for process in self.processes))
        )

    async def arm(self, round_id: int, capacity: int) -> None:
        """Fresh preallocated buffers in every client for round `round_id`."""
        await self.send({"cmd": "arm", "round": round_id, "capacity": capacity})
        await self.expect("armed", 30.0)

    async def collect(self, command: dict[str, Any], out: Path, timeout_s: float) -> bool:
        """Sends "collect" (each process writing to its own file next to `out`) and waits
        for every "complete"; True if every client got the round's last message."""
        for index, process in enumerate(self.processes):
            own = {**command, "out": f"{out}.{index}"}
            if len(self.processes) > 1:
                own["raw_out"] = f"{out}.{index}.raw"
            await process.send(own)
        completes = await self.expect("complete", timeout_s)
        return all(bool(complete["all_received"]) for complete in completes)

    async def analysis(self, out: Path, timeout_s: float) -> dict[str, Any]:
        """Every process's analysis of the round `collect` asked for, merged into one."""
        await self.expect("result", timeout_s)
        parts, raws = await asyncio.to_thread(_read_analyses, out, len(self.processes))
        merged = merge_rounds(parts, raws)
        merged["all_received"] = all(bool(part["all_received"]) for part in parts)
        # Each process has a core at most: the busiest says whether the clients saturated.
        merged["client_cpu_s"] = max(float(part["client_cpu_s"]) for part in parts)
        merged["client_wall_s"] = max(float(part["client_wall_s"]) for part in parts)
        merged["client_cpu_s_each"] = [float(part["client_cpu_s"]) for part in parts]
        return merged

    async def stop(self) -> None:
        """Asks every process to quit, and stops it if it does not."""
        await asyncio.gather(
            *(process.stop({"cmd": "quit"}, 8.0, 2.0) for process in self.processes)
        )


def _read_analyses(out: Path, count: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The analysis files the client processes wrote next to `out` (deleted once read)."""
    parts: list[dict[str, Any]] = []
    raws: list[dict[str, Any]] = []
    for index in range(count):
        path = Path(f"{out}.{index}")
        parts.append(orjson.loads(path.read_bytes()))
        path.unlink()
        raw_path = Path(f"{out}.{index}.raw")
        if raw_path.exists():
            # Our own client process wrote it, in our own run directory.
            raws.append(pickle.loads(raw_path.read_bytes()))
            raw_path.unlink()
    return parts, raws
