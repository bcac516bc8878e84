"""Capped exponential backoff with equal or full jitter, and a loop's place in it (Retries)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pingpong_relay.backoff import Backoff, Retries


def low(backoff: Backoff, attempt: int) -> float:
    return backoff.delay(attempt, rand=lambda: 0.0)


def high(backoff: Backoff, attempt: int) -> float:
    return backoff.delay(attempt, rand=lambda: 1.0)


def test_defaults() -> None:
    backoff = Backoff()
    assert (backoff.base_s, backoff.cap_s) == (0.1, 5.0)


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.8), (4, 1.6), (5, 3.2), (6, 5.0), (7, 5.0), (100, 5.0)],
)
def test_bounds_with_rand_0_and_1(attempt: int, ceiling: float) -> None:
    backoff = Backoff()
    assert high(backoff, attempt) == pytest.approx(ceiling)
    assert low(backoff, attempt) == pytest.approx(ceiling / 2)


def test_rand_half_is_three_quarters_of_the_ceiling() -> None:
    assert Backoff(base_s=1.0, cap_s=100.0).delay(2, rand=lambda: 0.5) == 3.0


def test_delays_grow_until_the_cap() -> None:
    backoff = Backoff(base_s=0.1, cap_s=5.0)
    ceilings = [high(backoff, attempt) for attempt in range(40)]
    floors = [low(backoff, attempt) for attempt in range(40)]
    capped_from = ceilings.index(5.0)
    assert capped_from == 6
    for before, after in itertools.pairwise(ceilings[: capped_from + 1]):
        assert after > before
    assert set(ceilings[capped_from:]) == {5.0}
    assert floors == sorted(floors)
    assert max(floors) == 2.5


def test_huge_attempt_numbers_do_not_overflow() -> None:
    backoff = Backoff(base_s=0.5, cap_s=60.0)
    for attempt in (31, 1_000, 10**9, 10**30):
        assert high(backoff, attempt) == 60.0
        assert low(backoff, attempt) == 30.0


@given(
    base_s=st.floats(min_value=1e-6, max_value=10.0),
    cap_s=st.floats(min_value=1e-6, max_value=3600.0),
    attempt=st.integers(min_value=0, max_value=10**6),
    jitter=st.floats(min_value=0.0, max_value=1.0),
)
def test_delay_within_half_ceiling_and_ceiling(
    base_s: float, cap_s: float, attempt: int, jitter: float
) -> None:
    backoff = Backoff(base_s=base_s, cap_s=cap_s)
    ceiling = min(cap_s, base_s * 2 ** min(attempt, 30))
    delay = backoff.delay(attempt, rand=lambda: jitter)
    assert ceiling / 2 <= delay <= ceiling
    assert delay <= cap_s
    assert delay > 0


@given(
    base_s=st.floats(min_value=1e-6, max_value=10.0),
    cap_s=st.floats(min_value=1e-6, max_value=3600.0),
    attempt=st.integers(min_value=0, max_value=200),
)
def test_delay_never_shrinks_from_one_attempt_to_the_next(
    base_s: float, cap_s: float, attempt: int
) -> None:
    backoff = Backoff(base_s=base_s, cap_s=cap_s)
    assert high(backoff, attempt + 1) >= high(backoff, attempt)
    assert low(backoff, attempt + 1) >= low(backoff, attempt)


def test_default_rand_stays_in_bounds() -> None:
    backoff = Backoff(base_s=1.0, cap_s=8.0)
    delays = [backoff.delay(10) for _ in range(1000)]
    assert all(4.0 <= delay <= 8.0 for delay in delays)
    assert len(set(delays)) > 1  # jittered, not constant


def _scripted(*draws: float) -> Callable[[], float]:
    """A random source that returns `draws` in turn (and fails the test if asked more)."""
    left = iter(draws)
    return lambda: next(left)


def test_full_jitter_is_random_from_zero_to_the_ceiling() -> None:
    backoff = Backoff(base_s=0.5, cap_s=20.0, jitter="full", rand=_scripted(0.0, 0.25, 1.0))
    assert [backoff.delay(2) for _ in range(3)] == [0.0, 0.5, 2.0]


@given(attempt=st.integers(min_value=0, max_value=10**6), draw=st.floats(0.0, 1.0))
def test_full_jitter_stays_within_zero_and_the_ceiling(attempt: int, draw: float) -> None:
    backoff = Backoff(base_s=0.5, cap_s=20.0, jitter="full")
    assert 0.0 <= backoff.delay(attempt, rand=lambda: draw) <= backoff.ceiling(attempt) <= 20.0


def test_full_jitter_ceilings_double_from_half_a_second_to_twenty() -> None:
    backoff = Backoff(base_s=0.5, cap_s=20.0, jitter="full")
    highs = [backoff.delay(attempt, rand=lambda: 1.0) for attempt in range(10)]
    assert highs == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0, 20.0, 20.0]


def test_the_injected_random_source_is_used_by_default() -> None:
    backoff = Backoff(base_s=1.0, cap_s=8.0, jitter="full", rand=_scripted(0.5, 0.25))
    assert (backoff.delay(3), backoff.delay(3)) == (4.0, 2.0)
    assert backoff == Backoff(base_s=1.0, cap_s=8.0, jitter="full")  # rand is not compared


def test_retries_grow_until_the_cap_and_start_over_after_a_reset() -> None:
    retries = Retries(Backoff(base_s=0.5, cap_s=4.0, jitter="full", rand=lambda: 1.0))
    assert [retries.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    retries.reset()
    assert [retries.next_delay() for _ in range(2)] == [0.5, 1.0]


def test_retries_draw_a_fresh_jitter_each_time() -> None:
    draws = _scripted(0.0, 1.0, 0.5, 0.1)
    retries = Retries(Backoff(base_s=1.0, cap_s=20.0, jitter="full", rand=draws))
    assert [retries.next_delay() for _ in range(4)] == [0.0, 2.0, 2.0, pytest.approx(0.8)]
