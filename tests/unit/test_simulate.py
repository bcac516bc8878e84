"""The simulated bot's latency: a mean-reverting random walk with occasional spikes."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from pingpong_relay.app.bots import LatencyWalk, bot_names

STEPS = 10_000


def walk(mean_ms: float, seed: int) -> list[float]:
    latency = LatencyWalk(mean_ms, random.Random(seed))
    return [latency.next() for _ in range(STEPS)]


@pytest.mark.parametrize("seed", [0, 1, 42, 2024])
@pytest.mark.parametrize("mean_ms", [0.5, 40.0, 250.0])
def test_positive_finite_and_centred_on_the_mean(mean_ms: float, seed: int) -> None:
    values = walk(mean_ms, seed)
    assert all(math.isfinite(value) and value > 0 for value in values)
    assert min(values) >= 0.1  # the floor, after rounding to 0.01 ms
    assert statistics.median(values) == pytest.approx(mean_ms, rel=0.05)
    # Spikes pull the mean up a little, never far.
    assert mean_ms <= statistics.fmean(values) <= 1.25 * mean_ms


def test_it_varies_and_spikes() -> None:
    values = walk(40.0, 7)
    assert len(set(values)) > STEPS // 10
    assert max(values) > 3 * 40.0  # a congested exchange now and then
    spikes = sum(value > 2.5 * 40.0 for value in values)
    assert 0 < spikes < STEPS * 0.05


def test_values_have_two_decimals() -> None:
    assert all(round(value, 2) == value for value in walk(40.0, 3))


def test_same_seed_same_walk() -> None:
    assert walk(40.0, 99) == walk(40.0, 99)
    assert walk(40.0, 99) != walk(40.0, 100)


def test_one_bot_is_named_by_its_source_several_are_numbered() -> None:
    assert bot_names("bot", 1) == ["bot"]
    assert bot_names("gate", 3) == ["gate-1", "gate-2", "gate-3"]


def test_a_bot_name_the_relay_would_refuse_is_caught_before_publishing() -> None:
    assert bot_names("x" * 126, 9)[-1] == "x" * 126 + "-9"  # 128 characters: accepted
    with pytest.raises(ValueError, match="is not a bot name"):
        bot_names("x" * 126, 10)  # "…-10" is 129
