"""Several relays on one Redis: one sends each alert webhook, and another takes over."""

from __future__ import annotations

import asyncio
import os
import signal

import orjson
import redis.asyncio as aioredis

from pingpong_relay.redis_io.lease import SENT_KEY
from tests.support import (
    RedisServer,
    RelayFactory,
    RelayProcess,
    WebhookReceiver,
    publish_established,
)

BOT = "bot:pingpong/bot"
FLAGS = (
    "--silence-timeout",
    "0.5",
    "--silence-for",
    "0",
    "--evaluation-interval",
    "0.1",
    "--webhook-lease",
    "1",
)


def _beat(n: int = 0) -> bytes:
    return orjson.dumps({"type": "ping", "latency": 5, "timestamp": n + 1, "source": "bot"})


def _sent(webhook: WebhookReceiver, state: str) -> int:
    return sum(1 for a in webhook.alerts if (a["rule"], a["state"]) == ("silence", state))


async def _acquirer(relays: list[RelayProcess]) -> RelayProcess:
    """The relay whose log first says it acquired the lease."""
    waits = [
        asyncio.create_task(r.wait_for(lambda e: e.get("event") == "lease_acquired", timeout=15))
        for r in relays
    ]
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    return relays[waits.index(done.pop())]


async def _noted(redis_server: RedisServer, state: str) -> None:
    """Until the lease holder's note of the last transition sent says `state`."""
    client = aioredis.from_url(redis_server.url)
    try:
        while True:
            noted = await client.hget(SENT_KEY, f"silence|{BOT}")
            if noted is not None and orjson.loads(noted)["state"] == state:
                return
            await asyncio.sleep(0.05)  # Redis's state, polled: bounded by the caller
    finally:
        await client.aclose()


async def test_one_relay_sends_each_transition_and_a_survivor_takes_over(
    redis_server: RedisServer, start_relay: RelayFactory, webhook: WebhookReceiver
) -> None:
    args = ("--webhook-url", webhook.url, *FLAGS)
    relays = [await start_relay(redis_server.url, *args) for _ in range(3)]
    holder = await _acquirer(relays)
    assert sum(1 for r in relays if r.events("lease_acquired")) == 1

    # Silent, firing, back, resolved: every relay sees each transition; one sends it.
    await publish_established(redis_server, _beat)
    await webhook.wait_for("silence", BOT, "firing")
    for relay in relays:
        await relay.wait_for(lambda r: r.get("event") == "alert" and r["state"] == "firing")
    await redis_server.publish(_beat())
    await webhook.wait_for("silence", BOT, "resolved")
    for relay in relays:
        await relay.wait_for(lambda r: r.get("event") == "alert" and r["state"] == "resolved")
    assert (_sent(webhook, "firing"), _sent(webhook, "resolved")) == (1, 1)
    # Sending is at least once: a holder killed between sending a transition and noting
    # it in Redis would have it sent again. Kill it once it has noted what it sent.
    await asyncio.wait_for(_noted(redis_server, "resolved"), 10)

    # The holder dies without a word; the bot goes silent again meanwhile.
    assert holder.process is not None
    os.kill(holder.process.pid, signal.SIGKILL)
    survivors = [r for r in relays if r is not holder]
    for relay in survivors:
        await relay.wait_for(
            lambda r: r.get("event") == "alert" and r["state"] == "firing", count=2
        )
    # Within the lease's TTL a survivor takes over and sends the transition nobody sent.
    await _acquirer(survivors)
    await webhook.wait_for("silence", BOT, "firing", count=2)
    assert sum(1 for r in survivors if r.events("lease_acquired")) == 1
    await redis_server.publish(_beat())
    await webhook.wait_for("silence", BOT, "resolved", count=2)
    for relay in survivors:
        await relay.wait_for(
            lambda r: r.get("event") == "alert" and r["state"] == "resolved", count=2
        )
    assert (_sent(webhook, "firing"), _sent(webhook, "resolved")) == (2, 2)


async def test_a_relay_that_stops_cleanly_hands_the_lease_over_at_once(
    redis_server: RedisServer, start_relay: RelayFactory, webhook: WebhookReceiver
) -> None:
    args = ("--webhook-url", webhook.url, *FLAGS[:-1], "30")  # a TTL no test would wait out
    relays = [await start_relay(redis_server.url, *args) for _ in range(2)]
    holder = await _acquirer(relays)
    other = relays[1] if holder is relays[0] else relays[0]
    await holder.stop()
    await other.wait_for(lambda r: r.get("event") == "lease_acquired", timeout=10)
