"""What the bot message test modules share: a design ping, padded and envelope helpers."""

from __future__ import annotations

from typing import Any

import orjson

from pingpong_relay.messages import EXCERPT_CHARS, encode_envelope, parse_bot_message

DESIGN_PING = b'{"type":"ping","latency":10,"timestamp":1234567890,"source":"bot"}'
ENVELOPE_KEYS = ["type", "data", "timestamp", "source"]
RELAY_MS = 1_700_000_000_123


def padded(total_bytes: int) -> bytes:
    """A valid ping of exactly `total_bytes` bytes (an extra string field takes the slack)."""
    head, tail = b'{"type":"ping","pad":"', b'"}'
    payload = head + b"x" * (total_bytes - len(head) - len(tail)) + tail
    assert len(payload) == total_bytes
    return payload


def envelope_of(raw: bytes, relay_ms: int = RELAY_MS) -> dict[str, Any]:
    decoded = orjson.loads(encode_envelope(parse_bot_message(raw), relay_ms))
    assert isinstance(decoded, dict)
    return decoded


def excerpt_bound(raw: bytes) -> int:
    # The payload part is cut to EXCERPT_CHARS characters after escaping.
    return EXCERPT_CHARS + len(f"... ({len(raw)} bytes)")
