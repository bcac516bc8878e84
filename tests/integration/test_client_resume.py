"""The Python client across outages (issue 18, item 6): resume from history with nothing
missed or repeated, the relay's gap when history does not reach back, dead connections
noticed, refusals raised once, and a refusal's Retry-After waited for."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest

from pingpong_relay.auth import mint
from pingpong_relay.backoff import Backoff
from pingpong_relay.client import ClosedByRelay, Disconnected, HandshakeRefused, envelopes
from pingpong_relay.subscriptions import position_key
from tests.support import Collector, RedisServer, RelayFactory, RelayProcess, TcpProxy

QUICK = Backoff(base_s=0.05, cap_s=0.2, jitter="full")
SECRET = "resume-test-secret-" + "r" * 40
BOT = "bot:pingpong/bot"


def beat(n: int) -> bytes:
    return orjson.dumps({"type": "ping", "latency": n, "timestamp": n, "source": "bot"})


class Consumer:
    """`envelopes()` running in a task: what it yielded, its disconnects, how it ended."""

    def __init__(self, url: str, **options: Any) -> None:
        self.received: list[dict[str, Any]] = []
        self.disconnects: list[Disconnected] = []
        self.disconnected_at_s: list[float] = []  # time.monotonic() of each disconnect
        self._changed = asyncio.Event()  # set on anything new, and when the task ends
        options.setdefault("backoff", QUICK)
        self._task = asyncio.create_task(self._run(url, options))
        self._task.add_done_callback(lambda _: self._changed.set())

    async def _run(self, url: str, options: dict[str, Any]) -> None:
        async for envelope in envelopes(url, on_disconnect=self._disconnected, **options):
            self.received.append(envelope)
            self._changed.set()

    def _disconnected(self, event: Disconnected) -> None:
        self.disconnects.append(event)
        self.disconnected_at_s.append(time.monotonic())
        self._changed.set()

    @property
    def latencies(self) -> list[int]:
        return [e["data"]["latency"] for e in self.received if e["type"] == "bot:pingpong"]

    async def wait(self, done: Callable[[], bool], timeout: float = 30.0) -> None:
        async def until() -> None:
            while not (done() or self._task.done()):
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout)
        if not done():
            await self._task  # ended early: its exception says why
            raise AssertionError(f"the client ended after {self.latencies}")

    async def ended(self, timeout: float = 30.0) -> None:
        await asyncio.wait_for(asyncio.shield(self._task), timeout)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task


@pytest.fixture
async def consumers() -> AsyncIterator[list[Consumer]]:
    started: list[Consumer] = []
    yield started
    for consumer in started:
        await consumer.stop()


def handled(record: dict[str, object]) -> bool:
    return record.get("event") in ("history_recorded", "history_duplicate")


async def test_a_restarted_relay_misses_nothing_and_repeats_nothing(
    redis_server: RedisServer, start_relay: RelayFactory, consumers: list[Consumer]
) -> None:
    first = await start_relay(redis_server.url, "--log-level", "DEBUG")
    second = await start_relay(redis_server.url, "--log-level", "DEBUG")  # records meanwhile
    client = Consumer(first.ws_url)
    consumers.append(client)
    await first.wait_for("client_connected")
    total, published = 150, 0

    async def publish_until(count: int) -> None:
        nonlocal published
        while published < count:
            await redis_server.publish(beat(published))
            published += 1
            await asyncio.sleep(0.005)  # a steady trickle, as a bot's heartbeats are

    await publish_until(30)
    await client.wait(lambda: len(client.latencies) >= 20)
    stopping = asyncio.create_task(first.stop())
    await publish_until(60)  # some while the relay shuts down...
    await stopping
    await publish_until(100)  # ...and more while it is down: only the other relay hears them
    await second.wait_for(handled, count=100)
    again = await start_relay(redis_server.url, "--log-level", "DEBUG", port=first.port)
    await publish_until(total)  # while the client reconnects and replays
    await client.wait(lambda: len(client.latencies) >= total)
    await second.wait_for(handled, count=total)

    assert client.latencies == list(range(total))
    ids = [e["id"] for e in client.received]
    assert len(set(ids)) == total
    assert ids == sorted(ids, key=position_key)
    assert {e["bot"] for e in client.received} == {BOT}
    assert [e["type"] for e in client.received] == ["bot:pingpong"] * total  # no gap
    lost = client.disconnects[0]
    assert (lost.connected, lost.reason) == (True, "closed by relay (1001)")
    assert lost.retry_in_s is not None
    assert 0 <= lost.retry_in_s <= QUICK.cap_s
    assert len(again.events("client_connected")) == 1
    assert not any(d.connected for d in client.disconnects[1:])


async def test_a_gap_is_yielded_when_history_does_not_reach_back(
    redis_server: RedisServer, start_relay: RelayFactory, consumers: list[Consumer]
) -> None:
    flags = ("--log-level", "DEBUG", "--history-max-entries", "10")
    first = await start_relay(redis_server.url, *flags)
    second = await start_relay(redis_server.url, *flags)
    client = Consumer(first.ws_url)
    consumers.append(client)
    await first.wait_for("client_connected")
    for n in range(5):
        await redis_server.publish(beat(n))
    await client.wait(lambda: len(client.latencies) == 5)
    await first.stop()
    for n in range(5, 35):  # 30 while it is down, and only 10 are kept
        await redis_server.publish(beat(n))
    await second.wait_for(handled, count=35)
    await start_relay(redis_server.url, *flags, port=first.port)
    await client.wait(lambda: len(client.latencies) == 15)
    await redis_server.publish(beat(35))
    await client.wait(lambda: len(client.latencies) == 16)

    types = [e["type"] for e in client.received]
    assert types == ["bot:pingpong"] * 5 + ["bot:gap"] + ["bot:pingpong"] * 11
    gap = client.received[5]
    assert (gap["bot"], gap["reason"]) == (BOT, "trimmed")
    assert position_key(gap["to"]) == position_key(client.received[6]["id"])
    assert position_key(gap["from"]) <= position_key(client.received[4]["id"])
    assert client.latencies == [0, 1, 2, 3, 4, *range(25, 36)]


async def test_a_dead_connection_is_noticed_and_replaced(
    redis_server: RedisServer, relay: RelayProcess, consumers: list[Consumer]
) -> None:
    proxy = TcpProxy(relay.port)
    await proxy.start()
    try:
        client = Consumer(f"ws://127.0.0.1:{proxy.port}/", heartbeat_s=0.4)
        consumers.append(client)
        await relay.wait_for("client_connected")
        await redis_server.publish(beat(0))
        await client.wait(lambda: client.latencies == [0])
        proxy.freeze()  # silence, no FIN: only the unanswered ping tells
        await client.wait(lambda: bool(client.disconnects))
        proxy.thaw()
        await relay.wait_for("client_connected", count=2)
        await redis_server.publish(beat(1))
        await client.wait(lambda: client.latencies == [0, 1])
    finally:
        proxy.close()
    lost = client.disconnects[0]
    assert lost.connected
    assert lost.reason == "no answer to a ping"
    assert proxy.connections >= 2


async def test_an_idle_timeout_replaces_a_quiet_connection(
    relay: RelayProcess, consumers: list[Consumer]
) -> None:
    client = Consumer(relay.ws_url, heartbeat_s=None, idle_timeout_s=0.3)
    consumers.append(client)
    await client.wait(lambda: len(client.disconnects) >= 2)
    assert [d.reason for d in client.disconnects[:2]] == ["nothing received for 0.3 s"] * 2
    assert all(d.connected for d in client.disconnects[:2])
    assert len(relay.events("client_connected")) >= 2


@pytest.fixture
async def guarded(redis_server: RedisServer, start_relay: RelayFactory) -> RelayProcess:
    return await start_relay(redis_server.url, "--auth", "jwt", env={"PINGPONG_JWT_SECRET": SECRET})


async def test_a_refused_token_is_raised_once_and_not_retried(
    guarded: RelayProcess, consumers: list[Consumer]
) -> None:
    client = Consumer(guarded.ws_url, token="not-a-jwt")
    consumers.append(client)
    with pytest.raises(HandshakeRefused) as refused:
        await client.ended()
    assert (refused.value.status, refused.value.error) == (401, "unauthorized")
    assert not refused.value.retryable
    assert client.disconnects == []  # no retry was scheduled
    await guarded.wait_for("auth_refused")
    assert len(guarded.events("auth_refused")) == 1


async def test_a_token_expiring_mid_connection_is_raised_not_retried(
    redis_server: RedisServer, guarded: RelayProcess, consumers: list[Consumer]
) -> None:
    token = mint(SECRET, "watcher", now_s=time.time(), ttl_s=3)
    client = Consumer(guarded.ws_url, token=token)
    consumers.append(client)
    await guarded.wait_for("client_connected")
    await redis_server.publish(beat(0))
    await client.wait(lambda: client.latencies == [0])
    with pytest.raises(ClosedByRelay) as closed:
        await client.ended()
    assert closed.value.code == 4003
    assert str(closed.value) == "4003 token expired"
    assert client.disconnects == []
    assert len(guarded.events("client_connected")) == 1
    assert guarded.events("auth_refused") == []


@pytest.fixture
async def holder() -> AsyncIterator[Collector]:
    """A client that takes the relay's one place (or its one connection token)."""
    client = Collector()
    yield client
    await client.close()


