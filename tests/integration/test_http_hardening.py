"""The HTTP plane against a hostile network: Host checks, browser headers, /metrics and
/healthz detail under auth, scoped history pages and a public /healthz that tells nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
import redis.asyncio as aioredis

from pingpong_relay.redis_io.history import stream_key
from tests.integration.http_support import (
    JWT,
    SECRET,
    bearer,
    headers_of,
    raw_exchange,
    status_of,
    token,
)
from tests.support import Collector, RedisServer, RelayFactory, RelayProcess, assert_browser_headers


# --- 1. Host (DNS rebinding) ---------------------------------------------------------
async def test_a_host_that_does_not_name_the_relay_is_refused_with_421(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url)
    port = relay.http_port
    # A page on evil.example whose DNS name was rebound to 127.0.0.1 sends its own name.
    for path in ("/", "/healthz", "/dashboard/dashboard.js", "/bots", "/metrics", "/nowhere"):
        status, body = await relay.get(path, headers={"Host": f"evil.example:{port}"})
        assert status == 421, path
        assert orjson.loads(body)["error"] == "unknown_host"
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        status, _ = await relay.get("/healthz", headers={"Host": host})
        assert status == 200, host
    assert await relay.metric('pingpong_http_refused_total{reason="host"}') == 6
    logged = await relay.wait_for("http_refused")
    assert (logged["level"], logged["reason"], logged["count"]) == ("WARNING", "host", 1)
    assert "evil.example" in logged["detail"]
    # Rate-limited: six refusals within 10 s made one line (the rest come in the next).
    assert len(relay.events("http_refused")) == 1

    named = await start_relay(redis_server.url, "--allowed-host", "relay.example")
    status, _ = await named.get("/healthz", headers={"Host": f"relay.example:{named.http_port}"})
    assert status == 200
    status, _ = await named.get("/healthz", headers={"Host": "evil.example"})
    assert status == 421


# --- 2. Browser headers --------------------------------------------------------------
async def test_every_http_plane_response_carries_the_browser_headers(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url)
    cases = [
        ("/", 200),
        ("/dashboard/dashboard.js", 200),
        ("/dashboard/dashboard.css", 200),
        ("/dashboard/config.json", 200),
        ("/asyncapi.json", 200),
        ("/healthz", 200),
        ("/metrics", 200),
        ("/bots", 200),
        ("/stats?window=2d", 400),
        ("/nowhere", 404),
    ]
    async with aiohttp.ClientSession() as session:
        for path, expected in cases:
            async with session.get(relay.http_url + path) as response:
                assert response.status == expected, path
                assert_browser_headers(response.headers, "'none'", path)
        async with session.get(relay.http_url + "/", headers={"Host": "evil.example"}) as r:
            assert r.status == 421
            assert_browser_headers(r.headers, "'none'", "421")
    # What anyone may read names no version (the Server header above, nor the page's config).
    _, body = await relay.get("/dashboard/config.json")
    assert "version" not in orjson.loads(body)
    # A request aiohttp itself cannot parse is answered by aiohttp, with the same headers.
    garbage = await raw_exchange(relay.http_port, b"NOT-HTTP\r\n\r\n")
    assert status_of(garbage) == 400
    assert_browser_headers(headers_of(garbage), "'none'", "400")

    framed = await start_relay(redis_server.url, "--frame-ancestors", "'self' https://ops.example")
    response = await _get(framed, "/", {})
    assert response.status == 200
    assert_browser_headers(response.headers, "'self' https://ops.example", "framed")


# --- 3. /metrics and the health detail under auth --------------------------------------
async def _get(relay: RelayProcess, path: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
    async with (
        aiohttp.ClientSession() as session,
        session.get(relay.http_url + path, headers=headers) as response,
    ):
        await response.read()
        return response


async def test_metrics_and_health_detail_need_a_credential_when_auth_is_on(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, *JWT, env={"PINGPONG_JWT_SECRET": SECRET})
    plain, scraper = token(), token(scopes=("metrics",))
    for path in ("/metrics", "/healthz?detail=1"):
        for headers in ({}, bearer(plain), bearer("not-a-token")):
            response = await _get(relay, path, headers)
            assert response.status == 401, (path, headers)
            assert response.headers["WWW-Authenticate"] == "Bearer"
        response = await _get(relay, path, bearer(scraper))
        assert response.status == 200, path
    status, body = await relay.get("/metrics", headers=bearer(scraper))
    assert b"pingpong_messages_received_total" in body
    status, body = await relay.get("/healthz")  # the public view stays open
    assert (status, orjson.loads(body)) == (200, {"status": "ok", "redis": "subscribed"})

    both = await start_relay(
        redis_server.url,
        "--auth",
        "jwt",
        "--metrics-token",
        "scrape-me",
        env={"PINGPONG_JWT_SECRET": SECRET},
    )
    for headers in (bearer("scrape-me"), bearer(scraper)):
        assert (await _get(both, "/metrics", headers)).status == 200
    # Bytes that are no text: refused, not a 500 from comparing them.
    for raw_path in (b"/metrics", b"/healthz?detail=1", b"/bots"):
        answer = await raw_exchange(
            both.http_port,
            b"GET " + raw_path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \xff\xfe"
            b"\r\nConnection: close\r\n\r\n",
        )
        assert status_of(answer) == 401, raw_path


async def test_metrics_and_health_detail_on_an_anonymous_relay(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    open_relay = await start_relay(redis_server.url)
    for path in ("/metrics", "/healthz?detail=1"):
        assert (await _get(open_relay, path, {})).status == 200
    _, body = await open_relay.get("/healthz?detail=1")
    assert {"clients", "channels", "pid", "version", "uptime_s"} <= set(orjson.loads(body))

    tokened = await start_relay(redis_server.url, "--metrics-token", "scrape-me")
    for path in ("/metrics", "/healthz?detail=1"):
        response = await _get(tokened, path, {})
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert (await _get(tokened, path, bearer("scrape-me"))).status == 200
        answer = await raw_exchange(
            tokened.http_port,
            b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer \xff\r\nConnection: close\r\n\r\n",
        )
        assert status_of(answer) == 401, path


# --- 4. Scoped history: filter, then limit ---------------------------------------------
async def test_a_scoped_history_walk_gets_full_pages_of_its_bots_only(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, *JWT, env={"PINGPONG_JWT_SECRET": SECRET})
    everyone = bearer(token())
    for n in range(6):
        for source in ("alpha", "beta"):
            await redis_server.publish(
                orjson.dumps({"type": "ping", "latency": n, "timestamp": n, "source": source})
            )
            await asyncio.sleep(0.003)  # distinct ids: a cursor names one id of any stream

    async def recorded() -> None:
        while True:
            _, body = await relay.get("/history?limit=100", headers=everyone)
            if len(orjson.loads(body)["items"]) == 12:
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(recorded(), 20)

    alpha_only = bearer(token(bots=["bot:pingpong/alpha"]))
    client = aioredis.from_url(redis_server.url)
    seen: list[dict[str, Any]] = []
    pages: list[int] = []
    try:
        async with client.monitor() as monitor:
            query = "/history?limit=2"
            while True:
                status, body = await relay.get(query, headers=alpha_only)
                assert status == 200
                page = orjson.loads(body)
                pages.append(len(page["items"]))
                seen += page["items"]
                if page["next_after"] is None:
                    break
                query = f"/history?limit=2&after={page['next_after']}"
            marker = "end-of-scoped-history-reads"
            await client.echo(marker)
            commands = []
            while marker not in (command := (await monitor.next_command())["command"]):
                commands.append(command)
    finally:
        await client.aclose()
    assert pages == [2, 2, 2]  # full pages, though beta's entries are interleaved
    assert [i["bot"] for i in seen] == ["bot:pingpong/alpha"] * 6
    assert [i["data"]["latency"] for i in seen] == list(range(6))
    # The other bot's stream was not even read.
    reads = [c for c in commands if c.upper().startswith(("XRANGE", "XREVRANGE"))]
    assert reads, "the walk read no stream"
    assert not [c for c in reads if stream_key("bot:pingpong/beta") in c], reads


# --- 5. /healthz: generic in public, the detail for the operator -------------------------
async def test_public_health_shows_no_addresses_or_errors_and_the_detail_stays_available(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--reconnect-max-delay", "0.3")
    watcher = Collector()
    await watcher.connect(relay.ws_url + "?events=relay")
    await watcher.wait_count(1)  # relay:state on joining
    redis_server.kill()
    outage = await relay.wait_for("redis_outage_start")
    error = outage["error"]  # the detail is in the log
    assert error
    assert outage["level"] == "WARNING"

    for data_port in (False, True):
        status, body = await relay.get("/healthz", data_port=data_port)
        assert status == 503
        assert orjson.loads(body) == {"status": "unavailable", "redis": "unavailable"}
        assert error.encode() not in body
    status, body = await relay.get("/healthz?detail=1")
    assert status == 503
    detail = orjson.loads(body)
    assert error in detail["reason"]
    assert {"redis_down_since_ms", "clients", "channels", "pid", "version"} <= set(detail)

    def down(message: dict[str, Any]) -> bool:
        return message.get("type") == "relay:state" and message.get("status") == "unavailable"

    index = 1
    while not down((await watcher.wait_count(index + 1))[index]):
        index += 1
    state = watcher.messages[index]
    assert state["reason"] == "Redis subscription not verified"
    assert error not in watcher.raw[index]
    assert state["clients"] == 1  # the rest of the detail is still there for the dashboard
    await watcher.close()
