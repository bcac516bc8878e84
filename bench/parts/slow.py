"""One stalled client among readers: the readers' latency with it and without it."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

from harness.logs import scan_relay_log
from pingpong_relay.parsing import positive_int

from ..clientcount import client_fate, settle_clients
from ..context import Bench, Part, Run, Runs, rotated, start_relay
from ..flags import policies
from ..notes import log_notes, run_notes
from ..rounds import ANALYSIS_TIMEOUT_S, CONNECT_TIMEOUT_S, RoundPlan, connect_clients, run_round
from ..runner import progress
from ..stalled import StalledClient
from ..stats import median
from ..tables import count, kb, latency_cells, median_of, num, ratio_line, relay_metric, table
from .burst import SLOW_CLIENT_EVENTS

READING = "reading"  # the row without a stalled client
TABLE_HEADER = (
    "run",
    "readers",
    "p50 ms",
    "p99 ms",
    "max ms",
    "lost",
    "dup / ooo",
    "CPU µs/delivery",
    "conflated",
    "slow closes",
    "backed up",
    "stalled Send-Q KB",
    "its sndbuf KB",
    "stalled socket",
)


def add_flags(parser: argparse.ArgumentParser) -> None:
    """--slow-*, --stalled-rcvbuf and --no-slow."""
    parser.add_argument(
        "--slow-clients",
        type=positive_int,
        default=1000,
        help="slow client: readers, at --rate for --duration, once alone and once beside one "
        "stalled client per --slow-policies entry",
    )
    parser.add_argument(
        "--slow-policies",
        type=policies,
        default="conflate",
        help="slow client: relay --slow-client policy of each stalled row",
    )
    parser.add_argument(
        "--stalled-rcvbuf",
        type=positive_int,
        default=4096,
        help="slow client: SO_RCVBUF of the stalled client's socket (the kernel doubles it)",
    )
    parser.add_argument("--no-slow", action="store_true", help="skip the slow-client part")


async def run_slow(bench: Bench, policy: str | None, label: str) -> Run:
    """--slow-clients readers at --rate for --duration; with `policy`, plus one stalled
    client (upgraded, then never read) and the relay at `--slow-client policy`."""
    args = bench.args
    clients = args.slow_clients
    relay = bench.relay(label, [] if policy is None else ["--slow-client", policy])
    fleet = bench.fleet(label, clients)
    life_s = CONNECT_TIMEOUT_S + ANALYSIS_TIMEOUT_S + args.duration * 2 + args.drain_timeout + 90
    plan = RoundPlan(0, args.rate, args.duration, args.drain_timeout)
    stalled: StalledClient | None = None
    stalled_state: dict[str, Any] | None = None
    try:
        room = await start_relay(relay)
        groups = [(relay.ws_url, clients)]
        connect = await connect_clients(fleet, relay, groups, args.connect_concurrency, life_s)
        if policy is not None:
            stalled = StalledClient("127.0.0.1", relay.port, args.stalled_rcvbuf)
            await stalled.connect()
            relay_clients, _ = await settle_clients(relay, connect["connected"] + 1, 10.0)
            connect["relay_clients"] = relay_clients
        result = await run_round(relay, fleet, bench.bot, bench.run_dir, plan)
        if stalled is not None:
            stalled_state = stalled.state()
            remote = f"127.0.0.1:{stalled.local_port}"
            stalled_state["relay_log"] = client_fate(relay, remote)
    finally:
        if stalled is not None:
            stalled.close()
        await fleet.stop()
        await relay.stop()
    assert relay.log_path is not None
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


def _rows(args: argparse.Namespace) -> list[str]:
    return [READING, *args.slow_policies]


async def _run(bench: Bench, runs: Runs, repeat: int) -> None:
    args = bench.args
    for row in rotated(_rows(args), repeat):
        policy = None if row == READING else row
        what = "all reading" if policy is None else f"+1 stalled, {policy}"
        progress(f"slow client: {args.slow_clients} clients {what}, {bench.progress_label(repeat)}")
        run = await run_slow(bench, policy, f"slow-{row}-r{repeat + 1}")
        progress(f"  p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms, lost {run['lost']}")
        runs.setdefault(row, []).append(run)


def _result(args: argparse.Namespace, runs: Runs) -> dict[str, Any] | None:
    if args.no_slow:
        return None
    return {
        "clients": args.slow_clients,
        "rows": [
            {"policy": None if row == READING else row, "runs": runs.get(row, [])}
            for row in dict.fromkeys(_rows(args))
        ],
    }


def _stalled_end(run: Run) -> dict[str, Any] | None:
    """The relay's socket to the stalled client at the end, from /proc/net/tcp."""
    end: dict[str, Any] | None = (run.get("stalled_state") or {}).get("relay_end")
    return end


