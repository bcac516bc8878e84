"""WindowedStats (stats.py): messages entering and leaving windows, summaries, clocks."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pingpong_relay.defaults import WINDOWS
from pingpong_relay.stats import SLOTS_PER_WINDOW, StatsBook, WindowedStats
from tests.unit.stats_support import T0, assert_close, nearest_rank, signed

# Summaries round to 3 decimals; float noise at a bucket edge is far below 1e-9.
ROUNDING = 0.0005


# --- WindowedStats ------------------------------------------------------------------------


def ping(stats: WindowedStats, now_s: float, latency_ms: float | None = 10.0) -> None:
    stats.record(now_s, "ping", latency_ms, None)


@pytest.mark.parametrize("window", list(WINDOWS))
@pytest.mark.parametrize("offset_s", [0.0, 0.4, 0.999])
def test_a_message_stays_for_window_minus_one_slot_and_leaves_by_window(
    window: str, offset_s: float
) -> None:
    # Slot granularity: a message counts for between window − window/60 and window seconds.
    window_s, width_s = WINDOWS[window], WINDOWS[window] / SLOTS_PER_WINDOW
    stats = WindowedStats()
    t = T0 + offset_s * width_s
    ping(stats, t)
    assert stats.summary(window, t)["count"] == 1
    assert stats.summary(window, t + window_s - width_s)["count"] == 1
    assert stats.summary(window, T0 + window_s - 1e-3)["count"] == 1
    assert stats.summary(window, T0 + window_s)["count"] == 0
    assert stats.summary(window, t + window_s)["count"] == 0


def test_one_minute_window_at_59_and_61_seconds() -> None:
    stats = WindowedStats()
    ping(stats, T0 + 0.5)
    assert stats.summary("1m", T0 + 59.5)["count"] == 1
    assert stats.summary("1m", T0 + 61.5)["count"] == 0
    assert stats.summary("5m", T0 + 61.5)["count"] == 1


def test_counts_kinds_and_rate() -> None:
    stats = WindowedStats()
    for i in range(30):
        stats.record(T0 + i, "ping" if i % 3 else "pong", None, None)
    stats.record(T0 + 30, "status", None, None)  # neither kind, still a message
    summary = stats.summary("1m", T0 + 30)
    assert (summary["count"], summary["ping"], summary["pong"]) == (31, 20, 10)
    assert summary["rate_per_s"] == round(31 / 60, 3)
    assert stats.summary("1h", T0 + 30)["rate_per_s"] == round(31 / 3600, 3)
    assert stats.total == 31
    assert stats.last_seen_s == T0 + 30


def test_old_messages_leave_while_new_ones_stay() -> None:
    stats = WindowedStats()
    for i in range(120):  # one per second for two minutes
        ping(stats, T0 + i, latency_ms=1000.0 if i < 60 else 1.0)
    summary = stats.summary("1m", T0 + 119)
    assert summary["count"] == 60
    assert summary["latency_ms"]["max"] == 1.0
    assert stats.summary("5m", T0 + 119)["latency_ms"]["max"] == 1000.0
    assert stats.total == 120


def test_empty_summary_shape() -> None:
    summary = WindowedStats().summary("15m", T0)
    assert summary == {
        "window": "15m",
        "count": 0,
        "ping": 0,
        "pong": 0,
        "rate_per_s": 0.0,
        "latency_ms": dict.fromkeys(["min", "mean", "p50", "p95", "p99", "max"]),
        "interval_ms": dict.fromkeys(["min", "mean", "p50", "p95", "max"]),
        "transit_ms": {**dict.fromkeys(["min", "mean", "p50", "p95", "p99", "max"]), "negative": 0},
        "clock_skew": {"messages": 0},
        "clock_skew_suspected": False,
    }


@given(st.lists(st.floats(min_value=0.01, max_value=60_000.0), min_size=1, max_size=200))
def test_latency_percentiles_match_nearest_rank(latencies: list[float]) -> None:
    stats = WindowedStats()
    for i, latency in enumerate(latencies):
        ping(stats, T0 + i * 0.01, latency)
    now = T0 + len(latencies) * 0.01
    summary = stats.summary("1m", now)["latency_ms"]
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert_close(summary[name], nearest_rank(latencies, q), ROUNDING)
        assert stats.latency_quantile("1m", q, now) == pytest.approx(summary[name], abs=ROUNDING)
    assert summary["min"] == round(min(latencies), 3)
    assert summary["max"] == round(max(latencies), 3)
    assert summary["mean"] == pytest.approx(sum(latencies) / len(latencies), abs=ROUNDING)


@given(st.lists(signed, min_size=1, max_size=200))
def test_transit_percentiles_keep_the_sign(transits: list[float]) -> None:
    stats = WindowedStats(max_clock_skew_s=10_000.0)  # every transit drawn is within it
    # An early clock keeps now·1000 − (now·1000 − x) == x to ~1e-10 ms.
    now = 1000.0
    for transit in transits:
        stats.record(now, "pong", None, now * 1000.0 - transit)
    summary = stats.summary("5m", now)
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert_close(summary["transit_ms"][name], nearest_rank(transits, q), ROUNDING)
    assert summary["transit_ms"]["negative"] == sum(t < 0 for t in transits)
    assert summary["clock_skew_suspected"] == any(t < 0 for t in transits)


def test_clock_skew_flag_follows_negative_transit() -> None:
    stats = WindowedStats()
    stats.record(T0, "ping", 5.0, T0 * 1000.0 - 40.0)  # bot clock behind: +40 ms transit
    summary = stats.summary("1m", T0)
    assert summary["transit_ms"]["min"] == pytest.approx(40.0)
    assert summary["clock_skew_suspected"] is False
    stats.record(T0 + 1, "ping", 5.0, (T0 + 1) * 1000.0 + 250.0)  # bot clock ahead
    summary = stats.summary("1m", T0 + 1)
    assert summary["transit_ms"]["negative"] == 1
    assert summary["transit_ms"]["min"] == pytest.approx(-250.0)
    assert summary["clock_skew_suspected"] is True
    # The skewed message ages out of the 1m window, and the flag with it.
    stats.record(T0 + 61.5, "ping", 5.0, (T0 + 61.5) * 1000.0 - 10.0)
    later = stats.summary("1m", T0 + 61.5)
    assert later["clock_skew_suspected"] is False
    assert stats.summary("5m", T0 + 61.5)["clock_skew_suspected"] is True


@pytest.mark.parametrize("bot_timestamp_ms", [1234567890.0, (T0 + 3600) * 1000.0])
def test_a_timestamp_past_the_skew_bound_is_clock_skew_not_a_transit(
    bot_timestamp_ms: float,
) -> None:
    # The design's example (1970) and a bot clock an hour ahead: neither is a transit time.
    stats = WindowedStats(max_clock_skew_s=300.0)
    assert stats.record(T0, "ping", 12.0, T0 * 1000.0 - 40.0) is None
    skewed = stats.record(T0 + 1, "pong", 10.0, bot_timestamp_ms)
    assert skewed == pytest.approx((T0 + 1) * 1000.0 - bot_timestamp_ms)
    summary = stats.summary("1m", T0 + 1)
    assert summary["transit_ms"]["max"] == pytest.approx(40.0)
    assert summary["transit_ms"]["mean"] == pytest.approx(40.0)
    assert summary["transit_ms"]["negative"] == 0
    assert summary["clock_skew"] == {"messages": 1}
    assert summary["clock_skew_suspected"] is True
    # Still a message in every other figure.
    assert (summary["count"], summary["ping"], summary["pong"]) == (2, 1, 1)
    assert summary["latency_ms"]["min"] == pytest.approx(10.0, rel=0.03)
    # It leaves the window like any message, and the suspicion with it.
    stats.record(T0 + 61.5, "ping", 5.0, (T0 + 61.5) * 1000.0 - 10.0)
    later = stats.summary("1m", T0 + 61.5)
    assert later["clock_skew"] == {"messages": 0}
    assert later["clock_skew_suspected"] is False
    assert stats.summary("5m", T0 + 61.5)["clock_skew"] == {"messages": 1}


def test_the_skew_bound_is_inclusive_and_must_be_positive() -> None:
    stats = WindowedStats(max_clock_skew_s=1.0)
    assert stats.record(T0, "ping", None, T0 * 1000.0 - 1000.0) is None  # exactly 1 s: kept
    assert stats.record(T0, "ping", None, T0 * 1000.0 + 1000.0) is None
    assert stats.record(T0, "ping", None, T0 * 1000.0 + 1001.0) == pytest.approx(-1001.0)
    summary = stats.summary("1m", T0)
    assert summary["transit_ms"]["negative"] == 1
    assert summary["clock_skew"] == {"messages": 1}
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError, match="max_clock_skew_s"):
            WindowedStats(max_clock_skew_s=bad)


def test_intervals_between_messages() -> None:
    stats = WindowedStats()
    for t in (0.0, 0.5, 1.5, 3.5, 7.5):
        ping(stats, T0 + t)
    interval = stats.summary("1m", T0 + 8)["interval_ms"]
    assert (interval["min"], interval["max"]) == (500.0, 4000.0)
    assert interval["mean"] == pytest.approx((500 + 1000 + 2000 + 4000) / 4)
    assert_close(interval["p50"], 1000.0, ROUNDING)
    assert_close(interval["p95"], 4000.0, ROUNDING)


def test_typical_interval() -> None:
    stats = WindowedStats()
    assert stats.typical_interval_s(T0) is None
    ping(stats, T0)
    assert stats.typical_interval_s(T0) is None
    for i in range(1, 50):
        ping(stats, T0 + 2.0 * i)
    typical = stats.typical_interval_s(T0 + 98)
    assert typical is not None
    assert_close(typical, 2.0)
    # Long after the last message, the 5m window holds nothing to judge by.
    assert stats.typical_interval_s(T0 + 98 + 301) is None


def test_clock_stepping_back_counts_as_the_last_time() -> None:
    stats = WindowedStats()
    ping(stats, T0 + 100)
    stats.record(T0 + 99.2, "pong", 3.0, (T0 + 100) * 1000.0 - 7.0)
    assert stats.last_seen_s == T0 + 100
    summary = stats.summary("1m", T0 + 100)
    assert (summary["count"], summary["ping"], summary["pong"]) == (2, 1, 1)
    assert summary["interval_ms"]["min"] == 0.0
    assert summary["transit_ms"]["min"] == pytest.approx(7.0)
    # A query with an earlier time sees the same slots.
    assert stats.summary("1m", T0 + 99)["count"] == 2


def test_clock_far_in_the_past_does_not_reopen_recycled_slots() -> None:
    stats = WindowedStats()
    for i in range(200):
        ping(stats, T0 + i)
    ping(stats, T0 - 10_000)
    assert stats.summary("1m", T0 + 199)["count"] == 61
    assert stats.total == 201


def test_non_finite_clock_raises() -> None:
    with pytest.raises(ValueError, match="now_s"):
        ping(WindowedStats(), math.nan)


def test_non_finite_latency_and_timestamp_are_ignored() -> None:
    stats = WindowedStats()
    stats.record(T0, "ping", math.nan, math.inf)
    summary = stats.summary("1m", T0)
    assert summary["count"] == 1
    assert summary["latency_ms"]["max"] is None
    assert summary["transit_ms"]["max"] is None


@pytest.mark.parametrize("window", ["2m", "", "1M", "60"])
def test_unknown_window_raises_with_valid_names(window: str) -> None:
    stats = WindowedStats()
    for call in (
        lambda: stats.summary(window, T0),
        lambda: stats.latency_quantile(window, 0.5, T0),
        lambda: StatsBook().summary(window, T0),
    ):
        with pytest.raises(ValueError, match="1m, 5m, 15m, 1h"):
            call()


def test_memory_is_bounded_whatever_the_rate() -> None:
    # 250,000 messages in two 100 s bursts an hour apart: the 1m ring recycles within a
    # burst and every ring recycles across the gap. 1,000 distinct latencies in [1, 500] ms
    # fall in at most 16·log2(500) + 1 < 145 buckets; the interval and the transit are
    # near-constant (a float-rounding neighbour bucket at most, plus the gap), so no more than
    # 240 slots × 149 buckets can be held, against 3 × 4 × 250,000 values recorded.
    stats = WindowedStats()
    latencies = [1.0 + i * 0.499 for i in range(1000)]
    bound = len(WINDOWS) * SLOTS_PER_WINDOW * (145 + 2 + 2)
    high_water = 0
    for burst_start in (T0, T0 + 3600.0):
        for i in range(125_000):
            now = burst_start + i / 1250
            stats.record(now, "ping", latencies[i % 1000], now * 1000.0 - 5.0)
            if i % 25_000 == 0:
                high_water = max(high_water, stats.bucket_count())
    high_water = max(high_water, stats.bucket_count())
    assert stats.total == 250_000
    assert stats.slot_count() <= len(WINDOWS) * SLOTS_PER_WINDOW
    assert 0 < high_water <= bound
    last_s = stats.last_seen_s
    assert last_s is not None
    assert stats.summary("1h", last_s)["count"] == 125_000
    # The 60 whole seconds before the last message's slot ends.
    assert stats.summary("1m", last_s)["count"] == 60 * 1250
