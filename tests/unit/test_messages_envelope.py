"""The envelope the relay builds around a bot message, and excerpts of refused ones."""

from __future__ import annotations

import orjson
import pytest

from pingpong_relay.messages import (
    ENVELOPE_SOURCE,
    EXCERPT_CHARS,
    MAX_PAYLOAD_BYTES,
    RejectedMessage,
    encode_envelope,
    excerpt,
    parse_bot_message,
)
from pingpong_relay.wire_types import ENVELOPE_TYPE
from tests.unit.messages_support import (
    DESIGN_PING,
    ENVELOPE_KEYS,
    RELAY_MS,
    envelope_of,
    excerpt_bound,
    padded,
)

# --- encode_envelope -------------------------------------------------------------------


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
