"""Server-side filters over real sockets: each client gets exactly its share, nothing else."""

from __future__ import annotations

import random

import aiohttp
import orjson
import pytest

from tests.support import Collector, RedisServer, RelayFactory, RelayProcess

BOT_CHANNELS = ["bot:gate:pingpong", "bot:binance:pingpong", "bot:okx:pingpong"]


def _stream(count: int, seed: int = 3) -> list[tuple[str, dict[str, object]]]:
    rng = random.Random(seed)
    return [
        (
            rng.choice(BOT_CHANNELS),
            {
                "type": rng.choice(("ping", "pong")),
                "latency": rng.randint(1, 300),
                "timestamp": 1_700_000_000_000 + n,
                "source": "bot",
                "seq": n,
            },
        )
        for n in range(count)
    ]


async def test_two_filtered_clients_receive_exactly_their_share_of_1000_messages(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--channel-pattern", "bot:*:pingpong")
    pings_of_gate = Collector()
    await pings_of_gate.connect(relay.ws_url + "?types=ping&bots=bot:gate:pingpong/bot")
    pongs_of_two = Collector()
    await pongs_of_two.connect(relay.ws_url)
    everything = Collector()
    await everything.connect(relay.ws_url)
    await relay.wait_for("client_connected", count=3)
    assert pongs_of_two.ws is not None
    await pongs_of_two.ws.send_str(
        '{"action":"subscribe","types":["pong"],"bots":["bot:binance:*","bot:okx:*"],"id":7}'
    )
    [ack] = await pongs_of_two.wait_count(1)
    assert ack == {
        "type": "ack",
        "action": "subscribe",
        "id": 7,
        "subscription": {
            "types": ["pong"],
            "bots": ["bot:binance:*", "bot:okx:*"],
            "events": ["pingpong"],
        },
    }

    stream = _stream(1000)
    for channel, data in stream:
        await redis_server.publish(orjson.dumps(data), channel=channel)
    await everything.wait_count(1000, timeout=60)

    want_gate = [d["seq"] for c, d in stream if c == BOT_CHANNELS[0] and d["type"] == "ping"]
    want_two = [d["seq"] for c, d in stream if c != BOT_CHANNELS[0] and d["type"] == "pong"]
    await pings_of_gate.wait_count(len(want_gate))
    await pongs_of_two.wait_count(1 + len(want_two))
    # The last message has reached everyone it was going to: nothing more is in flight.
    assert [m["data"]["seq"] for m in everything.messages] == list(range(1000))
    assert [m["data"]["seq"] for m in pings_of_gate.messages] == want_gate
    assert [m["data"]["seq"] for m in pongs_of_two.messages[1:]] == want_two
    # The filter changes who receives, never what: the design's four-key envelope.
    assert all(list(m) == ["type", "data", "timestamp", "source"] for m in everything.messages)
    for client in (pings_of_gate, pongs_of_two, everything):
        await client.close()


async def test_a_channel_matched_by_name_and_pattern_is_relayed_once(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(
        redis_server.url,
        "--channel",
        "bot:pingpong",
        "--channel-pattern",
        "bot:*",
        "--channel-pattern",
        "*pingpong",
    )
    client = Collector()
    await client.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    # Redis delivers each of these once per matching subscription (3 and 2 times).
    await redis_server.publish(b'{"type":"ping","n":1}', channel="bot:pingpong")
    await redis_server.publish(b'{"type":"ping","n":2}', channel="bot:x:pingpong")
    await redis_server.publish(b'{"type":"ping","n":3}', channel="other:pingpong")
    await client.wait_count(3)
    await redis_server.publish(b'{"type":"pong","n":4}', channel="bot:pingpong")
    messages = await client.wait_count(4)
    assert [m["data"]["n"] for m in messages] == [1, 2, 3, 4]
    assert len(client.messages) == 4
    await client.close()


async def test_bad_commands_get_errors_and_the_connection_stays_usable(
    redis_server: RedisServer, relay: RelayProcess
) -> None:
    client = Collector()
    await client.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    assert client.ws is not None
    bad = [
        ("invalid_json", "{not json"),
        ("unknown_action", '{"action":"dance"}'),
        ("bad_field", '{"action":"subscribe","types":["pang"]}'),
        ("bad_field", '{"action":"subscribe","types":"ping","colour":"red"}'),
        ("bad_command", "[1,2,3]"),
        ("oversize", '{"action":"subscribe","bots":["' + "x" * 8000 + '"]}'),
    ]
    for _, frame in bad:
        await client.ws.send_str(frame)
    await client.ws.send_bytes(b"\x00\x01binary")
    errors = await client.wait_count(len(bad) + 1)
    assert [e["type"] for e in errors] == ["error"] * (len(bad) + 1)
    assert [e["error"] for e in errors] == [code for code, _ in bad] + ["bad_command"]
    assert all(e["message"] for e in errors)
    refused = await relay.wait_for("command_refused", count=len(bad))
    assert refused["level"] == "WARNING"
    # Still subscribed as before, still receiving.
    await client.ws.send_str('{"action":"list"}')
    listing = (await client.wait_count(len(bad) + 2))[-1]
    assert listing["type"] == "subscriptions"
    assert listing["subscription"] == {"types": "all", "bots": "all", "events": ["pingpong"]}
    await redis_server.publish(b'{"type":"pong","latency":1}')
    last = (await client.wait_count(len(bad) + 3))[-1]
    assert last["type"] == "bot:pingpong"
    assert await relay.metric("pingpong_client_frames_refused_total") == len(bad) + 1
    await client.close()


async def test_a_bad_query_string_is_refused_before_the_upgrade(
    redis_server: RedisServer, relay: RelayProcess
) -> None:
    status, _ = await relay.get("/?types=pang", data_port=True)
    # A plain GET is redirected; a WebSocket upgrade is what gets the 400.
    assert status == 302
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(relay.ws_url + "?types=pang")
    assert refused.value.status == 400
