"""Limits over real sockets: origins, capacity, client floods, runaway bots, token refresh."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import jwt
import orjson
import pytest

from tests.support import Collector, RedisServer, RelayFactory, RelayProcess

SECRET = "relay-test-secret-" + "k" * 50


async def test_only_allowed_origins_and_the_relays_own_may_connect(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(
        redis_server.url,
        "--allowed-origin",
        "https://ok.example",
        "--public-ws-url",
        "wss://relay.example/ws",
    )
    own = f"http://127.0.0.1:{relay.http_port}"
    proxied = "https://relay.example"  # the dashboard's origin behind the proxy
    async with aiohttp.ClientSession() as session:
        for origin in ("https://ok.example", own, proxied, None):
            headers = {"Origin": origin} if origin else {}
            async with session.ws_connect(relay.ws_url, headers=headers) as ws:
                assert not ws.closed
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(relay.ws_url, headers={"Origin": "https://evil.example"})
        assert refused.value.status == 403
    await relay.wait_for("origin_refused")
    assert await relay.metric('pingpong_connections_refused_total{reason="origin"}') == 1


async def test_connections_past_the_cap_get_503_with_retry_after(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--max-connections", "3")
    clients = [Collector() for _ in range(3)]
    for client in clients:
        await client.connect(relay.ws_url)
    await relay.wait_for("client_connected", count=3)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(relay.ws_url)
        assert refused.value.status == 503
        assert refused.value.headers is not None
        assert refused.value.headers["Retry-After"] == "5"
    assert await relay.metric('pingpong_connections_refused_total{reason="capacity"}') == 1
    for client in clients:
        await client.close()


async def test_a_flooding_client_is_contained_while_100_others_get_everything(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--client-frame-rate", "2")
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        good = [Collector() for _ in range(100)]
        await asyncio.gather(*(c.connect(relay.ws_url, session) for c in good))
        flooder = Collector()
        await flooder.connect(relay.ws_url, session)
        await relay.wait_for("client_connected", count=101)
        assert flooder.ws is not None

        async def flood() -> None:
            for _ in range(200):
                if flooder.ws is None or flooder.ws.closed:
                    return
                try:
                    await flooder.ws.send_str('{"action":"list"}')
                except (aiohttp.ClientConnectionResetError, ConnectionError):
                    return  # the relay has closed it: what this test expects

        flooding = asyncio.create_task(flood())
        for n in range(30):
            await redis_server.publish(orjson.dumps({"type": "ping", "latency": n}))
        await asyncio.wait_for(flooder.closed.wait(), 20)
        await flooding
        assert flooder.close_code == 1008
        errors = [m for m in flooder.messages if m["type"] == "error"]
        assert errors
        assert all(e["error"] == "rate_limited" for e in errors)
        await asyncio.gather(*(c.wait_count(30) for c in good))
        for client in good:
            assert [m["data"]["latency"] for m in client.messages] == list(range(30))
        assert await relay.metric("pingpong_client_policy_closes_total") == 1
        await relay.wait_for("client_policy_closed")
        await asyncio.gather(*(c.close() for c in good))


async def test_a_runaway_bot_is_held_to_its_rate_and_others_are_not(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(
        redis_server.url, "--max-bot-rate", "2", "--log-stages"
    )  # bursts of 20
    client = Collector()
    await client.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    for n in range(60):
        await redis_server.publish(orjson.dumps({"type": "ping", "latency": n, "source": "loop"}))
    for n in range(5):
        await redis_server.publish(orjson.dumps({"type": "pong", "latency": n, "source": "calm"}))
    await relay.wait_for("received", count=25)
    calm = await _until(client, lambda m: m["data"]["source"] == "calm", count=5)
    loop = [m for m in calm if m["data"]["source"] == "loop"]
    assert 20 <= len(loop) < 60
    dropped = await relay.metric("pingpong_bot_messages_dropped_total")
    assert dropped == 60 - len(loop)
    warned = await relay.wait_for("bot_rate_limited")
    assert warned["bot"] == "bot:pingpong/loop"
    assert len(relay.events("bot_rate_limited")) == 1  # once per interval, not per message
    await client.close()


async def _until(
    client: Collector, match: Callable[[dict[str, Any]], bool], count: int
) -> list[dict[str, Any]]:
    index = 0
    seen = 0
    while True:
        message = (await client.wait_count(index + 1))[index]
        if match(message):
            seen += 1
            if seen == count:
                return client.messages[: index + 1]
        index += 1


def _token(ttl_s: float, sub: str = "dash") -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time() + ttl_s)}, SECRET, algorithm="HS256")


async def test_an_in_band_refresh_keeps_the_connection_past_the_first_expiry(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(
        redis_server.url, "--auth", "jwt", env={"PINGPONG_JWT_SECRET": SECRET}
    )
    client = Collector()
    await client.connect(relay.ws_url + f"?token={_token(2)}")
    assert client.ws is not None
    await client.ws.send_str(orjson.dumps({"action": "refresh", "token": "junk"}).decode())
    await client.ws.send_str(
        orjson.dumps({"action": "refresh", "token": _token(600, sub="someone-else")}).decode()
    )
    await client.ws.send_str(orjson.dumps({"action": "refresh", "token": _token(600)}).decode())
    replies = await client.wait_count(3)
    assert [r.get("error") for r in replies[:2]] == ["malformed", "bad_token"]
    assert replies[2]["type"] == "ack"
    assert replies[2]["expires_at_ms"] > (time.time() + 500) * 1000
    # Outlive the first token: the connection stays and keeps receiving.
    await asyncio.sleep(3)
    await redis_server.publish(b'{"type":"ping","latency":1}')
    messages = await client.wait_count(4)
    assert messages[3]["type"] == "bot:pingpong"
    assert not client.closed.is_set()
    await client.close()


async def test_per_address_caps_and_rates_are_refused_before_the_upgrade(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    capped = await start_relay(redis_server.url, "--max-connections-per-ip", "2")
    clients = [Collector(), Collector()]
    for client in clients:
        await client.connect(capped.ws_url)
    await capped.wait_for("client_connected", count=2)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(capped.ws_url)
        assert refused.value.status == 503
    assert (await capped.wait_for("per_ip_refused"))["ip"] == "127.0.0.1"
    await clients[0].close()
    await capped.wait_for("client_disconnected")
    again = Collector()  # a place freed up
    await again.connect(capped.ws_url)
    await again.close()
    await clients[1].close()

    rated = await start_relay(redis_server.url, "--connection-rate-per-ip", "1")  # bursts of 2
    statuses = []
    async with aiohttp.ClientSession() as session:
        for _ in range(4):
            try:
                ws = await session.ws_connect(rated.ws_url)
            except aiohttp.WSServerHandshakeError as exc:
                statuses.append(exc.status)
            else:
                statuses.append(101)
                await ws.close()
    assert statuses[:2] == [101, 101]
    assert 429 in statuses[2:]
    assert await rated.metric('pingpong_connections_refused_total{reason="per_ip_rate"}') >= 1


async def test_floods_from_one_address_are_contained_while_100_clients_get_everything(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    # The well-behaved clients come from 127.0.0.1, the flooder from 127.0.0.2 (all of
    # 127/8 is loopback), so per-address limits can tell them apart.
    relay = await start_relay(
        redis_server.url, "--max-connections-per-ip", "110", "--client-frame-rate", "2"
    )
    good_session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    bad_session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, local_addr=("127.0.0.2", 0))
    )
    try:
        good = [Collector() for _ in range(100)]
        await asyncio.gather(*(c.connect(relay.ws_url, good_session) for c in good))
        # Too many connections from one address: past 110, refused before the upgrade.
        statuses = []
        held = []
        for _ in range(120):
            try:
                held.append(await bad_session.ws_connect(relay.ws_url))
            except aiohttp.WSServerHandshakeError as exc:
                statuses.append(exc.status)
        assert len(held) == 110
        assert statuses == [503] * 10
        # A frame over 16 KiB closes only its own connection (1009)...
        await held[0].send_str('{"action":"list","pad":"' + "x" * 20_000 + '"}')
        closing = await held[0].receive(timeout=10)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert held[0].close_code == 1009
        # ...and a burst of frames gets errors, then 1008.
        for _ in range(30):
            try:
                await held[1].send_str('{"action":"list"}')
            except (aiohttp.ClientConnectionResetError, ConnectionError):
                break
        for n in range(20):
            await redis_server.publish(orjson.dumps({"type": "ping", "latency": n}))
        await asyncio.gather(*(c.wait_count(20) for c in good))
        for client in good:
            assert [m["data"]["latency"] for m in client.messages] == list(range(20))
        await relay.wait_for("client_policy_closed")
        await asyncio.gather(*(c.close() for c in good))
        await asyncio.gather(*(ws.close() for ws in held))
    finally:
        await good_session.close()
        await bad_session.close()


async def test_the_cap_stays_below_the_open_file_limit_so_the_relay_can_still_refuse(
    redis_server: RedisServer,
) -> None:
    # 286 descriptors in all: room for 60 clients once the relay's own needs (200) and the
    # HTTP plane's (10 connections, 16 lingering refusals) are kept.
    relay = RelayProcess(
        redis_server.url, "--max-connections", "1000", "--max-http-connections", "10", nofile=286
    )
    try:
        await relay.start()
        capped = await relay.wait_for("max_connections_capped")
        assert capped["max_connections"] == 60
        clients = [Collector() for _ in range(60)]
        for client in clients:
            await client.connect(relay.ws_url)
        await relay.wait_for("client_connected", count=60)
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(relay.ws_url)
            assert refused.value.status == 503  # an answer, not a dropped connection
        status, _ = await relay.get("/healthz")  # and the HTTP plane still answers
        assert status == 200
        for client in clients:
            await client.close()
    finally:
        await relay.stop()
