"""What the statistics test modules share: a start time, value strategies, the exact quantile."""

from __future__ import annotations

import math

from hypothesis import strategies as st

from pingpong_relay.histogram import MIN_MAGNITUDE, RELATIVE_ERROR

T0 = 1_700_000_040.0  # a multiple of 60 s: the first slot of every window starts here

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
