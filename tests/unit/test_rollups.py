"""Minute and hour rollups, outages and availability analytics (pure)."""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pingpong_relay.rollups import (
    ANALYTICS_WINDOWS,
    GAP_FLOOR_MS,
    HOUR_MS,
    MINUTE_MS,
    Outage,
    Rollup,
    analytics,
    build_rollup,
    hour_of,
    merge_rollups,
    minute_of,
    outages,
)
from pingpong_relay.stats import MIN_MAGNITUDE, RELATIVE_ERROR, LogHistogram

Message = tuple[int, str | None, float | None]

# An hour boundary (and so a minute and a second boundary) near November 2023.
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS
QUANTILES = (0.0, 0.25, 0.5, 0.95, 0.99, 1.0)


# --- helpers --------------------------------------------------------------------------------


def histogram(values: Iterable[float]) -> LogHistogram:
    hist = LogHistogram()
    for value in values:
        hist.add(value)
    return hist


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


def hour_rollups(minutes: Sequence[Rollup]) -> list[Rollup]:
    by_hour: dict[int, list[Rollup]] = {}
    for minute in minutes:
        by_hour.setdefault(hour_of(minute.start_ms), []).append(minute)
    return [merge_rollups(h, HOUR_MS, parts) for h, parts in sorted(by_hour.items())]


