"""Idle memory: a relay's RSS per connection with N clients connected and nothing flowing."""

from __future__ import annotations

import argparse
import asyncio
import math
from collections.abc import Sequence
from typing import Any

from harness.logs import scan_relay_log

from ..clientcount import client_count
from ..context import Bench, Part, Run, Runs, start_relay
from ..flags import int_list
from ..notes import connect_notes, log_notes
from ..rounds import CONNECT_TIMEOUT_S, SETTLE_TIMEOUT_S, connect_clients
from ..runner import progress
from ..stats import median
from ..tables import count, mb, median_of, num, runs_label, table

# Seconds the relay's RSS is given to settle after the last client connected.
IDLE_SETTLE_S = 2.0
IDLE_TARGET_KB = 15.0
TABLE_HEADER = (
    "clients",
    "connected",
    "relay holds",
    "RSS before MB",
    "RSS with N MB",
    "KB/conn",
    "fds: limit / before / with N",
    "room",
    "connect s",
)


def add_flags(parser: argparse.ArgumentParser) -> None:
    """--idle-clients and --no-idle."""
    parser.add_argument(
        "--idle-clients",
        type=int_list,
        default="10000,20000",
        help="idle memory: client counts, one relay each; its RSS per connection with no "
        "messages flowing",
    )
    parser.add_argument("--no-idle", action="store_true", help="skip the idle-memory part")


async def run_idle(bench: Bench, clients: int, label: str) -> Run:
    """Relay RSS with no client, then with `clients` idle ones; nothing is published."""
    relay = bench.relay(label)
    fleet = bench.fleet(label, clients)
    life_s = CONNECT_TIMEOUT_S + SETTLE_TIMEOUT_S + 60
    try:
        room = await start_relay(relay)
        rss_before = relay.tree.rss_bytes()
        groups = [(relay.ws_url, clients)]
        connect = await connect_clients(
            fleet, relay, groups, bench.args.connect_concurrency, life_s
        )
        await asyncio.sleep(IDLE_SETTLE_S)
        rss_connected = relay.tree.rss_bytes()
        fds_connected = relay.tree.fds()
        peak = relay.tree.peak_rss_bytes()
        relay_clients = connect["relay_clients"]
        if relay_clients is None:
            relay_clients, _ = await client_count(relay)
    finally:
        await fleet.stop()
        await relay.stop()
    assert relay.log_path is not None
    held = relay_clients or connect["connected"]
    return {
        "clients": clients,
        **connect,
        **room,
        "relay_fds_connected": fds_connected,
        "rss_before_kb": rss_before / 1024,
        "rss_connected_kb": rss_connected / 1024,
        "peak_rss_kb": peak / 1024,
        "rss_kb_per_conn": (rss_connected - rss_before) / 1024 / held if held else math.nan,
        "relay_log_events": scan_relay_log(relay.log_path),
    }


async def _run(bench: Bench, runs: Runs, repeat: int) -> None:
    for clients in bench.args.idle_clients:
        progress(f"idle memory: {clients} clients, {bench.progress_label(repeat)}")
        run = await run_idle(bench, clients, f"idle-{clients}c-r{repeat + 1}")
        progress(f"  {run['relay_clients']} held, {run['rss_kb_per_conn']:.1f} KB/conn")
        runs.setdefault(clients, []).append(run)


def _result(args: argparse.Namespace, runs: Runs) -> list[dict[str, Any]] | None:
    if args.no_idle:
        return None
    return [{"clients": n, "runs": runs.get(n, [])} for n in dict.fromkeys(args.idle_clients)]


def _row(clients: int, runs: Sequence[Run]) -> list[str]:
    return [
        count(clients),
        count(median_of(runs, "connected")),
        count(median(float(run["relay_clients"] or math.nan) for run in runs)),
        mb(median_of(runs, "rss_before_kb")),
        mb(median_of(runs, "rss_connected_kb")),
        num(median_of(runs, "rss_kb_per_conn")),
        f"{count(median_of(runs, 'relay_nofile'))} / "
        f"{count(median_of(runs, 'relay_fds_idle'))} / "
        f"{count(median_of(runs, 'relay_fds_connected'))}",
        count(median_of(runs, "relay_fd_room")),
        num(median_of(runs, "connect_s")),
    ]


def _verdict(section: Sequence[dict[str, Any]]) -> list[str]:
    """The figure at the largest count held, against the target."""
    held = [
        (run["relay_clients"] or run["connected"], run["rss_kb_per_conn"])
        for entry in section
        for run in entry["runs"]
    ]
    if not held:
        return []
    most, kb_per_conn = max(held)
    verdict = "meets" if kb_per_conn <= IDLE_TARGET_KB else "misses"
    return [
        "",
        f"**Idle memory at {most:,} connections: {num(kb_per_conn)} KB/conn** "
        f"({verdict} the ≤ {IDLE_TARGET_KB:g} KB target, which is set at 20,000)",
    ]


def render(section: list[dict[str, Any]], args: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Idle memory: the relay's RSS per connection with nothing flowing."""
    rows = []
    notes: list[str] = []
    for entry in section:
        runs = entry["runs"]
        if not runs:
            continue
        rows.append(_row(entry["clients"], runs))
        for index, run in enumerate(runs, 1):
            label = runs_label(f"idle {entry['clients']} clients", runs, index)
            notes += connect_notes(label, run)
            notes += log_notes(label, run["relay_log_events"])
    if not rows:
        return [], notes
    out = [
        "",
        "### Idle memory per connection",
        "",
        "One relay per row; its RSS before any client, then 2 s after the last of N idle "
        "clients connected (nothing published). KB/conn = (RSS with them − RSS before) / the "
        "clients the relay holds. fds: the relay's open-file limit / descriptors open before "
        "any client / with them; room = limit − descriptors before, the most clients one "
        "relay process can hold.",
        "",
        *table(TABLE_HEADER, rows),
        *_verdict(section),
    ]
    return out, notes


PART = Part(
    key="idle",
    add_flags=add_flags,
    enabled=lambda args: not args.no_idle,
    client_counts=lambda args: list(args.idle_clients),
    run=_run,
    result=_result,
    render=render,
)
