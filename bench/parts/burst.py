"""The burst: messages published in one pipeline to clients reading as fast as they can."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

from harness.logs import scan_relay_log
from pingpong_relay.parsing import positive_float, positive_int

from ..context import Bench, Part, Run, Runs, rotated, start_relay
from ..flags import policies
from ..notes import connect_notes, log_notes
from ..rounds import (
    ANALYSIS_TIMEOUT_S,
    CONNECT_TIMEOUT_S,
    SETTLE_TIMEOUT_S,
    RoundPlan,
    connect_clients,
    run_round,
)
from ..runner import progress
from ..tables import count, mb, median_of, ms, num, relay_metric, runs_label, table

# Relay log events (INFO) that say what it did to a backed-up client.
SLOW_CLIENT_EVENTS = ("client_backed_up", "conflated")
BURST_TARGET_US = 6.0
TABLE_HEADER = (
    "policy",
    "clients",
    "publish ms",
    "drain ms",
    "p50 ms",
    "p99 ms",
    "lost",
    "dup / ooo",
    "conflated / notices",
    "slow closes",
    "CPU µs/delivery",
    "RSS before MB",
    "peak RSS MB",
    "deliveries/s",
)


def add_flags(parser: argparse.ArgumentParser) -> None:
    """--burst-* and --no-burst."""
    parser.add_argument(
        "--burst-messages",
        type=positive_int,
        default=1000,
        help="burst: messages published in one pipeline",
    )
    parser.add_argument(
        "--burst-clients", type=positive_int, default=1000, help="burst: clients reading it"
    )
    parser.add_argument(
        "--burst-policies",
        type=policies,
        default="conflate,close",
        help="burst: one row per relay --slow-client policy",
    )
    parser.add_argument(
        "--burst-timeout",
        type=positive_float,
        default=30.0,
        help="burst: seconds clients wait for the last message after the pipeline returns",
    )
    parser.add_argument("--no-burst", action="store_true", help="skip the burst part")


async def run_burst(bench: Bench, policy: str, label: str) -> Run:
    """--burst-messages in one pipeline to --burst-clients, relay at `--slow-client policy`."""
    args = bench.args
    clients = args.burst_clients
    relay = bench.relay(label, ["--slow-client", policy])
    fleet = bench.fleet(label, clients)
    life_s = CONNECT_TIMEOUT_S + SETTLE_TIMEOUT_S + args.burst_timeout + ANALYSIS_TIMEOUT_S + 90
    plan = RoundPlan(
        0, math.inf, 0.0, args.burst_timeout, burst=args.burst_messages, watch_peak=True
    )
    try:
        room = await start_relay(relay)
        groups = [(relay.ws_url, clients)]
        connect = await connect_clients(fleet, relay, groups, args.connect_concurrency, life_s)
        result = await run_round(relay, fleet, bench.bot, bench.run_dir, plan)
    finally:
        await fleet.stop()
        await relay.stop()
    assert relay.log_path is not None
    return {
        "policy": policy,
        **connect,
        **room,
        "relay_log_events": scan_relay_log(relay.log_path, SLOW_CLIENT_EVENTS),
        **result,
        # After the round's analysis, whose "clients" counts those that took part.
        "clients": clients,
    }


async def _run(bench: Bench, runs: Runs, repeat: int) -> None:
    args = bench.args
    for policy in rotated(args.burst_policies, repeat):
        progress(
            f"burst: {args.burst_messages} messages to {args.burst_clients} "
            f"clients, --slow-client {policy}, {bench.progress_label(repeat)}"
        )
        run = await run_burst(bench, policy, f"burst-{policy}-r{repeat + 1}")
        progress(
            f"  drained in {run['span_s'] * 1e3:.0f} ms, "
            f"{run['cpu_us_per_delivery']:.2f} µs/delivery, lost {run['lost']}"
        )
        runs.setdefault(policy, []).append(run)


def _result(args: argparse.Namespace, runs: Runs) -> dict[str, Any] | None:
    if args.no_burst:
        return None
    return {
        "clients": args.burst_clients,
        "messages": args.burst_messages,
        "rows": [
            {"policy": p, "runs": runs.get(p, [])} for p in dict.fromkeys(args.burst_policies)
        ],
    }


def _row(policy: str, runs: Sequence[Run]) -> list[str]:
    return [
        f"`{policy}`",
        count(median_of(runs, "connected")),
        ms(median_of(runs, "publish_s") * 1e3),
        ms(median_of(runs, "span_s") * 1e3),
        ms(median_of(runs, "p50_ms")),
        ms(median_of(runs, "p99_ms")),
        count(median_of(runs, "lost")),
        f"{count(median_of(runs, 'duplicates'))} / {count(median_of(runs, 'out_of_order'))}",
        f"{count(relay_metric(runs, 'conflated'))} / {count(median_of(runs, 'conflated_notices'))}",
        count(relay_metric(runs, "slow_client_closes")),
        num(median_of(runs, "cpu_us_per_delivery"), 2),
        mb(median_of(runs, "rss_start_kb")),
        mb(median_of(runs, "peak_rss_kb")),
        count(median_of(runs, "deliveries_per_s")),
    ]


def _burst_notes(label: str, run: Run) -> list[str]:
    notes = []
    if run["lost"] or run["duplicates"] or run["out_of_order"]:
        metrics = run["relay_metrics"]
        notes.append(
            f"{label}: lost {run['lost']:,} of {run['expected']:,} deliveries on "
            f"{run['clients_with_loss']:,} clients, duplicates {run['duplicates']:,}, out of "
            f"order {run['out_of_order']:,}; relay conflated {count(metrics['conflated'])}, "
            f"closed {count(metrics['slow_client_closes'])} slow clients; clients "
            f"disconnected {run['disconnected']:,}; notices seen {run['conflated_notices']:,} "
            f"(skipped {run['conflated_skipped']:,})"
        )
    for key in ("malformed", "stale", "overflow", "unheard_publishes"):
        if run[key]:
            notes.append(f"{label}: {key.replace('_', ' ')}: {run[key]}")
    if not run["all_received"]:
        notes.append(f"{label}: not every client had the last message at the deadline")
    if run["client_wall_s"] and run["client_cpu_s"] / run["client_wall_s"] > 0.85:
        notes.append(
            f"{label}: a client process used "
            f"{run['client_cpu_s'] / run['client_wall_s']:.0%} of a core; the drain time "
            f"includes its own reading"
        )
    return notes


def render(section: dict[str, Any], args: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Burst: messages in one pipeline, drain time, CPU per delivery, peak RSS."""
    rows = []
    notes: list[str] = []
    for entry in section["rows"]:
        runs = entry["runs"]
        if not runs:
            continue
        rows.append(_row(entry["policy"], runs))
        for index, run in enumerate(runs, 1):
            label = runs_label(f"burst {entry['policy']}", runs, index)
            notes += _burst_notes(label, run)
            notes += connect_notes(label, run)
            notes += log_notes(label, run["relay_log_events"])
    if not rows:
        return [], notes
    cpu = [
        (entry["policy"], median_of(entry["runs"], "cpu_us_per_delivery"))
        for entry in section["rows"]
        if entry["runs"]
    ]
    out = [
        "",
        f"### Burst: {section['messages']:,} messages at once to {section['clients']:,} clients",
        "",
        "One relay per row, with that `--slow-client` policy; every client reads as fast as "
        "it can. The messages go out in one Redis pipeline; drain = first PUBLISH → the last "
        "client's last message; p50/p99 are of every delivery's time since the burst began. "
        "CPU µs/delivery = relay user+sys CPU from just before the pipeline until every "
        "client has everything, / deliveries. Peak RSS: the larger of VmHWM (reset just "
        "before the burst) and RSS sampled every 10 ms.",
        "",
        *table(TABLE_HEADER, rows),
        "",
        "**CPU per delivery in the burst: "
        + ", ".join(f"{policy} {num(value, 2)} µs" for policy, value in cpu)
        + f"** (target < {BURST_TARGET_US:g} µs)",
    ]
    return out, notes


PART = Part(
    key="burst",
    add_flags=add_flags,
    enabled=lambda args: not args.no_burst,
    client_counts=lambda args: [args.burst_clients],
    run=_run,
    result=_result,
    render=render,
)
