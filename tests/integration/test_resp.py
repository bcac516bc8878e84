"""The lean Redis connection the history appends through (redis_io.resp), against real
redis-servers: replies in order, errors, authentication, databases, a Unix socket, TLS, a
server that dies with calls in flight; and the relay's history across a flushed script cache."""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from pingpong_relay.redis_io.appender import Appender
from pingpong_relay.redis_io.resp import RespConnection, lean_url
from pingpong_relay.telemetry.metrics import RelayMetrics
from tests.support import RedisServer, RelayFactory, tls_in_front

TIMEOUT_S = 5.0


def test_which_urls_it_serves() -> None:
    assert lean_url("redis://127.0.0.1:6379/0")
    assert lean_url("rediss://user:pw@redis.example:6380/2")
    assert lean_url("unix:///run/redis.sock?db=1")
    assert not lean_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7000")
    assert not lean_url("redis+sentinel://10.0.0.1:26379/mymaster/0")


async def test_replies_come_back_to_their_calls_in_order(redis_server: RedisServer) -> None:
    connection = await RespConnection.open(redis_server.url, TIMEOUT_S)
    try:
        # Written back to back before any reply is read: matched in order all the same.
        futures = [connection.call("ECHO", f"reply-{n}") for n in range(500)]
        assert [await f for f in futures] == [f"reply-{n}".encode() for n in range(500)]
        assert await connection.call("SET", "resp:k", "v") == b"OK"
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await connection.call("LPUSH", "resp:k", "x")
        assert await connection.call("GET", "resp:k") == b"v", "an error costs only its call"
        script = await connection.call("SCRIPT", "LOAD", "return {1, ARGV[1]}")
        assert await connection.call("EVALSHA", script, 0, "id-1") == [1, b"id-1"]
        with pytest.raises(ResponseError, match="NOSCRIPT"):
            await connection.call("EVALSHA", "0" * 40, 0)
    finally:
        connection.close()
    assert connection.closed
    with pytest.raises(RedisConnectionError):
        await connection.call("PING")


async def test_password_user_and_database() -> None:
    server = RedisServer(
        "--requirepass", "s3cret", "--user", "relay", "on", ">relaypw", "~*", "+@all"
    )  # fmt: skip
    await server.start()
    try:
        base = f"127.0.0.1:{server.port}"
        connection = await RespConnection.open(f"redis://:s3cret@{base}/3", TIMEOUT_S)
        assert await connection.call("SET", "resp:db", "three") == b"OK"
        connection.close()
        named = await RespConnection.open(f"redis://relay:relaypw@{base}/3", TIMEOUT_S)
        assert await named.call("GET", "resp:db") == b"three"
        assert await named.call("ACL", "WHOAMI") == b"relay"
        named.close()
        default_db = await RespConnection.open(f"redis://relay:relaypw@{base}/0", TIMEOUT_S)
        assert await default_db.call("GET", "resp:db") is None, "another database"
        default_db.close()
        for wrong in (f"redis://:nope@{base}/0", f"redis://relay:nope@{base}/0"):
            with pytest.raises(ResponseError, match=r"WRONGPASS|invalid password"):
                await RespConnection.open(wrong, TIMEOUT_S)
    finally:
        server.stop()


async def test_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "redis.sock"
    server = RedisServer("--unixsocket", str(path), "--unixsocketperm", "700")
    await server.start()
    try:
        connection = await RespConnection.open(f"unix://{path}?db=2", TIMEOUT_S)
        assert await connection.call("PING") == b"PONG"
        assert await connection.call("CLIENT", "INFO") is not None
        connection.close()
    finally:
        server.stop()


async def test_tls_with_the_urls_ca(redis_server: RedisServer, tmp_path: Path) -> None:
    async with tls_in_front(redis_server, tmp_path) as (proxy, url):
        connection = await RespConnection.open(url, TIMEOUT_S)
        assert await connection.call("PING") == b"PONG"
        connection.close()
        # Without the CA the server's certificate is not trusted: no connection.
        with pytest.raises(ssl.SSLCertVerificationError):
            await RespConnection.open(f"rediss://localhost:{proxy.port}/0", TIMEOUT_S)


async def test_a_server_that_dies_fails_the_calls_in_flight() -> None:
    server = RedisServer()
    await server.start()
    connection = await RespConnection.open(server.url, TIMEOUT_S)
    try:
        blocked = connection.call("BLPOP", "resp:never", 0)  # answered only when the list fills
        await asyncio.sleep(0)
        server.stop()
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(blocked, TIMEOUT_S)
        assert connection.closed
        with pytest.raises(RedisConnectionError):
            await connection.call("PING")
        with pytest.raises(ConnectionRefusedError):
            await RespConnection.open(server.url, TIMEOUT_S)  # nothing listens there now
    finally:
        connection.close()


async def test_history_survives_a_flushed_script_cache(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url)

    recorded = "pingpong_history_recorded_total"
    stamp = 1_700_000_000_000
    beat = {"type": "ping", "latency": 1, "timestamp": stamp, "source": "resp"}
    await redis_server.publish(orjson.dumps(beat))
    await relay.metric_until(recorded, lambda value: value == 1)
    redis = aioredis.from_url(redis_server.url)
    await redis.script_flush()  # the relay's script is gone: NOSCRIPT, then loaded again
    await redis.aclose()
    await redis_server.publish(orjson.dumps({**beat, "timestamp": stamp + 1}))
    await relay.metric_until(recorded, lambda value: value == 2)
    status, body = await relay.get("/history?bot=bot:pingpong/resp&limit=100")
    assert status == 200
    assert [item["data"]["timestamp"] for item in orjson.loads(body)["items"]] == [stamp, stamp + 1]


async def test_appends_a_server_stops_answering_are_retried_on_a_new_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server that loads the script, then never answers: the watchdog gives up on the
    connection after the reply timeout, and the append is retried on a new one."""
    connections = 0
    third = asyncio.Event()
    sha = b"0" * 40

    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        if connections == 3:
            third.set()
        await reader.read(65536)  # SCRIPT LOAD
        writer.write(b"$40\r\n" + sha + b"\r\n")
        await reader.read()  # the EVALSHA, then silence until the client gives up
        writer.close()

    server = await asyncio.start_server(answer_once, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"redis://127.0.0.1:{port}/0"
    metrics = RelayMetrics()
    redis = aioredis.from_url(url)
    appender = Appender(
        url, redis, metrics, retention_ms=60_000, max_entries=10, queue_size=10,
        reply_timeout_s=0.2,
    )  # fmt: skip
    caplog.set_level(logging.WARNING, logger="pingpong_relay.history")
    appender.start()
    try:
        appender.record("bot:pingpong/x", "bot:pingpong", b'{"type":"ping"}', 1, None)
        await asyncio.wait_for(third.wait(), 30)  # given up on twice, and retried
    finally:
        await appender.stop(drain_timeout_s=0.1)
        await redis.aclose()
        server.close()
    retries = [r.getMessage() for r in caplog.records if "history append failed" in r.getMessage()]
    assert retries == ["history append failed (no reply from Redis within 0.2 s); retrying"]
    assert metrics.registry.get_sample_value("pingpong_history_recorded_total") == 0
