"""The throughput search: publish rates in rising steps against one set of clients."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

from harness.logs import scan_relay_log
from pingpong_relay.parsing import positive_float, positive_int

from ..context import Bench, Part, Run, Runs
from ..flags import int_list
from ..notes import log_notes, run_notes
from ..rounds import ANALYSIS_TIMEOUT_S, CONNECT_TIMEOUT_S, RoundPlan, connect_clients, run_round
from ..runner import progress
from ..stats import median
from ..tables import count, ms, num, table


def add_flags(parser: argparse.ArgumentParser) -> None:
    """--throughput-* and --no-throughput."""
    parser.add_argument(
        "--throughput-clients",
        type=positive_int,
        default=1000,
        help="clients during the throughput search",
    )
    parser.add_argument(
        "--throughput-rates",
        type=int_list,
        default="50,100,150,200,300,400,600,800",
        help="publish rates tried in order, msg/s; the search stops at the first that fails",
    )
    parser.add_argument(
        "--throughput-step",
        type=positive_float,
        default=3.0,
        help="seconds of publishing per throughput step",
    )
    parser.add_argument(
        "--throughput-p99-ms",
        type=positive_float,
        default=100.0,
        help="a step passes if nothing is lost and p99 is below this",
    )
    parser.add_argument("--no-throughput", action="store_true", help="skip the throughput search")


async def run_throughput(bench: Bench, label: str) -> dict[str, Any]:
    """Publish rates in rising steps against one set of clients; stop at the first failure."""
    args = bench.args
    clients = args.throughput_clients
    relay = bench.relay(label)
    fleet = bench.fleet(label, clients)
    per_step_s = args.throughput_step * 2 + args.drain_timeout + ANALYSIS_TIMEOUT_S
    life_s = CONNECT_TIMEOUT_S + per_step_s * len(args.throughput_rates) + 90
    steps: list[Run] = []
    best: Run | None = None
    try:
        await relay.start()
        groups = [(relay.ws_url, clients)]
        connect = await connect_clients(fleet, relay, groups, args.connect_concurrency, life_s)
        for round_id, rate in enumerate(args.throughput_rates):
            plan = RoundPlan(round_id, rate, args.throughput_step, args.drain_timeout)
            step = await run_round(relay, fleet, bench.bot, bench.run_dir, plan)
            step["failures"] = _step_failures(step, args.throughput_p99_ms)
            steps.append(step)
            if step["failures"]:
                break
            best = step
    finally:
        await fleet.stop()
        await relay.stop()
    assert relay.log_path is not None
    return {
        "clients": clients,
        "connected": connect["connected"],
        "p99_limit_ms": args.throughput_p99_ms,
        "steps": steps,
        "best_rate": best["rate"] if best else math.nan,
        "best_deliveries_per_s": best["deliveries_per_s"] if best else math.nan,
        "relay_log_events": scan_relay_log(relay.log_path),
    }


def _step_failures(step: Run, p99_limit_ms: float) -> list[str]:
    failures = []
    if step["lost"] or step["duplicates"] or step["out_of_order"]:
        failures.append(
            f"lost {step['lost']}, dup {step['duplicates']}, out of order {step['out_of_order']}"
        )
    if not step["p99_ms"] < p99_limit_ms:
        failures.append(f"p99 {step['p99_ms']:.1f} ms")
    # A publisher that cannot keep the rate would make the step measure the harness.
    if step["publish_rate"] < 0.9 * step["rate"]:
        failures.append(f"publisher reached only {step['publish_rate']:.0f} msg/s")
    return failures


async def _run(bench: Bench, runs: Runs, repeat: int) -> None:
    clients = bench.args.throughput_clients
    progress(f"throughput at {clients} clients, {bench.progress_label(repeat)}")
    search = await run_throughput(bench, f"throughput-r{repeat + 1}")
    progress(f"  best {search['best_rate']} msg/s")
    runs.setdefault("", []).append(search)


def _step_rows(steps: Sequence[Run]) -> list[list[str]]:
    return [
        [
            count(step["rate"]),
            count(step["publish_rate"]),
            count(step["deliveries_per_s"]),
            ms(step["p50_ms"]),
            ms(step["p99_ms"]),
            ms(step["max_ms"]),
            count(step["lost"]),
            num(step["cpu_us_per_delivery"]),
            "pass" if not step["failures"] else "FAIL: " + "; ".join(step["failures"]),
        ]
        for step in steps
    ]


STEP_HEADER = (
    "msg/s",
    "published/s",
    "deliveries/s",
    "p50 ms",
    "p99 ms",
    "max ms",
    "lost",
    "CPU µs/delivery",
    "result",
)


def _verdict(searches: Sequence[Run], args: dict[str, Any]) -> str:
    """The line under the tables: the best rate that passed, median over the runs."""
    clients = searches[0]["clients"]
    best_rate = median(s["best_rate"] for s in searches)
    best_deliveries = median(s["best_deliveries_per_s"] for s in searches)
    if math.isnan(best_rate):
        return (
            f"**Max sustained throughput at {clients:,} clients: none of the rates tried passed**"
        )
    tried = args["throughput_rates"]
    ceiling = (
        " (the highest rate tried: raise --throughput-rates)"
        if all(s["best_rate"] == tried[-1] for s in searches)
        else ""
    )
    spread = ""
    if args["repeat"] > 1:
        spread = "; runs: " + ", ".join(count(s["best_rate"]) for s in searches)
    return (
        f"**Max sustained throughput at {clients:,} clients: "
        f"{count(best_deliveries)} deliveries/s** "
        f"({count(best_rate)} msg/s{spread}){ceiling}"
    )


def render(searches: list[Run], args: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The steps of every search, the best rate, and the notes."""
    repeat = args["repeat"]
    first = searches[0]
    out = [
        "",
        f"### Max sustained throughput at {first['clients']:,} clients",
        "",
        f"Publish rate raised in {args['throughput_step']:g} s steps; a step passes when "
        f"nothing is lost and p99 < {first['p99_limit_ms']:g} ms.",
        "",
    ]
    notes: list[str] = []
    for index, search in enumerate(searches, 1):
        if repeat > 1:
            out += [f"Run {index}:", ""]
        out += table(STEP_HEADER, _step_rows(search["steps"]), text_columns=1)
        out.append("")
        label = "throughput" + (f" run {index}" if repeat > 1 else "")
        for step in search["steps"]:
            notes += run_notes(f"{label} at {step['rate']:g} msg/s", step)
        notes += log_notes(label, search["relay_log_events"])
    out.append(_verdict(searches, args))
    return out, notes


PART = Part(
    key="throughput",
    add_flags=add_flags,
    enabled=lambda args: not args.no_throughput,
    client_counts=lambda args: [args.throughput_clients],
    run=_run,
    result=lambda args, runs: runs.get("", []),
    render=render,
)
