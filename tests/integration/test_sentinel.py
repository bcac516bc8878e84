"""Redis Sentinel: the relay follows a failover to the new master and resubscribes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
import pytest
import redis.asyncio as aioredis

from tests.support import Collector, RedisServer, RelayFactory, SentinelServer, publish


@dataclass
class Replicated:
    master: RedisServer
    replica: RedisServer
    sentinel: SentinelServer

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel.port}/{self.sentinel.service}"

    async def current_master_port(self) -> int:
        client = aioredis.Redis(host="127.0.0.1", port=self.sentinel.port)
        try:
            _, port = await client.execute_command(  # type: ignore[no-untyped-call, unused-ignore]  # untyped before redis 8
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.sentinel.service
            )
            return int(port)
        finally:
            await client.aclose()


@pytest.fixture
async def replicated() -> AsyncIterator[Replicated]:
    master = RedisServer()
    await master.start()
    replica = RedisServer("--replicaof", "127.0.0.1", str(master.port))
    await replica.start()
    sentinel = SentinelServer(master.port)
    await sentinel.start()
    # A failover needs a replica the Sentinel knows of, in sync with its master.
    await asyncio.wait_for(_ready(sentinel, replica), 30)
    try:
        yield Replicated(master, replica, sentinel)
    finally:
        sentinel.stop()
        replica.stop()
        master.stop()


async def _ready(sentinel: SentinelServer, replica: RedisServer) -> None:
    watcher = aioredis.Redis(host="127.0.0.1", port=sentinel.port)
    replica_client = aioredis.Redis(host="127.0.0.1", port=replica.port)
    try:
        while True:
            known = await watcher.execute_command(  # type: ignore[no-untyped-call, unused-ignore]
                "SENTINEL", "REPLICAS", sentinel.service
            )
            info = await replica_client.info("replication")
            if known and info.get("master_link_status") == "up":
                return
            await asyncio.sleep(0.1)  # polling Redis's own state: there is no event to await
    finally:
        await watcher.aclose()
        await replica_client.aclose()


def _beat(n: int) -> bytes:
    return orjson.dumps({"type": "ping", "latency": n, "timestamp": n, "source": "bot"})


async def test_the_relay_follows_a_failover_and_resubscribes(
    replicated: Replicated, start_relay: RelayFactory
) -> None:
    relay = await start_relay(replicated.url, "--redis-health-interval", "0.5")
    client = Collector()
    await client.connect(relay.ws_url)
    assert await replicated.master.publish(_beat(1)) == 1
    await client.wait_count(1)

    # The Sentinel announces the failover on its own Pub/Sub channel: wait for that.
    watcher = aioredis.Redis(host="127.0.0.1", port=replicated.sentinel.port)
    switches = watcher.pubsub()
    await switches.subscribe("+switch-master")
    replicated.master.kill()  # the master dies; the Sentinel promotes the replica
    await relay.wait_for("redis_outage_start")

    async def switched() -> list[str]:
        while True:
            message = await switches.get_message(ignore_subscribe_messages=True, timeout=30)
            if message is not None:
                return str(message["data"].decode()).split()

    try:
        switch = await asyncio.wait_for(switched(), 30)
    finally:
        await switches.aclose()
        await watcher.aclose()
    assert switch[-1] == str(
        replicated.replica.port
    )  # <name> <old ip> <old port> <new ip> <new port>
    assert await replicated.current_master_port() == replicated.replica.port
    await relay.wait_for("redis_outage_end", timeout=30)
    # Subscribed on the new master: what is published there reaches the client.
    replica_url = f"redis://127.0.0.1:{replicated.replica.port}/0"
    assert await publish(replica_url, _beat(2)) == 1
    messages = await client.wait_count(2)
    assert [m["data"]["latency"] for m in messages] == [1, 2]
    status, _ = await relay.get("/healthz")
    assert status == 200
    await client.close()
