"""What the rollup test modules share: one start time, rollups of pings, their states."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from pingpong_relay.histogram import LogHistogram
from pingpong_relay.rollups import HOUR_MS, MINUTE_MS, Rollup, build_rollup, minute_of

Message = tuple[int, str | None, float | None]

# An hour boundary (and so a minute and a second boundary) near November 2023.
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS
QUANTILES = (0.0, 0.25, 0.5, 0.95, 0.99, 1.0)


def histogram_state(hist: LogHistogram) -> tuple[Any, ...]:
    """Everything a histogram tells through its public API."""
    return (
        hist.count,
        hist.negative_count,
        hist.min,
        hist.max,
        hist.mean,
        hist.bucket_count(),
        tuple(hist.quantile(q) for q in QUANTILES),
    )


def rollup_state(rollup: Rollup) -> tuple[Any, ...]:
    """A Rollup's fields, the histogram by what it tells (it has no __eq__)."""
    return (
        rollup.start_ms,
        rollup.span_ms,
        rollup.count,
        rollup.ping,
        rollup.pong,
        rollup.first_ms,
        rollup.last_ms,
        rollup.heartbeat_seconds,
        list(rollup.gaps),
        histogram_state(rollup.latency),
    )


def through_json(rollup: Rollup) -> Rollup:
    return Rollup.from_json(orjson.loads(orjson.dumps(rollup.to_json())))


def pings(*times_ms: int) -> list[Message]:
    return [(t, "ping", None) for t in times_ms]


def minute_rollups(messages: Sequence[Message]) -> list[Rollup]:
    """One rollup per minute holding messages, as the store builds them."""
    by_minute: dict[int, list[Message]] = {}
    for message in messages:
        by_minute.setdefault(minute_of(message[0]), []).append(message)
    return [build_rollup(m, MINUTE_MS, group) for m, group in sorted(by_minute.items())]
