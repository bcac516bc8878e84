"""Which Redis a URL names, Sentinel-managed masters included."""

from __future__ import annotations

import pytest

from pingpong_relay.urls import SentinelTarget, check_redis_url, parse_sentinel_url


def test_plain_urls_are_not_sentinel_urls() -> None:
    assert parse_sentinel_url("redis://127.0.0.1:6379/0") is None
    assert parse_sentinel_url("rediss://:pw@redis.example:6380/2") is None


def test_a_sentinel_url_with_several_sentinels_a_db_and_passwords() -> None:
    target = parse_sentinel_url(
        "redis+sentinel://app:s3cret@10.0.0.1:26379,10.0.0.2,[::1]:26380/main/3"
        "?sentinel_password=sp"
    )
    assert target == SentinelTarget(
        sentinels=(("10.0.0.1", 26379), ("10.0.0.2", 26379), ("::1", 26380)),
        service="main",
        db=3,
        username="app",
        password="s3cret",
        sentinel_password="sp",
        tls=False,
    )


def test_tls_to_the_master_and_defaults() -> None:
    target = parse_sentinel_url("rediss+sentinel://sentinel.example/mymaster")
    assert target is not None
    assert (target.sentinels, target.db, target.password, target.tls) == (
        (("sentinel.example", 26379),),
        0,
        None,
        True,
    )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("redis+sentinel://127.0.0.1:26379", "names its master"),
        ("redis+sentinel://127.0.0.1:26379,/m", "names no host"),
        ("http://127.0.0.1:6379", "not a Redis URL scheme"),
    ],
)
def test_bad_urls_say_why(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        check_redis_url(url)