async def test_a_full_relays_retry_after_sets_the_next_try(
    redis_server: RedisServer,
    start_relay: RelayFactory,
    holder: Collector,
    consumers: list[Consumer],
) -> None:
    relay = await start_relay(redis_server.url, "--max-connections", "1")
    await holder.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    client = Consumer(relay.ws_url)  # QUICK: its own delay would be at most 0.05 s
    consumers.append(client)
    await client.wait(lambda: bool(client.disconnects))
    refused = client.disconnects[0]
    assert not refused.connected
    assert refused.reason.startswith("503 capacity"), refused.reason
    assert refused.retry_in_s == 5.0  # the relay's Retry-After: 5, not QUICK's delay
    await relay.wait_for("capacity_refused")


async def test_a_rate_limited_client_waits_out_retry_after_then_connects(
    redis_server: RedisServer,
    start_relay: RelayFactory,
    holder: Collector,
    consumers: list[Consumer],
) -> None:
    # One new connection per 2 s from an address, in bursts of 1: the holder takes it.
    relay = await start_relay(redis_server.url, "--connection-rate-per-ip", "0.5")
    await holder.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    client = Consumer(relay.ws_url)
    consumers.append(client)
    await relay.wait_for("client_connected", count=2)  # the token came back: it got in
    # Each 429 said Retry-After: 1. QUICK alone (at most 0.2 s) would have been refused
    # ten times or more in the 2 s the token takes.
    assert 1 <= len(client.disconnects) <= 2, client.disconnects
    for refused in client.disconnects:
        assert not refused.connected
        assert refused.reason.startswith("429 too_many_connections"), refused.reason
        assert refused.retry_in_s == 1.0
    gaps = [b - a for a, b in itertools.pairwise(client.disconnected_at_s)]
    assert all(gap >= 1.0 for gap in gaps), gaps
    assert len(relay.events("per_ip_rate_refused")) == len(client.disconnects)
