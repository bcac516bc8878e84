"""Rollups (rollups.py): building one from messages, merging them, and their JSON round trips."""

from __future__ import annotations

import random
from collections.abc import Iterable

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pingpong_relay.histogram import MIN_MAGNITUDE, LogHistogram
from pingpong_relay.rollups import (
    GAP_FLOOR_MS,
    HOUR_MS,
    MINUTE_MS,
    Rollup,
    build_rollup,
    merge_rollups,
    minute_of,
)
from tests.unit.rollups_support import (
    T0,
    Message,
    histogram_state,
    minute_rollups,
    pings,
    rollup_state,
    through_json,
)

# --- helpers --------------------------------------------------------------------------------


def histogram(values: Iterable[float]) -> LogHistogram:
    hist = LogHistogram()
    for value in values:
        hist.add(value)
    return hist


# --- build_rollup ---------------------------------------------------------------------------


def test_build_rollup_of_nothing_is_empty() -> None:
    rollup = build_rollup(T0, MINUTE_MS, [])
    assert rollup_state(rollup) == rollup_state(Rollup(T0, MINUTE_MS))
    assert (rollup.count, rollup.first_ms, rollup.last_ms, rollup.heartbeat_seconds) == (
        0,
        None,
        None,
        0,
    )


def test_build_rollup_counts_kinds() -> None:
    messages: list[Message] = [
        (T0 + 1, "ping", None),
        (T0 + 2, "pong", None),
        (T0 + 3, "ping", None),
        (T0 + 4, None, None),
        (T0 + 5, "status", None),
    ]
    rollup = build_rollup(T0, MINUTE_MS, messages)
    assert (rollup.count, rollup.ping, rollup.pong) == (5, 2, 1)
    assert (rollup.first_ms, rollup.last_ms) == (T0 + 1, T0 + 5)


@pytest.mark.parametrize(
    ("offsets_ms", "seconds"),
    [
        ([0], 1),
        ([0, 999], 1),
        ([999, 1000], 2),
        ([0, 1, 2, 3], 1),
        ([0, 1_000, 2_000, 3_000], 4),
        ([500, 1_500, 1_999, 2_000, 5_999, 59_999], 5),
    ],
)
def test_heartbeat_seconds_counts_distinct_whole_seconds(
    offsets_ms: list[int], seconds: int
) -> None:
    rollup = build_rollup(T0, MINUTE_MS, pings(*(T0 + o for o in offsets_ms)))
    assert rollup.heartbeat_seconds == seconds


@pytest.mark.parametrize(
    ("offsets_ms", "gaps"),
    [
        ([0, GAP_FLOOR_MS - 1], []),
        ([0, GAP_FLOOR_MS], [(0, GAP_FLOOR_MS)]),
        ([0, GAP_FLOOR_MS + 1], [(0, GAP_FLOOR_MS + 1)]),
        ([0, 4_000, 8_000, 12_000], []),
        ([0, 1_000, 30_000, 31_000, 40_000], [(1_000, 30_000), (31_000, 40_000)]),
    ],
)
def test_build_rollup_keeps_gaps_from_the_floor_up(
    offsets_ms: list[int], gaps: list[tuple[int, int]]
) -> None:
    rollup = build_rollup(T0, MINUTE_MS, pings(*(T0 + o for o in offsets_ms)))
    assert rollup.gaps == [(T0 + a, T0 + b) for a, b in gaps]


def test_build_rollup_skips_missing_latency() -> None:
    messages: list[Message] = [
        (T0, "ping", 10.0),
        (T0 + 1, "pong", None),
        (T0 + 2, "ping", 30.0),
        (T0 + 3, "pong", None),
    ]
    rollup = build_rollup(T0, MINUTE_MS, messages)
    assert rollup.count == 4
    assert rollup.latency.count == 2
    assert (rollup.latency.min, rollup.latency.max, rollup.latency.mean) == (10.0, 30.0, 20.0)


def test_build_rollup_keeps_start_and_span_as_given() -> None:
    rollup = build_rollup(T0 + MINUTE_MS, MINUTE_MS, pings(T0 + MINUTE_MS + 7))
    assert (rollup.start_ms, rollup.span_ms) == (T0 + MINUTE_MS, MINUTE_MS)


# --- merge_rollups --------------------------------------------------------------------------


def test_merge_adds_counts_and_keeps_ends() -> None:
    a = build_rollup(T0, MINUTE_MS, [(T0 + 10, "ping", 5.0), (T0 + 1_010, "pong", None)])
    b = build_rollup(
        T0 + MINUTE_MS,
        MINUTE_MS,
        [(T0 + MINUTE_MS + 100, "pong", 7.0), (T0 + MINUTE_MS + 200, None, 9.0)],
    )
    merged = merge_rollups(T0, HOUR_MS, [a, b])
    assert (merged.start_ms, merged.span_ms) == (T0, HOUR_MS)
    assert (merged.count, merged.ping, merged.pong) == (4, 1, 2)
    assert merged.heartbeat_seconds == 3
    assert (merged.first_ms, merged.last_ms) == (T0 + 10, T0 + MINUTE_MS + 200)
    assert merged.latency.count == 3
    assert (merged.latency.min, merged.latency.max) == (5.0, 9.0)


