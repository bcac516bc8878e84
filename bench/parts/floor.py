"""The floor: the relay beside a bare picows relay (bench.bare_relay), each pinned to a core
of its own, its CPU per delivery, user CPU and p99 as ratios to the bare relay's."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from harness.load import LoadProcess
from harness.processes import Children, HarnessError, affinity, pin
from harness.relay import RelayProcess
from harness.tree import ProcessTree

from ..context import Bench, Part, Run, Runs, rotated, start_relay
from ..flags import int_list
from ..notes import run_notes
from ..publishing import CHANNEL
from ..rounds import (
    ANALYSIS_TIMEOUT_S,
    CONNECT_TIMEOUT_S,
    SETTLE_TIMEOUT_S,
    RoundPlan,
    connect_clients,
    run_round,
)
from ..runner import progress
from ..tables import count, median_of, ms, num, runs_label, table

RELAY: Final = "relay"
BARE: Final = "bare picows"
SERVERS: Final = (RELAY, BARE)
READY_TIMEOUT_S: Final = 20.0
TABLE_HEADER: Final = (
    "clients",
    "server",
    "p50 ms",
    "p99 ms",
    "lost",
    "deliveries/s",
    "CPU µs/delivery",
    "user µs/delivery",
    "system µs/delivery",
    "CPU × bare",
    "user × bare",
    "p99 × bare",
)


def add_flags(parser: argparse.ArgumentParser) -> None:
    """--floor-clients and --no-floor."""
    parser.add_argument(
        "--floor-clients",
        type=int_list,
        default="1000,5000",
        help="floor: comma-separated client counts; at each, the relay and a bare picows "
        "relay (bench.bare_relay) in turn, at --rate for --duration",
    )
    parser.add_argument("--no-floor", action="store_true", help="skip the floor part")


class BareRelay:
    """`python -m bench.bare_relay` as a child: started, measured as a process tree, stopped.

    It has no HTTP plane: `metrics` is None, and the clients' own count of connections
    stands for its count (its listener registers a client before the upgrade's answer
    goes out).
    """

    def __init__(
        self, children: Children, redis_url: str, log_path: Path, cores: Sequence[int] | None
    ) -> None:
        args = ["--redis-url", redis_url, "--port", "0", "--channel", CHANNEL]
        self.process = LoadProcess(
            children, "bench.bare_relay", args, log_path, name="bare relay", cores=cores
        )
        self.port = 0
        self._tree: ProcessTree | None = None

    async def start(self) -> None:
        """Starts it; returns once it listens and has subscribed."""
        await self.process.start()
        ready = await self.process.expect("ready", READY_TIMEOUT_S)
        self.port = int(ready["port"])

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def tree(self) -> ProcessTree:
        if self._tree is None:
            if self.process.process is None:
                raise HarnessError("the bare relay was never started")
            self._tree = ProcessTree(self.process.process.pid)
        return self._tree

    async def metrics(self) -> dict[str, float] | None:
        return None

    async def stop(self) -> None:
        """SIGTERM (it ignores its stdin), SIGKILL after 5 s."""
        await self.process.stop(None, 0.0, 5.0)


def core_plan() -> tuple[list[int], list[int]] | None:
    """(the server's core, everyone else's cores), or None with fewer than two CPUs."""
    cores = sorted(os.sched_getaffinity(0))
    return ([cores[0]], cores[1:]) if len(cores) >= 2 else None


@contextlib.contextmanager
def harness_pinned(bench: Bench, cores: Sequence[int] | None) -> Iterator[None]:
    """This process (the publisher) and Redis on `cores` while the part runs; then back."""
    pids = [os.getpid()] + ([bench.redis_pid] if bench.redis_pid is not None else [])
    before = {pid: affinity(pid) for pid in pids}
    if cores is not None:
        for pid in pids:
            if not pin(pid, cores):
                raise HarnessError(f"could not pin process {pid} to cores {list(cores)}")
    try:
        yield
    finally:
        for pid, mask in before.items():
            if cores is not None and mask is not None:
                pin(pid, mask)


async def run_row(
    bench: Bench, clients: int, server: str, label: str, cores: tuple[list[int], list[int]] | None
) -> Run:
    """One round at --rate for --duration to `clients` clients of `server`; with `cores`,
    the server pinned to the first, the clients to the second."""
    args = bench.args
    server_cores, other_cores = cores if cores is not None else (None, None)
    life_s = CONNECT_TIMEOUT_S + SETTLE_TIMEOUT_S + args.duration * 2 + args.drain_timeout
    life_s += ANALYSIS_TIMEOUT_S + 90
    fleet = bench.fleet(label, clients, other_cores)
    plan = RoundPlan(0, args.rate, args.duration, args.drain_timeout)
    measured: RelayProcess | BareRelay
    if server == RELAY:
        measured = bench.relay(label, cores=server_cores)
    else:
        log_path = bench.run_dir / f"bare-{label}.log"
        measured = BareRelay(bench.children, bench.redis_url, log_path, server_cores)
    try:
        if isinstance(measured, RelayProcess):
            await start_relay(measured)
        else:
            await measured.start()
        # The relay counts its clients on /healthz; the bare relay cannot.
        counter = measured if isinstance(measured, RelayProcess) else None
        groups = [(measured.ws_url, clients)]
        connect = await connect_clients(fleet, counter, groups, args.connect_concurrency, life_s)
        result = await run_round(measured, fleet, bench.bot, bench.run_dir, plan)
    finally:
        await fleet.stop()
        await measured.stop()
    delivered = int(result["delivered"])
    per_delivery = 1e6 / delivered if delivered else math.nan
    return {
        "server": server,
        **connect,
        **result,
        "user_us_per_delivery": result["relay_cpu_user_s"] * per_delivery,
        "system_us_per_delivery": result["relay_cpu_system_s"] * per_delivery,
        "server_cores": server_cores,
        "other_cores": other_cores,
        # After the round's analysis, whose "clients" counts those that took part.
        "clients": clients,
    }


async def _run(bench: Bench, runs: Runs, repeat: int) -> None:
    args = bench.args
    # Taken before this process moves off the server's core.
    cores = core_plan()
    rows = [(clients, server) for clients in args.floor_clients for server in SERVERS]
    with harness_pinned(bench, None if cores is None else cores[1]):
        for clients, server in rotated(rows, repeat):
            progress(f"floor: {clients} clients, {server}, {bench.progress_label(repeat)}")
            slug = "relay" if server == RELAY else "bare"
            label = f"floor-{clients}c-{slug}-r{repeat + 1}"
            run = await run_row(bench, clients, server, label, cores)
            progress(
                f"  p99 {run['p99_ms']:.2f} ms, {run['cpu_us_per_delivery']:.2f} µs/delivery "
                f"(user {run['user_us_per_delivery']:.2f}), lost {run['lost']}"
            )
            runs.setdefault((clients, server), []).append(run)


def _result(args: argparse.Namespace, runs: Runs) -> dict[str, Any] | None:
    if args.no_floor:
        return None
    return {
        "rows": [
            {"clients": clients, "server": server, "runs": runs.get((clients, server), [])}
            for clients in dict.fromkeys(args.floor_clients)
            for server in SERVERS
        ],
    }


def ratio(value: float, baseline: float) -> str:
    """`value` / `baseline` as "X.XX×"; "–" when either is missing."""
    if math.isnan(value) or math.isnan(baseline) or baseline <= 0:
        return "–"
    return f"{value / baseline:.2f}×"


def _row(clients: int, server: str, runs: Sequence[Run], bare: Sequence[Run]) -> list[str]:
    cells = [
        count(clients),
        server,
        ms(median_of(runs, "p50_ms")),
        ms(median_of(runs, "p99_ms")),
        count(median_of(runs, "lost")),
        count(median_of(runs, "deliveries_per_s")),
        num(median_of(runs, "cpu_us_per_delivery"), 2),
        num(median_of(runs, "user_us_per_delivery"), 2),
        num(median_of(runs, "system_us_per_delivery"), 2),
    ]
    if server == BARE or not bare:
        return [*cells, "–", "–", "–"]
    return cells + [
        ratio(median_of(runs, key), median_of(bare, key))
        for key in ("cpu_us_per_delivery", "user_us_per_delivery", "p99_ms")
    ]


def pinning_note(runs: Sequence[Run]) -> str:
    """How the runs were pinned, from their own record of it."""
    server_cores = runs[0]["server_cores"] if runs else None
    if server_cores is None:
        return (
            "Not pinned: the harness had a single CPU, so the server, the clients, Redis and "
            "the publisher shared it."
        )
    return (
        f"Pinned (`sched_setaffinity`, as `taskset -a -p`): the server (the relay or the bare "
        f"relay) on core {', '.join(map(str, server_cores))}; the client process(es), "
        f"redis-server and the harness that publishes on core(s) "
        f"{', '.join(map(str, runs[0]['other_cores']))}."
    )


def render(section: dict[str, Any], args: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The floor table, how it was pinned, and the notes of every run."""
    bare_runs = {row["clients"]: row["runs"] for row in section["rows"] if row["server"] == BARE}
    rows = []
    notes: list[str] = []
    all_runs: list[Run] = []
    for entry in section["rows"]:
        runs = entry["runs"]
        if not runs:
            continue
        all_runs += runs
        rows.append(_row(entry["clients"], entry["server"], runs, bare_runs[entry["clients"]]))
        for index, run in enumerate(runs, 1):
            label = runs_label(f"floor {entry['clients']} clients {entry['server']}", runs, index)
            notes += run_notes(label, run)
    if not rows:
        return [], notes
    repeat = args["repeat"]
    runs_each = f"medians of {repeat} runs each" if repeat > 1 else "1 run each"
    out = [
        "",
        f"### Floor: the relay beside a bare picows relay, {args['rate']:g} msg/s for "
        f"{args['duration']:g} s",
        "",
        "The bare picows relay (`python -m bench.bare_relay`) decodes each message, builds the "
        "envelope, encodes it once and sends it to every client: no validation, filters, "
        "history, metrics or logging. The relay runs as in the scenario table. CPU = the "
        "server's user+system CPU from just before the first PUBLISH until every client has "
        "everything, / deliveries.",
        "",
        *table(TABLE_HEADER, rows, text_first=2),
        "",
        pinning_note(all_runs)
        + " The × columns are the relay's median over the bare relay's median at the same "
        f"client count ({runs_each}).",
    ]
    return out, notes


PART = Part(
    key="floor",
    add_flags=add_flags,
    enabled=lambda args: not args.no_floor,
    client_counts=lambda args: list(args.floor_clients),
    run=_run,
    result=_result,
    render=render,
)
