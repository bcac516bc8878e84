"""The design's contract end to end: redis PUBLISH → the exact four-key envelope."""

from __future__ import annotations

import time

import orjson

from tests.support import DESIGN_PING, Collector, RedisServer, RelayProcess


async def test_client_receives_the_design_envelope(
    redis_server: RedisServer, relay: RelayProcess
) -> None:
    client = Collector()
    await client.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    before_ms = time.time() * 1000
    assert await redis_server.publish(DESIGN_PING) == 1
    [envelope] = await client.wait_count(1)
    after_ms = time.time() * 1000
    assert list(envelope) == ["type", "data", "timestamp", "source"]
    assert envelope["type"] == "bot:pingpong"
    assert envelope["source"] == "bot"
    assert envelope["data"] == orjson.loads(DESIGN_PING)
    assert isinstance(envelope["timestamp"], int)
    assert before_ms - 1 <= envelope["timestamp"] <= after_ms + 1
    await client.close()
