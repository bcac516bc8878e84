"""Log histograms, sliding-window heartbeat statistics and the per-bot book (pure)."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pingpong_relay.defaults import WINDOWS
from pingpong_relay.stats import (
    ESTABLISHED_MESSAGES,
    ESTABLISHED_SPAN_S,
    MAX_BUCKETS,
    MIN_MAGNITUDE,
    RELATIVE_ERROR,
    SLOTS_PER_WINDOW,
    LogHistogram,
    StatsBook,
    WindowedStats,
    bucket_key,
)

T0 = 1_700_000_040.0  # a multiple of 60 s: the first slot of every window starts here
# Summaries round to 3 decimals; float noise at a bucket edge is far below 1e-9.
ROUNDING = 0.0005

positive = st.floats(min_value=MIN_MAGNITUDE, max_value=1e6)
signed = st.one_of(positive, positive.map(lambda x: -x), st.just(0.0))


def nearest_rank(values: list[float], q: float) -> float:
    """The reference: the ⌈q·n⌉-th smallest value (at least the first)."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def assert_close(estimate: float | None, exact: float, slack: float = 0.0) -> None:
    assert estimate is not None
    assert abs(estimate - exact) <= RELATIVE_ERROR * abs(exact) * (1 + 1e-9) + slack, (
        estimate,
        exact,
    )


def histogram(values: list[float]) -> LogHistogram:
    hist = LogHistogram()
    for value in values:
        hist.add(value)
    return hist


# --- bucket keys and LogHistogram ---------------------------------------------------------


def test_error_bound_is_documented_value() -> None:
    assert abs(RELATIVE_ERROR - 0.02166) < 1e-5
    assert RELATIVE_ERROR <= 0.025


