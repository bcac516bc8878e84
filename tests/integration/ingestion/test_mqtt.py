"""MQTT through a real Mosquitto to a real relay and a real WebSocket client: Hummingbot's
heartbeat and the design's message arrive as the design's envelope, bad messages are
counted without stopping the good ones, relays sharing a subscription publish each message
once, and a broker restart is survived."""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import jsonschema
import orjson
import pytest

from pingpong_relay.asyncapi import asyncapi
from tests.integration.ingestion.mqtt_support import (
    ACCEPTED,
    SHARED_BROKER_PORT,
    WAIT_S,
    mqtt_relay,
    rejected,
    unique,
)
from tests.support import (
    Collector,
    MosquittoServer,
    RedisServer,
    RelayFactory,
    RelayProcess,
    mqtt_publish,
)

SHARED_BROKER = f"mqtt://127.0.0.1:{SHARED_BROKER_PORT}"


@pytest.fixture
async def mosquitto() -> AsyncIterator[MosquittoServer]:
    """A broker of this test's own, which it may stop and start again."""
    server = MosquittoServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


Watch = Callable[[RelayProcess], Awaitable[Collector]]


@pytest.fixture
async def watching() -> AsyncIterator[Watch]:
    """watching(relay) -> a WebSocket client of `relay`, once the relay has it; closed after."""
    clients: list[Collector] = []

    async def watch(relay: RelayProcess) -> Collector:
        client = Collector()
        clients.append(client)
        await client.connect(relay.ws_url)
        await relay.wait_for("client_connected")
        return client

    try:
        yield watch
    finally:
        for client in clients:
            await client.close()


async def accepted_by(*relays: RelayProcess) -> list[float]:
    return [await relay.metric(ACCEPTED) for relay in relays]


async def test_hummingbot_heartbeat_and_design_message_reach_a_client(
    redis_server: RedisServer, start_relay: RelayFactory, watching: Watch
) -> None:
    prefix = unique("hbot")
    relay = await mqtt_relay(
        start_relay,
        redis_server.url,
        SHARED_BROKER,
        "--mqtt-topic", f"{prefix}/+/hb",
        "--mqtt-topic", f"{prefix}-own/+",
    )  # fmt: skip
    client = await watching(relay)
    sent_us = int((time.time() + 0.5) * 1_000_000)  # what Hummingbot's commlib stamps
    await mqtt_publish(
        SHARED_BROKER_PORT, f"{prefix}/hummingbot-7/hb", orjson.dumps({"ts": sent_us})
    )
    design = {"type": "ping", "latency": 42.5, "timestamp": 1_765_000_000_000, "source": "x"}
    await mqtt_publish(SHARED_BROKER_PORT, f"{prefix}-own/freqtrade-2", orjson.dumps(design))

    first, second = await client.wait_count(2)
    assert list(first) == ["type", "data", "timestamp", "source"]
    assert first["data"] == {
        "type": "pong",
        "timestamp": round(sent_us / 1000),
        "source": "hummingbot-7",
        "via": "mqtt",
    }
    assert second["data"] == {**design, "source": "freqtrade-2", "via": "mqtt"}
    assert await relay.metric(ACCEPTED) == 2
    health = await relay.health()
    assert (health["status"], health["mqtt"]) == ("ok", "subscribed")
    assert health["mqtt_broker"] == SHARED_BROKER
    assert await relay.metric("pingpong_mqtt_connected") == 1
    # Watchers of the relay's own state hear the broker too, as the protocol describes.
    watcher = Collector()
    await watcher.connect(relay.ws_url + "?events=relay")
    try:
        (state,) = await watcher.wait_count(1)
    finally:
        await watcher.close()
    assert state["type"] == "relay:state"
    jsonschema.validate(state, asyncapi()["components"]["schemas"]["RelayState"])
    assert state["mqtt"] == "subscribed"
    assert "mqtt_broker" not in state  # the address is the operator's, in the log and ?detail=1


