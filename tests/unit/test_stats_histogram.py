"""LogHistogram and its bucket keys (stats.py): quantiles within the error bound, merging."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pingpong_relay.histogram import (
    MAX_BUCKETS,
    MIN_MAGNITUDE,
    RELATIVE_ERROR,
    LogHistogram,
    bucket_key,
)
from pingpong_relay.stats import StatsBook
from tests.unit.stats_support import T0, assert_close, nearest_rank, positive, signed


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
    # 1234567890 (1970) and 10**13 (2286), for one bot and overall; with a clock-skew bound
    # wide enough that each is a transit time too.
    book = StatsBook(max_clock_skew_s=1e11)
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