def nearest_rank(values: Sequence[float], q: float) -> float:
    """The reference quantile: the ⌈q·n⌉-th smallest value (at least the first)."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def assert_close(estimate: float | None, exact: float) -> None:
    assert estimate is not None
    assert abs(estimate - exact) <= RELATIVE_ERROR * abs(exact) * (1 + 1e-9), (estimate, exact)


# --- the brute-force reference --------------------------------------------------------------


def silent_at(times: Sequence[int], at_ms: int, silence_ms: int) -> bool:
    """The definition: seen before, and its latest message at least silence_ms ago."""
    i = bisect.bisect_right(times, at_ms)
    return i > 0 and at_ms - times[i - 1] >= silence_ms


def reference_outages(
    times: Sequence[int], window_start_ms: int, now_ms: int, silence_ms: int
) -> list[Outage]:
    """Maximal silent stretches of [window_start_ms, now_ms), found by testing the definition
    at every point where silence can begin or end."""
    points = sorted(
        {window_start_ms, now_ms}
        | {t for t in times if window_start_ms < t < now_ms}
        | {t + silence_ms for t in times if window_start_ms < t + silence_ms < now_ms}
    )
    found: list[Outage] = []
    begun: int | None = None
    for point in points[:-1]:
        silent = silent_at(times, point, silence_ms)
        if silent and begun is None:
            begun = point
        elif not silent and begun is not None:
            found.append(Outage(begun, point))
            begun = None
    if begun is not None:
        found.append(Outage(begun, None if silent_at(times, now_ms, silence_ms) else now_ms))
    return found


def reference_availability_pct(
    times: Sequence[int], window_start_ms: int, now_ms: int, silence_ms: int
) -> float | None:
    if not times:
        return None
    observed_from = max(window_start_ms, times[0])
    if now_ms <= observed_from:
        return None
    silent_ms = sum(
        (now_ms if o.end_ms is None else o.end_ms) - o.start_ms
        for o in reference_outages(times, observed_from, now_ms, silence_ms)
    )
    return 100.0 * (1 - silent_ms / (now_ms - observed_from))


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


# --- outages --------------------------------------------------------------------------------

SILENCE_MS = 30_000


def spans_of(*times_ms: int) -> list[Rollup]:
    return minute_rollups(pings(*times_ms))


def test_no_outage_without_a_long_gap() -> None:
    times = list(range(T0, T0 + 5 * MINUTE_MS, 1_000))
    assert outages(spans_of(*times), T0, times[-1], SILENCE_MS) == []


def test_no_outage_without_spans() -> None:
    assert outages([], T0, T0 + HOUR_MS, SILENCE_MS) == []
    assert outages([Rollup(T0, MINUTE_MS)], T0, T0 + HOUR_MS, SILENCE_MS) == []


@pytest.mark.parametrize(
    ("gap_ms", "expected"),
    [
        (SILENCE_MS - 1, []),
        (SILENCE_MS, []),
        (SILENCE_MS + 1, [Outage(T0 + 1_000 + SILENCE_MS, T0 + 1_000 + SILENCE_MS + 1)]),
        (5 * MINUTE_MS, [Outage(T0 + 1_000 + SILENCE_MS, T0 + 1_000 + 5 * MINUTE_MS)]),
    ],
)
def test_a_gap_holds_an_outage_of_its_excess_over_the_silence(
    gap_ms: int, expected: list[Outage]
) -> None:
    a, b = T0 + 1_000, T0 + 1_000 + gap_ms
    assert outages(spans_of(T0, a, b), T0, b, SILENCE_MS) == expected


@pytest.mark.parametrize(
    ("after_ms", "expected"),
    [
        (0, []),
        (SILENCE_MS, []),
        (SILENCE_MS + 1, [Outage(T0 + SILENCE_MS, None)]),
        (HOUR_MS, [Outage(T0 + SILENCE_MS, None)]),
    ],
)
def test_a_silence_running_now_is_ongoing(after_ms: int, expected: list[Outage]) -> None:
    assert outages(spans_of(T0), T0, T0 + after_ms, SILENCE_MS) == expected


def test_a_silence_begun_before_the_window_is_seen_through_last_before() -> None:
    window_start = T0 + HOUR_MS
    first_inside = window_start + 2 * MINUTE_MS
    spans = spans_of(first_inside)
    # The last message 10 s before the window: silent from 20 s into it.
    found = outages(spans, window_start, first_inside, SILENCE_MS, window_start - 10_000)
    assert found == [Outage(window_start + 20_000, first_inside)]
    # Without it, nothing is known before the first message inside.
    assert outages(spans, window_start, first_inside, SILENCE_MS) == []


def test_a_silence_begun_before_the_window_counts_from_its_start() -> None:
    window_start = T0 + HOUR_MS
    first_inside = window_start + 2 * MINUTE_MS
    found = outages(
        spans_of(first_inside), window_start, first_inside, SILENCE_MS, window_start - HOUR_MS
    )
    assert found == [Outage(window_start, first_inside)]
    # Silent throughout, and still: one ongoing outage from the window's start.
    assert outages([], window_start, window_start + HOUR_MS, SILENCE_MS, T0) == [
        Outage(window_start, None)
    ]


def test_gaps_inside_a_span_are_clipped_to_the_window() -> None:
    # One hour span: a 10-minute hole straddles the window start, another lies before it.
    hour = merge_rollups(
        T0, HOUR_MS, spans_of(T0, T0 + 5 * MINUTE_MS, T0 + 20 * MINUTE_MS, T0 + 30 * MINUTE_MS)
    )
    window_start = T0 + 25 * MINUTE_MS
    found = outages([hour], window_start, T0 + 30 * MINUTE_MS, SILENCE_MS, T0 + 20 * MINUTE_MS)
    assert found == [Outage(window_start, T0 + 30 * MINUTE_MS)]
    # A hole ending before the window leaves nothing.
    assert outages([hour], T0 + 31 * MINUTE_MS, T0 + 31 * MINUTE_MS, SILENCE_MS) == []


def test_outages_do_not_depend_on_the_order_of_spans() -> None:
    spans = spans_of(T0, T0 + 3 * MINUTE_MS, T0 + 3 * MINUTE_MS + 40_000, T0 + 9 * MINUTE_MS)
    expected = outages(spans, T0, T0 + HOUR_MS, SILENCE_MS)
    assert len(expected) == 4
    assert outages(spans[::-1], T0, T0 + HOUR_MS, SILENCE_MS) == expected


def test_outage_json() -> None:
    now = T0 + 10_000
    assert Outage(T0, T0 + 1_234).to_json(now) == {
        "start_ms": T0,
        "end_ms": T0 + 1_234,
        "duration_s": 1.234,
        "ongoing": False,
    }
    assert Outage(T0, None).to_json(now) == {
        "start_ms": T0,
        "end_ms": None,
        "duration_s": 10.0,
        "ongoing": True,
    }


# --- analytics ------------------------------------------------------------------------------

ANALYTICS_KEYS = {
    "bot",
    "window",
    "from_ms",
    "to_ms",
    "observed_from_ms",
    "availability_pct",
    "silence_timeout_s",
    "outage_count",
    "outages",
    "messages",
    "latency_ms",
}


@pytest.mark.parametrize("window", sorted(ANALYTICS_WINDOWS))
def test_analytics_shape_and_bounds(window: str) -> None:
    now = T0 + 800 * HOUR_MS
    first = now - 3 * MINUTE_MS
    spans = minute_rollups([(first, "ping", 4.0), (now - MINUTE_MS, "pong", 8.0)])
    result = analytics("bot-1", window, spans, now, SILENCE_MS, first)
    assert set(result) == ANALYTICS_KEYS
    assert (result["bot"], result["window"]) == ("bot-1", window)
    assert (result["from_ms"], result["to_ms"]) == (now - ANALYTICS_WINDOWS[window], now)
    assert result["observed_from_ms"] == first
    assert result["silence_timeout_s"] == 30.0
    assert result["messages"] == {"count": 2, "ping": 1, "pong": 1}
    assert set(result["latency_ms"]) == {"p50", "p95", "p99", "min", "max", "mean"}
    assert (result["latency_ms"]["min"], result["latency_ms"]["max"]) == (4.0, 8.0)
    assert result["latency_ms"]["mean"] == 6.0
    # Silent from 30 s after the first message to the second, and from 30 s after it on.
    assert result["outage_count"] == 2
    assert result["outages"] == [
        Outage(first + SILENCE_MS, now - MINUTE_MS).to_json(now),
        Outage(now - MINUTE_MS + SILENCE_MS, None).to_json(now),
    ]
    assert result["availability_pct"] == pytest.approx(100 * (1 - 120_000 / 180_000), abs=1e-3)


def test_analytics_for_a_bot_never_seen() -> None:
    now = T0 + HOUR_MS
    result = analytics("ghost", "1h", [], now, SILENCE_MS, None)
    assert set(result) == ANALYTICS_KEYS
    assert result["observed_from_ms"] is None
    assert result["availability_pct"] is None
    assert (result["outage_count"], result["outages"]) == (0, [])
    assert result["messages"] == {"count": 0, "ping": 0, "pong": 0}
    assert all(value is None for value in result["latency_ms"].values())


def test_analytics_with_nothing_observed_yet() -> None:
    now = T0 + HOUR_MS
    result = analytics("newborn", "1h", spans_of(now), now, SILENCE_MS, now)
    assert result["observed_from_ms"] == now
    assert result["availability_pct"] is None
    assert result["outages"] == []


def test_analytics_observes_from_the_window_start_for_an_older_bot() -> None:
    now = T0 + 10 * HOUR_MS
    start = now - HOUR_MS
    # Last seen 20 s before the window and then 15 minutes in: silent 10 s + 15 min.
    last_before = start - 20_000
    spans = spans_of(start + 15 * MINUTE_MS, now)
    result = analytics("bot", "1h", spans, now, SILENCE_MS, T0, last_before)
    assert result["observed_from_ms"] == start
    silent_ms = 15 * MINUTE_MS - 10_000 + (45 * MINUTE_MS - SILENCE_MS)
    assert result["availability_pct"] == pytest.approx(100 * (1 - silent_ms / HOUR_MS), abs=1e-3)
    assert [o["start_ms"] for o in result["outages"]] == [
        start + 10_000,
        start + 15 * MINUTE_MS + SILENCE_MS,
    ]


def test_analytics_counts_a_message_at_now() -> None:
    # A span starting exactly at now (its only message is at now) lies in [from_ms, to_ms].
    now = T0 + 10 * HOUR_MS
    spans = [
        build_rollup(now - MINUTE_MS, MINUTE_MS, [(now - 30_000, "ping", 2.0)]),
        build_rollup(now, MINUTE_MS, [(now, "pong", 3.0)]),
    ]
    result = analytics("bot", "1h", spans, now, SILENCE_MS, now - 30_000)
    assert result["outages"] == []
    assert result["messages"] == {"count": 2, "ping": 1, "pong": 1}
    assert result["latency_ms"]["max"] == 3.0


# --- the property: rollups agree with the raw messages -------------------------------------


@dataclass(frozen=True)
class Scenario:
    messages: list[Message]
    silence_ms: int
    now_ms: int
    window: str

    @property
    def times(self) -> list[int]:
        return [m[0] for m in self.messages]

    @property
    def window_start_ms(self) -> int:
        return self.now_ms - ANALYTICS_WINDOWS[self.window]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    silence_ms = draw(st.integers(10_000, 120_000))
    first = T0 + draw(st.integers(0, HOUR_MS))
    step = st.one_of(
        st.integers(1, 3_000),
        st.sampled_from([GAP_FLOOR_MS - 1, GAP_FLOOR_MS, silence_ms - 1, silence_ms]),
        st.sampled_from([silence_ms + 1, MINUTE_MS]),
        st.integers(3_000, 3 * MINUTE_MS),
        st.integers(3 * MINUTE_MS, 40 * MINUTE_MS),  # the long holes
    )
    steps = draw(st.lists(step, max_size=120))
    times = list(accumulate([first, *steps]))
    kinds = st.sampled_from(["ping", "pong", None, "status"])
    latencies = st.one_of(st.none(), st.floats(MIN_MAGNITUDE, 1e5), st.integers(0, 500))
    messages: list[Message] = [
        (t, draw(kinds), None if (lat := draw(latencies)) is None else float(lat)) for t in times
    ]
    tail = st.one_of(
        st.sampled_from([0, silence_ms - 1, silence_ms, silence_ms + 1]),
        st.integers(0, 90 * MINUTE_MS),
    )
    now_ms = times[-1] + draw(tail)
    window = draw(st.sampled_from(["1h", "24h"]))
    return Scenario(messages, silence_ms, now_ms, window)


def covering(spans: Sequence[Rollup], start_ms: int, now_ms: int) -> list[Rollup]:
    """The spans that overlap [start_ms, now_ms], as the caller passes them."""
    return [s for s in spans if s.start_ms + s.span_ms > start_ms and s.start_ms <= now_ms]


def in_spans_of(
    scenario: Scenario, span_start: Callable[[int], int], span_ms: int
) -> list[Message]:
    """The messages held by the spans (of this size) that overlap the window."""
    start, now = scenario.window_start_ms, scenario.now_ms
    return [
        m
        for m in scenario.messages
        if span_start(m[0]) + span_ms > start and span_start(m[0]) <= now
    ]


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_rollups_agree_with_the_raw_messages(scenario: Scenario) -> None:
    times, silence, now = scenario.times, scenario.silence_ms, scenario.now_ms
    start = scenario.window_start_ms
    last_before = max((t for t in times if t < start), default=None)
    expected_outages = reference_outages(times, start, now, silence)
    expected_pct = reference_availability_pct(times, start, now, silence)

    minutes = minute_rollups(scenario.messages)
    hours = hour_rollups(minutes)
    # Merging minutes loses nothing: an hour is what building it from its messages gives.
    for hour in hours:
        held = [m for m in scenario.messages if hour_of(m[0]) == hour.start_ms]
        built = build_rollup(hour.start_ms, HOUR_MS, held)
        assert rollup_state(hour)[:-1] == rollup_state(built)[:-1]
        assert hour.latency.to_json()["b"] == built.latency.to_json()["b"]

    for spans, span_start, span_ms in (
        (minutes, minute_of, MINUTE_MS),
        (hours, hour_of, HOUR_MS),
    ):
        window_spans = covering(spans, start, now)
        assert outages(window_spans, start, now, silence, last_before) == expected_outages

        result = analytics(
            "bot", scenario.window, window_spans, now, silence, times[0], last_before
        )
        if expected_pct is None:
            assert result["availability_pct"] is None
        else:
            assert result["availability_pct"] == pytest.approx(expected_pct, abs=1e-3)

        held = in_spans_of(scenario, span_start, span_ms)
        assert result["messages"] == {
            "count": len(held),
            "ping": sum(m[1] == "ping" for m in held),
            "pong": sum(m[1] == "pong" for m in held),
        }
        values = [m[2] for m in held if m[2] is not None]
        for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            if values:
                assert_close(result["latency_ms"][name], nearest_rank(values, q))
            else:
                assert result["latency_ms"][name] is None


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_rollups_read_back_from_json_give_the_same_outages(scenario: Scenario) -> None:
    minutes = minute_rollups(scenario.messages)
    hours = hour_rollups(minutes)
    for spans in (minutes, hours):
        back = [through_json(s) for s in spans]
        assert [rollup_state(s) for s in back] == [rollup_state(s) for s in spans]
        args = (scenario.window_start_ms, scenario.now_ms, scenario.silence_ms)
        assert outages(back, *args) == outages(spans, *args)
