"""`python -m bench.soak`: its flags, and the run."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from harness.processes import raise_nofile

from ..runner import run_harness
from . import __doc__ as DESCRIPTION
from .report import render
from .run import soak


def _positive(kind: type) -> Any:
    """An argparse type: `kind`, finite and > 0."""

    def parse(text: str) -> Any:
        value = kind(text)
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """Every flag of `bench.soak`."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description=(DESCRIPTION or "").splitlines()[0],
    )
    parser.add_argument(
        "--duration",
        type=_positive(float),
        default=600.0,
        help="seconds of publishing and faults (default 600)",
    )
    parser.add_argument(
        "--clients",
        type=_positive(int),
        default=1000,
        help="WebSocket clients kept connected (default 1000)",
    )
    parser.add_argument(
        "--rate", type=_positive(float), default=10.0, help="messages per second (default 10)"
    )
    parser.add_argument(
        "--churn",
        type=float,
        default=0.01,
        help="share of the clients replaced every second (default 0.01)",
    )
    parser.add_argument(
        "--redis-kill-every",
        type=float,
        default=120.0,
        help="SIGKILL redis-server this often, s; 0: never (default 120)",
    )
    parser.add_argument(
        "--redis-down",
        type=float,
        default=1.0,
        help="seconds between the kill and the restart (default 1)",
    )
    parser.add_argument(
        "--worker-kill-at",
        type=float,
        default=None,
        help="SIGKILL one worker this many s in; <= 0: never "
        "(default: half the duration, kept 15 s clear of a Redis kill)",
    )
    parser.add_argument(
        "--worker-kill-index", type=int, default=1, help="which worker to kill (default 1)"
    )
    parser.add_argument(
        "--workers",
        type=_positive(int),
        default=2,
        help="relay workers, serve --workers (default 2)",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=1.0,
        help="s of slack around windows and session ends (default 1)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=30.0,
        help="s of publishing before the start RSS is read (default 30)",
    )
    parser.add_argument("--seed", type=int, default=1, help="churn and port seed (default 1)")
    parser.add_argument("--json", type=Path, default=None, help="write the full result here")
    parser.add_argument(
        "--keep-logs",
        action="store_true",
        help="keep the run directory (relay.log, sessions.json, ...)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Checks the flags, runs the soak, prints its report; the exit code."""
    args = build_parser().parse_args(argv)
    if not 0 <= args.churn < 1:
        print("soak: --churn must be in [0, 1)", file=sys.stderr)
        return 2
    if 0 < args.redis_kill_every < args.redis_down + 10:
        print("soak: --redis-kill-every must leave Redis up 10 s between kills", file=sys.stderr)
        return 2
    if args.worker_kill_index >= args.workers or args.worker_kill_index < 0:
        print("soak: --worker-kill-index must name one of the workers", file=sys.stderr)
        return 2
    needed = args.clients * 2 + 256
    nofile = raise_nofile(needed)  # the relay inherits it (and raises its own to the hard limit)
    if nofile < needed:
        print(f"soak: RLIMIT_NOFILE can only reach {nofile}; {needed} needed", file=sys.stderr)
        return 2
    code, result = run_harness(
        "soak",
        lambda children, run_dir: soak(args, children, run_dir),
        keep_logs=args.keep_logs,
    )
    if code != 0 or result is None:
        return int(code)
    print(render(result))
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
