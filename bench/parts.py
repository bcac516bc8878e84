"""The parts of `bench.run` beyond the scenario table: idle memory, burst, slow client."""

from __future__ import annotations

import argparse
import asyncio
import math
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from .procs import Children, ClientFleet, RelayProcess, StalledClient, scan_relay_log
from .rounds import (
    ANALYSIS_TIMEOUT_S,
    CONNECT_TIMEOUT_S,
    SETTLE_TIMEOUT_S,
    connect_clients,
    fd_room,
    run_round,
)

# Relay log events (INFO) that say what it did to a backed-up client.
SLOW_CLIENT_EVENTS = ("client_backed_up", "conflated")
# Seconds the relay's RSS is given to settle after the last client connected.
IDLE_SETTLE_S = 2.0


def client_procs(args: argparse.Namespace, clients: int) -> int:
    """Client processes for `clients` connections: --client-procs, else 2 above 8,000."""
    if args.client_procs:
        return int(args.client_procs)
    return 2 if clients > 8000 else 1


async def _start_relay(relay: RelayProcess) -> dict[str, int]:
    """Start the relay, touch its HTTP plane once (so its lazy set-up is not billed to the
    clients), and say how many clients its file descriptors leave room for."""
    await relay.start()
    await relay.health()
    await relay.metrics()
    await asyncio.sleep(0.3)
    return fd_room(relay)


async def run_idle(
    children: Children,
    redis_url: str,
    run_dir: Path,
    args: argparse.Namespace,
    clients: int,
    label: str,
) -> dict[str, Any]:
    """Relay RSS with no client, then with `clients` idle ones; nothing is published."""
    relay = RelayProcess(children, redis_url, run_dir / f"relay-{label}.log", args.relay_args)
    fleet = ClientFleet(children, run_dir / f"clients-{label}.log", client_procs(args, clients))
    life_s = CONNECT_TIMEOUT_S + SETTLE_TIMEOUT_S + 60
    try:
        room = await _start_relay(relay)
        rss_before = relay.rss_bytes()
        connect = await connect_clients(
            fleet, relay, [(relay.ws_url, clients)], args.connect_concurrency, life_s
        )
        await asyncio.sleep(IDLE_SETTLE_S)
        rss_connected = relay.rss_bytes()
        fds_connected = relay.fds()
        peak = relay.peak_rss_bytes()
        relay_clients = connect["relay_clients"]
        if relay_clients is None:
            relay_clients, _ = await relay.client_count()
    finally:
        await fleet.stop()
        await relay.stop()
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


async def run_burst(
    children: Children,
    redis_url: str,
    bot: aioredis.Redis,
    run_dir: Path,
    args: argparse.Namespace,
    policy: str,
    label: str,
) -> dict[str, Any]:
    """--burst-messages in one pipeline to --burst-clients, relay at `--slow-client policy`."""
    clients = args.burst_clients
    relay_args = [*args.relay_args, "--slow-client", policy]
    relay = RelayProcess(children, redis_url, run_dir / f"relay-{label}.log", relay_args)
    fleet = ClientFleet(children, run_dir / f"clients-{label}.log", client_procs(args, clients))
    life_s = CONNECT_TIMEOUT_S + SETTLE_TIMEOUT_S + args.burst_timeout + ANALYSIS_TIMEOUT_S + 90
    try:
        room = await _start_relay(relay)
        connect = await connect_clients(
            fleet, relay, [(relay.ws_url, clients)], args.connect_concurrency, life_s
        )
        result = await run_round(
            relay,
            fleet,
            bot,
            run_dir,
            round_id=0,
            rate=math.inf,
            duration_s=0.0,
            drain_s=args.burst_timeout,
            burst=args.burst_messages,
            watch_peak=True,
        )
    finally:
        await fleet.stop()
        await relay.stop()
    return {
        "policy": policy,
        **connect,
        **room,
        "relay_log_events": scan_relay_log(relay.log_path, SLOW_CLIENT_EVENTS),
        **result,
        # After the round's analysis, whose "clients" counts those that took part.
        "clients": clients,
    }


async def run_slow(
    children: Children,
    redis_url: str,
    bot: aioredis.Redis,
    run_dir: Path,
    args: argparse.Namespace,
    policy: str | None,
    label: str,
) -> dict[str, Any]:
    """--slow-clients readers at --rate for --duration; with `policy`, plus one stalled
    client (upgraded, then never read) and the relay at `--slow-client policy`."""
    clients = args.slow_clients
    relay_args = list(args.relay_args)
    if policy is not None:
        relay_args += ["--slow-client", policy]
    relay = RelayProcess(children, redis_url, run_dir / f"relay-{label}.log", relay_args)
    fleet = ClientFleet(children, run_dir / f"clients-{label}.log", client_procs(args, clients))
    life_s = CONNECT_TIMEOUT_S + ANALYSIS_TIMEOUT_S + args.duration * 2 + args.drain_timeout + 90
    stalled: StalledClient | None = None
    stalled_state: dict[str, Any] | None = None
    try:
        room = await _start_relay(relay)
        connect = await connect_clients(
            fleet, relay, [(relay.ws_url, clients)], args.connect_concurrency, life_s
        )
        if policy is not None:
            stalled = StalledClient("127.0.0.1", relay.port, args.stalled_rcvbuf)
            await stalled.connect()
            relay_clients, _ = await relay.settle_clients(connect["connected"] + 1, 10.0)
            connect["relay_clients"] = relay_clients
        result = await run_round(
            relay,
            fleet,
            bot,
            run_dir,
            round_id=0,
            rate=args.rate,
            duration_s=args.duration,
            drain_s=args.drain_timeout,
        )
        if stalled is not None:
            stalled_state = stalled.state()
            stalled_state["relay_log"] = relay.client_fate(f"127.0.0.1:{stalled.local_port}")
    finally:
        if stalled is not None:
            stalled.close()
        await fleet.stop()
        await relay.stop()
    return {
        "policy": policy,
        "stalled": policy is not None,
        "stalled_state": stalled_state,
        **connect,
        **room,
        "relay_log_events": scan_relay_log(relay.log_path, SLOW_CLIENT_EVENTS),
        **result,
        # After the round's analysis, whose "clients" counts those that took part.
        "clients": clients,
    }


def policies(text: str) -> list[str]:
    """A comma-separated list of --slow-client policies."""
    values = [part.strip() for part in text.split(",") if part.strip()]
    if not values or any(value not in ("conflate", "close") for value in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give conflate, close or both, comma-separated")
    return values
