"""Bad bot input over a real Redis: rejected, logged once, counted, and nothing else disturbed."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from pingpong_relay.redis_io.history import stream_key
from tests.support import DESIGN_PING, Collector, RedisServer, RelayFactory, RelayProcess

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
    ("too_deep", b'{"type":"ping","latency":' + b"[" * 1000 + b"]" * 1000 + b"}"),
    ("too_deep", b'{"type":"ping","source":' + b'{"a":' * 1000 + b"1" + b"}" * 1000 + b"}"),
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
        '{"type":"ping","latency":1,"source":"gate-1","name":"b\u00f6t-\u732b"}'.encode(),
        DESIGN_PING,
        b'{"type":"pong","latency":3600000,"timestamp":10000000000000,"source":"user@host"}',
        b'{"type":"ping","latency":0,"timestamp":0,"source":"freqtrade.binance"}',
        b'{"type":"ping","x":' + b"[" * 31 + b"]" * 31 + b"}",
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


# --- hostile input: each kind is refused with its reason, and the relay carries on --------


async def _refused_then_relayed(
    redis_server: RedisServer,
    relay: RelayProcess,
    bad: list[tuple[str, bytes, str]],
    valid: bytes,
    valid_channel: str = "bot:pingpong",
) -> list[dict[str, Any]]:
    """Publishes each (reason, payload, channel) while a client listens, then `valid`;
    checks the reasons in the log and the metric and that `valid` still arrives."""
    client = Collector()
    await client.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    for _, payload, channel in bad:
        await redis_server.publish(payload, channel)
    await redis_server.publish(valid, valid_channel)
    [envelope] = await client.wait_count(1)
    assert envelope["data"] == orjson.loads(valid)
    await relay.wait_for("rejected", count=len(bad))
    records = relay.events("rejected")
    assert [r["reason"] for r in records] == [reason for reason, _, _ in bad]
    for record in records:
        assert record["level"] == "WARNING"
        assert record["detail"]
        assert record["excerpt"].isascii()
        assert len(record["channel"]) <= 200
    for reason in {reason for reason, _, _ in bad}:
        expected = sum(1 for r, _, _ in bad if r == reason)
        sample = f'pingpong_messages_rejected_total{{reason="{reason}"}}'
        assert await relay.metric(sample) == expected, reason
    assert await relay.metric("pingpong_messages_forwarded_total") == 1
    await client.close()
    return records


async def test_bot_ids_are_bounded(redis_server: RedisServer, start_relay: RelayFactory) -> None:
    relay = await start_relay(redis_server.url, "--channel-pattern", "bot:x:*")
    forged = "bot:x:a\n2026-01-01 00:00:00,000 ERROR FORGED"
    ping = b'{"type":"ping","latency":5}'
    records = await _refused_then_relayed(
        redis_server,
        relay,
        [
            ("bad_source", orjson.dumps({"type": "ping", "source": "x" * 129}), "bot:pingpong"),
            ("bad_source", orjson.dumps({"type": "ping", "source": "x" * 10_000}), "bot:x:a"),
            ("bad_source", b'{"type":"ping","source":"a\\nb"}', "bot:pingpong"),
            ("bad_source", b'{"type":"ping","source":"gate *"}', "bot:pingpong"),
            ("bad_channel", ping, "bot:x:" + "y" * 300),
            ("bad_channel", ping, forged),
            ("bad_channel", ping, "bot:x:a b"),
            ("bad_channel", ping, "bot:x:\x1b[2J"),
        ],
        b'{"type":"pong","latency":5,"source":"freqtrade.binance"}',
        valid_channel="bot:x:ok",
    )
    assert "128 characters" in records[0]["detail"]
    assert "10000 characters" in records[1]["detail"]
    assert "the limit is 200" in records[4]["detail"]
    assert records[5]["channel"] == "bot:x:a\\n2026-01-01 00:00:00,000 ERROR FORGED"
    assert "control or whitespace" in records[5]["detail"]
    # None of them became a bot.
    status, body = await relay.get("/bots")
    assert status == 200
    assert b"yyy" not in body
    assert b"FORGED" not in body
    assert b"xxx" not in body


async def test_deep_nesting_is_refused(redis_server: RedisServer, relay: RelayProcess) -> None:
    def deep(levels: int) -> bytes:  # the object itself is the first level
        return b'{"type":"ping","x":' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"

    records = await _refused_then_relayed(
        redis_server,
        relay,
        [
            ("too_deep", deep(33), "bot:pingpong"),
            ("too_deep", deep(260), "bot:pingpong"),  # past what orjson writes (255)
            ("too_deep", deep(1024), "bot:pingpong"),  # as deep as orjson reads
            ("too_deep", b'{"a":' * 40 + b'"x"' + b"}" * 40, "bot:pingpong"),
        ],
        deep(32) + b"",
    )
    assert "deeper than 32 levels" in records[0]["detail"]


async def test_implausible_numbers_are_refused(
    redis_server: RedisServer, relay: RelayProcess
) -> None:
    records = await _refused_then_relayed(
        redis_server,
        relay,
        [
            ("bad_latency", b'{"type":"ping","latency":3600001}', "bot:pingpong"),
            ("bad_latency", b'{"type":"ping","latency":1e308}', "bot:pingpong"),
            ("bad_timestamp", b'{"type":"ping","timestamp":-1}', "bot:pingpong"),
            ("bad_timestamp", b'{"type":"ping","timestamp":1e308}', "bot:pingpong"),
            ("bad_timestamp", b'{"type":"ping","timestamp":1700000000000000}', "bot:pingpong"),
        ],
        DESIGN_PING,  # the design's own example: timestamp 1234567890
    )
    assert "<= 3,600,000" in records[0]["detail"]
    assert ">= 0 and <= 10,000,000,000,000" in records[2]["detail"]
    status, body = await relay.get("/stats?window=1m")
    assert status == 200
    overall = orjson.loads(body)["overall"]
    assert overall["latency_ms"]["max"] == 10
    # 1970 to now is the bot's clock, not a transit time: counted as clock skew instead.
    assert overall["transit_ms"]["min"] is None
    assert overall["clock_skew"] == {"messages": 1}


async def test_history_serves_an_entry_deeper_than_orjson_writes(
    redis_server: RedisServer, relay: RelayProcess
) -> None:
    import redis.asyncio as aioredis

    # Recorded before the nesting limit: 260 levels, past the 255 orjson can write.
    raw = b'{"type":"ping","x":' + b"[" * 259 + b"]" * 259 + b"}"
    client = aioredis.from_url(redis_server.url)
    try:
        await client.xadd(
            stream_key("bot:pingpong"),
            {"channel": "bot:pingpong", "relay_ms": 1, "seq": 1, "raw": raw},
        )
    finally:
        await client.aclose()
    await redis_server.publish(b'{"type":"pong","latency":2}')
    await relay.wait_for("received")
    # The append runs after the broadcast (and its log line): wait until it is there.
    for _ in range(200):
        status, body = await relay.get("/history?bot=bot:pingpong")
        assert status == 200
        items = orjson.loads(body)["items"]
        if len(items) == 2:
            break
        await asyncio.sleep(0.05)  # the relay's history, polled: bounded by the range
    assert body.count(b"[" * 259 + b"]" * 259) == 1  # the stored bytes, as they are
    assert items[0]["data"]["type"] == "ping"
    assert items[1]["data"] == {"type": "pong", "latency": 2}


async def test_text_log_lines_cannot_be_forged(redis_server: RedisServer) -> None:
    # The last --log-format wins: text, as an operator reading a terminal would run it.
    relay = RelayProcess(redis_server.url, "--channel-pattern", "bot:x:*", "--log-format", "text")
    forged = "1999-12-31 23:59:59,000 ERROR   pingpong_relay.app.relay: FORGED"
    try:
        await relay.start_process()
        await relay.wait_for(lambda r: "subscribed to" in r.get("message", ""))
        await redis_server.publish(f'{{"type":"ping","latency":\n{forged}'.encode())
        await redis_server.publish(b'{"type":"ping"}', f"bot:x:a\n{forged}")
        await redis_server.publish(b'{"type":"ping"}', f"bot:x:\x1b[2J\r{forged}")
        await redis_server.publish(
            orjson.dumps({"type": "ping", "source": f"a\n{forged}\u2028\x85\x00"})
        )
        # A client's command, too, is quoted when refused (an unknown field's name).
        client = Collector()
        await client.connect(relay.ws_url)
        assert client.ws is not None
        await client.ws.send_str(orjson.dumps({"action": "list", f"a\n{forged}": 1}).decode())
        [reply] = await client.wait_count(1)
        assert reply["error"] == "bad_field"
        await client.close()
        await relay.wait_for(lambda r: "refused command" in r.get("message", ""))
        await relay.wait_for(lambda r: "rejected message" in r.get("message", ""), count=4)
        assert await relay.metric('pingpong_messages_rejected_total{reason="bad_channel"}') == 2
    finally:
        await relay.stop()
    assert sum("FORGED" in line for line in relay.raw_lines) == 5  # each quoted, in its line
    for line in relay.raw_lines:
        assert not line.startswith(("1999-12-31", "FORGED")), line
        assert line.isprintable(), line
