"""The property: rollups agree with a brute-force reference over the raw messages."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pingpong_relay.histogram import MIN_MAGNITUDE, RELATIVE_ERROR
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
from tests.unit.rollups_support import T0, Message, minute_rollups, rollup_state, through_json


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
