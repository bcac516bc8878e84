"""Replay on connect: history first, then live, with no duplicate and no hole at the seam."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
import pytest

from pingpong_relay.redis_io.history import BOTS_KEY, stream_key
from pingpong_relay.subscriptions import position_key
from tests.support import Collector, RedisServer, RelayFactory


def _beat(n: int, source: str = "bot") -> bytes:
    return orjson.dumps(
        {"type": "ping" if n % 2 else "pong", "latency": n, "timestamp": n, "source": source}
    )


async def test_replay_while_messages_keep_arriving_has_no_duplicate_and_no_hole(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--log-level", "DEBUG")
    plain = Collector()
    await plain.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    for n in range(100):
        await redis_server.publish(_beat(n))
    await relay.wait_for("history_recorded", count=100)

    total = 400

    async def keep_publishing() -> None:
        for n in range(100, total):
            await redis_server.publish(_beat(n))
            if n % 10 == 0:
                await asyncio.sleep(0)  # let the relay interleave work with the replay

    publishing = asyncio.create_task(keep_publishing())
    replaying = []
    for _ in range(5):  # several clients joining at different points of the stream
        client = Collector()
        await client.connect(relay.ws_url + "?since=0")
        replaying.append(client)
        await asyncio.sleep(0)
    await publishing
    await plain.wait_count(total)
    for client in replaying:
        messages = await client.wait_count(total)
        assert [m["data"]["latency"] for m in messages] == list(range(total))
        ids = [m["id"] for m in messages]
        assert ids == sorted(ids, key=position_key)
        assert len(set(ids)) == total
        assert all(
            list(m) == ["type", "data", "timestamp", "source", "id", "bot"] for m in messages
        )
        assert {m["bot"] for m in messages} == {"bot:pingpong/bot"}
    # Clients that did not ask for history still get the design's exact four keys.
    assert all(list(m) == ["type", "data", "timestamp", "source"] for m in plain.messages)
    await relay.wait_for("history_recorded", count=total)
    status, body = await relay.get("/history?bot=bot:pingpong/bot&limit=1000")
    assert status == 200
    assert [i["id"] for i in orjson.loads(body)["items"]] == [
        m["id"] for m in replaying[0].messages
    ]
    for client in [plain, *replaying]:
        await client.close()


async def test_last_n_and_filters_apply_to_the_replay(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--log-level", "DEBUG")
    for n in range(30):
        await redis_server.publish(_beat(n, "a" if n % 3 else "b"))
    await relay.wait_for("history_recorded", count=30)
    client = Collector()
    await client.connect(relay.ws_url + "?last=5&bots=*/a&types=ping")
    # The last 5 of bot a, then only its pings of those (the filter applies after).
    expected_a = [n for n in range(30) if n % 3][-5:]
    want = [n for n in expected_a if n % 2]
    messages = await client.wait_count(len(want))
    assert [m["data"]["latency"] for m in messages] == want
    await redis_server.publish(_beat(31, "a"))
    live = await client.wait_count(len(want) + 1)
    assert live[-1]["data"]["latency"] == 31
    assert "id" in live[-1]
    await client.close()


async def test_a_since_older_than_what_is_kept_gets_a_gap_message(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(
        redis_server.url, "--log-level", "DEBUG", "--history-max-entries", "10"
    )
    for n in range(25):
        await redis_server.publish(_beat(n))
    await relay.wait_for("history_recorded", count=25)
    client = Collector()
    await client.connect(relay.ws_url + "?since=0")
    messages = await client.wait_count(11)
    gap = messages[0]
    assert gap["type"] == "bot:gap"
    assert gap["reason"] == "trimmed"
    assert gap["bot"] == "bot:pingpong/bot"
    assert [m["data"]["latency"] for m in messages[1:]] == list(range(15, 25))
    assert position_key(gap["to"]) == position_key(messages[1]["id"])
    await client.close()


async def test_bad_replay_parameters_are_refused_before_the_upgrade(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url)
    async with aiohttp.ClientSession() as session:
        for query in ("since=yesterday", "last=0", "last=100000", "since=1&last=2"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(relay.ws_url + "?" + query)
            assert refused.value.status == 400, query


async def test_a_redis_outage_is_announced_and_shows_as_a_gap_in_replays(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(
        redis_server.url,
        "--log-level",
        "DEBUG",
        "--reconnect-max-delay",
        "0.3",
        "--redis-health-interval",
        "1",
    )
    await redis_server.publish(_beat(1))
    await relay.wait_for("history_recorded")
    watcher = Collector()
    await watcher.connect(relay.ws_url + "?events=status")
    await relay.wait_for("client_connected")

    # Redis here keeps nothing on disk: a restart loses the history, so save it first.
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_server.url)
    dump = await client.dump(stream_key("bot:pingpong/bot"))
    await client.aclose()
    assert dump is not None
    redis_server.kill()
    started = await _next_of(watcher, "relay:deaf")
    assert started["to_ms"] is None
    await redis_server.start()
    client = aioredis.from_url(redis_server.url)
    await client.restore(stream_key("bot:pingpong/bot"), 0, dump, replace=True)
    seconds, _ = await client.time()
    await client.zadd(BOTS_KEY, {"bot:pingpong/bot": int(seconds) * 1000})
    await client.aclose()
    ended = await _next_of(watcher, "relay:deaf", after=started)
    assert ended["from_ms"] == started["from_ms"]
    assert ended["to_ms"] > ended["from_ms"]
    assert ended["duration_s"] > 0

    await redis_server.publish(_beat(2))
    await relay.wait_for("history_recorded", count=2)
    await relay.wait_for("deaf_recorded")
    replay = Collector()
    await replay.connect(relay.ws_url + "?since=0")
    messages = await replay.wait_count(3)
    gap = messages[0]
    assert (gap["type"], gap["reason"]) == ("bot:gap", "relay_deaf")
    assert gap["from"] == f"{ended['from_ms']}-0"
    assert gap["to"] == f"{ended['to_ms']}-0"
    assert [m["data"]["latency"] for m in messages[1:]] == [1, 2]
    await watcher.close()
    await replay.close()


async def _next_of(
    client: Collector, kind: str, after: dict[str, Any] | None = None
) -> dict[str, Any]:
    index = 0 if after is None else client.messages.index(after) + 1
    while True:
        message = (await client.wait_count(index + 1))[index]
        if message["type"] == kind:
            return message
        index += 1


async def test_ids_without_history_still_name_the_bot_at_once(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--history-retention", "0")
    tagged, plain = Collector(), Collector()
    await tagged.connect(relay.ws_url + "?ids=1")
    await plain.connect(relay.ws_url)
    await redis_server.publish(_beat(1, "gate-1"))
    await redis_server.publish(_beat(2))
    messages = await tagged.wait_count(2)
    # No history id to give, but the bot each envelope belongs to is still named.
    assert [list(m) for m in messages] == [["type", "data", "timestamp", "source", "bot"]] * 2
    assert [m["bot"] for m in messages] == ["bot:pingpong/gate-1", "bot:pingpong/bot"]
    assert [list(m) for m in await plain.wait_count(2)] == [
        ["type", "data", "timestamp", "source"]
    ] * 2
    for client in (tagged, plain):
        await client.close()
