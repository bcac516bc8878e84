"""`python -m bench.run`: start Redis, relays and client processes; measure; print tables."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import orjson
import redis.asyncio as aioredis

from harness.processes import Children, HarnessError, raise_nofile
from harness.redis_server import RedisServer
from pingpong_relay.parsing import positive_float, positive_int

from .context import Bench, Part, Runs, client_procs
from .notifying import add_flags as add_notification_flags
from .notifying import start_notification_load
from .parts import burst, filters, floor, idle, latency, slow, throughput
from .report import render_report
from .runner import cancel_on_sigterm, run_harness

# In the order they run and print: the scenario table always, the others unless --no-*.
PARTS: Final = (
    latency.PART,
    throughput.PART,
    filters.PART,
    idle.PART,
    burst.PART,
    slow.PART,
    floor.PART,
)
# Room for the harness's own fds (Redis, HTTP, pipes to its children).
FD_MARGIN: Final = 256
# Room a client process keeps beside its connections (bench.clients checks the same).
CLIENT_FD_MARGIN: Final = 64
DESCRIPTION = (
    "Benchmark the relay on loopback: its own redis-server, one relay process "
    "per scenario (INFO logging, JSON lines to a file), and one or two uvloop processes of "
    "picows clients. Prints Markdown tables: latency, loss, memory and CPU per scenario; "
    "the highest publish rate sustained at --throughput-clients; server-side filters; "
    "idle memory per connection; a burst; one stalled client among readers; the floor (the "
    "relay beside a bare picows relay, each pinned to a core). Every part can be skipped "
    "with its --no-* flag. Asserts nothing."
)


def _add_round_flags(parser: argparse.ArgumentParser) -> None:
    """The flags every part's relays and rounds share (before the parts' own)."""
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


def _add_run_flags(parser: argparse.ArgumentParser) -> None:
    """The flags after the parts' own: draining, connecting, output."""
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
        help="keep the run directory (relay and client logs)",
    )


def build_parser() -> argparse.ArgumentParser:
    """Every flag: the scenario rows', the shared ones, each part's, then the run's."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=DESCRIPTION,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    PARTS[0].add_flags(parser)
    _add_round_flags(parser)
    for part in PARTS[1:]:
        part.add_flags(parser)
    add_notification_flags(parser)
    _add_run_flags(parser)
    return parser


def _meta(started: float) -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_at_end": os.getloadavg(),
        "elapsed_s": round(time.monotonic() - started, 1),
    }


async def run_all(args: argparse.Namespace, children: Children, run_dir: Path) -> dict[str, Any]:
    """Every enabled part, --repeat times (all parts of round 1, then of round 2, …)."""
    cancel_on_sigterm()
    enabled = [part for part in PARTS if part.enabled(args)]
    runs: dict[str, Runs] = {part.key: {} for part in PARTS}
    started = time.monotonic()
    redis_server = RedisServer()
    try:
        await redis_server.start()
        bot = aioredis.from_url(redis_server.url, socket_timeout=10)
        redis_pid = None if redis_server.process is None else redis_server.process.pid
        bench = Bench(children, redis_server.url, bot, run_dir, args, redis_pid)
        async with contextlib.AsyncExitStack() as extras:
            load = await start_notification_load(args, children, redis_server.url, extras)
            try:
                for repeat in range(args.repeat):
                    for part in enabled:
                        await part.run(bench, runs[part.key], repeat)
            finally:
                await bot.aclose()
    finally:
        redis_server.stop()
    return {
        "meta": {**_meta(started), "notifications_received": load.received},
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        **{part.key: part.result(args, runs[part.key]) for part in PARTS},
    }


def _check_nofile(args: argparse.Namespace, parts: Sequence[Part]) -> str | None:
    """Why some part's client processes could not hold their connections, or None.

    The soft limit goes up to the hard one; the children inherit it. Each client process
    needs one descriptor per connection it holds; the relay gets what it gets (it raises
    its own soft limit to the hard one) and a row it cannot hold says so.
    """
    nofile = raise_nofile(FD_MARGIN)
    for part in parts:
        for clients in part.client_counts(args):
            procs = client_procs(args, clients)
            per_process = math.ceil(clients / procs) + CLIENT_FD_MARGIN
            if per_process > nofile:
                return (
                    f"{clients:,} clients in {procs} process(es) need {per_process:,} open "
                    f"files each; RLIMIT_NOFILE can only reach {nofile:,}"
                    + ("" if procs > 1 else " (try --client-procs 2)")
                )
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Parses the flags, runs every part, prints the report; the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        latency.scenario_specs(args)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    try:
        filters.check_match_all(filters.MATCH_ALL_FILTERS, latency.FILTER_CHANNELS)
    except HarnessError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    problem = _check_nofile(args, [part for part in PARTS if part.enabled(args)])
    if problem is not None:
        print(f"bench: {problem}", file=sys.stderr)
        return 2
    code, results = run_harness(
        "bench",
        lambda children, run_dir: run_all(args, children, run_dir),
        keep_logs=args.keep_logs,
    )
    if code != 0 or results is None:
        return code
    print(render_report(results, PARTS))
    if args.notify_channels or args.flapping_bots:
        print(
            f"\nNotification load: {args.notify_channels} channel(s), {args.flapping_bots} "
            f"flapping bot(s); {results['meta']['notifications_received']} notification(s) "
            "received"
        )
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
