"""--poll targets: parsing (credentials decoded, never echoed) and what an answer means."""

from __future__ import annotations

import orjson
import pytest

from pingpong_relay.ingest import Report
from pingpong_relay.poll_targets import (
    age_text,
    first_line,
    freqtrade_health_report,
    freqtrade_ping_problem,
    http_problem,
    parse_poll_target,
    timeout_reason,
)

NOW_S = 1_800_000_000.0


def health(**fields: object) -> bytes:
    return orjson.dumps({"last_process": "2027-01-15 08:00:00+00:00", **fields})


def test_the_urls_user_info_is_percent_decoded_and_left_out_of_the_url() -> None:
    target = parse_poll_target("ft=http://free%40trader:p%40ss%3Aw%2Frd%25@127.0.0.1:8080/x")
    assert (target.user, target.password) == ("free@trader", "p@ss:w/rd%")
    assert target.url == "http://127.0.0.1:8080/x"
    assert "p@ss" not in repr(target)
    assert "p%40ss" not in repr(target)


def test_options_are_taken_verbatim_and_win_over_the_url() -> None:
    target = parse_poll_target("ft=http://a:b@h user=u%41 password=p%40 mode=freqtrade")
    assert (target.user, target.password, target.mode) == ("u%41", "p%40", "freqtrade")
    assert parse_poll_target("ft=http://h token=abc").token == "abc"


@pytest.mark.parametrize(
    "text",
    [
        "ft=http://h pasword=hunter2-secret",  # a misspelt key: its value stays unsaid
        "ft=http://h password= hunter2-secret",  # a value that lost its key
        "ft=http://h hunter2-secret",
    ],
)
def test_a_bad_option_never_echoes_its_value(text: str) -> None:
    with pytest.raises(ValueError, match="poll target ft") as caught:
        parse_poll_target(text)
    assert "hunter2" not in str(caught.value)


def test_age_and_timeout_read_as_people_say_them() -> None:
    assert [age_text(s) for s in (0, 0.25, 5, 12.7, 60, 420, 7200, 90000)] == [
        "0s", "0.25s", "5s", "13s", "1m", "7m", "2h", "1d",
    ]  # fmt: skip
    assert timeout_reason(5) == "no answer within 5s"


def test_generic_answers() -> None:
    assert http_problem(200, b"") is None
    assert http_problem(204, b"anything") is None
    assert http_problem(503, b"") == "HTTP 503"
    assert http_problem(500, b"\n  Internal Server Error  \nsecond") == (
        "HTTP 500: Internal Server Error"
    )
    assert str(http_problem(302, b"")).startswith("HTTP 302 (redirects are not followed")
    assert len(first_line(b"x" * 500)) == 80


def test_freqtrades_ping_must_answer_pong() -> None:
    assert freqtrade_ping_problem(200, b'{"status":"pong"}') is None
    assert freqtrade_ping_problem(502, b"Bad Gateway") == "ping: HTTP 502: Bad Gateway"
    problem = freqtrade_ping_problem(200, b"<html>a router</html>")
    assert problem == "ping answered what freqtrade does not: <html>a router</html>"


def test_a_fresh_last_process_is_up_with_the_pings_latency() -> None:
    body = health(last_process_ts=int(NOW_S) - 10)
    assert freqtrade_health_report(200, body, NOW_S, 300, 4.5) == Report("up", 4.5)


def test_a_stale_last_process_is_degraded_with_its_age() -> None:
    report = freqtrade_health_report(200, health(last_process_ts=NOW_S - 420), NOW_S, 300, 3)
    assert report == Report("degraded", 3, "last process 7m ago (stale after 5m)")
    # Exactly at the bound is not yet stale.
    assert (
        freqtrade_health_report(200, health(last_process_ts=NOW_S - 300), NOW_S, 300, 3).status
        == "up"
    )


def test_no_process_yet_is_degraded() -> None:
    report = freqtrade_health_report(200, health(last_process_ts=None), NOW_S, 300, 3)
    assert report == Report("degraded", 3, "freqtrade has not processed yet")


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (401, b'{"detail":"Unauthorized"}', "freqtrade refused the credentials (401)"),
        (503, b"busy", "health: HTTP 503: busy"),
        (200, b"not json", "health answered what freqtrade does not: not json"),
        (200, b"[1]", "health answered what freqtrade does not: [1]"),
        (200, b'{"status":"ok"}', 'health answered what freqtrade does not: {"status":"ok"}'),
        (200, b'{"last_process_ts":"yesterday"}', "health's last_process_ts is not a time"),
        (200, b'{"last_process_ts":true}', "health's last_process_ts is not a time"),
    ],
)
def test_what_freqtrade_would_not_answer_is_down(status: int, body: bytes, reason: str) -> None:
    assert freqtrade_health_report(status, body, NOW_S, 300, 2) == Report("down", 2, reason)
