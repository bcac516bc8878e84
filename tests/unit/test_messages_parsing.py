"""parse_bot_message and check_channel (messages.py): what passes, what is refused and why."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from pingpong_relay.messages import (
    MAX_CHANNEL_CHARS,
    MAX_DEPTH,
    MAX_PAYLOAD_BYTES,
    MAX_SOURCE_CHARS,
    REJECT_REASONS,
    BotMessage,
    RejectedMessage,
    check_channel,
    parse_bot_message,
)
from tests.unit.messages_support import DESIGN_PING, padded


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


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
