"""`python -m bench.push`: its flags, and the run."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson

from harness.processes import HarnessError
from pingpong_relay.parsing import positive_float, positive_int

from ..runner import run_harness
from .report import render
from .run import run

DESCRIPTION = (
    "Push URLs under load: one relay (pinned to the first core; everything else on the "
    "others) with static push tokens, its own redis-server, --clients WebSocket clients "
    "reading, and a load generator of keep-alive aiohttp connections. Per run: pushes at "
    "--rate for --duration with every delivery timed, the same rate PUBLISHed to Redis, then "
    "pushes as fast as they are answered. Prints a Markdown table; asserts nothing."
)


def build_parser() -> argparse.ArgumentParser:
    """Every flag of `bench.push`."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.push",
        description=DESCRIPTION,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--clients", type=positive_int, default=1000, help="WebSocket clients watching")
    add("--bots", type=positive_int, default=100, help="push tokens, one bot each")
    # 20/s to 1,000 clients is the scenario table's light load (bench.run): well inside one
    # core, so the added delay is the push path's own and not the relay's queue.
    add(
        "--rate",
        type=positive_float,
        default=20.0,
        help="open-loop pushes/s (and PUBLISHes/s); at 200/s and 1,000 clients the relay's "
        "core is nearly full and both delays are mostly queueing",
    )
    add("--duration", type=positive_float, default=10.0, help="seconds of each round")
    add("--concurrency", type=positive_int, default=64, help="push requests in flight at most")
    add(
        "--max-requests",
        type=positive_int,
        default=200_000,
        help="bound on the closed loop's pushes",
    )
    add("--drain-timeout", type=positive_float, default=5.0, help="seconds clients wait after")
    add("--repeat", type=positive_int, default=1, help="runs (a fresh relay each); medians")
    add("--connect-concurrency", type=positive_int, default=50, help="handshakes in flight")
    add(
        "--relay-args",
        type=shlex.split,
        default="",
        metavar="'ARGS'",
        help="extra relay arguments, shell-quoted as one string",
    )
    add("--json", type=Path, default=None, metavar="PATH", help="also write the raw results")
    add("--keep-logs", action="store_true", help="keep the run directory")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark and prints its table; the exit code."""
    args = build_parser().parse_args(argv)
    code, results = run_harness(
        "bench.push",
        lambda children, run_dir: run(args, children, run_dir),
        keep_logs=args.keep_logs,
        errors=(HarnessError, TimeoutError, OSError),
    )
    if code != 0 or results is None:
        return code
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    print(render(settings, results))
    if args.json is not None:
        results = {"args": settings, **results}
        args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
