"""Flag types of `bench.run` that its parts share: lists of counts, --slow-client policies."""

from __future__ import annotations

import argparse


def int_list(text: str) -> list[int]:
    """A comma-separated list of integers, at least one, all > 0."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers"
        ) from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r} needs at least one value, all > 0")
    return values


def policies(text: str) -> list[str]:
    """A comma-separated list of --slow-client policies."""
    values = [part.strip() for part in text.split(",") if part.strip()]
    if not values or any(value not in ("conflate", "close") for value in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give conflate, close or both, comma-separated")
    return values
