"""Human formatting: latency and bot time, build_bot_message, and the `watch` command's line."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pingpong_relay.client import describe
from pingpong_relay.messages import (
    MAX_LATENCY_MS,
    build_bot_message,
    format_bot_time,
    format_latency,
    parse_bot_message,
)
from tests.unit.messages_support import envelope_of

# --- format_latency / format_bot_time --------------------------------------------------


@pytest.mark.parametrize(
    ("latency_ms", "text"),
    [
        (None, "N/A"),
        (0.0, "0 ms"),
        (10, "10 ms"),
        (10.0, "10 ms"),
        (12.5, "12.5 ms"),
        (0.25, "0.25 ms"),
        (1e20, "1e+20 ms"),
    ],
)
def test_format_latency(latency_ms: float | None, text: str) -> None:
    assert format_latency(latency_ms) == text


@pytest.mark.parametrize(
    ("timestamp_ms", "text"),
    [
        (None, "N/A"),
        (0, "1970-01-01T00:00:00.000Z"),
        (1234567890123, "2009-02-13T23:31:30.123Z"),
        (1234567890, "1970-01-15T06:56:07.890Z"),
        (1234567890123.9, "2009-02-13T23:31:30.123Z"),
        (-1000, "1969-12-31T23:59:59.000Z"),
        (253402300799000, "9999-12-31T23:59:59.000Z"),
        # Out of range for a datetime: never an exception.
        (253402300800000, "N/A"),
        (1e20, "N/A"),
        (-1e20, "N/A"),
        (1e308, "N/A"),
        (float("inf"), "N/A"),
        (float("-inf"), "N/A"),
        (float("nan"), "N/A"),
    ],
)
def test_format_bot_time(timestamp_ms: float | None, text: str) -> None:
    assert format_bot_time(timestamp_ms) == text


@given(st.integers(min_value=0, max_value=4_102_444_800_000))  # up to 2100-01-01
def test_format_bot_time_keeps_every_millisecond(timestamp_ms: int) -> None:
    text = format_bot_time(timestamp_ms)
    assert text.endswith(f".{timestamp_ms % 1000:03d}Z")
    assert len(text) == len("2009-02-13T23:31:30.123Z")


# --- build_bot_message -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ping", "pong"])
@pytest.mark.parametrize("latency_ms", [0.0, 0.01, 10, 42.5, MAX_LATENCY_MS])
def test_build_bot_message_round_trips(kind: str, latency_ms: float) -> None:
    raw = build_bot_message(kind, latency_ms, 1234567890123)
    message = parse_bot_message(raw)
    assert message.type == kind
    assert message.latency_ms == latency_ms
    assert message.timestamp_ms == 1234567890123
    assert message.source == "bot"
    assert list(orjson.loads(raw)) == ["type", "latency", "timestamp", "source"]


@pytest.mark.parametrize("kind", ["", "PING", "Ping", "bot:pingpong", "ping ", "pingpong"])
def test_build_bot_message_rejects_bad_kind(kind: str) -> None:
    with pytest.raises(ValueError, match="kind"):
        build_bot_message(kind, 1.0, 0)


@pytest.mark.parametrize(
    "latency_ms", [-1.0, -1e-9, MAX_LATENCY_MS + 0.5, 1e9, math.nan, math.inf, -math.inf]
)
def test_build_bot_message_rejects_bad_latency(latency_ms: float) -> None:
    with pytest.raises(ValueError, match="latency_ms"):
        build_bot_message("ping", latency_ms, 0)


@pytest.mark.parametrize("source", ["gate-1", "a", "x" * 128, "desk@ny/eu:1+b_c.d"])
def test_build_bot_message_names_the_bot_as_the_relay_accepts(source: str) -> None:
    message = parse_bot_message(build_bot_message("ping", 1.0, 0, source))
    assert message.source == source


@pytest.mark.parametrize("source", ["", " ", "gate 1", "x" * 129, "é", "a\n", "a\x1b"])
def test_build_bot_message_rejects_a_name_the_relay_would_refuse(source: str) -> None:
    with pytest.raises(ValueError, match="is not a bot name: 1-128 characters of"):
        build_bot_message("ping", 1.0, 0, source)


# --- describe (the `watch` command's line) ---------------------------------------------


def test_describe_a_relay_envelope() -> None:
    envelope = envelope_of(
        b'{"type":"pong","latency":12.5,"timestamp":1234567890123}', 1234567890456
    )
    assert describe(envelope) == (
        "PONG latency 12.5 ms bot time 2009-02-13T23:31:30.123Z relay time 2009-02-13T23:31:30.456Z"
    )


def test_describe_missing_fields_as_na() -> None:
    envelope = {"type": "bot:pingpong", "data": {"type": "ping", "latency": "fast"}, "timestamp": 0}
    assert describe(envelope) == (
        "PING latency N/A bot time N/A relay time 1970-01-01T00:00:00.000Z"
    )


def test_describe_other_messages_as_json() -> None:
    assert describe({"type": "error", "message": "nope"}) == (
        'error: {"type":"error","message":"nope"}'
    )
    assert describe({"type": "bot:pingpong", "data": [1]}).startswith("bot:pingpong: ")
    assert describe({}) == "?: {}"


@pytest.mark.parametrize("relay_timestamp", ["soon", None, [1], {"ms": 1}])
def test_describe_never_raises_on_a_malformed_relay_timestamp(relay_timestamp: object) -> None:
    envelope = {"type": "bot:pingpong", "data": {"type": "ping"}, "timestamp": relay_timestamp}
    assert describe(envelope).endswith("relay time N/A")