@pytest.mark.parametrize(
    ("hole_ms", "found"),
    [(GAP_FLOOR_MS - 1, False), (GAP_FLOOR_MS, True), (10 * MINUTE_MS, True)],
)
def test_merge_finds_gaps_between_spans(hole_ms: int, found: bool) -> None:
    last = T0 + MINUTE_MS - 2_000  # 2 s before the minute ends, so the hole crosses it
    a = build_rollup(T0, MINUTE_MS, pings(last))
    b = build_rollup(minute_of(last + hole_ms), MINUTE_MS, pings(last + hole_ms))
    assert a.gaps == []
    assert b.gaps == []
    merged = merge_rollups(T0, HOUR_MS, [a, b])
    assert merged.gaps == ([(last, last + hole_ms)] if found else [])


def test_merge_keeps_gaps_inside_parts_in_time_order() -> None:
    a = build_rollup(T0, MINUTE_MS, pings(T0, T0 + 20_000, T0 + 50_000))
    b = build_rollup(T0 + MINUTE_MS, MINUTE_MS, pings(T0 + 70_000, T0 + 100_000))
    merged = merge_rollups(T0, HOUR_MS, [a, b])
    assert merged.gaps == [
        (T0, T0 + 20_000),
        (T0 + 20_000, T0 + 50_000),
        (T0 + 50_000, T0 + 70_000),
        (T0 + 70_000, T0 + 100_000),
    ]


def test_merge_skips_empty_parts() -> None:
    a = build_rollup(T0, MINUTE_MS, pings(T0 + 59_000))
    empty = Rollup(T0 + MINUTE_MS, MINUTE_MS)
    c = build_rollup(T0 + 2 * MINUTE_MS, MINUTE_MS, pings(T0 + 2 * MINUTE_MS + 1_000))
    merged = merge_rollups(T0, HOUR_MS, [a, empty, c])
    assert merged.count == 2
    assert (merged.first_ms, merged.last_ms) == (T0 + 59_000, T0 + 2 * MINUTE_MS + 1_000)
    assert merged.gaps == [(T0 + 59_000, T0 + 2 * MINUTE_MS + 1_000)]


def test_merge_of_only_empty_parts_is_empty() -> None:
    merged = merge_rollups(T0, HOUR_MS, [Rollup(T0, MINUTE_MS), Rollup(T0 + MINUTE_MS, MINUTE_MS)])
    assert rollup_state(merged) == rollup_state(Rollup(T0, HOUR_MS))


def test_merge_does_not_depend_on_the_order_of_parts() -> None:
    times = [T0 + 5, T0 + 30_000, T0 + 150_000, T0 + 151_000, T0 + 400_000, T0 + 460_500]
    parts = minute_rollups([(t, "ping", float(i + 1)) for i, t in enumerate(times)])
    assert len(parts) == 4
    expected = rollup_state(merge_rollups(T0, HOUR_MS, parts))
    shuffled = list(parts)
    for seed in range(5):
        random.Random(seed).shuffle(shuffled)
        assert rollup_state(merge_rollups(T0, HOUR_MS, shuffled)) == expected
    assert rollup_state(merge_rollups(T0, HOUR_MS, parts[::-1])) == expected


# --- JSON round trips -----------------------------------------------------------------------


def test_empty_histogram_round_trips() -> None:
    hist = LogHistogram.from_json(orjson.loads(orjson.dumps(LogHistogram().to_json())))
    assert histogram_state(hist) == histogram_state(LogHistogram())
    assert (hist.count, hist.min, hist.max, hist.mean, hist.quantile(0.5)) == (
        0,
        None,
        None,
        None,
        None,
    )
    # What it was read back as still behaves as empty: the next value is min and max.
    hist.add(-3.0)
    assert (hist.count, hist.min, hist.max, hist.negative_count) == (1, -3.0, -3.0, 1)


finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)


@given(st.lists(st.one_of(finite, st.just(0.0), st.floats(-MIN_MAGNITUDE, MIN_MAGNITUDE))))
def test_histogram_round_trips_exactly(values: list[float]) -> None:
    hist = histogram(values)
    body = orjson.loads(orjson.dumps(hist.to_json()))
    back = LogHistogram.from_json(body)
    assert histogram_state(back) == histogram_state(hist)
    assert back.to_json() == hist.to_json()
    # Read back, it merges as the original would.
    merged, expected = histogram([1.0, -2.0]), histogram([1.0, -2.0])
    merged.merge(back)
    expected.merge(hist)
    assert histogram_state(merged) == histogram_state(expected)


def test_rollup_round_trips() -> None:
    rollup = build_rollup(
        T0,
        MINUTE_MS,
        [
            (T0 + 100, "ping", 12.5),
            (T0 + 200, "pong", None),
            (T0 + 20_000, None, -0.5),
            (T0 + 59_999, "ping", 1e4),
        ],
    )
    assert rollup.gaps == [(T0 + 200, T0 + 20_000), (T0 + 20_000, T0 + 59_999)]
    back = through_json(rollup)
    assert rollup_state(back) == rollup_state(rollup)
    assert orjson.dumps(back.to_json()) == orjson.dumps(rollup.to_json())


def test_empty_rollup_round_trips() -> None:
    back = through_json(Rollup(T0, HOUR_MS))
    assert rollup_state(back) == rollup_state(Rollup(T0, HOUR_MS))
    assert (back.first_ms, back.last_ms, back.latency.count) == (None, None, 0)
