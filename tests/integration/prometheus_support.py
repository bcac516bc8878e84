"""promtool, and a relay with every optional family configured and some traffic through it."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from dataclasses import dataclass

import aiohttp
import orjson

from harness.processes import ROOT
from tests.integration.ingestion.mqtt_support import SHARED_BROKER_PORT, unique
from tests.support import (
    Collector,
    FakeFreqtrade,
    RedisServer,
    RelayFactory,
    RelayProcess,
    free_port,
    mqtt_publish,
    publish_established,
)

__all__ = [
    "RULES",
    "RULES_TEST",
    "Exposition",
    "exposed_names",
    "promtool",
    "start_busy_relay",
]

RULES = ROOT / "deploy" / "prometheus" / "pingpong-relay.rules.yml"
RULES_TEST = RULES.with_name("pingpong-relay.rules.test.yml")
PUSH_TOKEN = "metrics-token-0123456789"
WAIT_S = 20.0
SHARED_BROKER = f"mqtt://127.0.0.1:{SHARED_BROKER_PORT}"  # the machine's Mosquitto


def promtool(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Runs Debian's promtool (`make pytest` installs the prometheus package)."""
    path = shutil.which("promtool")
    assert path is not None, "promtool is missing: install Debian's prometheus (make pytest does)"
    return subprocess.run(
        [path, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def exposed_names(text: str) -> set[str]:
    """Every sample name the exposition `text` declares (from its # TYPE lines): a counter's
    with _total, a histogram's _bucket/_sum/_count, whether or not it has samples yet."""
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        names.add(name)
        if kind == "histogram":
            names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
    return names


@dataclass
class Exposition:
    """A relay's /metrics text, and what it was made of."""

    relay: RelayProcess
    text: str


def _beat(n: int) -> bytes:
    return orjson.dumps(
        {"type": "ping", "latency": 5 + n, "timestamp": int(time.time() * 1000), "source": "bot"}
    )


async def _until_every_way_in_arrived(client: Collector) -> None:
    """Until the client has heard a heartbeat from Redis, a push, MQTT and the poller."""
    wanted = {None, "push", "mqtt", "poll"}
    count = 1
    while True:
        messages = await client.wait_count(count, timeout=WAIT_S)
        heard = {m["data"].get("via") for m in messages if m.get("type") == "bot:pingpong"}
        if wanted <= heard:
            return
        count = len(messages) + 1


async def start_busy_relay(
    redis: RedisServer, start_relay: RelayFactory, freqtrade: FakeFreqtrade
) -> Exposition:
    """A relay with push tokens, MQTT, a poller, --notify and a webhook configured (so every
    optional family exists), after heartbeats by every way in, a rejected message and a
    WebSocket client; its /metrics then."""
    topic = unique("metrics")
    relay = await start_relay(
        redis.url,
        "--push-token", f"{PUSH_TOKEN}=cron-1",
        "--mqtt-url", SHARED_BROKER,
        "--mqtt-topic", f"{topic}/+",
        "--poll", f"ft1={freqtrade.url} mode=freqtrade interval=0.5s timeout=0.5s stale=1m "
        f"user={freqtrade.user} password={freqtrade.password}",
        "--notify", f"json://127.0.0.1:{free_port()}/notify",
        "--webhook-url", f"http://127.0.0.1:{free_port()}/hook",
    )  # fmt: skip
    await relay.wait_for("mqtt_subscribed", timeout=WAIT_S)
    client = Collector()
    await client.connect(relay.ws_url)
    try:
        await publish_established(redis, _beat)
        await redis.publish(b"not json")
        async with aiohttp.ClientSession() as session:
            push = f"{relay.http_url}/api/push/{PUSH_TOKEN}?status=up&ping=3"
            async with session.get(push) as response:
                assert response.status == 200
        design = {"type": "pong", "latency": 4.5, "timestamp": int(time.time() * 1000)}
        await mqtt_publish(SHARED_BROKER_PORT, f"{topic}/mqtt-1", orjson.dumps(design))
        await asyncio.wait_for(_until_every_way_in_arrived(client), WAIT_S)
        assert await relay.metric('pingpong_messages_rejected_total{reason="invalid_json"}') == 1
        status, body = await relay.get("/metrics")
        assert status == 200
    finally:
        await client.close()
    return Exposition(relay, body.decode())
