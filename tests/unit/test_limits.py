"""Token buckets with an explicit clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pingpong_relay.limits import BotAllowList, BotRateLimiter, TokenBucket


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    bucket = TokenBucket(rate_per_s=2.0, burst=4.0)
    assert [bucket.allow(0.0) for _ in range(5)] == [True, True, True, True, False]
    assert bucket.allow(0.4) is False  # 0.8 of a token
    assert bucket.allow(0.5) is True  # 1 token after half a second at 2/s
    assert bucket.allow(0.5) is False
    assert [bucket.allow(100.0) for _ in range(5)] == [True, True, True, True, False]


def test_a_clock_stepping_back_grants_nothing_extra() -> None:
    bucket = TokenBucket(rate_per_s=1.0, burst=1.0)
    assert bucket.allow(10.0)
    assert not bucket.allow(5.0)
    assert not bucket.allow(10.5)
    assert bucket.allow(11.1)


@given(st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=300))
def test_a_bucket_never_allows_more_than_burst_plus_rate_times_time(gaps: list[float]) -> None:
    bucket = TokenBucket(rate_per_s=3.0, burst=5.0)
    now = 0.0
    allowed = 0
    for gap in gaps:
        now += gap
        allowed += bucket.allow(now)
    assert allowed <= 5 + 3.0 * now + 1e-9


def test_bots_have_buckets_of_their_own_and_drops_are_counted_per_bot() -> None:
    limiter = BotRateLimiter(rate_per_s=1.0)  # bursts of 10
    assert sum(limiter.allow("loop", 0.0) for _ in range(15)) == 10
    assert all(limiter.allow("calm", 0.0) for _ in range(3))
    assert limiter.take_dropped() == {"loop": 5}
    assert limiter.take_dropped() == {}


def test_the_limiter_stays_bounded_with_endless_new_bots() -> None:
    limiter = BotRateLimiter(rate_per_s=1.0, max_bots=100)
    for n in range(1000):
        assert limiter.allow(f"bot-{n}", 0.0)
    assert len(limiter._buckets) <= 100


def test_bot_allow_list_matches_shell_patterns_case_sensitively() -> None:
    everyone = BotAllowList([])
    assert everyone.accepts("anything/at-all")
    listed = BotAllowList(["bot:pingpong/gate-*", "bot:other/[ab]?", "exact"])
    assert listed.accepts("bot:pingpong/gate-1")
    assert listed.accepts("bot:other/a1")
    assert listed.accepts("exact")
    assert not listed.accepts("bot:pingpong/Gate-1")
    assert not listed.accepts("bot:other/c1")
    assert not listed.accepts("exactly")
    assert not listed.accepts("bot:pingpong/junk123")
    # A newline cannot sneak past the end of a pattern.
    assert not listed.accepts("exact\n")
