"""`serve --workers N`: shared ports, one subscription each, merged metrics, restarts, signals."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import orjson
import psutil
import redis.asyncio as aioredis

from tests.support import (
    Collector,
    RedisServer,
    RelayFactory,
    RelayProcess,
    free_port,
    publish_established,
)


async def _start(start_relay: RelayFactory, redis_url: str, *args: str) -> RelayProcess:
    relay = await start_relay(redis_url, "--workers", "2", *args)
    await relay.wait_for("redis_subscribed", count=2)
    return relay


async def _health(relay: RelayProcess) -> tuple[int, dict[str, Any]]:
    status, body = await relay.get("/healthz?detail=1")
    return status, orjson.loads(body)


def _beat(n: int) -> bytes:
    return orjson.dumps({"type": "ping", "latency": n, "timestamp": n, "source": "bot"})


async def test_two_workers_share_the_ports_and_count_like_one_relay(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await _start(start_relay, redis_server.url)
    clients = [Collector() for _ in range(20)]
    for client in clients:
        await client.connect(relay.ws_url)
    await relay.wait_for("client_connected", count=20)
    status, health = await _health(relay)
    assert status == 200
    assert health["clients"] == 20
    per_worker = [w["clients"] for w in health["workers"]]
    assert sum(per_worker) == 20
    assert len({w["pid"] for w in health["workers"]}) == 2
    # SO_REUSEPORT spreads connections by a hash of their addresses: with 20 of them,
    # both workers get some (all on one would happen about once in half a million runs).
    assert all(count > 0 for count in per_worker)
    status, body = await relay.get("/healthz")  # anyone's view of the merged health
    assert (status, orjson.loads(body)) == (200, {"status": "ok", "redis": "subscribed"})

    redis = aioredis.from_url(redis_server.url)
    try:
        assert (await redis.pubsub_numsub("bot:pingpong"))[0][1] == 2  # one per worker
    finally:
        await redis.aclose()
    # The first three over a second: the bot is established, so it has metric series.
    await publish_established(redis_server, _beat)
    for n in range(3, 10):
        await redis_server.publish(_beat(n))
    for client in clients:
        messages = await client.wait_count(10)
        assert [m["data"]["latency"] for m in messages] == list(range(10))

    # Every worker received each message; the relay as a whole received it once.
    assert await relay.metric("pingpong_messages_received_total") == 10
    assert await relay.metric("pingpong_deliveries_total") == 200
    assert await relay.metric("pingpong_connections_total") == 20
    assert await relay.metric("pingpong_clients_connected") == 20
    assert await relay.metric("pingpong_redis_subscribed") == 1
    assert await relay.metric('pingpong_bot_up{bot="bot:pingpong/bot"}') == 1
    for client in clients:
        await client.close()


async def test_a_crashed_worker_is_restarted_and_the_other_keeps_serving(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await _start(start_relay, redis_server.url)
    _, health = await _health(relay)
    victim = health["workers"][0]["pid"]
    survivor_pid = health["workers"][1]["pid"]
    clients = [Collector() for _ in range(20)]
    for client in clients:
        await client.connect(relay.ws_url)
    await relay.wait_for("client_connected", count=20)
    _, health = await _health(relay)
    on_survivor = health["workers"][1]["clients"]

    os.kill(victim, signal.SIGKILL)
    exited = await relay.wait_for("worker_exited")
    assert exited["pid"] == victim
    assert exited["exit_code"] == -signal.SIGKILL
    await relay.wait_for("worker_restarting")
    await relay.wait_for("worker_started", count=3)
    await relay.wait_for("redis_subscribed", count=3)

    # The survivor's clients never noticed; the crashed worker's were cut off.
    await redis_server.publish(_beat(1))
    alive = [c for c in clients if not c.closed.is_set()]
    for client in alive:
        await client.wait_count(1)
    assert len(alive) == on_survivor

    async def healthy_again() -> dict[str, Any]:
        while True:
            status, body = await _health(relay)
            if status == 200:
                return body
            await relay.wait_for("redis_subscribed", count=3)  # an event, then look again

    health = await asyncio.wait_for(healthy_again(), 20)
    pids = {w["pid"] for w in health["workers"]}
    assert survivor_pid in pids
    assert victim not in pids
    for client in clients:
        await client.close()


async def test_sigterm_stops_every_worker_cleanly(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await _start(start_relay, redis_server.url)
    assert relay.process is not None
    children = psutil.Process(relay.process.pid).children(recursive=True)
    workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
    assert len(workers) == 2
    clients = [Collector() for _ in range(6)]
    for client in clients:
        await client.connect(relay.ws_url)
    await relay.wait_for("client_connected", count=6)
    relay.signal(signal.SIGTERM)
    assert await relay.wait_exit() == 0
    for client in clients:
        await asyncio.wait_for(client.closed.wait(), 10)
        assert client.close_code == 1001
    assert relay.events("workers_stopped")
    # Nothing it started outlives it: the workers, nor multiprocessing's helper process.
    _, alive = await asyncio.to_thread(psutil.wait_procs, children, 10)
    assert alive == []


async def test_a_worker_that_cannot_start_stops_the_relay(
    redis_server: RedisServer,
) -> None:
    # The HTTP port is taken by a plain listener (without SO_REUSEPORT): no worker binds.
    taken = free_port()
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", taken)
    relay = RelayProcess(redis_server.url, "--workers", "2", http_port=taken)
    try:
        assert relay.process is None
        await relay.start_process()
        assert await relay.wait_exit(30) == 1
        assert relay.events("worker_start_failed")
    finally:
        blocker.close()
        await relay.stop()
