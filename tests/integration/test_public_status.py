"""Badges and the public status page on a real relay: public bots open, the others unseen."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

from harness.logs import Record
from pingpong_relay.messages import build_bot_message
from pingpong_relay.redis_io.history import BOTS_KEY, ESTABLISHED_KEY, FIRST_KEY, stream_key
from tests.integration.http_support import JWT, SECRET, bearer, token
from tests.support import RedisServer, RelayFactory, RelayProcess

PUBLIC = "bot:pingpong/gate-1"
PRIVATE = "bot:pingpong/vault"
SVG = "{http://www.w3.org/2000/svg}"


async def _two_bots(redis_server: RedisServer, relay: RelayProcess) -> None:
    """gate-1 (public) and vault (private) each send a ping; waits until both have a status."""
    for source in ("gate-1", "vault"):
        beat = build_bot_message("ping", 42.0, round(time.time() * 1000), source)
        await redis_server.publish(beat)
    for bot in (PUBLIC, PRIVATE):
        await relay.wait_for(_status_of(bot))


def _status_of(bot: str) -> Callable[[Record], bool]:
    return lambda record: record.get("event") == "bot_status" and record.get("bot") == bot


def _svg_texts(body: bytes) -> list[str]:
    root = ET.fromstring(body)
    assert root.tag == SVG + "svg"
    return [t.text or "" for t in root.iter(SVG + "text")]


async def test_public_bots_need_no_token_and_the_others_stay_unseen(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(
        redis_server.url,
        *JWT,
        "--public-bots",
        "bot:pingpong/gate-*",
        "--log-stages",
        env={"PINGPONG_JWT_SECRET": SECRET},
    )
    await _two_bots(redis_server, relay)
    anonymous: dict[str, str] = {}

    status, body = await relay.get("/status.json", headers=anonymous)
    assert status == 200
    page = orjson.loads(body)
    assert [b["bot"] for b in page["bots"]] == [PUBLIC]
    assert page["bots"][0]["status"] == "up"
    assert set(page["bots"][0]["availability_pct"]) == {"24h", "7d", "30d"}
    assert b"vault" not in body
    status, body = await relay.get("/status", headers=anonymous)
    assert status == 200
    assert PUBLIC.encode() in body
    assert b"vault" not in body

    status, body = await relay.get(f"/badge.svg?bot={PUBLIC}", headers=anonymous)
    assert status == 200
    assert _svg_texts(body) == [PUBLIC, "up · 42 ms"]
    status, body = await relay.get(f"/badge.json?bot={PUBLIC}", headers=anonymous)
    assert status == 200
    assert orjson.loads(body) == {
        "schemaVersion": 1,
        "label": PUBLIC,
        "message": "up · 42 ms",
        "color": "brightgreen",
    }
    # A hostile label is text in the badge, never markup.
    status, body = await relay.get(
        f"/badge.svg?bot={PUBLIC}&label=%3Cscript%3E%26%22", headers=anonymous
    )
    assert status == 200
    assert _svg_texts(body)[0] == '<script>&"'
    assert b"<script" not in body

    # The private bot: refused without a token, without naming it.
    for path in ("/badge.svg", "/badge.json"):
        status, body = await relay.get(f"{path}?bot={PRIVATE}", headers=anonymous)
        assert status == 401
        assert b"vault" not in body
    # With a token that covers it, its badge; with one that does not, 404 as for no bot.
    status, body = await relay.get(f"/badge.json?bot={PRIVATE}", headers=bearer(token()))
    assert status == 200
    assert orjson.loads(body)["message"] == "up · 42 ms"
    gate_only = bearer(token(bots=["bot:pingpong/gate-*"]))
    status, body = await relay.get(f"/badge.json?bot={PRIVATE}", headers=gate_only)
    assert status == 404
    assert orjson.loads(body)["error"] == "unknown_bot"
    status, body = await relay.get(f"/badge.svg?bot={PRIVATE}", headers=gate_only)
    assert status == 404
    assert _svg_texts(body)[1] == "unknown"


async def test_badge_cache_headers_and_no_status_page_without_public_bots(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--log-stages")
    await _two_bots(redis_server, relay)
    for path in ("/status", "/status.json"):
        status, body = await relay.get(path)
        assert status == 404
        assert orjson.loads(body)["error"] == "status_off"
    # Without auth every bot's badge answers (all data is open anyway), with cache headers.
    async with aiohttp.ClientSession() as session:
        url = f"{relay.http_url}/badge.svg?bot={PRIVATE}"
        async with session.get(url) as response:
            assert response.status == 200
            assert response.content_type == "image/svg+xml"
            assert response.headers["Cache-Control"] == "max-age=30"
            etag = response.headers["ETag"]
        async with session.get(url, headers={"If-None-Match": etag}) as response:
            assert response.status == 304
        async with session.get(f"{relay.http_url}/badge.svg?bot=bot:pingpong/nobody") as response:
            assert response.status == 404
            assert _svg_texts(await response.read())[1] == "unknown"
        async with session.get(f"{relay.http_url}/badge.json") as response:
            assert response.status == 400


async def _seed(client: aioredis.Redis, bot: str, times: list[int]) -> None:
    """A bot's recorded history, as relays before this one left it in Redis."""
    pipe = client.pipeline(transaction=False)
    for at in times:
        raw = b'{"type":"ping","latency":5}'
        pipe.xadd(
            stream_key(bot), {"channel": "c", "relay_ms": at, "seq": 0, "raw": raw}, id=f"{at}-0"
        )
    for key in (BOTS_KEY, ESTABLISHED_KEY):
        pipe.zadd(key, {bot: times[-1]})
    pipe.hset(FIRST_KEY, bot, f"{times[0]}-0")
    await pipe.execute()


