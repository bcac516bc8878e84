"""`--redis-url embedded` (issue 14, point 2): the relay starts its own redis-server even
when a Redis answers on 127.0.0.1:6379, and relays from that one only."""

from __future__ import annotations

import asyncio
import sys
import uuid

import orjson
import pytest

from pingpong_relay.redis_io.embedded import redis_answers
from tests.support import Collector, RelayFactory, publish

SHARED_REDIS = "redis://127.0.0.1:6379/0"


def _beat(source: str) -> bytes:
    return orjson.dumps({"type": "ping", "latency": 1, "timestamp": 2, "source": source})


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("given_as", ["flag", "env"])
async def test_redis_url_embedded_starts_its_own_redis_even_when_6379_answers(
    start_relay: RelayFactory, workers: str, given_as: str
) -> None:
    if not await redis_answers("127.0.0.1", 6379):
        pytest.skip("needs a Redis on 127.0.0.1:6379, the one the relay would otherwise use")
    # A channel of its own: no other relay on the shared Redis listens to it.
    channel = f"test-embedded-{uuid.uuid4().hex}"
    flags = ("--redis-url", "embedded") if given_as == "flag" else ()
    env = {"PINGPONG_REDIS_URL": "embedded"} if given_as == "env" else None
    relay = await start_relay(None, *flags, "--channel", channel, "--workers", workers, env=env)
    await relay.wait_for("redis_subscribed", count=int(workers))

    started = relay.events("embedded_redis_started")
    assert len(started) == 1  # one for the whole relay, its workers included
    embedded_url = started[0]["redis_url"]
    assert embedded_url != SHARED_REDIS
    listening = relay.events("listening")
    assert {record["redis_url"] for record in listening} == {embedded_url}

    client = Collector()
    await client.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    assert await publish(SHARED_REDIS, _beat("shared"), channel) == 0
    assert await publish(embedded_url, _beat("embedded"), channel) == int(workers)
    [message] = await client.wait_count(1)
    assert message["data"]["source"] == "embedded"
    await client.close()


@pytest.mark.parametrize("command", [["publish", "ping", "--latency", "1"], ["simulate"]])
async def test_only_serve_takes_embedded(command: list[str]) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pingpong_relay", *command, "--redis-url", "embedded",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    [error, _] = err.decode().splitlines()
    assert error.startswith(
        f"pingpong-relay {command[0]}: error: --redis-url: 'embedded' is for serve, which "
        "starts the embedded Redis; give the URL it logged"
    )
