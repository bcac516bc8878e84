"""What a real relay sends matches the AsyncAPI document it serves, message by message."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson

from pingpong_relay.asyncapi import asyncapi
from tests.support import Collector, RedisServer, RelayFactory, publish_established

SECRET = "s" * 40


def _by_type(document: dict[str, Any]) -> dict[str, jsonschema.Draft7Validator]:
    """Each message's schema, keyed by the `type` its payload declares."""
    validators: dict[str, jsonschema.Draft7Validator] = {}
    for name, schema in document["components"]["schemas"].items():
        const = schema.get("properties", {}).get("type", {}).get("const")
        if const is not None and name != "TaggedEnvelope":
            validators[const] = jsonschema.Draft7Validator(schema)
    validators["tagged"] = jsonschema.Draft7Validator(
        document["components"]["schemas"]["TaggedEnvelope"]
    )
    return validators


async def test_the_served_document_is_the_protocol_module_and_needs_no_token(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--auth", "jwt", "--jwt-secret", SECRET)
    status, body = await relay.get("/asyncapi.json")
    assert status == 200
    assert orjson.loads(body) == orjson.loads(orjson.dumps(asyncapi()))
    status, _ = await relay.get("/bots")
    assert status == 401  # the data endpoints still need one


# Silence noticed within a second, stats often, and a history so short a replay has a gap.
FAST_AND_SHORT = (
    *("--silence-timeout", "0.5", "--silence-for", "0", "--evaluation-interval", "0.1"),
    *("--stats-interval", "0.2", "--history-max-entries", "2", "--log-level", "DEBUG"),
)


async def test_every_kind_of_message_a_relay_sends_matches_its_schema(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, *FAST_AND_SHORT)
    _, body = await relay.get("/asyncapi.json")
    validators = _by_type(orjson.loads(body))

    watcher = Collector()
    await watcher.connect(relay.ws_url + "?events=pingpong,status,alerts,stats,relay")

    def beat(n: int) -> bytes:
        kind = "ping" if n % 2 else "pong"
        return orjson.dumps({"type": kind, "latency": n, "timestamp": n, "source": "a"})

    # Established (heard over a second), so that its silence alert fires below.
    await publish_established(redis_server, beat)
    await redis_server.publish(beat(3))
    await relay.wait_for("history_recorded", count=4)
    # History keeps 2 of 4 entries: a replay from the start begins with a trimmed gap.
    replaying = Collector()
    await replaying.connect(relay.ws_url + "?since=0")
    assert [m["type"] for m in await replaying.wait_count(3)] == [
        "bot:gap",
        "bot:pingpong",
        "bot:pingpong",
    ]
    assert replaying.ws is not None
    for command in (
        {"action": "subscribe", "types": ["ping"], "id": 7},
        {"action": "list", "id": "x"},
        {"action": "dance"},
    ):
        await replaying.ws.send_bytes(orjson.dumps(command))  # binary: an error reply
        await replaying.ws.send_str(orjson.dumps(command).decode())

    seen: dict[str, int] = {}

    def check(message: dict[str, Any], key: str | None = None) -> None:
        key = key or message["type"]
        validators[key].validate(message)
        seen[key] = seen.get(key, 0) + 1

    # The bot goes silent (down, with its alert firing); then Redis dies and comes back.
    await relay.wait_for(lambda r: r.get("event") == "alert" and r.get("state") == "firing")
    redis_server.kill()
    await relay.wait_for("redis_outage_start")
    await redis_server.start()
    await relay.wait_for("redis_outage_end")

    wanted = {
        "bot:pingpong",
        "bot:status",
        "bot:alert",
        "bot:stats",
        "relay:state",
        "relay:deaf",
    }
    index = 0
    while not wanted <= seen.keys() or seen.get("relay:deaf", 0) < 2:
        check((await watcher.wait_count(index + 1))[index])
        index += 1
    replayed = await replaying.wait_count(3 + 6)  # then six replies
    for message in replayed:
        check(message, "tagged" if message["type"] == "bot:pingpong" else None)
    assert {"bot:gap", "tagged", "ack", "subscriptions", "error"} <= seen.keys()
    for client in (watcher, replaying):
        await client.close()