def _stalled_send_q(run: Run) -> float:
    end = _stalled_end(run)
    return math.nan if end is None else float(end["tx_bytes"])


def _stalled_sndbuf(run: Run) -> float:
    value = (run.get("stalled_state") or {}).get("relay_sndbuf")
    return math.nan if value is None else float(value)


def _stalled_state(run: Run) -> str:
    end = _stalled_end(run)
    return "gone" if end is None else str(end["state"])


def _row(name: str, policy: str | None, runs: Sequence[Run]) -> list[str]:
    if policy is None:
        send_q, sndbuf, state = "", "", ""
    else:
        send_q = kb(median(_stalled_send_q(run) for run in runs))
        sndbuf = kb(median(_stalled_sndbuf(run) for run in runs))
        state = ", ".join(sorted({_stalled_state(run) for run in runs}))
    backed_up = median(
        float(run["relay_log_events"].get("INFO:client_backed_up", 0)) for run in runs
    )
    return [
        name,
        count(median_of(runs, "connected")),
        *latency_cells(runs),
        num(median_of(runs, "cpu_us_per_delivery")),
        count(relay_metric(runs, "conflated")),
        count(relay_metric(runs, "slow_client_closes")),
        count(backed_up),
        send_q,
        sndbuf,
        state,
    ]


def _notes(name: str, runs: Sequence[Run]) -> list[str]:
    notes: list[str] = []
    for index, run in enumerate(runs, 1):
        label = f"slow client, {name}" + (f" run {index}" if len(runs) > 1 else "")
        notes += run_notes(label, run)
        fate = (run.get("stalled_state") or {}).get("relay_log") or {}
        if fate.get("why"):
            notes.append(
                f"{label}: the relay dropped the stalled client ({fate['client']}) at "
                f"{fate.get('time')}: {fate['why']}"
            )
        notes += log_notes(label, run["relay_log_events"])
    return notes


def _intro(section: dict[str, Any], args: dict[str, Any]) -> list[str]:
    return [
        "",
        f"### One stalled client among {section['clients']:,} readers",
        "",
        f"One relay per row; {section['clients']:,} clients reading at {args['rate']:g} msg/s "
        f"for {args['duration']:g} s. A stalled row adds one raw client (SO_RCVBUF "
        f"{args['stalled_rcvbuf']:,}) that completes the upgrade and never reads again, and "
        "runs the relay with that `--slow-client` policy. Latency and loss are the readers' "
        "only. What the relay did to the stalled one, over the round: `conflated` "
        "(`pingpong_conflated_total`: messages it skipped for a newer one), slow-client "
        "closes, `client_backed_up` log lines; and at the end, from /proc/net/tcp, the bytes "
        "its socket to the stalled client still holds (Send-Q), that socket's send buffer "
        "(`ss -m` tb: the kernel takes this much before the relay's own buffer, and so its "
        "policy, comes into play) and its state.",
        "",
    ]


def render(section: dict[str, Any], args: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Slow client: readers' latency with and without one client that never reads."""
    rows = []
    notes: list[str] = []
    for entry in section["rows"]:
        runs = entry["runs"]
        if not runs:
            continue
        policy = entry["policy"]
        name = "all reading" if policy is None else f"+1 stalled, `{policy}`"
        rows.append(_row(name, policy, runs))
        notes += _notes(name, runs)
    if not rows:
        return [], notes
    out = [*_intro(section, args), *table(TABLE_HEADER, rows, text_columns=1)]
    reading: list[Run] = next((e["runs"] for e in section["rows"] if e["policy"] is None), [])
    for entry in section["rows"]:
        if entry["policy"] is not None and entry["runs"] and reading:
            what = f"readers' p99 with one stalled (`{entry['policy']}`) / all reading"
            out += ["", ratio_line(what, entry["runs"], reading)]
    return out, notes


PART = Part(
    key="slow",
    add_flags=add_flags,
    enabled=lambda args: not args.no_slow,
    client_counts=lambda args: [args.slow_clients],
    run=_run,
    result=_result,
    render=render,
)
