"""`python -m bench.run`: start Redis, relays and client processes; measure; print tables."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import shlex
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

from pingpong_relay.parsing import positive_float, positive_int

from .parts import client_procs, policies, run_burst, run_idle, run_slow
from .procs import (
    BenchError,
    Children,
    ClientFleet,
    RedisServer,
    RelayProcess,
    run_harness,
    scan_relay_log,
    split_evenly,
)
from .report import render_report
from .rounds import (
    ANALYSIS_TIMEOUT_S,
    CHANNEL,
    CONNECT_TIMEOUT_S,
    ClientFilter,
    connect_clients,
    fd_room,
    message_of,
    progress,
    run_round,
)
from .system import raise_nofile

# The filter scenario: bots on their own channels, relayed through one PSUBSCRIBE pattern.
FILTER_CHANNEL_PATTERN = "bot:*:pingpong"
FILTER_CHANNELS = ("bot:a:pingpong", "bot:b:pingpong")
# Room for the harness's own fds (Redis, HTTP, pipes to its children).
FD_MARGIN = 256
# Room a client process keeps beside its connections (bench.clients checks the same).
CLIENT_FD_MARGIN = 64
# Re-exported for anyone who imported them from here before they moved.
__all__ = ["CHANNEL", "ClientFilter", "main", "message_of"]


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers"
        ) from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r} needs at least one value, all > 0")
    return values


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
# first in a run; with --repeat the order rotates (see run_all).
FILTER_VARIANTS: dict[str, tuple[ClientFilter, ...]] = {
    "unfiltered": (UNFILTERED,),
    "filtered": FILTERS,
    "match_all": MATCH_ALL_FILTERS,
}


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
            raise BenchError(f"match-all filter ?{f.query} would exclude {excluded}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark the relay on loopback: its own redis-server, one relay process "
        "per scenario (INFO logging, JSON lines to a file), and one or two uvloop processes of "
        "picows clients. Prints Markdown tables: latency, loss, memory and CPU per scenario; "
        "the highest publish rate sustained at --throughput-clients; server-side filters; "
        "idle memory per connection; a burst; one stalled client among readers. Every part "
        "but the scenarios can be skipped with its --no-* flag. Asserts nothing.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--clients",
        type=_int_list,
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
        "--relay-args",
        type=shlex.split,
        default="",
        metavar="'ARGS'",
        help="extra arguments for every relay the harness starts (every part), shell-quoted "
        "as one string, e.g. --relay-args '--workers 2'",
    )
    parser.add_argument(
        "--client-procs",
        type=int,
        choices=(1, 2),
        default=None,
        help="client processes holding the connections (each has its own open-file limit "
        "and core); default: 2 for more than 8,000 clients, else 1",
    )
    parser.add_argument(
        "--rate",
        type=positive_float,
        default=20.0,
        help="publish rate of the scenarios, messages/s",
    )
    parser.add_argument(
        "--duration", type=positive_float, default=10.0, help="seconds of publishing per scenario"
    )
    parser.add_argument(
        "--repeat",
        type=positive_int,
        default=1,
        help="run every scenario (and the throughput search) K times and print "
        "medians; the machine is shared and noisy, so 3 is worth it",
    )
    parser.add_argument(
        "--throughput-clients",
        type=positive_int,
        default=1000,
        help="clients during the throughput search",
    )
    parser.add_argument(
        "--throughput-rates",
        type=_int_list,
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
    parser.add_argument(
        "--idle-clients",
        type=_int_list,
        default="10000,20000",
        help="idle memory: client counts, one relay each; its RSS per connection with no "
        "messages flowing",
    )
    parser.add_argument("--no-idle", action="store_true", help="skip the idle-memory part")
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
    parser.add_argument(
        "--drain-timeout",
        type=positive_float,
        default=5.0,
        help="seconds clients wait for the last message after publishing ends",
    )
    parser.add_argument(
        "--connect-concurrency",
        type=positive_int,
        default=50,
        help="client handshakes in flight at once",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="PATH",
        help="also write every raw result to this JSON file",
    )
    parser.add_argument(
        "--keep-logs",
        action="store_true",
        help="keep the run directory (relay, redis and client logs)",
    )
    return parser


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
    return [ScenarioSpec(n) for n in args.clients] + [
        _scenario_spec(text) for text in args.extra_scenario
    ]


async def run_scenario(
    children: Children,
    redis_url: str,
    bot: aioredis.Redis,
    run_dir: Path,
    args: argparse.Namespace,
    clients: int,
    label: str,
    *,
    filters: Sequence[ClientFilter] | None = None,
    relay_args: Sequence[str] = (),
) -> dict[str, Any]:
    """One relay, `clients` connections, one publishing round.

    With `filters` it is the filter scenario: the relay also PSUBSCRIBEs to
    FILTER_CHANNEL_PATTERN, the publisher spreads messages over FILTER_CHANNELS, and the
    clients are split evenly across the filters (one group per filter, each with its query).
    The relay gets --relay-args, then `relay_args`. When fewer clients connect than asked
    (a relay out of file descriptors), the round runs with those that did, and the result
    says how many.
    """
    all_relay_args = [*args.relay_args, *relay_args]
    channels: tuple[str, ...] = (CHANNEL,)
    counts = [clients]
    if filters is not None:
        all_relay_args += ["--channel-pattern", FILTER_CHANNEL_PATTERN]
        channels = FILTER_CHANNELS
        counts = split_evenly(clients, len(filters))
    relay = RelayProcess(children, redis_url, run_dir / f"relay-{label}.log", all_relay_args)
    fleet = ClientFleet(children, run_dir / f"clients-{label}.log", client_procs(args, clients))
    life_s = CONNECT_TIMEOUT_S + ANALYSIS_TIMEOUT_S + args.duration * 2 + args.drain_timeout + 90
    try:
        await relay.start()
        # Touch the HTTP plane once first, so its lazy set-up is not billed to the clients.
        await relay.health()
        await relay.metrics()
        await asyncio.sleep(0.3)
        room = fd_room(relay)
        rss_before = relay.rss_bytes()
        if filters is None:
            groups = [(relay.ws_url, clients)]
        else:
            groups = [(relay.ws_url_with(f.query), n) for f, n in zip(filters, counts, strict=True)]
        connect = await connect_clients(fleet, relay, groups, args.connect_concurrency, life_s)
        rss_connected = relay.rss_bytes()
        result = await run_round(
            relay,
            fleet,
            bot,
            run_dir,
            round_id=0,
            rate=args.rate,
            duration_s=args.duration,
            drain_s=args.drain_timeout,
            channels=channels,
            filters=filters,
        )
        rss_after = relay.rss_bytes()
    finally:
        await fleet.stop()
        await relay.stop()
    connected = connect["connected"]
    return {
        "relay_args": all_relay_args,
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
        "rss_kb_per_conn": (rss_connected - rss_before) / 1024 / connected,
        "relay_log_events": scan_relay_log(relay.log_path),
        **result,
        # After the round's analysis, whose "clients" counts those that took part.
        "clients": clients,
    }


async def run_throughput(
    children: Children,
    redis_url: str,
    bot: aioredis.Redis,
    run_dir: Path,
    args: argparse.Namespace,
    label: str,
) -> dict[str, Any]:
    """Publish rates in rising steps against one set of clients; stop at the first failure."""
    clients = args.throughput_clients
    relay = RelayProcess(children, redis_url, run_dir / f"relay-{label}.log", args.relay_args)
    fleet = ClientFleet(children, run_dir / f"clients-{label}.log", client_procs(args, clients))
    per_step_s = args.throughput_step * 2 + args.drain_timeout + ANALYSIS_TIMEOUT_S
    life_s = CONNECT_TIMEOUT_S + per_step_s * len(args.throughput_rates) + 90
    steps: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    try:
        await relay.start()
        connect = await connect_clients(
            fleet, relay, [(relay.ws_url, clients)], args.connect_concurrency, life_s
        )
        for round_id, rate in enumerate(args.throughput_rates):
            step = await run_round(
                relay,
                fleet,
                bot,
                run_dir,
                round_id=round_id,
                rate=rate,
                duration_s=args.throughput_step,
                drain_s=args.drain_timeout,
            )
            step["failures"] = _step_failures(step, args.throughput_p99_ms)
            steps.append(step)
            if step["failures"]:
                break
            best = step
    finally:
        await fleet.stop()
        await relay.stop()
    return {
        "clients": clients,
        "connected": connect["connected"],
        "p99_limit_ms": args.throughput_p99_ms,
        "steps": steps,
        "best_rate": best["rate"] if best else math.nan,
        "best_deliveries_per_s": best["deliveries_per_s"] if best else math.nan,
        "relay_log_events": scan_relay_log(relay.log_path),
    }


def _step_failures(step: dict[str, Any], p99_limit_ms: float) -> list[str]:
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


async def run_all(args: argparse.Namespace, children: Children, run_dir: Path) -> dict[str, Any]:
    main_task = asyncio.current_task()
    assert main_task is not None
    # SIGTERM unwinds like Ctrl-C does, through every finally that stops a child.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    redis_server = RedisServer(children, run_dir)
    specs = scenario_specs(args)
    scenarios: dict[ScenarioSpec, list[dict[str, Any]]] = {spec: [] for spec in specs}
    throughput: list[dict[str, Any]] = []
    filter_runs: dict[str, list[dict[str, Any]]] = {key: [] for key in FILTER_VARIANTS}
    idle_runs: dict[int, list[dict[str, Any]]] = {n: [] for n in args.idle_clients}
    burst_runs: dict[str, list[dict[str, Any]]] = {p: [] for p in args.burst_policies}
    slow_rows = ["reading", *args.slow_policies]
    slow_runs: dict[str, list[dict[str, Any]]] = {row: [] for row in slow_rows}
    started = time.monotonic()
    runs_of = f"/{args.repeat}"
    try:
        await redis_server.start()
        bot = aioredis.from_url(redis_server.url, socket_timeout=10)
        try:
            for repeat in range(args.repeat):
                r = repeat + 1
                for spec in specs:
                    progress(f"scenario {spec.key} clients, run {r}{runs_of}")
                    run = await run_scenario(
                        children,
                        redis_server.url,
                        bot,
                        run_dir,
                        args,
                        spec.clients,
                        f"{spec.slug}-r{r}",
                        relay_args=spec.relay_args,
                    )
                    short = (
                        f", only {run['connected']:,} connected"
                        if run["connected"] < spec.clients
                        else ""
                    )
                    progress(
                        f"  p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms, "
                        f"lost {run['lost']}{short}"
                    )
                    scenarios[spec].append(run)
                if not args.no_throughput:
                    progress(f"throughput at {args.throughput_clients} clients, run {r}{runs_of}")
                    search = await run_throughput(
                        children, redis_server.url, bot, run_dir, args, f"throughput-r{r}"
                    )
                    progress(f"  best {search['best_rate']} msg/s")
                    throughput.append(search)
                if not args.no_filters:
                    # Rotate which row goes first (and last), so drift in the machine's
                    # load hits every row alike over the repeats.
                    rows = list(FILTER_VARIANTS)
                    shift = repeat % len(rows)
                    for row in rows[shift:] + rows[:shift]:
                        n = args.filter_clients
                        progress(f"filters: {n} clients {row}, run {r}{runs_of}")
                        run = await run_scenario(
                            children,
                            redis_server.url,
                            bot,
                            run_dir,
                            args,
                            n,
                            f"filters-{row}-r{r}",
                            filters=FILTER_VARIANTS[row],
                        )
                        progress(
                            f"  p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms, "
                            f"lost {run['lost']}, unexpected {run['unexpected']}"
                        )
                        filter_runs[row].append(run)
                if not args.no_idle:
                    for n in args.idle_clients:
                        progress(f"idle memory: {n} clients, run {r}{runs_of}")
                        run = await run_idle(
                            children, redis_server.url, run_dir, args, n, f"idle-{n}c-r{r}"
                        )
                        progress(
                            f"  {run['relay_clients']} held, {run['rss_kb_per_conn']:.1f} KB/conn"
                        )
                        idle_runs[n].append(run)
                if not args.no_burst:
                    # Rotated like the filter rows.
                    shift = repeat % len(args.burst_policies)
                    order = args.burst_policies[shift:] + args.burst_policies[:shift]
                    for policy in order:
                        progress(
                            f"burst: {args.burst_messages} messages to {args.burst_clients} "
                            f"clients, --slow-client {policy}, run {r}{runs_of}"
                        )
                        run = await run_burst(
                            children,
                            redis_server.url,
                            bot,
                            run_dir,
                            args,
                            policy,
                            f"burst-{policy}-r{r}",
                        )
                        progress(
                            f"  drained in {run['span_s'] * 1e3:.0f} ms, "
                            f"{run['cpu_us_per_delivery']:.2f} µs/delivery, lost {run['lost']}"
                        )
                        burst_runs[policy].append(run)
                if not args.no_slow:
                    shift = repeat % len(slow_rows)
                    for row in slow_rows[shift:] + slow_rows[:shift]:
                        policy = None if row == "reading" else row
                        what = "all reading" if policy is None else f"+1 stalled, {policy}"
                        progress(
                            f"slow client: {args.slow_clients} clients {what}, run {r}{runs_of}"
                        )
                        run = await run_slow(
                            children,
                            redis_server.url,
                            bot,
                            run_dir,
                            args,
                            policy,
                            f"slow-{row}-r{r}",
                        )
                        progress(
                            f"  p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms, "
                            f"lost {run['lost']}"
                        )
                        slow_runs[row].append(run)
        finally:
            await bot.aclose()
    finally:
        await redis_server.stop()
    return {
        "meta": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_at_end": os.getloadavg(),
            "elapsed_s": round(time.monotonic() - started, 1),
        },
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "scenarios": [
            {"clients": spec.clients, "relay_args": list(spec.relay_args), "runs": runs}
            for spec, runs in scenarios.items()
        ],
        "throughput": throughput,
        "filters": (
            None
            if args.no_filters
            else {
                "clients": args.filter_clients,
                "channel_pattern": FILTER_CHANNEL_PATTERN,
                "channels": list(FILTER_CHANNELS),
                "queries": [f.query for f in FILTERS],
                "match_all_queries": [f.query for f in MATCH_ALL_FILTERS],
                **filter_runs,
            }
        ),
        "idle": (
            None
            if args.no_idle
            else [{"clients": n, "runs": runs} for n, runs in idle_runs.items()]
        ),
        "burst": (
            None
            if args.no_burst
            else {
                "clients": args.burst_clients,
                "messages": args.burst_messages,
                "rows": [{"policy": p, "runs": runs} for p, runs in burst_runs.items()],
            }
        ),
        "slow": (
            None
            if args.no_slow
            else {
                "clients": args.slow_clients,
                "rows": [
                    {"policy": None if row == "reading" else row, "runs": runs}
                    for row, runs in slow_runs.items()
                ],
            }
        ),
    }


def _client_counts(args: argparse.Namespace) -> list[int]:
    """Every client count some part of this run will connect."""
    counts = [spec.clients for spec in scenario_specs(args)]
    counts += [] if args.no_throughput else [args.throughput_clients]
    counts += [] if args.no_filters else [args.filter_clients]
    counts += [] if args.no_idle else list(args.idle_clients)
    counts += [] if args.no_burst else [args.burst_clients]
    counts += [] if args.no_slow else [args.slow_clients]
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        scenario_specs(args)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    try:
        check_match_all(MATCH_ALL_FILTERS, FILTER_CHANNELS)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    # The soft limit goes up to the hard one; the children inherit it. Each client process
    # needs one descriptor per connection it holds; the relay gets what it gets (it raises
    # its own soft limit to the hard one) and a row it cannot hold says so.
    nofile = raise_nofile(FD_MARGIN)
    for clients in _client_counts(args):
        procs = client_procs(args, clients)
        per_process = math.ceil(clients / procs) + CLIENT_FD_MARGIN
        if per_process > nofile:
            print(
                f"bench: {clients:,} clients in {procs} process(es) need {per_process:,} open "
                f"files each; RLIMIT_NOFILE can only reach {nofile:,}"
                + ("" if procs > 1 else " (try --client-procs 2)"),
                file=sys.stderr,
            )
            return 2
    code, results = run_harness(
        "bench",
        lambda children, run_dir: run_all(args, children, run_dir),
        keep_logs=args.keep_logs,
    )
    if code != 0:
        return code
    print(render_report(results))
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
