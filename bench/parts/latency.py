"""The scenario table: one relay per client count, latency and cost at a steady rate."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.logs import scan_relay_log

from ..common import split_evenly
from ..context import Bench, Part, Run, Runs, start_relay
from ..flags import int_list
from ..notes import log_notes, run_notes, short
from ..publishing import CHANNEL, SOURCE, ClientFilter
from ..rounds import ANALYSIS_TIMEOUT_S, CONNECT_TIMEOUT_S, RoundPlan, connect_clients, run_round
from ..runner import progress
from ..tables import count, latency_cells, median_of, num, table

# The filter scenario: bots on their own channels, relayed through one PSUBSCRIBE pattern.
FILTER_CHANNEL_PATTERN = "bot:*:pingpong"
FILTER_CHANNELS = ("bot:a:pingpong", "bot:b:pingpong")


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    """One row of the scenario table: a client count and the relay arguments of its own
    (beyond --relay-args, which every relay gets)."""

    clients: int
    relay_args: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.clients}" + (f" {shlex.join(self.relay_args)}" if self.relay_args else "")

    @property
    def slug(self) -> str:
        extra = "".join(c if c.isalnum() else "-" for c in "_".join(self.relay_args))
        return f"{self.clients}c" + (f"-{extra.strip('-')}" if extra else "")


def _scenario_spec(text: str) -> ScenarioSpec:
    """`--extra-scenario 'CLIENTS RELAY-ARGS...'`."""
    parts = shlex.split(text)
    try:
        clients = int(parts[0])
    except (IndexError, ValueError):
        raise argparse.ArgumentTypeError(
            f"--extra-scenario {text!r}: want 'CLIENTS [RELAY-ARGS...]', e.g. '20000 --workers 2'"
        ) from None
    if clients <= 0:
        raise argparse.ArgumentTypeError(f"--extra-scenario {text!r}: clients must be > 0")
    return ScenarioSpec(clients, tuple(parts[1:]))


def scenario_specs(args: argparse.Namespace) -> list[ScenarioSpec]:
    """Every row: --clients, then each --extra-scenario."""
    return [ScenarioSpec(n) for n in args.clients] + [
        _scenario_spec(text) for text in args.extra_scenario
    ]


def add_flags(parser: argparse.ArgumentParser) -> None:
    """--clients, --extra-scenario and --no-scenarios."""
    parser.add_argument(
        "--clients",
        type=int_list,
        default="100,500,1000,2000",
        help="comma-separated client counts, one scenario each (e.g. add 10000,20000; a "
        "relay process holds at most its open-file limit minus the descriptors it starts with, "
        "and a row above that reports how many connected)",
    )
    parser.add_argument(
        "--extra-scenario",
        action="append",
        default=[],
        metavar="'CLIENTS RELAY-ARGS'",
        help="one more scenario row with relay arguments of its own, added after --relay-args, "
        "e.g. --extra-scenario '20000 --workers 2'; repeatable",
    )
    parser.add_argument(
        "--no-scenarios",
        action="store_true",
        help="skip the scenario table (e.g. to run only the floor part)",
    )


async def run_scenario(
    bench: Bench,
    clients: int,
    label: str,
    *,
    filters: Sequence[ClientFilter] | None = None,
    relay_args: Sequence[str] = (),
) -> Run:
    """One relay, `clients` connections, one publishing round.

    With `filters` it is the filter scenario: the relay also PSUBSCRIBEs to
    FILTER_CHANNEL_PATTERN, the publisher spreads messages over FILTER_CHANNELS, and the
    clients are split evenly across the filters (one group per filter, each with its query).
    The relay gets --relay-args, then `relay_args`. When fewer clients connect than asked
    (a relay out of file descriptors), the round runs with those that did, and the result
    says how many.
    """
    args = bench.args
    extra = list(relay_args)
    channels: tuple[str, ...] = (CHANNEL,)
    counts = [clients]
    if filters is not None:
        extra += ["--channel-pattern", FILTER_CHANNEL_PATTERN]
        channels = FILTER_CHANNELS
        counts = split_evenly(clients, len(filters))
    relay = bench.relay(label, extra)
    fleet = bench.fleet(label, clients)
    life_s = CONNECT_TIMEOUT_S + ANALYSIS_TIMEOUT_S + args.duration * 2 + args.drain_timeout + 90
    plan = RoundPlan(0, args.rate, args.duration, args.drain_timeout, channels, filters)
    try:
        room = await start_relay(relay)
        rss_before = relay.tree.rss_bytes()
        if filters is None:
            # Beside flapping bots (bench/notifying.py) the clients take the measured bot's
            # messages only, so the round's accounting sees nothing else.
            url = relay.ws_url_with(f"bots={CHANNEL}/{SOURCE}") if args.flapping_bots else None
            groups = [(url or relay.ws_url, clients)]
        else:
            groups = [(relay.ws_url_with(f.query), n) for f, n in zip(filters, counts, strict=True)]
        connect = await connect_clients(fleet, relay, groups, args.connect_concurrency, life_s)
        rss_connected = relay.tree.rss_bytes()
        result = await run_round(relay, fleet, bench.bot, bench.run_dir, plan)
        rss_after = relay.tree.rss_bytes()
    finally:
        await fleet.stop()
        await relay.stop()
    assert relay.log_path is not None
    return {
        "relay_args": [*args.relay_args, *extra],
        **connect,
        **room,
        "filters": (
            None
            if filters is None
            else [{"query": f.query, "clients": n} for f, n in zip(filters, counts, strict=True)]
        ),
        "rss_before_kb": rss_before / 1024,
        "rss_connected_kb": rss_connected / 1024,
        "rss_after_kb": rss_after / 1024,
        "rss_kb_per_conn": (rss_connected - rss_before) / 1024 / connect["connected"],
        "relay_log_events": scan_relay_log(relay.log_path),
        **result,
        # After the round's analysis, whose "clients" counts those that took part.
        "clients": clients,
    }


async def _run(bench: Bench, runs: Runs, repeat: int) -> None:
    for spec in scenario_specs(bench.args):
        progress(f"scenario {spec.key} clients, {bench.progress_label(repeat)}")
        label = f"{spec.slug}-r{repeat + 1}"
        run = await run_scenario(bench, spec.clients, label, relay_args=spec.relay_args)
        fewer = run["connected"] < spec.clients
        only = f", only {run['connected']:,} connected" if fewer else ""
        progress(
            f"  p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms, lost {run['lost']}{only}"
        )
        runs.setdefault(spec, []).append(run)


def _result(args: argparse.Namespace, runs: Runs) -> list[dict[str, Any]] | None:
    if args.no_scenarios:
        return None
    return [
        {"clients": spec.clients, "relay_args": list(spec.relay_args), "runs": runs.get(spec, [])}
        for spec in dict.fromkeys(scenario_specs(args))
    ]


def _table(scenarios: Sequence[dict[str, Any]]) -> list[str]:
    """The scenario table; a "connected" column when some row fell short, a "relay args"
    column when some row has relay arguments of its own."""
    scenarios = [scenario for scenario in scenarios if scenario["runs"]]
    connected_column = any(short(scenario["runs"]) for scenario in scenarios)
    args_column = any(scenario.get("relay_args") for scenario in scenarios)
    header = ["clients"]
    header += ["connected"] if connected_column else []
    header += [
        "p50 ms",
        "p99 ms",
        "max ms",
        "lost",
        "dup / ooo",
        "RSS KB/conn",
        "CPU µs/delivery",
        "deliveries/s",
    ]
    header += ["relay args"] if args_column else []
    rows = []
    for scenario in scenarios:
        runs = scenario["runs"]
        row = [count(scenario["clients"])]
        if connected_column:
            row.append(count(median_of(runs, "connected")))
        row += [
            *latency_cells(runs),
            num(median_of(runs, "rss_kb_per_conn")),
            num(median_of(runs, "cpu_us_per_delivery")),
            count(median_of(runs, "deliveries_per_s")),
        ]
        if args_column:
            extra = scenario.get("relay_args") or []
            row.append(f"`{' '.join(extra)}`" if extra else "")
        rows.append(row)
    return table(header, rows, text_columns=1 if args_column else 0)


def render(section: list[dict[str, Any]], args: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The scenario table, and the notes of every run."""
    notes: list[str] = []
    for scenario in section:
        extra = " ".join(scenario.get("relay_args") or [])
        for index, run in enumerate(scenario["runs"], 1):
            label = (
                f"{scenario['clients']} clients"
                + (f" (`{extra}`)" if extra else "")
                + (f" run {index}" if args["repeat"] > 1 else "")
            )
            notes += run_notes(label, run)
            notes += log_notes(label, run["relay_log_events"])
    return _table(section), notes


PART = Part(
    key="scenarios",
    add_flags=add_flags,
    enabled=lambda args: not args.no_scenarios,
    client_counts=lambda args: [spec.clients for spec in scenario_specs(args)],
    run=_run,
    result=_result,
    render=render,
)