async def test_bad_messages_are_counted_and_the_next_good_one_arrives(
    redis_server: RedisServer, start_relay: RelayFactory, watching: Watch
) -> None:
    prefix = unique("bad")
    relay = await mqtt_relay(
        start_relay,
        redis_server.url,
        SHARED_BROKER,
        "--mqtt-topic", f"{prefix}/+",
        "--max-message-bytes", "2048",
    )  # fmt: skip
    client = await watching(relay)
    bad = [
        (f"{prefix}/bot", b"not json", "invalid_json"),
        (f"{prefix}/bot", b'{"type":"ping","pad":"' + b"x" * 3000 + b'"}', "oversize"),
        (f"{prefix}/bot", b'{"type":"ping","x":' + b"[" * 64 + b"]" * 64 + b"}", "too_deep"),
        (f"{prefix}/bot", b"[1,2,3]", "not_object"),
        (f"{prefix}/bot", b'{"hello":"world"}', "unknown_payload"),
        (f"{prefix}/bot", b'{"ts":"yesterday"}', "bad_timestamp"),
        (f"{prefix}/bot", b'{"type":"pong","latency":-3}', "bad_latency"),
        (f"{prefix}/bad%name", b'{"type":"pong"}', "bad_source"),
    ]
    for topic, payload, _ in bad:
        await mqtt_publish(SHARED_BROKER_PORT, topic, payload)
    await mqtt_publish(SHARED_BROKER_PORT, f"{prefix}/good-bot", b'{"type":"pong","latency":7}')

    [envelope] = await client.wait_count(1)
    assert envelope["data"] == {"type": "pong", "latency": 7, "source": "good-bot", "via": "mqtt"}
    # The good message came after every bad one, through the same loop: all counted by now.
    for _, _, reason in bad:
        assert await relay.metric(rejected(reason)) == 1, reason
    assert await relay.metric(ACCEPTED) == 1
    assert relay.events("ingest_refused"), "refusals are logged"
    assert (await relay.health())["mqtt"] == "subscribed"


async def test_relays_sharing_a_subscription_publish_each_message_once(
    redis_server: RedisServer, start_relay: RelayFactory, watching: Watch
) -> None:
    prefix, group = unique("shared"), unique("group")
    flags = ("--mqtt-topic", f"{prefix}/+", "--mqtt-share-group", group)
    first = await mqtt_relay(start_relay, redis_server.url, SHARED_BROKER, *flags)
    second = await mqtt_relay(start_relay, redis_server.url, SHARED_BROKER, *flags)
    client = await watching(first)

    published = 0
    # Until each relay has published some (both hold the shared subscription). A relay
    # reads its messages in order, so once it has published a later one, a copy of an
    # earlier one would have been published (and counted) before it.
    while not all(counts := await accepted_by(first, second)) or sum(counts) < published:
        assert sum(counts) <= published, f"published {published}, relays accepted {counts}"
        assert published < 100, f"one relay took every message: {counts}"
        if sum(counts) == published:
            body = orjson.dumps({"type": "pong", "latency": published})
            await mqtt_publish(SHARED_BROKER_PORT, f"{prefix}/bot-{published}", body)
            published += 1
    assert sum(counts) == published

    envelopes = await client.wait_count(published)
    latencies = sorted(e["data"]["latency"] for e in envelopes)
    assert latencies == list(range(published))  # each once: none lost, none twice


async def test_a_broker_restart_is_survived(
    redis_server: RedisServer,
    start_relay: RelayFactory,
    mosquitto: MosquittoServer,
    watching: Watch,
) -> None:
    relay = await mqtt_relay(
        start_relay, redis_server.url, mosquitto.url, "--mqtt-topic", "fleet/+/beat"
    )
    client = await watching(relay)
    await mosquitto.publish("fleet/before/beat", b'{"type":"pong","latency":1}')
    [before] = await client.wait_count(1)
    assert before["data"]["source"] == "before"

    await mosquitto.stop()
    outage = await relay.wait_for("mqtt_outage_start", timeout=WAIT_S)
    assert "lost" in outage["message"]
    health = await relay.health()
    assert health["mqtt"] == "disconnected"
    assert health["mqtt_error"]
    assert health["status"] == "ok", "MQTT down does not make the relay unhealthy"
    assert await relay.metric("pingpong_mqtt_connected") == 0
    status, _ = await relay.get("/healthz")
    assert status == 200

    await mosquitto.start()
    back = await relay.wait_for("mqtt_outage_end", timeout=WAIT_S)
    assert back["outage_s"] > 0
    assert await relay.metric("pingpong_mqtt_connected") == 1
    assert await relay.metric("pingpong_mqtt_reconnects_total") == 1
    assert (await relay.health())["mqtt"] == "subscribed"
    await mosquitto.publish("fleet/after/beat", b'{"type":"pong","latency":2}')
    _, after = await client.wait_count(2)
    assert after["data"] == {"type": "pong", "latency": 2, "source": "after", "via": "mqtt"}
    assert len(relay.events("mqtt_outage_start")) == 1, "one warning per outage"


