"""The ring's cached sums (time_slots.Ring.merged) against merging the live slots each time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pingpong_relay.histogram import LogHistogram, bucket_key
from pingpong_relay.time_slots import Ring

# (seconds to move the clock by, a latency or None for a query): steps back included, as a
# stepped-back clock would give them.
STEPS = st.lists(
    st.tuples(
        st.floats(min_value=-3.0, max_value=7.0, allow_nan=False),
        st.one_of(st.none(), st.floats(min_value=0.0, max_value=5000.0, allow_nan=False)),
    ),
    max_size=80,
)


def add(ring: Ring, now_s: float, latency: float) -> None:
    """As WindowedStats.record adds a latency."""
    ring.insert(ring.slot_for(now_s), "latency", latency, bucket_key(latency))


def naive(ring: Ring, now_s: float) -> LogHistogram:
    merged = LogHistogram()
    for slot in ring.live(now_s):
        merged.merge(slot.latency)
    return merged


@settings(max_examples=300, deadline=None)
@given(STEPS)
def test_merged_is_always_what_the_live_slots_add_up_to(
    steps: list[tuple[float, float | None]],
) -> None:
    ring = Ring(60.0)  # one-second slots
    now_s = 1_000.0
    for move_s, latency in steps:
        now_s += move_s
        if latency is None:
            got, want = ring.merged(now_s, "latency"), naive(ring, now_s)
            for q in (0.0, 0.5, 0.95, 1.0):
                assert got.quantile(q) == want.quantile(q)
        else:
            add(ring, now_s, latency)


def test_the_sum_follows_new_values_until_time_moves_on() -> None:
    ring = Ring(60.0)
    for second in range(30):
        add(ring, 1_000.0 + second, float(second))
    first = ring.merged(1_029.5, "latency")
    assert first.quantile(1.0) == pytest.approx(29.0, rel=0.03)  # within a bucket
    add(ring, 1_029.6, 500.0)  # into the newest slot: the kept sum follows
    assert ring.merged(1_029.7, "latency").quantile(1.0) == 500.0  # the largest is exact
    assert ring.merged(1_029.7, "latency").quantile(0.0) == 0.0
    # 59 s on, only the newest slot (29 and 500) is left in the window; a second later, none.
    later = ring.merged(1_088.7, "latency")
    assert later.quantile(0.0) == pytest.approx(29.0, rel=0.03)
    assert later.quantile(1.0) == 500.0
    assert ring.merged(1_089.7, "latency").quantile(0.5) is None
