"""Redis dies (SIGKILL) and comes back on the same port: the relay recovers by itself."""

from __future__ import annotations

import orjson

from tests.support import DESIGN_PING, Collector, RedisServer, RelayFactory, TcpProxy


async def test_redis_sigkill_and_restart_then_next_message_is_delivered(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(
        redis_server.url, "--redis-health-interval", "1", "--reconnect-max-delay", "0.5"
    )
    client = Collector()
    await client.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    await redis_server.publish(DESIGN_PING)
    await client.wait_count(1)

    redis_server.kill()
    outage = await relay.wait_for("redis_outage_start")
    assert outage["level"] == "WARNING"
    status, body = await relay.get("/healthz")
    assert status == 503
    assert orjson.loads(body) == {"status": "unavailable", "redis": "unavailable"}
    status, body = await relay.get("/healthz?detail=1")
    assert status == 503
    health = orjson.loads(body)
    assert health["redis"] == "disconnected"
    assert "reason" in health
    # The relay keeps serving its WebSocket clients while Redis is away.
    assert health["clients"] == 1
    await relay.wait_for("redis_retry", count=2)

    await redis_server.start()
    restored = await relay.wait_for("redis_outage_end")
    assert restored["outage_s"] > 0
    pong = b'{"type":"pong","latency":4,"timestamp":1234567891,"source":"bot"}'
    assert await redis_server.publish(pong) == 1
    messages = await client.wait_count(2)
    assert messages[1]["data"] == orjson.loads(pong)
    assert not client.closed.is_set()
    status, body = await relay.get("/healthz")
    assert status == 200
    assert orjson.loads(body)["redis"] == "subscribed"
    assert await relay.metric("pingpong_redis_reconnects_total") == 1
    await client.close()


async def test_explicit_redis_url_that_does_not_answer_is_retried_not_replaced(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    # Nothing listens here yet; the relay must keep retrying and never start its own.
    redis_server.kill()
    relay = await start_relay(
        redis_server.url, "--reconnect-max-delay", "0.3", wait_subscribed=False
    )
    retry = await relay.wait_for("redis_retry", count=3)
    assert retry["attempt"] == 3
    assert not relay.events("embedded_redis_started")
    status, _ = await relay.get("/healthz")
    assert status == 503

    await redis_server.start()
    await relay.wait_for(lambda r: r.get("event") in ("redis_subscribed", "redis_outage_end"))
    client = Collector()
    await client.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    await redis_server.publish(DESIGN_PING)
    [envelope] = await client.wait_count(1)
    assert envelope["data"] == orjson.loads(DESIGN_PING)
    await client.close()


async def test_a_silent_network_cut_is_detected_by_ping_and_recovered(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    # No FIN, no RST: the link just goes quiet. Only the relay's own PING can notice.
    proxy = TcpProxy(redis_server.port)
    await proxy.start()
    try:
        relay = await start_relay(
            f"redis://127.0.0.1:{proxy.port}/0",
            "--redis-health-interval",
            "0.5",
            "--reconnect-max-delay",
            "0.3",
        )
        client = Collector()
        await client.connect(relay.ws_url)
        await relay.wait_for("client_connected")
        proxy.freeze()
        outage = await relay.wait_for("redis_outage_start")
        assert "PING" in outage["error"]
        status, _ = await relay.get("/healthz")
        assert status == 503
        proxy.thaw()
        await relay.wait_for("redis_outage_end")
        assert await redis_server.publish(DESIGN_PING) == 1
        [envelope] = await client.wait_count(1)
        assert envelope["data"] == orjson.loads(DESIGN_PING)
        await client.close()
    finally:
        proxy.close()