async def test_the_status_page_lists_each_outage_and_the_one_going_on(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    client = aioredis.from_url(redis_server.url)
    seconds, _ = await client.time()
    now_ms = int(seconds) * 1000
    last = now_ms - 120_000  # silent for the last two minutes
    hole = (last - 300_000, last - 210_000)  # 90 s without a message, five minutes earlier
    times = [at for at in range(last - 600_000, last + 1, 1000) if not hole[0] <= at < hole[1]]
    await _seed(client, PUBLIC, times)
    await _seed(client, PRIVATE, times)
    await client.aclose()
    relay = await start_relay(redis_server.url, "--public-bots", PUBLIC, "--log-level", "DEBUG")
    await relay.wait_for("rollup_pass")
    await relay.wait_for("bot_status", count=2)  # both bots seeded from the history

    status, body = await relay.get("/status.json")
    assert status == 200
    assert b"vault" not in body
    [entry] = orjson.loads(body)["bots"]
    _, bots = await relay.get("/bots")
    assert entry["status"] == orjson.loads(bots)["bots"][PUBLIC]["status"]
    ongoing, earlier = entry["incidents"]  # newest first
    assert ongoing["ongoing"] is True
    assert ongoing["start_ms"] == last + 30_000
    assert earlier["ongoing"] is False
    assert earlier["start_ms"] == hole[0] - 1000 + 30_000
    assert earlier["end_ms"] == hole[1]
    assert round(earlier["duration_s"]) == 61
    assert 0 < entry["availability_pct"]["24h"] < 100
    _, analytics = await relay.get(f"/analytics?bot={PUBLIC}&window=24h")
    assert entry["availability_pct"]["24h"] == pytest.approx(
        orjson.loads(analytics)["availability_pct"], abs=0.1
    )

    status, page = await relay.get("/status")
    assert status == 200
    assert b"ongoing" in page
    assert b"1 min 1 s" in page
    assert b"vault" not in page
    _, badge = await relay.get(f"/badge.svg?bot={PUBLIC}")
    assert _svg_texts(badge) == [PUBLIC, entry["status"]]  # no latency heard since the start
