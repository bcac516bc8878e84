"""History in Redis Streams: exactly once with two relays, paging, CSV, retention."""

from __future__ import annotations

import asyncio
import csv
import io

import orjson

from pingpong_relay.redis_io.history import FIRST_KEY, stream_key
from tests.support import Collector, RedisServer, RelayFactory


async def _xlen(redis_server: RedisServer, bot: str) -> int:
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_server.url)
    try:
        return int(await client.xlen(stream_key(bot)))
    finally:
        await client.aclose()


async def test_two_relays_record_each_message_exactly_once(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    first = await start_relay(redis_server.url, "--log-level", "DEBUG")
    second = await start_relay(redis_server.url, "--log-level", "DEBUG")
    watchers = [Collector(), Collector()]
    for watcher, relay in zip(watchers, (first, second), strict=True):
        await watcher.connect(relay.ws_url)
        await relay.wait_for("client_connected")
    count = 200
    for n in range(count):
        receivers = await redis_server.publish(
            orjson.dumps({"type": "ping", "latency": n, "timestamp": 1_700_000_000_000 + n})
        )
        assert receivers == 2
    # Both relays broadcast everything...
    await asyncio.gather(*(w.wait_count(count) for w in watchers))

    # ...and between them appended each message once: each relay logs, per message,
    # whether its append won or found the other relay's entry.
    def handled(r: dict[str, object]) -> bool:
        return r.get("event") in ("history_recorded", "history_duplicate")

    await first.wait_for(handled, count=count)
    await second.wait_for(handled, count=count)
    recorded = len(first.events("history_recorded")) + len(second.events("history_recorded"))
    assert recorded == count
    metrics = [
        (
            await r.metric("pingpong_history_recorded_total"),
            await r.metric("pingpong_history_duplicates_total"),
        )
        for r in (first, second)
    ]
    assert sum(m[0] for m in metrics) == count
    assert sum(m[1] for m in metrics) == count
    assert await _xlen(redis_server, "bot:pingpong") == count
    status, body = await first.get("/history?bot=bot:pingpong&limit=10000")
    assert status == 200
    items = orjson.loads(body)["items"]
    assert [item["data"]["latency"] for item in items] == list(range(count))
    assert len({item["id"] for item in items}) == count
    for watcher in watchers:
        await watcher.close()


async def test_history_pages_with_a_cursor_and_exports_csv(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--log-level", "DEBUG")
    for n in range(25):
        source = "a" if n % 2 == 0 else "b"
        await redis_server.publish(
            orjson.dumps({"type": "pong", "latency": n, "timestamp": n, "source": source})
        )
    await relay.wait_for("history_recorded", count=25)

    seen: list[int] = []
    after = None
    pages = 0
    while True:
        query = "/history?bot=bot:pingpong/a&limit=5" + (f"&after={after}" if after else "")
        status, body = await relay.get(query)
        assert status == 200
        page = orjson.loads(body)
        seen += [item["data"]["latency"] for item in page["items"]]
        pages += 1
        after = page["next_after"]
        if after is None:
            break
    assert seen == list(range(0, 25, 2))
    assert pages == 3

    status, body = await relay.get("/history?limit=100")  # every bot, in id order
    merged = orjson.loads(body)["items"]
    assert [item["data"]["latency"] for item in merged] == list(range(25))
    assert {item["bot"] for item in merged} == {"bot:pingpong/a", "bot:pingpong/b"}

    status, body = await relay.get("/history?bot=bot:pingpong/b&format=csv")
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert [int(r["latency"]) for r in rows] == list(range(1, 25, 2))
    assert {r["source"] for r in rows} == {"b"}

    first_id = merged[0]["id"]
    since_ms = int(merged[10]["id"].split("-")[0])
    status, body = await relay.get(f"/history?since={since_ms}&limit=100")
    assert orjson.loads(body)["items"][0]["id"] <= merged[10]["id"]
    assert first_id != merged[10]["id"]
    for bad in ("limit=0", "limit=100001", "since=yesterday", "until=1-x"):
        status, body = await relay.get(f"/history?{bad}")
        assert status == 400, bad
        assert orjson.loads(body)["message"]


async def test_retention_trims_by_count_and_history_can_be_off(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(
        redis_server.url, "--log-level", "DEBUG", "--history-max-entries", "10"
    )
    for n in range(30):
        await redis_server.publish(orjson.dumps({"type": "ping", "latency": n}))
    await relay.wait_for("history_recorded", count=30)
    assert await _xlen(redis_server, "bot:pingpong") == 10
    status, body = await relay.get("/history?bot=bot:pingpong")
    assert [i["data"]["latency"] for i in orjson.loads(body)["items"]] == list(range(20, 30))

    off = await start_relay(redis_server.url, "--history-retention", "0")
    status, body = await off.get("/history")
    assert status == 404
    assert orjson.loads(body)["error"] == "history_off"


async def test_retention_by_age_trims_entries_older_than_the_window(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    import redis.asyncio as aioredis

    # Entries from two and three hours ago (ids are times), then a live message.
    client = aioredis.from_url(redis_server.url)
    now_ms = int((await client.time())[0]) * 1000
    for hours in (3, 2):
        await client.xadd(
            stream_key("bot:pingpong"),
            {"channel": "bot:pingpong", "relay_ms": 0, "seq": 0, "raw": b'{"type":"ping"}'},
            id=f"{now_ms - hours * 3_600_000}-0",
        )
    await client.aclose()
    assert await _xlen(redis_server, "bot:pingpong") == 2
    relay = await start_relay(
        redis_server.url, "--log-level", "DEBUG", "--history-retention", "150m"
    )
    await redis_server.publish(b'{"type":"pong","latency":1}')
    await relay.wait_for("history_recorded")
    status, body = await relay.get("/history?bot=bot:pingpong")
    assert status == 200
    items = orjson.loads(body)["items"]
    # The 3-hour-old entry is past 150 minutes; the 2-hour-old one is not.
    assert len(items) == 2
    assert int(items[0]["id"].split("-")[0]) == now_ms - 2 * 3_600_000
    assert items[1]["data"] == {"type": "pong", "latency": 1}


async def test_a_bot_never_seen_is_404_on_history_and_analytics_and_logged(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    import redis.asyncio as aioredis

    # A bot only the history knows (recorded before this relay started), and one it hears.
    client = aioredis.from_url(redis_server.url)
    raw = b'{"type":"ping","latency":3}'
    old = "bot:pingpong/old"
    entry_id = await client.xadd(
        stream_key(old), {"channel": "bot:pingpong", "relay_ms": 1, "seq": 1, "raw": raw}
    )
    await client.hset(FIRST_KEY, old, entry_id)
    await client.aclose()
    relay = await start_relay(redis_server.url, "--log-level", "DEBUG")
    await redis_server.publish(orjson.dumps({"type": "pong", "latency": 5, "source": "seen"}))
    await relay.wait_for("history_recorded")

    for path in ("/history?bot=bot:pingpong/never", "/analytics?bot=bot:pingpong/never"):
        status, body = await relay.get(path)
        assert status == 404, path
        # The same JSON error shape as every other error of the plane.
        assert orjson.loads(body) == {
            "error": "unknown_bot",
            "message": "no messages from bot 'bot:pingpong/never' yet",
        }
    # Known bots answer 200, even when the page asked for is empty.
    status, body = await relay.get("/history?bot=bot:pingpong/seen&since=4102444800000")
    assert (status, orjson.loads(body)["items"]) == (200, [])
    status, body = await relay.get("/history?bot=bot:pingpong/old")
    assert status == 200
    assert [item["data"] for item in orjson.loads(body)["items"]] == [orjson.loads(raw)]
    for bot in ("bot:pingpong/seen", old):
        status, _ = await relay.get(f"/analytics?bot={bot}&window=1h")
        assert status == 200, bot

    # Each refusal is counted; logged with its path and the caller's address, at most
    # once per 10 s with how many (the second one comes with the next line).
    assert await relay.metric('pingpong_http_refused_total{reason="unknown_bot"}') == 2
    logged = await relay.wait_for(
        lambda r: r.get("event") == "http_refused" and r.get("reason") == "unknown_bot"
    )
    assert logged["level"] == "WARNING"
    assert logged["count"] == 1
    assert "/history" in logged["detail"]
    assert "bot:pingpong/never" in logged["detail"]
    assert "from 127.0.0.1" in logged["detail"]
