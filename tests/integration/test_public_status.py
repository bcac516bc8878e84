"""Badges and the public status page on a real relay: public bots open, the others unseen."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable

import aiohttp
import orjson

from harness.logs import Record
from pingpong_relay.messages import build_bot_message
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
