"""Server-side filters: the same clients unfiltered, in four filters, in four match-all ones."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from harness.processes import HarnessError
from pingpong_relay.parsing import positive_int

from ..context import Bench, Part, Run, Runs, rotated
from ..notes import log_notes, run_notes
from ..publishing import ClientFilter, message_of
from ..runner import progress
from ..stats import median
from ..tables import bucket_ms, count, median_of, ms, num, ratio_line, relay_metric, table
from .latency import FILTER_CHANNEL_PATTERN, FILTER_CHANNELS, run_scenario

UNFILTERED = ClientFilter("all", "")
FILTERS = (
    ClientFilter("types=ping", "types=ping", kinds=frozenset({"ping"})),
    ClientFilter("types=pong", "types=pong", kinds=frozenset({"pong"})),
    *(
        ClientFilter(f"bots={channel}/*", f"bots={channel}/*", bot_pattern=f"{channel}/*")
        for channel in FILTER_CHANNELS
    ),
)
# Four different subscriptions (so four groups in the relay, each matched against every
# message) that each let every published message through: as many deliveries per message
# as the unfiltered row, so the difference is the cost of grouping and matching alone.
MATCH_ALL_FILTERS = (
    ClientFilter("types=ping,pong", "types=ping,pong", kinds=frozenset({"ping", "pong"})),
    ClientFilter("bots=*", "bots=*", bot_pattern="*"),
    ClientFilter("bots=bot:*", "bots=bot:*", bot_pattern="bot:*"),
    ClientFilter(
        "types=ping,pong&bots=*/bot",
        "types=ping,pong&bots=*/bot",
        kinds=frozenset({"ping", "pong"}),
        bot_pattern="*/bot",
    ),
)
# The filter scenario's rows, each its own relay and client process, in this order when
# first in a run; with --repeat the order rotates.
FILTER_VARIANTS: dict[str, tuple[ClientFilter, ...]] = {
    "unfiltered": (UNFILTERED,),
    "filtered": FILTERS,
    "match_all": MATCH_ALL_FILTERS,
}
TABLE_HEADER = (
    "run",
    "msgs/client",
    "p50 ms",
    "p99 ms",
    "max ms",
    "lost",
    "dup / ooo / unexp",
    "CPU µs/delivery",
    "deliveries/s",
    "relay p99 ms",
    "relay mean ms",
)


def check_match_all(filters: Sequence[ClientFilter], channels: Sequence[str]) -> None:
    """Refuse to run if a match-all filter's expectation would leave out any message.

    Every message the publisher can send is some (channel, type) of `channels` × ping/pong;
    if one filter excluded one, the row would no longer match the unfiltered deliveries.
    """
    period = 2 * len(channels)  # message_of repeats with this period
    for f in filters:
        excluded = [
            message_of(seq, channels)
            for seq in range(period)
            if not f.wants(*message_of(seq, channels))
        ]
        if excluded:
            raise HarnessError(f"match-all filter ?{f.query} would exclude {excluded}")


def add_flags(parser: argparse.ArgumentParser) -> None:
    """--filter-clients and --no-filters."""
    parser.add_argument(
        "--filter-clients",
        type=positive_int,
        default=1000,
        help="clients in the filter scenario: once all unfiltered, once split evenly across "
        f"{len(FILTERS)} connect-time filters that each pass half the messages, once across "
        f"{len(MATCH_ALL_FILTERS)} different filters that each pass all; each at --rate for "
        "--duration",
    )
    parser.add_argument(
        "--no-filters", action="store_true", help="skip the server-side filter scenario"
    )


async def _run(bench: Bench, runs: Runs, repeat: int) -> None:
    clients = bench.args.filter_clients
    for row in rotated(list(FILTER_VARIANTS), repeat):
        progress(f"filters: {clients} clients {row}, {bench.progress_label(repeat)}")
        label = f"filters-{row}-r{repeat + 1}"
        run = await run_scenario(bench, clients, label, filters=FILTER_VARIANTS[row])
        progress(
            f"  p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms, "
            f"lost {run['lost']}, unexpected {run['unexpected']}"
        )
        runs.setdefault(row, []).append(run)


def _result(args: argparse.Namespace, runs: Runs) -> dict[str, Any] | None:
    if args.no_filters:
        return None
    return {
        "clients": args.filter_clients,
        "channel_pattern": FILTER_CHANNEL_PATTERN,
        "channels": list(FILTER_CHANNELS),
        "queries": [f.query for f in FILTERS],
        "match_all_queries": [f.query for f in MATCH_ALL_FILTERS],
        **{row: runs.get(row, []) for row in FILTER_VARIANTS},
    }


def _row(label: str, runs: Sequence[Run]) -> list[str]:
    return [
        label,
        count(median_of(runs, "expected_per_client")),
        ms(median_of(runs, "p50_ms")),
        ms(median_of(runs, "p99_ms")),
        ms(median_of(runs, "max_ms")),
        count(median_of(runs, "lost")),
        f"{count(median_of(runs, 'duplicates'))} / "
        f"{count(median_of(runs, 'out_of_order'))} / "
        f"{count(median_of(runs, 'unexpected'))}",
        num(median_of(runs, "cpu_us_per_delivery")),
        count(median_of(runs, "deliveries_per_s")),
        bucket_ms(relay_metric(runs, "broadcast_p99_ms_bucket")),
        ms(relay_metric(runs, "broadcast_mean_ms")),
    ]


def _by_group(title: str, runs: Sequence[Run], queries: Sequence[str]) -> list[str]:
    if not runs or not runs[0].get("groups"):
        return []
    by_filter = [
        f"`?{query}` {ms(median(run['groups'][i]['latency_ms']['p99'] for run in runs))}"
        for i, query in enumerate(queries)
    ]
    return [f"{title}: " + ", ".join(by_filter) + "."]


def _intro(section: dict[str, Any], args: dict[str, Any]) -> list[str]:
    clients = section["clients"]
    queries = section["queries"]
    match_all_queries = section.get("match_all_queries", [])
    return [
        "",
        f"### Server-side filters at {clients:,} clients",
        "",
        f"Relay with `--channel-pattern '{section['channel_pattern']}'` in every row; "
        f"{args['rate']:g} msg/s for {args['duration']:g} s over "
        f"{', '.join(f'`{c}`' for c in section['channels'])} (ping and pong in turn). "
        f"Unfiltered: every client gets every message. Filtered: {clients:,} clients split "
        f"evenly across {', '.join(f'`?{q}`' for q in queries)}; each gets half the "
        f"messages."
        + (
            f" Match-all: {clients:,} clients split evenly across "
            f"{', '.join(f'`?{q}`' for q in match_all_queries)}; four subscription groups, "
            f"each getting every message."
            if match_all_queries
            else ""
        )
        + " Each client is checked against its own expected subset. Relay columns come from "
        "its `pingpong_relay_latency_seconds` histogram (Redis receipt → every write issued; "
        "p99 at bucket resolution).",
        "",
    ]


def render(section: dict[str, Any], args: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The filter scenario's table, its ratio lines, and its notes."""
    unfiltered: list[Run] = section["unfiltered"]
    filtered: list[Run] = section["filtered"]
    match_all: list[Run] = section.get("match_all", [])
    clients = section["clients"]
    queries = section["queries"]
    match_all_queries = section.get("match_all_queries", [])
    rows = []
    if unfiltered:
        rows.append(_row(f"{clients:,} unfiltered", unfiltered))
    if filtered:
        rows.append(_row(f"{clients:,} in {len(queries)} filters", filtered))
    if match_all:
        label = f"{clients:,} in {len(match_all_queries)} match-all filters"
        rows.append(_row(label, match_all))
    out = _intro(section, args)
    if rows:
        out += table(TABLE_HEADER, rows)
    out += ["", ratio_line("filtered p99 / unfiltered p99", filtered, unfiltered)]
    if match_all:
        what = f"match-all {len(match_all_queries)}-group p99 / unfiltered p99"
        out += ["", ratio_line(what, match_all, unfiltered)]
    for line in (
        *_by_group("Filtered p99 ms by filter", filtered, queries),
        *_by_group("Match-all p99 ms by filter", match_all, match_all_queries),
    ):
        out += ["", line]
    notes: list[str] = []
    for row, runs in (("unfiltered", unfiltered), ("filtered", filtered), ("match-all", match_all)):
        for index, run in enumerate(runs, 1):
            label = f"filters, {row}" + (f" run {index}" if len(runs) > 1 else "")
            notes += run_notes(label, run)
            notes += log_notes(label, run["relay_log_events"])
    return out, notes


PART = Part(
    key="filters",
    add_flags=add_flags,
    enabled=lambda args: not args.no_filters,
    client_counts=lambda args: [args.filter_clients],
    run=_run,
    result=_result,
    render=render,
)
