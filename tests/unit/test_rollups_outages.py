"""Outages and analytics (rollups.py) read from rollups over a window."""

from __future__ import annotations

import pytest

from pingpong_relay.rollups import (
    ANALYTICS_WINDOWS,
    HOUR_MS,
    MINUTE_MS,
    Outage,
    Rollup,
    analytics,
    build_rollup,
    merge_rollups,
    outages,
)
from tests.unit.rollups_support import T0, minute_rollups, pings

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
