"""`python -m bench.flood`: its flags, and the run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pingpong_relay.parsing import positive_float, positive_int

from ..runner import report_main
from .run import run


def build_parser() -> argparse.ArgumentParser:
    """Every flag of `bench.flood`."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.flood",
        description="A flood of one-message bot ids against a relay with one real bot.",
    )
    parser.add_argument("--junk", type=positive_int, default=50_000, help="junk bot ids")
    parser.add_argument(
        "--batch", type=positive_int, default=1000, help="PUBLISHes per pipeline (one at a time)"
    )
    parser.add_argument(
        "--retention",
        type=positive_float,
        default=60.0,
        help="the relay's --history-retention in seconds: short, so the expiry can be seen",
    )
    parser.add_argument(
        "--timeout", type=positive_float, default=600.0, help="bound on each wait for the relay"
    )
    parser.add_argument(
        "--silence-timeout",
        type=positive_float,
        default=3.0,
        help="the relay's --silence-timeout: the real bot's silence alert, and how long a "
        "restart is watched for alerts it re-fires (this + --silence-for + 3 s)",
    )
    parser.add_argument(
        "--silence-for", type=positive_float, default=2.0, help="the relay's --silence-for"
    )
    parser.add_argument("--relay-args", default="", help="extra relay arguments (one string)")
    parser.add_argument(
        "--no-expiry",
        action="store_true",
        help="do not wait for the junk's history to expire (e.g. against a relay that "
        "never expires it)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the run directory")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the flood and prints its report; the exit code."""
    return report_main("bench.flood", build_parser().parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
