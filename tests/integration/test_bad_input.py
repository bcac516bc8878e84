"""Bad bot input over a real Redis: rejected, logged once, counted, and nothing else disturbed."""

from __future__ import annotations

import orjson
import pytest

from tests.support import Collector, RedisServer, RelayProcess

BAD_PAYLOADS: list[tuple[str, bytes]] = [
    ("invalid_json", b'{"type":"ping","latency":'),
    ("invalid_json", b"\xff\xfe\x00garbage\x80\x81"),
    ("invalid_json", b'{"type":"ping","latency":NaN}'),
    ("invalid_json", b'{"type":"ping","latency":1e999}'),
    ("invalid_json", b"[" * 5000 + b"]" * 5000),
    ("oversize", b'{"type":"ping","pad":"' + b"x" * 17_000 + b'"}'),
    ("not_object", b'["ping", 10]'),
    ("bad_type", b'{"type":"hello","latency":10}'),
    ("bad_type", b'{"latency":10}'),
    ("bad_type", b'{"type":[],"latency":10}'),
    ("bad_type", b'{"type":{"ping":1}}'),
    ("bad_latency", b'{"type":"ping","latency":' + b"[" * 1000 + b"]" * 1000 + b"}"),
    ("bad_source", b'{"type":"ping","source":' + b'{"a":' * 1000 + b"1" + b"}" * 1000 + b"}"),
    ("bad_latency", b'{"type":"ping","latency":-1}'),
    ("bad_latency", b'{"type":"ping","latency":"10"}'),
    ("bad_latency", b'{"type":"ping","latency":true}'),
    ("bad_timestamp", b'{"type":"pong","timestamp":"yesterday"}'),
    ("bad_source", b'{"type":"pong","source":42}'),
]


async def test_every_bad_payload_is_rejected_and_the_next_valid_one_arrives(
    redis_server: RedisServer, relay: RelayProcess
) -> None:
    client = Collector()
    await client.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    for _, payload in BAD_PAYLOADS:
        await redis_server.publish(payload)
    valid = b'{"type":"pong","latency":7.5,"timestamp":1700000000000,"source":"bot","n":1}'
    await redis_server.publish(valid)
    [envelope] = await client.wait_count(1)
    assert envelope["data"] == orjson.loads(valid)

    rejected = await relay.wait_for("rejected", count=len(BAD_PAYLOADS))
    assert rejected["level"] == "WARNING"
    records = relay.events("rejected")
    # Logged exactly once each, in order, with the reason and a bounded, escaped excerpt.
    assert [r["reason"] for r in records] == [reason for reason, _ in BAD_PAYLOADS]
    for record in records:
        assert record["excerpt"].isascii()
        assert len(record["excerpt"]) < 200
        assert record["detail"]
    for reason in {reason for reason, _ in BAD_PAYLOADS}:
        expected = sum(1 for r, _ in BAD_PAYLOADS if r == reason)
        sample = f'pingpong_messages_rejected_total{{reason="{reason}"}}'
        assert await relay.metric(sample) == expected, reason
    assert await relay.metric("pingpong_messages_received_total") == len(BAD_PAYLOADS) + 1
    assert await relay.metric("pingpong_messages_forwarded_total") == 1
    assert len(client.messages) == 1
    status, _ = await relay.get("/healthz")
    assert status == 200
    await client.close()


@pytest.mark.parametrize(
    "payload",
    [
        b'{"type":"ping","latency":0}',
        b'{"type":"pong"}',
        b'  {"type":"ping","latency":12.25,"timestamp":1,"source":"bot","extra":{"a":[1,2]}}\n',
        '{"type":"ping","latency":1,"source":"b\u00f6t-\u732b"}'.encode(),
    ],
)
async def test_valid_variants_are_forwarded_with_every_field(
    redis_server: RedisServer, relay: RelayProcess, payload: bytes
) -> None:
    client = Collector()
    await client.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    await redis_server.publish(payload)
    [envelope] = await client.wait_count(1)
    assert list(envelope) == ["type", "data", "timestamp", "source"]
    assert envelope["data"] == orjson.loads(payload)
    await client.close()
