"""Bot message validation, envelope encoding and the human formatting of both (pure)."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pingpong_relay.client import describe
from pingpong_relay.messages import (
    ENVELOPE_SOURCE,
    ENVELOPE_TYPE,
    EXCERPT_CHARS,
    MAX_CHANNEL_CHARS,
    MAX_DEPTH,
    MAX_LATENCY_MS,
    MAX_PAYLOAD_BYTES,
    MAX_SOURCE_CHARS,
    MAX_TIMESTAMP_MS,
    REJECT_REASONS,
    BotMessage,
    RejectedMessage,
    build_bot_message,
    check_channel,
    encode_envelope,
    excerpt,
    format_bot_time,
    format_latency,
    nesting_depth_exceeds,
    parse_bot_message,
)

DESIGN_PING = b'{"type":"ping","latency":10,"timestamp":1234567890,"source":"bot"}'
ENVELOPE_KEYS = ["type", "data", "timestamp", "source"]
RELAY_MS = 1_700_000_000_123


def padded(total_bytes: int) -> bytes:
    """A valid ping of exactly `total_bytes` bytes (an extra string field takes the slack)."""
    head, tail = b'{"type":"ping","pad":"', b'"}'
    payload = head + b"x" * (total_bytes - len(head) - len(tail)) + tail
    assert len(payload) == total_bytes
    return payload


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def depth_of(value: Any) -> int:
    """The nesting depth by definition: a scalar is 0, an array or object one more than
    its deepest member."""
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    return 0


def reason_of(raw: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> str:
    with pytest.raises(RejectedMessage) as info:
        parse_bot_message(raw, max_bytes)
    return info.value.reason


# --- parse_bot_message: accepted -------------------------------------------------------

ACCEPTED: list[tuple[str, bytes, dict[str, Any]]] = [
    (
        "design ping",
        DESIGN_PING,
        {"type": "ping", "latency_ms": 10.0, "timestamp_ms": 1234567890.0, "source": "bot"},
    ),
    (
        "pong with float latency",
        b'{"type":"pong","latency":12.5,"timestamp":1.5,"source":"x"}',
        {"type": "pong", "latency_ms": 12.5, "timestamp_ms": 1.5, "source": "x"},
    ),
    (
        "only type",
        b'{"type":"ping"}',
        {"type": "ping", "latency_ms": None, "timestamp_ms": None, "source": None},
    ),
    (
        "explicit nulls",
        b'{"type":"pong","latency":null,"timestamp":null,"source":null}',
        {"type": "pong", "latency_ms": None, "timestamp_ms": None, "source": None},
    ),
    (
        "zero latency",
        b'{"type":"ping","latency":0}',
        {"type": "ping", "latency_ms": 0.0, "timestamp_ms": None, "source": None},
    ),
    (
        "the smallest timestamp and the largest latency",
        b'{"type":"ping","latency":3600000,"timestamp":0}',
        {"type": "ping", "latency_ms": 3_600_000.0, "timestamp_ms": 0.0, "source": None},
    ),
    (
        "the largest timestamp, as a float",
        b'{"type":"ping","latency":3.6e6,"timestamp":1e13}',
        {"type": "ping", "latency_ms": 3_600_000.0, "timestamp_ms": 1e13, "source": None},
    ),
    (
        "JSON whitespace around the object",
        b' \t\r\n{"type":"ping"}\n ',
        {"type": "ping", "latency_ms": None, "timestamp_ms": None, "source": None},
    ),
    (
        "unicode in other fields",
        '{"type":"ping","source":"gate-1","name":"bøt 🤖"}'.encode(),
        {"type": "ping", "latency_ms": None, "timestamp_ms": None, "source": "gate-1"},
    ),
    *(
        (
            f"source {source}",
            orjson.dumps({"type": "ping", "source": source}),
            {"type": "ping", "latency_ms": None, "timestamp_ms": None, "source": source},
        )
        for source in (
            "bot",
            "gate-1",
            "freqtrade.binance",
            "user@host",
            "eu/fra:1+b_2",
            "x" * MAX_SOURCE_CHARS,
        )
    ),
]


@pytest.mark.parametrize(
    ("raw", "expected"), [(raw, exp) for _, raw, exp in ACCEPTED], ids=[c[0] for c in ACCEPTED]
)
def test_accepts(raw: bytes, expected: dict[str, Any]) -> None:
    message = parse_bot_message(raw)
    assert isinstance(message, BotMessage)
    assert {
        "type": message.type,
        "latency_ms": message.latency_ms,
        "timestamp_ms": message.timestamp_ms,
        "source": message.source,
    } == expected
    assert message.fields == orjson.loads(raw)
    assert message.raw == raw.strip(b" \t\r\n")


def test_latency_and_timestamp_are_floats() -> None:
    message = parse_bot_message(DESIGN_PING)
    assert type(message.latency_ms) is float
    assert type(message.timestamp_ms) is float


def test_extra_fields_are_kept() -> None:
    raw = b'{"type":"pong","latency":3,"exchange":"binance","tags":["a",{"b":null}],"n":1.25}'
    message = parse_bot_message(raw)
    assert message.fields["exchange"] == "binance"
    assert message.fields["tags"] == ["a", {"b": None}]
    assert message.fields["n"] == 1.25
    assert message.raw == raw


def test_nesting_up_to_the_limit_is_accepted_in_an_extra_field() -> None:
    # The object itself is one level, so MAX_DEPTH - 1 more reach the limit.
    raw = b'{"type":"ping","x":' + nested(MAX_DEPTH - 1) + b"}"
    assert parse_bot_message(raw).type == "ping"
    assert reason_of(b'{"type":"ping","x":' + nested(MAX_DEPTH) + b"}") == "too_deep"


def test_brackets_in_strings_do_not_count_towards_the_depth() -> None:
    quoted = orjson.dumps("[{" * 500 + '\\"[' * 100)
    raw = b'{"type":"ping","a":' + quoted + b',"b":[' + quoted + b"]}"
    assert parse_bot_message(raw).type == "ping"


def test_many_shallow_brackets_are_not_deep() -> None:
    raw = b'{"type":"ping","x":[' + b",".join([b'{"a":[]}'] * 1000) + b"]}"
    assert parse_bot_message(raw).type == "ping"


def test_depth_is_the_deepest_branch_not_the_first() -> None:
    deep = b"[" + b"[]," * 50 + nested(MAX_DEPTH - 2) + b"]"  # 1 + MAX_DEPTH - 2 levels
    assert parse_bot_message(b'{"type":"ping","x":' + deep + b"}").type == "ping"
    deeper = b"[" + b"[]," * 50 + nested(MAX_DEPTH - 1) + b"]"
    assert reason_of(b'{"type":"ping","x":' + deeper + b"}") == "too_deep"


# --- parse_bot_message: rejected -------------------------------------------------------

REJECTED: list[tuple[str, bytes, str]] = [
    # oversize
    ("valid JSON one byte over the limit", padded(MAX_PAYLOAD_BYTES + 1), "oversize"),
    (
        "junk over the limit is oversize, not invalid_json",
        b"\xff" * (MAX_PAYLOAD_BYTES + 1),
        "oversize",
    ),
    ("a megabyte", b" " * (1024 * 1024), "oversize"),
    # invalid_json
    ("empty", b"", "invalid_json"),
    ("whitespace only", b" \n\t", "invalid_json"),
    ("truncated object", b'{"type":"ping"', "invalid_json"),
    ("trailing comma", b'{"type":"ping",}', "invalid_json"),
    ("single quotes", b"{'type':'ping'}", "invalid_json"),
    ("two documents", b'{"type":"ping"}{"type":"pong"}', "invalid_json"),
    ("trailing NUL", b'{"type":"ping"}\x00', "invalid_json"),
    ("invalid UTF-8 in a string", b'{"type":"ping","x":"\xff"}', "invalid_json"),
    ("overlong UTF-8", b'{"type":"ping","x":"\xc0\xaf"}', "invalid_json"),
    ("UTF-8 encoded surrogate", b'{"type":"ping","x":"\xed\xa0\x80"}', "invalid_json"),
    ("escaped lone surrogate", b'{"type":"ping","x":"\\ud800"}', "invalid_json"),
    ("binary junk", bytes(range(256)), "invalid_json"),
    ("UTF-8 BOM", b'\xef\xbb\xbf{"type":"ping"}', "invalid_json"),
    ("UTF-16 encoded", '{"type":"ping"}'.encode("utf-16"), "invalid_json"),
    ("NaN latency", b'{"type":"ping","latency":NaN}', "invalid_json"),
    ("Infinity latency", b'{"type":"ping","latency":Infinity}', "invalid_json"),
    ("-Infinity timestamp", b'{"type":"ping","timestamp":-Infinity}', "invalid_json"),
    ("1e999 latency", b'{"type":"ping","latency":1e999}', "invalid_json"),
    ("-1e999 in an extra field", b'{"type":"ping","x":-1e999}', "invalid_json"),
    ("400-digit integer", b'{"type":"ping","latency":' + b"9" * 400 + b"}", "invalid_json"),
    ("nesting past 1024 levels", nested(1025), "invalid_json"),
    (
        "nesting past 1024 in an extra field",
        b'{"type":"ping","x":' + nested(1024) + b"}",
        "invalid_json",
    ),
    # not_object
    ("array", b'[{"type":"ping"}]', "not_object"),
    ("string", b'"ping"', "not_object"),
    ("number", b"42", "not_object"),
    ("null", b"null", "not_object"),
    ("true", b"true", "not_object"),
    # bad_type
    ("type missing", b'{"latency":10}', "bad_type"),
    ("empty object", b"{}", "bad_type"),
    ("type null", b'{"type":null}', "bad_type"),
    ("type wrong word", b'{"type":"pinG"}', "bad_type"),
    ("type padded", b'{"type":" ping"}', "bad_type"),
    ("type number", b'{"type":1}', "bad_type"),
    ("type bool", b'{"type":true}', "bad_type"),
    ("type envelope", b'{"type":"bot:pingpong"}', "bad_type"),
    ("type array", b'{"type":[]}', "bad_type"),
    ("type object", b'{"type":{}}', "bad_type"),
    ("type array of the right word", b'{"type":["ping"]}', "bad_type"),
    # bad_latency
    ("negative latency", b'{"type":"ping","latency":-1}', "bad_latency"),
    ("tiny negative latency", b'{"type":"ping","latency":-1e-300}', "bad_latency"),
    ("big negative int latency", b'{"type":"ping","latency":-9223372036854775809}', "bad_latency"),
    ("latency true", b'{"type":"ping","latency":true}', "bad_latency"),
    ("latency false", b'{"type":"ping","latency":false}', "bad_latency"),
    ("latency string", b'{"type":"ping","latency":"10"}', "bad_latency"),
    ("latency array", b'{"type":"ping","latency":[10]}', "bad_latency"),
    ("latency object", b'{"type":"ping","latency":{"ms":10}}', "bad_latency"),
    ("latency nested", b'{"type":"ping","latency":' + nested(5) + b"}", "bad_latency"),
    ("latency just over an hour", b'{"type":"ping","latency":3600000.001}', "bad_latency"),
    ("latency huge", b'{"type":"ping","latency":1e308}', "bad_latency"),
    ("latency 2**64 - 1", b'{"type":"ping","latency":18446744073709551615}', "bad_latency"),
    # bad_timestamp
    ("timestamp true", b'{"type":"ping","timestamp":true}', "bad_timestamp"),
    ("timestamp string", b'{"type":"ping","timestamp":"2024-01-01T00:00:00Z"}', "bad_timestamp"),
    ("timestamp object", b'{"type":"ping","timestamp":{}}', "bad_timestamp"),
    ("timestamp nested", b'{"type":"ping","timestamp":' + nested(5) + b"}", "bad_timestamp"),
    ("timestamp negative", b'{"type":"ping","timestamp":-1}', "bad_timestamp"),
    ("timestamp -1e308", b'{"type":"ping","timestamp":-1e308}', "bad_timestamp"),
    ("timestamp just past 10**13", b'{"type":"ping","timestamp":10000000000001}', "bad_timestamp"),
    ("timestamp in microseconds", b'{"type":"ping","timestamp":1700000000000000}', "bad_timestamp"),
    # bad_source
    ("source number", b'{"type":"ping","source":1}', "bad_source"),
    ("source bool", b'{"type":"ping","source":false}', "bad_source"),
    ("source array", b'{"type":"ping","source":["bot"]}', "bad_source"),
    ("source nested", b'{"type":"ping","source":' + nested(5) + b"}", "bad_source"),
    ("source empty", b'{"type":"ping","source":""}', "bad_source"),
    ("source too long", orjson.dumps({"type": "ping", "source": "x" * 129}), "bad_source"),
    ("source 10 KiB", orjson.dumps({"type": "ping", "source": "x" * 10_240}), "bad_source"),
    ("source with a space", b'{"type":"ping","source":"gate 1"}', "bad_source"),
    ("source with a newline", b'{"type":"ping","source":"a\\nb"}', "bad_source"),
    ("source ending in a newline", b'{"type":"ping","source":"bot\\n"}', "bad_source"),
    ("source with ESC", b'{"type":"ping","source":"\\u001b[31mbot"}', "bad_source"),
    ("source with NUL", b'{"type":"ping","source":"bot\\u0000"}', "bad_source"),
    ("source with U+2028", b'{"type":"ping","source":"bot\\u2028x"}', "bad_source"),
    ("source unicode", '{"type":"ping","source":"bøt"}'.encode(), "bad_source"),
    ("source a glob", b'{"type":"ping","source":"gate-*"}', "bad_source"),
    ("source with a comma", b'{"type":"ping","source":"a,b"}', "bad_source"),
    # too_deep
    ("array nested past the limit", nested(MAX_DEPTH + 1), "too_deep"),
    ("latency deeply nested", b'{"type":"ping","latency":' + nested(1000) + b"}", "too_deep"),
    (
        "source deeply nested",
        b'{"type":"ping","source":' + b'{"a":' * 1000 + b"1" + b"}" * 1001,
        "too_deep",
    ),
    ("just past the limit", b'{"type":"ping","x":' + nested(MAX_DEPTH) + b"}", "too_deep"),
    ("orjson's own limit", b'{"type":"ping","x":' + nested(1023) + b"}", "too_deep"),
]


@pytest.mark.parametrize(
    ("raw", "reason"), [(raw, why) for _, raw, why in REJECTED], ids=[c[0] for c in REJECTED]
)
def test_rejects(raw: bytes, reason: str) -> None:
    with pytest.raises(RejectedMessage) as info:
        parse_bot_message(raw)
    rejected = info.value
    assert rejected.reason == reason
    assert rejected.raw is raw
    assert str(rejected).startswith(f"{reason}: ")
    assert rejected.detail


def test_every_reject_reason_is_covered_by_the_table() -> None:
    # bad_channel is about where a message came from, not about its bytes; bot_not_accepted
    # is the relay's --accept-bots, not validation.
    relay_level = {"bad_channel", "bot_not_accepted"}
    assert {reason for _, _, reason in REJECTED} | relay_level == set(REJECT_REASONS)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"type":"ping","latency":3600001}', "a number >= 0 and <= 3,600,000, got 3600001"),
        (b'{"type":"ping","timestamp":-5}', ">= 0 and <= 10,000,000,000,000, got -5"),
        (
            orjson.dumps({"type": "ping", "source": "x" * 500}),
            "1-128 characters of A-Z a-z 0-9 _ . : @ / + -, got 'xxx",
        ),
        (orjson.dumps({"type": "ping", "source": "x" * 500}), "(500 characters)"),
        (b'{"type":"ping","source":"a\\nb"}', "got 'a\\nb'"),
        (nested(40), "nested deeper than 32 levels"),
    ],
)
def test_rejection_details_say_the_rule(raw: bytes, fragment: str) -> None:
    with pytest.raises(RejectedMessage) as info:
        parse_bot_message(raw)
    assert fragment in info.value.detail


# --- check_channel ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "channel",
    ["bot:pingpong", "bot:binance:pingpong", "bøt:猫", "x" * MAX_CHANNEL_CHARS, "a/b@c"],
)
def test_fitting_channels_pass(channel: str) -> None:
    check_channel(channel, b"")


@pytest.mark.parametrize(
    ("channel", "fragment"),
    [
        ("x" * (MAX_CHANNEL_CHARS + 1), "201 characters; the limit is 200"),
        ("x" * 100_000, "100000 characters"),
        ("bot:a\n2026-01-01 FORGED", "control or whitespace"),
        ("bot:a b", "control or whitespace"),
        ("bot:\tx", "control or whitespace"),
        ("bot:\x1b[2J", "control or whitespace"),
        ("bot:\x00", "control or whitespace"),
        ("bot:\x7f", "control or whitespace"),
        ("bot:\x85", "control or whitespace"),
        ("bot:\u2028", "control or whitespace"),
        ("bot:\u202e", "control or whitespace"),  # right-to-left override
        ("bot:\u00a0", "control or whitespace"),
        ("bot:\udcff", "control or whitespace"),  # an undecodable byte, surrogate-escaped
        ("", None),
    ],
)
def test_unfit_channels_are_bad_channel(channel: str, fragment: str | None) -> None:
    if fragment is None:  # an empty name never comes from Redis; nothing to refuse
        check_channel(channel, b"")
        return
    with pytest.raises(RejectedMessage) as info:
        check_channel(channel, b"{}")
    assert info.value.reason == "bad_channel"
    assert fragment in info.value.detail
    assert info.value.detail.isprintable()
    assert len(info.value.detail) < 200


def test_rejected_message_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"^not_object: "):
        parse_bot_message(b"[]")


# --- the size limit --------------------------------------------------------------------


def test_payload_exactly_at_the_limit_is_accepted() -> None:
    raw = padded(MAX_PAYLOAD_BYTES)
    assert len(raw) == 16_384
    assert parse_bot_message(raw).fields["pad"] == "x" * (16_384 - 24)


def test_one_byte_over_the_limit_is_oversize_though_valid() -> None:
    raw = padded(MAX_PAYLOAD_BYTES + 1)
    assert len(raw) == 16_385
    assert orjson.loads(raw)["type"] == "ping"  # valid JSON, so only the size refuses it
    with pytest.raises(RejectedMessage) as info:
        parse_bot_message(raw)
    assert info.value.reason == "oversize"
    assert "16385" in info.value.detail
    assert "16384" in info.value.detail


def test_custom_limit_is_honoured() -> None:
    raw = padded(100)
    assert parse_bot_message(raw, max_bytes=100).type == "ping"
    assert reason_of(raw, max_bytes=99) == "oversize"


def test_size_is_checked_before_parsing() -> None:
    # Junk that would be invalid_json at any size is reported as oversize past the limit.
    assert reason_of(b"\xff" * 11, max_bytes=10) == "oversize"
    assert reason_of(b"\xff" * 10, max_bytes=10) == "invalid_json"


def test_whitespace_counts_towards_the_limit() -> None:
    raw = b'{"type":"ping"}' + b" " * 10
    assert parse_bot_message(raw, max_bytes=len(raw)).raw == b'{"type":"ping"}'
    assert reason_of(raw, max_bytes=len(raw) - 1) == "oversize"


# --- encode_envelope -------------------------------------------------------------------


def envelope_of(raw: bytes, relay_ms: int = RELAY_MS) -> dict[str, Any]:
    decoded = orjson.loads(encode_envelope(parse_bot_message(raw), relay_ms))
    assert isinstance(decoded, dict)
    return decoded


def test_envelope_keys_in_order() -> None:
    envelope = envelope_of(DESIGN_PING)
    assert list(envelope) == ENVELOPE_KEYS
    assert envelope["type"] == ENVELOPE_TYPE == "bot:pingpong"
    assert envelope["source"] == ENVELOPE_SOURCE == "bot"
    assert envelope["timestamp"] == RELAY_MS
    assert isinstance(envelope["timestamp"], int)


def test_envelope_data_is_the_bot_object_with_every_field() -> None:
    bot = {
        "type": "pong",
        "latency": 0.25,
        "timestamp": 1234567890123,
        "source": "gate-1",
        "name": "bøt-✓",
        "extra": {"nested": [1, 2.5, None, True, "日本語 🤖"], "empty": {}},
        "emoji🤖": '\u0000\u001f"\\/',
        "big": 18446744073709551615,
        "neg": -9223372036854775808,
    }
    envelope = envelope_of(orjson.dumps(bot))
    assert envelope["data"] == bot
    assert list(envelope["data"]) == list(bot)


def test_envelope_of_pretty_printed_bot_json() -> None:
    bot = {"type": "ping", "latency": 7, "nested": {"a": [1, 2]}}
    raw = b"\n  " + orjson.dumps(bot, option=orjson.OPT_INDENT_2) + b"\r\n"
    assert envelope_of(raw)["data"] == bot


def test_envelope_keeps_the_bot_bytes_verbatim() -> None:
    raw = b'{"type":"ping","latency":1.50,"x":"\\u00e9"}'
    encoded = encode_envelope(parse_bot_message(raw), 5)
    assert encoded == b'{"type":"bot:pingpong","data":' + raw + b',"timestamp":5,"source":"bot"}'


@pytest.mark.parametrize("relay_ms", [0, 1, RELAY_MS, 2**53 + 1, 2**63 - 1])
def test_envelope_timestamp_is_the_given_relay_ms(relay_ms: int) -> None:
    assert envelope_of(DESIGN_PING, relay_ms)["timestamp"] == relay_ms


def test_envelope_of_a_message_at_the_size_limit() -> None:
    envelope = envelope_of(padded(MAX_PAYLOAD_BYTES))
    assert list(envelope) == ENVELOPE_KEYS
    assert len(envelope["data"]["pad"]) == MAX_PAYLOAD_BYTES - 24


# --- excerpt ---------------------------------------------------------------------------


def excerpt_bound(raw: bytes) -> int:
    # The payload part is cut to EXCERPT_CHARS characters after escaping.
    return EXCERPT_CHARS + len(f"... ({len(raw)} bytes)")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        DESIGN_PING,
        b"\xff" * 1000,
        "日本語🤖\n\r\t\x00\x1b[31m".encode() * 50,
        bytes(range(256)) * 100,
        b"x" * (MAX_PAYLOAD_BYTES + 1),
    ],
    ids=["empty", "design", "invalid-utf8", "unicode-controls", "all-bytes", "oversize"],
)
def test_excerpt_is_printable_ascii_and_bounded(raw: bytes) -> None:
    text = excerpt(raw)
    assert text.isascii()
    assert text.isprintable()
    assert len(text) <= excerpt_bound(raw)


def test_excerpt_of_short_input_is_complete() -> None:
    assert excerpt(DESIGN_PING) == DESIGN_PING.decode()
    assert excerpt(b"a\nb\x00") == "a\\nb\\x00"
    assert excerpt("é".encode()) == "\\xe9"


def test_excerpt_shows_truncation() -> None:
    raw = b"a" * 500
    assert excerpt(raw) == "a" * EXCERPT_CHARS + "... (500 bytes)"
    assert excerpt(b"a" * EXCERPT_CHARS) == "a" * EXCERPT_CHARS
    assert excerpt(b"abcdef", limit=3) == "abc... (6 bytes)"


def test_rejected_message_excerpt() -> None:
    raw = b"\xff" * (MAX_PAYLOAD_BYTES + 1)
    with pytest.raises(RejectedMessage) as info:
        parse_bot_message(raw)
    assert info.value.excerpt == excerpt(raw)
    assert info.value.excerpt.endswith(f"... ({MAX_PAYLOAD_BYTES + 1} bytes)")


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


# --- properties ------------------------------------------------------------------------


def parse_or_reject(raw: bytes) -> BotMessage | RejectedMessage:
    """Anything other than a BotMessage or a RejectedMessage escapes and fails the test."""
    try:
        return parse_bot_message(raw)
    except RejectedMessage as rejected:
        return rejected


@given(st.binary(max_size=MAX_PAYLOAD_BYTES + 64))
def test_arbitrary_bytes_are_parsed_or_rejected(raw: bytes) -> None:
    outcome = parse_or_reject(raw)
    if isinstance(outcome, RejectedMessage):
        assert outcome.reason in REJECT_REASONS
    else:
        assert outcome.type in {"ping", "pong"}


@given(st.text().map(lambda text: text.encode("utf-8", "surrogatepass")))
def test_arbitrary_text_is_parsed_or_rejected(raw: bytes) -> None:
    outcome = parse_or_reject(raw)
    assert isinstance(outcome, BotMessage | RejectedMessage)
    if isinstance(outcome, RejectedMessage):
        assert outcome.reason in REJECT_REASONS


# Only what orjson can both write and read back unchanged: finite floats, 64-bit ints,
# strings without lone surrogates.
json_text = st.text(st.characters(codec="utf-8"), max_size=20)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(json_text, children, max_size=5)
    ),
    max_leaves=25,
)
RESERVED = {"type", "latency", "timestamp", "source"}


@st.composite
def valid_bot_objects(draw: st.DrawFn) -> dict[str, Any]:
    bot: dict[str, Any] = {"type": draw(st.sampled_from(["ping", "pong"]))}
    optional = {
        "latency": st.none()
        | st.integers(min_value=0, max_value=MAX_LATENCY_MS)
        | st.floats(min_value=0, max_value=MAX_LATENCY_MS),
        "timestamp": st.none()
        | st.integers(min_value=0, max_value=MAX_TIMESTAMP_MS)
        | st.floats(min_value=0, max_value=MAX_TIMESTAMP_MS),
        "source": st.none() | st.from_regex(r"[A-Za-z0-9_.:@/+-]{1,128}", fullmatch=True),
    }
    for key, values in optional.items():
        if draw(st.booleans()):
            bot[key] = draw(values)
    extras = draw(
        st.dictionaries(
            json_text.filter(lambda key: key not in RESERVED),
            json_values.filter(lambda value: depth_of(value) < MAX_DEPTH),
            max_size=6,
        )
    )
    bot.update(extras)
    # Key order is the bot's; shuffle it so "type" is not always first.
    items = draw(st.permutations(list(bot.items())))
    return dict(items)


@given(valid_bot_objects(), st.booleans(), st.integers(min_value=0, max_value=2**63 - 1))
def test_valid_messages_reach_the_envelope_unchanged(
    bot: dict[str, Any], indent: bool, relay_ms: int
) -> None:
    raw = orjson.dumps(bot, option=orjson.OPT_INDENT_2 if indent else 0)
    message = parse_bot_message(raw, max_bytes=len(raw))
    assert message.fields == bot
    envelope = orjson.loads(encode_envelope(message, relay_ms))
    assert list(envelope) == ENVELOPE_KEYS
    assert envelope["data"] == bot
    assert list(envelope["data"]) == list(bot)
    assert envelope["timestamp"] == relay_ms
    assert (envelope["type"], envelope["source"]) == ("bot:pingpong", "bot")


@given(
    st.dictionaries(st.sampled_from(sorted(RESERVED)) | json_text, json_values, max_size=6).map(
        orjson.dumps
    )
)
def test_any_json_object_is_parsed_or_rejected(raw: bytes) -> None:
    # Fields of any JSON type in any of the schema's slots: validation must refuse them
    # with a reason, never crash (a crash would end the relay's Redis subscription).
    outcome = parse_or_reject(raw)
    assert isinstance(outcome, BotMessage | RejectedMessage)


@given(st.binary(max_size=4096), st.integers(min_value=0, max_value=512))
def test_excerpt_is_always_ascii_and_bounded(raw: bytes, limit: int) -> None:
    text = excerpt(raw, limit)
    assert text.isascii()
    marker = f"... ({len(raw)} bytes)"
    # At most `limit` characters of the payload itself, escapes included.
    assert len(text) <= limit + len(marker)
    if len(raw) > limit:
        assert text.endswith(marker)
    if not text.endswith(marker):
        escaped = raw.decode("utf-8", "backslashreplace").encode("unicode_escape")
        assert text == escaped.decode("ascii")


@given(st.binary(max_size=MAX_PAYLOAD_BYTES + 64))
def test_rejected_excerpt_is_always_ascii_and_bounded(raw: bytes) -> None:
    outcome = parse_or_reject(raw)
    if isinstance(outcome, RejectedMessage):
        assert outcome.excerpt.isascii()
        assert len(outcome.excerpt) <= excerpt_bound(raw)


# Trees of any shape with strings full of brackets, quotes and backslashes, wrapped in a
# chain of arrays and objects long enough to cross MAX_DEPTH either way.
_bracket_text = st.text(st.sampled_from('[]{}"\\ax,:'), max_size=12)
_trees = st.recursive(
    st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | _bracket_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_bracket_text, children, max_size=4)
    ),
    max_leaves=30,
)


@st.composite
def nested_values(draw: st.DrawFn) -> Any:
    value = draw(_trees)
    for _ in range(draw(st.integers(min_value=0, max_value=MAX_DEPTH + 8))):
        if draw(st.booleans()):
            value = {draw(_bracket_text): value}
        else:
            value = [value, draw(_bracket_text)]
    return value


@given(nested_values(), st.booleans())
def test_nesting_check_agrees_with_the_definition(value: Any, indent: bool) -> None:
    raw = orjson.dumps(value, option=orjson.OPT_INDENT_2 if indent else 0)
    assert nesting_depth_exceeds(raw) == (depth_of(value) > MAX_DEPTH)
    outcome = parse_or_reject(b'{"type":"ping","x":' + raw + b"}")
    too_deep = isinstance(outcome, RejectedMessage) and outcome.reason == "too_deep"
    assert too_deep == (1 + depth_of(value) > MAX_DEPTH)
