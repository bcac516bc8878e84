"""The HTTP plane's pure guards: headers, bearer comparison, public health, CSV cells,
rate-limited refusal logs, and the descriptors kept for the HTTP plane."""

from __future__ import annotations

import csv
import io

import pytest

from pingpong_relay.app.cli import build_parser
from pingpong_relay.app.serve import FD_HEADROOM, fd_headroom
from pingpong_relay.health import public_health
from pingpong_relay.http.guard import (
    bearer_matches,
    csv_cell,
    raw_response,
    security_headers,
    wants_detail,
)
from pingpong_relay.http.history import csv_page
from pingpong_relay.http.server import REFUSAL_SLOTS
from pingpong_relay.limits import LogThrottle
from pingpong_relay.parsing import csp_source_list
from pingpong_relay.replay import Entry
from pingpong_relay.settings import Settings
from pingpong_relay.settings_flags import settings_from_args
from tests.support import assert_browser_headers


def test_security_headers_name_no_version_and_forbid_framing_by_default() -> None:
    headers = security_headers()
    assert_browser_headers(headers, "'none'", "by default")
    assert "unsafe" not in headers["Content-Security-Policy"]
    policy = security_headers("'self' https://ops.example")["Content-Security-Policy"]
    assert policy.endswith("frame-ancestors 'self' https://ops.example")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'none'", "'none'"),
        ("  'self'   https://ops.example ", "'self' https://ops.example"),
        ("https://*.example.com", "https://*.example.com"),
    ],
)
def test_frame_ancestors_values_are_normalised(text: str, expected: str) -> None:
    assert csp_source_list(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   ", "'self'; script-src *", "'self', 'none'", "a\r\nSet-Cookie: x=1", "é.example"],
)
def test_frame_ancestors_cannot_smuggle_a_directive_or_a_header(text: str) -> None:
    with pytest.raises(ValueError, match="source list"):
        csp_source_list(text)
    with pytest.raises(SystemExit):  # the flag is refused with a usage error
        build_parser().parse_args(["serve", "--frame-ancestors", text])


def test_frame_ancestors_from_the_environment_is_checked_too() -> None:
    namespace = build_parser().parse_args(["serve"])
    with pytest.raises(ValueError, match="PINGPONG_FRAME_ANCESTORS"):
        settings_from_args(namespace, {"PINGPONG_FRAME_ANCESTORS": "'self'; script-src *"})


def test_bearer_comparison_takes_any_bytes_without_raising() -> None:
    assert bearer_matches("Bearer s3cret", "s3cret")
    assert not bearer_matches("Bearer s3cre", "s3cret")
    assert not bearer_matches("bearer s3cret", "s3cret")
    assert not bearer_matches("", "s3cret")
    # What aiohttp makes of the raw bytes "Bearer \xff": a surrogate, not ASCII.
    assert not bearer_matches("Bearer \udcff", "s3cret")
    assert not bearer_matches("Bearer é", "s3cret")


@pytest.mark.parametrize(
    ("query", "detail"),
    [({}, False), ({"detail": "1"}, True), ({"detail": "true"}, True), ({"detail": "0"}, False)],
)
def test_the_detail_view_is_asked_for_explicitly(query: dict[str, str], detail: bool) -> None:
    assert wants_detail(query) is detail


def test_public_health_says_up_or_not_and_nothing_else() -> None:
    detail = {
        "status": "unavailable",
        "redis": "disconnected",
        "reason": "Redis subscription not verified: ConnectionError: 10.0.0.5:6379 refused",
        "clients": 3,
        "channels": ["secret:channel"],
        "pid": 4242,
        "version": "0.1.0",
        "redis_down_since_ms": 1,
    }
    assert public_health(False, detail) == {"status": "unavailable", "redis": "unavailable"}
    assert public_health(True, {"redis": "subscribed", "pid": 1}) == {
        "status": "ok",
        "redis": "subscribed",
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("bot:pingpong/gate-5", "bot:pingpong/gate-5"),
        ("", ""),
        (-5, -5),
        (12.5, 12.5),
        (None, None),
    ],
)
def test_csv_cells_that_would_be_formulas_are_defused(value: object, expected: object) -> None:
    assert csv_cell(value) == expected


def test_a_csv_page_defuses_text_and_keeps_numbers() -> None:
    raw = b'{"type":"ping","latency":-1.5,"timestamp":1700000000000,"source":"@x"}'
    entry = Entry("1-0", "=cmd()/@x", "=cmd()", 1700000000001, 1, raw)
    [header, row] = list(csv.reader(io.StringIO(csv_page([entry]))))
    assert header[0] == "id"
    assert row[:4] == ["1-0", "'=cmd()/@x", "'=cmd()", "1700000000001"]
    assert row[4:] == ["ping", "-1.5", "1700000000000", "'@x"]


def test_refusals_are_logged_once_per_interval_with_how_many() -> None:
    book = LogThrottle(interval_s=10.0)
    assert book.note("host", 100.0) == 1  # the first is logged at once
    assert book.note("host", 101.0) == 0
    assert book.note("host", 102.0) == 0
    assert book.note("timeout", 102.0) == 1  # each reason on its own
    assert book.due_at("host") == 110.0
    assert book.flush("host", 109.0) == 0  # not yet
    assert book.flush("host", 110.0) == 2  # the two held back
    assert book.due_at("host") is None
    assert book.flush("host", 130.0) == 0
    assert book.note("host", 115.0) == 0  # within 10 s of the last line
    assert book.note("host", 121.0) == 2


def test_a_raw_refusal_is_a_whole_response_that_closes() -> None:
    response = raw_response(503, "Service Unavailable", b"{}", {"Server": "x"}, {"A": "b"})
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 503 Service Unavailable"
    assert {b"Server: x", b"A: b", b"Content-Length: 2", b"Connection: close"} <= set(lines)
    assert body == b"{}"


def test_the_http_plane_connections_are_kept_out_of_the_clients_room() -> None:
    assert fd_headroom(Settings()) == FD_HEADROOM + 100 + REFUSAL_SLOTS
    assert fd_headroom(Settings(max_http_connections=5)) == FD_HEADROOM + 5 + REFUSAL_SLOTS
    assert fd_headroom(Settings(http_port=0)) == FD_HEADROOM
