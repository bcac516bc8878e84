"""`python -m bench.run`: start Redis, relays and client processes; measure; print tables."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fnmatch
import math
import os
import platform
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

from pingpong_relay.config import positive_float, positive_int

from .procs import (
    BenchError,
    Children,
    ClientFleet,
    RedisServer,
    RelayProcess,
    run_harness,
    scan_relay_log,
)
from .report import render_report
from .system import raise_nofile

CHANNEL = "bot:pingpong"
SOURCE = "bot"
# The filter scenario: bots on their own channels, relayed through one PSUBSCRIBE pattern.
FILTER_CHANNEL_PATTERN = "bot:*:pingpong"
FILTER_CHANNELS = ("bot:a:pingpong", "bot:b:pingpong")
# Room for the relay's own fds (Redis, HTTP plane, log file, listening sockets).
FD_MARGIN = 256
CONNECT_TIMEOUT_S = 120.0
ANALYSIS_TIMEOUT_S = 120.0


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


@dataclass(frozen=True, slots=True)
class ClientFilter:
    """A connect-time query and, written out independently of the relay, what it lets through.

    The expectation is not computed with the relay's own filter code, so a bug there shows
    up as lost or unexpected deliveries rather than being mirrored here.
    """

    label: str
    query: str
    kinds: frozenset[str] | None = None  # None: every type
    bot_pattern: str | None = None  # shell-style pattern on "<channel>/<source>"; None: all

    def wants(self, channel: str, kind: str) -> bool:
        if self.kinds is not None and kind not in self.kinds:
            return False
        return self.bot_pattern is None or fnmatch.fnmatchcase(
            f"{channel}/{SOURCE}", self.bot_pattern
        )


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


def split_evenly(total: int, parts: int) -> list[int]:
    return [total // parts + (i < total % parts) for i in range(parts)]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark the relay on loopback: its own redis-server, one relay process "
        "per scenario (INFO logging, JSON lines to a file), and one uvloop process of picows "
        "clients. Prints a Markdown table of latency, loss, memory and CPU per scenario, then "
        "the highest publish rate sustained at --throughput-clients. Asserts nothing.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--clients",
        type=_int_list,
        default="100,500,1000,2000",
        help="comma-separated client counts, one scenario each",
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


@dataclass(slots=True)
class Published:
    count: int
    unheard: int
    first_sent_ns: int
    elapsed_s: float
    messages: list[tuple[str, str]] = field(default_factory=list)  # (channel, type) by seq

    @property
    def rate(self) -> float:
        return self.count / self.elapsed_s if self.elapsed_s > 0 else math.nan


def message_of(seq: int, channels: Sequence[str]) -> tuple[str, str]:
    """(channel, type) of message `seq`: ping/pong alternate, and each bot gets a ping and
    then a pong in turn, so that no type filter selects the same messages as a bot filter."""
    return channels[(seq // 2) % len(channels)], "ping" if seq % 2 == 0 else "pong"


async def publish(
    bot: aioredis.Redis,
    round_id: int,
    rate: float,
    count: int,
    time_limit_s: float,
    channels: Sequence[str] = (CHANNEL,),
) -> Published:
    """Publish `count` valid bot messages at `rate`, never skipping one to catch up."""
    loop = asyncio.get_running_loop()
    interval_s = 1.0 / rate
    start = loop.time()
    first_sent_ns = 0
    unheard = 0
    published = 0
    messages: list[tuple[str, str]] = []
    last_start = start
    for seq in range(count):
        now = loop.time()
        if now - start > time_limit_s:
            break
        target = start + seq * interval_s
        if target > now:
            await asyncio.sleep(target - now)
        last_start = loop.time()
        sent_ns = time.time_ns()
        first_sent_ns = first_sent_ns or sent_ns
        channel, kind = message_of(seq, channels)
        payload = orjson.dumps(
            {
                "type": kind,
                "latency": 12.3,
                "timestamp": sent_ns // 1_000_000,
                "source": SOURCE,
                "seq": seq,
                "round": round_id,
                "sent_ns": sent_ns,
            }
        )
        receivers = int(await bot.publish(channel, payload))
        unheard += receivers == 0
        published += 1
        messages.append((channel, kind))
    # `published` slots of one interval each: exactly count/rate when on schedule.
    elapsed_s = last_start - start + interval_s
    return Published(published, unheard, first_sent_ns, elapsed_s, messages)


def histogram_quantile_ms(
    before: dict[str, float], after: dict[str, float], name: str, fraction: float
) -> float:
    """Upper bound (ms) of the bucket holding the `fraction` quantile of a histogram's delta.

    Bucket resolution only: the answer is "at most this". NaN with no observations,
    inf when the quantile lies beyond the last finite bucket.
    """
    prefix = f"{name}_bucket:"
    bounds = sorted(
        (float(key[len(prefix) :]), after[key] - before.get(key, 0.0))
        for key in after
        if key.startswith(prefix)
    )
    total = bounds[-1][1] if bounds else 0.0
    if total <= 0:
        return math.nan
    for bound, cumulative in bounds:
        if cumulative >= fraction * total:
            return bound * 1e3
    return math.inf


def _metric_deltas(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    histogram = "pingpong_relay_latency_seconds"
    broadcasts = delta(f"{histogram}_count")
    return {
        "forwarded": delta("pingpong_messages_forwarded_total"),
        "deliveries": delta("pingpong_deliveries_total"),
        "send_failures": delta("pingpong_send_failures_total"),
        "slow_client_closes": delta("pingpong_slow_client_closes_total"),
        "broadcast_mean_ms": (
            delta("pingpong_relay_latency_seconds_sum") / broadcasts * 1e3
            if broadcasts
            else math.nan
        ),
        "broadcast_p50_ms_bucket": histogram_quantile_ms(before, after, histogram, 0.50),
        "broadcast_p99_ms_bucket": histogram_quantile_ms(before, after, histogram, 0.99),
    }


async def run_round(
    relay: RelayProcess,
    fleet: ClientFleet,
    bot: aioredis.Redis,
    run_dir: Path,
    *,
    round_id: int,
    rate: float,
    duration_s: float,
    drain_s: float,
    channels: Sequence[str] = (CHANNEL,),
    filters: Sequence[ClientFilter] | None = None,
) -> dict[str, Any]:
    """One publishing phase against connected clients; latency, loss and relay CPU of it.

    With `filters` (one per client group, in the fleet's group order) each group is
    checked against the subset of what was published that its filter lets through.
    """
    planned = max(1, round(rate * duration_s))
    await fleet.send({"cmd": "arm", "round": round_id, "capacity": planned + 16})
    await fleet.expect("armed", 30.0)
    metrics_before = await relay.metrics()
    cpu_before = relay.cpu_times()
    published = await publish(bot, round_id, rate, planned, duration_s * 1.5 + 2.0, channels)
    out = run_dir / f"round-{os.getpid()}-{time.monotonic_ns()}.json"
    collect: dict[str, Any] = {
        "cmd": "collect",
        "round": round_id,
        "count": published.count,
        "timeout_s": drain_s,
        "out": str(out),
    }
    if filters is not None:
        collect["wanted"] = [
            [int(f.wants(channel, kind)) for channel, kind in published.messages] for f in filters
        ]
    await fleet.send(collect)
    # Relay CPU is read as soon as the clients hold everything (or gave up waiting), so the
    # client's parsing that follows does not stretch the window.
    complete = await fleet.expect("complete", drain_s + 30.0)
    cpu_after = relay.cpu_times()
    cpu_user_s = cpu_after[0] - cpu_before[0]
    cpu_system_s = cpu_after[1] - cpu_before[1]
    cpu_s = cpu_user_s + cpu_system_s
    await fleet.expect("result", ANALYSIS_TIMEOUT_S)
    analysis: dict[str, Any] = orjson.loads(out.read_bytes())
    out.unlink()
    metrics_after = await relay.metrics()
    delivered = int(analysis["delivered"])
    span_s = (analysis["last_received_ns"] - published.first_sent_ns) / 1e9
    latency = analysis["latency_ms"]
    return {
        "round": round_id,
        "rate": rate,
        "duration_s": duration_s,
        "drain_s": drain_s,
        "published": published.count,
        "planned": planned,
        "publish_rate": published.rate,
        "unheard_publishes": published.unheard,
        "all_received": complete["all_received"],
        "p50_ms": latency["p50"],
        "p99_ms": latency["p99"],
        "max_ms": latency["max"],
        "relay_cpu_s": cpu_s,
        "relay_cpu_user_s": cpu_user_s,
        "relay_cpu_system_s": cpu_system_s,
        "cpu_us_per_delivery": cpu_s / delivered * 1e6 if delivered else math.nan,
        "deliveries_per_s": delivered / span_s if delivered and span_s > 0 else math.nan,
        "relay_metrics": _metric_deltas(metrics_before, metrics_after),
        **{k: v for k, v in analysis.items() if k != "latency_ms"},
        "latency_ms": latency,
    }


async def _connect(
    fleet: ClientFleet,
    relay: RelayProcess,
    groups: Sequence[tuple[str, int]],
    args: argparse.Namespace,
    life_s: float,
) -> int:
    await fleet.start(groups, life_s, args.connect_concurrency, CONNECT_TIMEOUT_S)
    connected = int(fleet.ready["connected"])
    if connected == 0:
        raise BenchError(f"no client could connect: {fleet.ready.get('errors')}")
    await relay.wait_clients(connected, 30.0)
    return connected


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
) -> dict[str, Any]:
    """One relay, `clients` connections, one publishing round.

    With `filters` it is the filter scenario: the relay also PSUBSCRIBEs to
    FILTER_CHANNEL_PATTERN, the publisher spreads messages over FILTER_CHANNELS, and the
    clients are split evenly across the filters (one group per filter, each with its query).
    """
    relay_args: tuple[str, ...] = ()
    channels: tuple[str, ...] = (CHANNEL,)
    counts = [clients]
    if filters is not None:
        relay_args = ("--channel-pattern", FILTER_CHANNEL_PATTERN)
        channels = FILTER_CHANNELS
        counts = split_evenly(clients, len(filters))
    relay = RelayProcess(children, redis_url, run_dir / f"relay-{label}.log", relay_args)
    fleet = ClientFleet(children, run_dir / f"clients-{label}.log")
    life_s = CONNECT_TIMEOUT_S + ANALYSIS_TIMEOUT_S + args.duration * 2 + args.drain_timeout + 60
    try:
        await relay.start()
        _check_relay_fds(relay, clients)
        # Touch the HTTP plane once first, so its lazy set-up is not billed to the clients.
        await relay.health()
        await relay.metrics()
        await asyncio.sleep(0.3)
        rss_before = relay.rss_bytes()
        if filters is None:
            groups = [(relay.ws_url, clients)]
        else:
            groups = [(relay.ws_url_with(f.query), n) for f, n in zip(filters, counts, strict=True)]
        connected = await _connect(fleet, relay, groups, args, life_s)
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
    return {
        "clients": clients,
        "connected": connected,
        "connect_failed": fleet.ready.get("failed", 0),
        "connect_errors": fleet.ready.get("errors", []),
        "connect_s": fleet.ready.get("connect_s"),
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
    relay = RelayProcess(children, redis_url, run_dir / f"relay-{label}.log")
    fleet = ClientFleet(children, run_dir / f"clients-{label}.log")
    per_step_s = args.throughput_step * 2 + args.drain_timeout + ANALYSIS_TIMEOUT_S
    life_s = CONNECT_TIMEOUT_S + per_step_s * len(args.throughput_rates) + 60
    steps: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    try:
        await relay.start()
        _check_relay_fds(relay, clients)
        connected = await _connect(fleet, relay, [(relay.ws_url, clients)], args, life_s)
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
        "connected": connected,
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


def _check_relay_fds(relay: RelayProcess, clients: int) -> None:
    limit = relay.nofile_limit()
    if limit < clients + FD_MARGIN:
        raise BenchError(f"relay RLIMIT_NOFILE {limit} < {clients + FD_MARGIN} needed")


async def run_all(args: argparse.Namespace, children: Children, run_dir: Path) -> dict[str, Any]:
    main_task = asyncio.current_task()
    assert main_task is not None
    # SIGTERM unwinds like Ctrl-C does, through every finally that stops a child.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    redis_server = RedisServer(children, run_dir)
    scenarios: dict[int, list[dict[str, Any]]] = {n: [] for n in args.clients}
    throughput: list[dict[str, Any]] = []
    filter_runs: dict[str, list[dict[str, Any]]] = {key: [] for key in FILTER_VARIANTS}
    started = time.monotonic()
    try:
        await redis_server.start()
        bot = aioredis.from_url(redis_server.url, socket_timeout=10)
        try:
            for repeat in range(args.repeat):
                for clients in args.clients:
                    label = f"{clients}c-r{repeat + 1}"
                    _progress(f"scenario {clients} clients, run {repeat + 1}/{args.repeat}")
                    run = await run_scenario(
                        children, redis_server.url, bot, run_dir, args, clients, label
                    )
                    _progress(
                        f"  p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms, "
                        f"lost {run['lost']}"
                    )
                    scenarios[clients].append(run)
                if not args.no_throughput:
                    _progress(
                        f"throughput at {args.throughput_clients} clients, "
                        f"run {repeat + 1}/{args.repeat}"
                    )
                    search = await run_throughput(
                        children, redis_server.url, bot, run_dir, args, f"throughput-r{repeat + 1}"
                    )
                    _progress(f"  best {search['best_rate']} msg/s")
                    throughput.append(search)
                if not args.no_filters:
                    # Rotate which row goes first (and last), so drift in the machine's
                    # load hits every row alike over the repeats.
                    rows = list(FILTER_VARIANTS)
                    shift = repeat % len(rows)
                    for row in rows[shift:] + rows[:shift]:
                        n = args.filter_clients
                        _progress(f"filters: {n} clients {row}, run {repeat + 1}/{args.repeat}")
                        run = await run_scenario(
                            children,
                            redis_server.url,
                            bot,
                            run_dir,
                            args,
                            n,
                            f"filters-{row}-r{repeat + 1}",
                            filters=FILTER_VARIANTS[row],
                        )
                        _progress(
                            f"  p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms, "
                            f"lost {run['lost']}, unexpected {run['unexpected']}"
                        )
                        filter_runs[row].append(run)
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
        "scenarios": [{"clients": n, "runs": runs} for n, runs in scenarios.items()],
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
    }


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    counts = [*args.clients, args.throughput_clients]
    counts += [] if args.no_filters else [args.filter_clients]
    needed = max(counts) + FD_MARGIN
    try:
        check_match_all(MATCH_ALL_FILTERS, FILTER_CHANNELS)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    nofile = raise_nofile(needed)
    if nofile < needed:
        print(f"bench: RLIMIT_NOFILE can only reach {nofile}; {needed} needed", file=sys.stderr)
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