@given(signed, signed)
def test_bucket_keys_sort_in_value_order(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert bucket_key(low) <= bucket_key(high)


@given(positive)
def test_negative_keys_mirror_positive_ones(value: float) -> None:
    assert bucket_key(-value) == -bucket_key(value) < 0 < bucket_key(value)


def test_zero_and_tiny_magnitudes_share_the_zero_bucket() -> None:
    assert bucket_key(0.0) == bucket_key(-0.0) == bucket_key(0.009) == bucket_key(-0.009) == 0
    assert bucket_key(MIN_MAGNITUDE) > 0


def test_empty_histogram() -> None:
    hist = LogHistogram()
    assert (hist.count, hist.negative_count, hist.bucket_count()) == (0, 0, 0)
    assert (hist.mean, hist.min, hist.max, hist.quantile(0.5)) == (None, None, None, None)


def test_exact_count_sum_min_max_and_negatives() -> None:
    hist = histogram([3.0, -2.0, 0.0, 10.5, -0.001])
    assert hist.count == 5
    assert hist.negative_count == 2
    assert (hist.min, hist.max) == (-2.0, 10.5)
    assert hist.mean == pytest.approx(11.499 / 5)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_ignored(bad: float) -> None:
    hist = histogram([1.0, bad, 2.0])
    assert hist.count == 2
    assert (hist.min, hist.max, hist.mean) == (1.0, 2.0, 1.5)
    assert hist.bucket_count() == 2


@pytest.mark.parametrize("q", [-0.01, 1.01, math.nan])
def test_quantile_outside_0_1_raises(q: float) -> None:
    with pytest.raises(ValueError, match="quantile"):
        histogram([1.0]).quantile(q)


def test_extreme_quantiles_are_exact_min_and_max() -> None:
    hist = histogram([7.3, 1.234, 99.9, 42.0])
    assert hist.quantile(0.0) == 1.234
    assert hist.quantile(1.0) == 99.9


def test_single_value_is_exact_at_every_quantile() -> None:
    hist = histogram([123.456])
    assert {hist.quantile(q) for q in (0.0, 0.5, 0.99, 1.0)} == {123.456}


@given(st.lists(positive, min_size=1, max_size=300), st.floats(min_value=0.0, max_value=1.0))
def test_quantiles_of_positive_values_within_error_bound(values: list[float], q: float) -> None:
    assert_close(histogram(values).quantile(q), nearest_rank(values, q))


@given(st.lists(signed, min_size=1, max_size=300), st.floats(min_value=0.0, max_value=1.0))
def test_quantiles_of_mixed_sign_values_within_error_bound(values: list[float], q: float) -> None:
    hist = histogram(values)
    assert_close(hist.quantile(q), nearest_rank(values, q))
    assert hist.negative_count == sum(v < 0 for v in values)


@given(st.lists(st.floats(min_value=-0.0099, max_value=0.0099), min_size=1, max_size=50))
def test_tiny_magnitudes_have_small_absolute_error(values: list[float]) -> None:
    hist = histogram(values)
    for q in (0.0, 0.3, 0.5, 0.9, 1.0):
        estimate = hist.quantile(q)
        assert estimate is not None
        assert abs(estimate - nearest_rank(values, q)) < MIN_MAGNITUDE


@given(st.lists(signed, max_size=100), st.lists(signed, max_size=100))
def test_merge_equals_adding_everything(a: list[float], b: list[float]) -> None:
    merged = histogram(a)
    merged.merge(histogram(b))
    whole = histogram(a + b)
    assert (merged.count, merged.negative_count, merged.bucket_count()) == (
        whole.count,
        whole.negative_count,
        whole.bucket_count(),
    )
    assert (merged.min, merged.max) == (whole.min, whole.max)
    for q in (0.0, 0.25, 0.5, 0.95, 1.0):
        assert merged.quantile(q) == whole.quantile(q)


def test_bucket_count_is_bounded_over_the_whole_float_range() -> None:
    hist = LogHistogram()
    for exponent in range(-320, 309):
        for mantissa in (1.0, 1.3, 1.7):
            hist.add(mantissa * 10.0**exponent)
            hist.add(-mantissa * 10.0**exponent)
    assert hist.count == 629 * 6
    assert hist.bucket_count() <= MAX_BUCKETS < 2000


def test_mean_of_huge_values_stays_within_min_and_max() -> None:
    hist = histogram([1.7e308, 1.7e308])
    assert hist.mean == 1.7e308


def test_mean_of_huge_values_of_both_signs_is_finite_and_in_range() -> None:
    # Each sum overflows, one to +inf and one to -inf; merged they make NaN, and the mean
    # must still be a number in [min, max].
    hist = histogram([1.7e308, 1.7e308])
    hist.merge(histogram([-1.7e308, -1.7e308]))
    assert hist.mean is not None
    assert math.isfinite(hist.mean)
    assert -1.7e308 <= hist.mean <= 1.7e308
    assert math.isfinite(hist.describe()["mean"])


def test_an_overflowed_sum_survives_a_json_round_trip() -> None:
    # Stored rollups from before the latency bound may hold such a sum: JSON has no
    # infinity (orjson writes null), and reading it back must not fail the analytics.
    hist = histogram([1.7e308, 1.7e308])
    body = orjson.loads(orjson.dumps(hist.to_json()))
    assert body["s"] is None
    restored = LogHistogram.from_json(body)
    assert restored.count == 2
    assert restored.mean == 1.7e308
    assert restored.quantile(0.5) == 1.7e308


def test_the_most_extreme_valid_message_values_keep_every_figure_finite() -> None:
    # At the schema's bounds: latency 0 and an hour, timestamps 0, the design's
    # 1234567890 (1970) and 10**13 (2286), for one bot and overall.
    book = StatsBook()
    now = T0
    for latency_ms in (0.0, 3_600_000.0):
        for timestamp_ms in (0.0, 1234567890.0, 1e13):
            book.record("extreme", now, "ping", latency_ms, timestamp_ms)
            book.record("normal", now, "pong", 12.0, now * 1000 - 5)
            now += 0.5
    summary = book.summary("1m", now)

    def figures(node: Any) -> list[float]:
        if isinstance(node, dict):
            return [x for value in node.values() for x in figures(value)]
        return [float(node)] if isinstance(node, int | float) else []

    values = figures(summary)
    assert values
    assert all(math.isfinite(value) for value in values)
    assert summary["bots"]["normal"]["transit_ms"]["max"] == 5
    assert summary["bots"]["extreme"]["latency_ms"]["max"] == 3_600_000
    assert orjson.loads(orjson.dumps(summary)) == summary


def test_clear_empties_the_histogram() -> None:
    hist = histogram([1.0, -5.0])
    hist.clear()
    assert (hist.count, hist.negative_count, hist.bucket_count(), hist.max) == (0, 0, 0, None)


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
    stats = WindowedStats()
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


# --- StatsBook ----------------------------------------------------------------------------


def test_book_keeps_bots_apart_and_counts_them_overall() -> None:
    book = StatsBook()
    assert book.record("bravo", T0, "ping", 10.0, None) is True
    assert book.record("alpha", T0 + 1, "pong", 20.0, None) is True
    assert book.record("bravo", T0 + 2, "pong", 30.0, None) is True
    assert book.bots() == ["alpha", "bravo"]
    assert book.get("charlie") is None
    bravo = book.get("bravo")
    assert bravo is not None
    assert bravo.total == 2
    assert book.overall.total == 3
    summary = book.summary("1m", T0 + 2)
    assert summary["window"] == "1m"
    assert summary["generated_at_ms"] == int(T0 * 1000) + 2000
    assert summary["overall"]["count"] == 3
    assert list(summary["bots"]) == ["alpha", "bravo"]
    assert summary["bots"]["bravo"]["latency_ms"]["max"] == 30.0
    assert summary["bots"]["alpha"]["pong"] == 1


def test_book_summary_of_one_bot() -> None:
    book = StatsBook()
    book.record("alpha", T0, "ping", 1.0, None)
    book.record("bravo", T0, "ping", 2.0, None)
    summary = book.summary("5m", T0, bot="bravo")
    assert list(summary["bots"]) == ["bravo"]
    assert summary["overall"]["count"] == 2
    with pytest.raises(KeyError):
        book.summary("5m", T0, bot="charlie")


def test_book_cap_still_counts_overall() -> None:
    book = StatsBook(max_bots=2)
    for bot in ("bot0", "bot1"):
        for i in range(ESTABLISHED_MESSAGES):
            assert book.record(bot, T0 + i, "ping", 1.0, None) is True
    # Every slot is established: newcomers are refused rather than evicting anyone.
    assert [book.record(f"bot{i}", T0 + 3, "ping", 1.0, None) for i in (2, 3)] == [False, False]
    assert book.record("bot3", T0 + 5, "ping", 1.0, None) is False
    assert book.record("bot0", T0 + 6, "ping", 1.0, None) is True
    assert book.bots() == ["bot0", "bot1"]
    assert book.overall.total == 10
    assert book.summary("1m", T0 + 6)["overall"]["count"] == 10
    assert book.max_bots == 2


def test_negative_cap_is_refused() -> None:
    with pytest.raises(ValueError, match="max_bots"):
        StatsBook(max_bots=-1)


def test_book_summary_is_json_serialisable() -> None:
    book = StatsBook()
    for i in range(20):
        now = T0 + i * 0.7
        bot_ms = now * 1000 - i + 1  # i = 0 is a bot clock 1 ms ahead
        book.record(f"bot{i % 3}", now, "ping" if i % 2 else "pong", 3.3 * i, bot_ms)
    book.record("idle", T0, "ping", None, None)
    summary: dict[str, Any] = book.summary("1h", T0 + 14)
    assert orjson.loads(orjson.dumps(summary)) == summary
    assert summary["bots"]["idle"]["latency_ms"]["p50"] is None
    assert summary["bots"]["bot0"]["transit_ms"]["negative"] == 1


# --- probation and eviction ------------------------------------------------------------------


def _establish(book: StatsBook, bot: str, start_s: float) -> None:
    for i in range(ESTABLISHED_MESSAGES):
        assert book.record(bot, start_s + i * ESTABLISHED_SPAN_S, "ping", 1.0, None)
    assert book.is_established(bot)


def test_a_bot_is_established_by_enough_messages_over_enough_time() -> None:
    book = StatsBook()
    # A burst is not enough, however long: the span is what a flood of one-offs lacks.
    for i in range(10):
        book.record("burst", T0 + i * 0.05, "ping", 1.0, None)
    assert not book.is_established("burst")
    book.record("burst", T0 + ESTABLISHED_SPAN_S, "ping", 1.0, None)
    assert book.is_established("burst")
    # Nor is time alone: two messages ten minutes apart.
    book.record("slow", T0, "ping", 1.0, None)
    book.record("slow", T0 + 600, "ping", 1.0, None)
    assert not book.is_established("slow")
    book.record("slow", T0 + 1200, "ping", 1.0, None)
    assert book.is_established("slow")
    assert not book.is_established("unknown")


def test_a_full_book_evicts_the_bot_on_probation_heard_least_recently() -> None:
    evicted: list[str] = []
    book = StatsBook(max_bots=3, on_evict=evicted.append)
    for i, bot in enumerate(("a", "b", "c")):
        book.record(bot, T0 + i, "ping", 1.0, None)
    book.record("a", T0 + 3, "ping", 1.0, None)  # heard again: b is now the least recent
    assert book.record("d", T0 + 4, "ping", 1.0, None) is True
    assert evicted == ["b"]
    assert book.bots() == ["a", "c", "d"]
    assert book.get("b") is None
    assert book.record("e", T0 + 5, "ping", 1.0, None) is True
    assert evicted == ["b", "c"]
    assert book.overall.total == 6


def test_established_bots_are_never_evicted_and_a_full_established_book_refuses() -> None:
    evicted: list[str] = []
    book = StatsBook(max_bots=2, on_evict=evicted.append)
    _establish(book, "real", T0)
    # A flood of one-message ids turns over the one probation slot and nothing else.
    for i in range(1000):
        assert book.record(f"junk{i}", T0 + 10 + i * 0.001, "ping", 1.0, None) is True
    assert book.bots() == ["junk999", "real"]
    assert evicted == [f"junk{i}" for i in range(999)]
    assert book.on_probation == 1
    # A second real bot takes the probation slot and, once established, keeps it.
    _establish(book, "real2", T0 + 20)
    assert evicted[-1] == "junk999"
    assert book.record("late", T0 + 30, "ping", 1.0, None) is False
    assert book.bots() == ["real", "real2"]
    assert len(book) == 2


def test_seeded_bots_are_established_and_take_a_probation_slot_if_needed() -> None:
    evicted: list[str] = []
    book = StatsBook(max_bots=2, on_evict=evicted.append)
    book.record("junk", T0, "ping", 1.0, None)
    _establish(book, "real", T0)
    assert book.seed("known", T0 - 60) is True
    assert evicted == ["junk"]
    assert book.is_established("known")
    assert book.seed("other", T0 - 60) is False  # every slot established
    assert book.bots() == ["known", "real"]


def test_forget_and_silent_since() -> None:
    evicted: list[str] = []
    book = StatsBook(max_bots=3, on_evict=evicted.append)
    book.record("old", T0, "ping", 1.0, None)
    book.seed("seeded", T0 + 5)
    book.record("new", T0 + 100, "ping", 1.0, None)
    assert sorted(book.silent_since(T0 + 50)) == ["old", "seeded"]
    assert book.forget("old") is True
    assert book.forget("old") is False
    assert evicted == []  # forgetting is not an eviction
    assert book.bots() == ["new", "seeded"]
    assert book.on_probation == 1