async def test_a_broker_down_at_start_is_waited_for(
    redis_server: RedisServer, start_relay: RelayFactory, watching: Watch
) -> None:
    broker = MosquittoServer()  # its port chosen, nothing listening yet
    relay = await start_relay(redis_server.url, "--mqtt-url", broker.url, "--mqtt-topic", "late/+")
    warning = await relay.wait_for("mqtt_outage_start", timeout=WAIT_S)
    assert "not reachable" in warning["message"]
    health = await relay.health()
    assert (health["status"], health["mqtt"]) == ("ok", "disconnected")
    await broker.start()
    try:
        await relay.wait_for("mqtt_outage_end", timeout=WAIT_S)
        client = await watching(relay)
        await broker.publish("late/bot", b'{"ts": 1765000000000000}')
        [envelope] = await client.wait_count(1)
        assert envelope["data"]["timestamp"] == 1_765_000_000_000
        assert await relay.metric("pingpong_mqtt_reconnects_total") == 0
        assert len(relay.events("mqtt_outage_start")) == 1, "one warning, not one per retry"
    finally:
        await broker.stop()


async def test_the_relay_stops_cleanly_leaving_the_broker_politely(
    redis_server: RedisServer, start_relay: RelayFactory, mosquitto: MosquittoServer
) -> None:
    relay = await mqtt_relay(start_relay, redis_server.url, mosquitto.url, "--mqtt-topic", "x/+")
    relay.signal(signal.SIGTERM)
    assert await relay.wait_exit(timeout=10) == 0
    assert not [r for r in relay.records if r.get("level") in ("ERROR", "CRITICAL")]
    client_id = relay.events("mqtt_subscribed")[0]["client_id"]
    assert client_id.startswith("pingpong-relay-")
    assert f"Client {client_id} disconnected." in mosquitto.log(), mosquitto.log()


async def test_workers_each_hold_a_share_and_their_health_is_merged(
    redis_server: RedisServer,
    start_relay: RelayFactory,
    mosquitto: MosquittoServer,
    watching: Watch,
) -> None:
    relay = await start_relay(
        redis_server.url, "--workers", "2", "--mqtt-url", mosquitto.url, "--mqtt-topic", "w/+"
    )
    subscribed = await relay.wait_for("mqtt_subscribed", count=2, timeout=WAIT_S)
    ids = {r["client_id"] for r in relay.events("mqtt_subscribed")}
    assert len(ids) == 2, f"each worker is its own MQTT client: {ids}"
    assert subscribed["topics"] == ["$share/pingpong-relay/w/+"]
    health = await relay.health()
    assert health["mqtt"] == "subscribed"
    assert [w["mqtt"] for w in health["workers"]] == ["subscribed", "subscribed"]
    client = await watching(relay)
    for n in range(6):
        await mosquitto.publish(f"w/bot-{n}", orjson.dumps({"type": "pong", "latency": n}))
    envelopes = await client.wait_count(6)
    assert sorted(e["data"]["latency"] for e in envelopes) == list(range(6))

    await mosquitto.stop()
    await relay.wait_for("mqtt_outage_start", count=2, timeout=WAIT_S)
    health = await relay.health()
    assert (health["status"], health["mqtt"]) == ("ok", "disconnected")
