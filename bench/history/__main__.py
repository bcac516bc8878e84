"""`python -m bench.history`: its flags, and the run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pingpong_relay.parsing import positive_int

from ..runner import report_main
from .run import run


def build_parser() -> argparse.ArgumentParser:
    """Every flag of `bench.history`."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.history",
        description=(
            "Load days of one bot's history into a fresh Redis, build the rollups, trim, "
            "and time the relay's /analytics and /history."
        ),
    )
    parser.add_argument("--days", type=positive_int, default=30, help="days generated (30)")
    parser.add_argument(
        "--keep-raw-days",
        type=positive_int,
        default=7,
        help="days of raw stream kept after the rollups, and the relay's retention (7)",
    )
    parser.add_argument(
        "--requests", type=positive_int, default=20, help="timed requests per endpoint (20)"
    )
    parser.add_argument("--warmups", type=int, default=2, help="untimed requests first (2)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the generator (1)")
    parser.add_argument(
        "--backfill-timeout",
        type=float,
        default=3600.0,
        help="seconds the rollup backfill may take before the run fails (3600)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the run directory")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the history benchmark and prints its report; the exit code."""
    return report_main("bench.history", build_parser().parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
