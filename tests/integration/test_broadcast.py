"""Fan-out with real sockets: many clients, order, vanishing clients, slow clients."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import jsonschema
import orjson

from pingpong_relay.asyncapi import asyncapi
from pingpong_relay.frames import read_text_frames
from tests.support import Collector, RedisServer, RelayFactory, RelayProcess


def _heartbeat(seq: int) -> bytes:
    kind = "ping" if seq % 2 == 0 else "pong"
    return orjson.dumps(
        {
            "type": kind,
            "latency": seq * 0.5,
            "timestamp": 1_700_000_000_000 + seq,
            "source": "bot",
            "seq": seq,
        }
    )


async def _connect_many(url: str, count: int, session: aiohttp.ClientSession) -> list[Collector]:
    clients = [Collector() for _ in range(count)]
    # Bounded concurrency: the relay's accept backlog is finite.
    for start in range(0, count, 100):
        await asyncio.gather(*(c.connect(url, session) for c in clients[start : start + 100]))
    return clients


async def test_500_clients_each_receive_all_50_messages_in_order(
    redis_server: RedisServer, relay: RelayProcess
) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        clients = await _connect_many(relay.ws_url, 500, session)
        await relay.wait_for("client_connected", count=500)
        for seq in range(50):
            assert await redis_server.publish(_heartbeat(seq)) == 1
        await asyncio.gather(*(c.wait_count(50, timeout=60) for c in clients))
        for client in clients:
            assert [m["data"]["seq"] for m in client.messages] == list(range(50))
            assert all(m["type"] == "bot:pingpong" for m in client.messages)
        assert await relay.metric("pingpong_deliveries_total") == 500 * 50
        assert await relay.metric("pingpong_send_failures_total") == 0
        await asyncio.gather(*(c.close() for c in clients))


async def test_clients_vanishing_mid_broadcast_do_not_disturb_the_rest(
    redis_server: RedisServer, relay: RelayProcess
) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        clients = await _connect_many(relay.ws_url, 100, session)
        await relay.wait_for("client_connected", count=100)
        staying, vanishing = clients[:50], clients[50:]
        await redis_server.publish(_heartbeat(0))
        await asyncio.gather(*(c.wait_count(1) for c in clients))

        async def publish_stream() -> None:
            for seq in range(1, 30):
                await redis_server.publish(_heartbeat(seq))

        publishing = asyncio.create_task(publish_stream())
        # Cut half the sockets without a closing handshake while messages are in flight:
        # the relay's next writes to them hit a reset connection.
        for client in vanishing:
            assert client.ws is not None
            transport = client.ws._response.connection.transport  # type: ignore[union-attr]
            assert transport is not None
            sock = transport.get_extra_info("socket")
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            transport.abort()
        await publishing
        await asyncio.gather(*(c.wait_count(30) for c in staying))
        for client in staying:
            assert [m["data"]["seq"] for m in client.messages] == list(range(30))
        await relay.wait_for("client_disconnected", count=50)
        status, body = await relay.get("/healthz?detail=1")
        assert status == 200
        assert orjson.loads(body)["clients"] == 50
        assert await relay.metric("pingpong_clients_connected") == 50
        await asyncio.gather(*(c.close() for c in staying))


async def test_a_client_that_never_reads_is_closed_and_others_are_unaffected(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(
        redis_server.url, "--slow-client", "close", "--max-client-buffer", "65536"
    )
    reader = Collector()
    await reader.connect(relay.ws_url)
    # A raw client that completes the upgrade and then never reads: its small receive
    # window fills, then the relay's kernel send buffer, then the relay's own buffer.
    stalled = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", relay.port))
    stalled.sendall(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await relay.wait_for("client_connected", count=2)
    filler = "x" * 15_000
    count = 0
    try:
        # Kernel buffers on loopback autotune to a few MB, so how much it takes is not
        # fixed: publish until the relay gives up on the stalled client (bounded, 15 MB).
        while not relay.events("slow_client_closed") and count < 1000:
            for _ in range(20):
                payload = orjson.dumps(
                    {
                        "type": "ping",
                        "latency": 1,
                        "timestamp": count,
                        "source": "bot",
                        "seq": count,
                        "pad": filler,
                    }
                )
                await redis_server.publish(payload)
                count += 1
            await reader.wait_count(count, timeout=60)
        closed = await relay.wait_for("slow_client_closed")
        await reader.wait_count(count, timeout=60)
        assert [m["data"]["seq"] for m in reader.messages] == list(range(count))
        assert closed["client"] != relay.events("client_connected")[0]["client"]
        assert await relay.metric("pingpong_slow_client_closes_total") == 1
        await relay.wait_for(
            lambda r: r.get("event") == "client_disconnected" and r["client"] == closed["client"]
        )
    finally:
        stalled.close()
        await reader.close()


async def test_a_dead_peer_that_never_answers_pings_is_dropped(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--ping-interval", "0.3", "--ping-timeout", "0.2")
    # Upgrades, then neither reads nor answers pings, like a peer whose host vanished.
    silent = socket.create_connection(("127.0.0.1", relay.port))
    silent.sendall(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    try:
        connected = await relay.wait_for("client_connected")
        gone = await relay.wait_for("client_disconnected")
        assert gone["client"] == connected["client"]
        _, body = await relay.get("/healthz?detail=1")
        assert orjson.loads(body)["clients"] == 0
    finally:
        silent.close()


async def test_client_frames_get_a_clear_error_and_the_client_stays(
    redis_server: RedisServer, relay: RelayProcess
) -> None:
    client = Collector()
    await client.connect(relay.ws_url)
    assert client.ws is not None
    await client.ws.send_str('{"action":"subscribe"}')
    [error] = await client.wait_count(1)
    assert error["type"] == "error"
    assert error["error"] == "bad_command"
    await redis_server.publish(b'{"type":"pong","latency":3,"timestamp":1,"source":"bot"}')
    messages = await client.wait_count(2)
    assert messages[1]["data"]["type"] == "pong"
    assert await relay.metric("pingpong_client_frames_refused_total") == 1
    await client.close()


def _stalled_client(port: int) -> socket.socket:
    """A raw client that completes the upgrade and then does not read (yet): its small
    receive window fills, then the relay's kernel send buffer, then the relay's own."""
    stalled = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", port))
    stalled.sendall(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    return stalled


async def test_a_backed_up_client_gets_the_newest_per_bot_and_how_many_it_skipped(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url)  # --slow-client conflate is the default
    reader = Collector()
    await reader.connect(relay.ws_url)
    stalled = _stalled_client(relay.port)
    await relay.wait_for("client_connected", count=2)
    filler = "x" * 15_000
    published: list[tuple[str, int]] = []

    async def publish(source: str) -> None:
        seq = len(published)
        beat = {"type": "ping", "latency": 1, "source": source, "seq": seq, "pad": filler}
        await redis_server.publish(orjson.dumps(beat))
        published.append((source, seq))

    try:
        # Fill every buffer on the way until the relay sees the socket backed up
        # (bounded: 15 MB), then publish more from two bots while it stays backed up.
        while not relay.events("client_backed_up") and len(published) < 1000:
            for _ in range(20):
                await publish("a")
            await reader.wait_count(len(published), timeout=60)
        await relay.wait_for("client_backed_up")
        for n in range(40):
            await publish("a" if n % 2 else "b")
        await reader.wait_count(len(published), timeout=60)
        assert [m["data"]["seq"] for m in reader.messages] == list(range(len(published)))

        # Now it reads: everything up to the backlog, the notice, the newest of each bot.
        stalled.setblocking(False)
        loop = asyncio.get_running_loop()
        data = bytearray()
        head, _, _ = bytes(await loop.sock_recv(stalled, 65536)).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        data += _
        last = {source: seq for source, seq in published}

        messages: list[dict[str, Any]] = []

        async def read_until_both_newest() -> None:
            while not set(last.items()) <= {
                (m["data"]["source"], m["data"]["seq"]) for m in messages if "data" in m
            }:
                data.extend(await loop.sock_recv(stalled, 1 << 20))
                payloads, used = read_text_frames(bytes(data))
                del data[:used]
                messages.extend(orjson.loads(p) for p in payloads)

        await asyncio.wait_for(read_until_both_newest(), 60)
        notices = [i for i, m in enumerate(messages) if m["type"] == "relay:conflated"]
        assert len(notices) == 1
        before, notice, after = (
            messages[: notices[0]],
            messages[notices[0]],
            messages[notices[0] + 1 :],
        )
        seqs = [m["data"]["seq"] for m in before]
        assert seqs == list(range(len(seqs)))  # in order, nothing missing before the skip
        assert {(m["data"]["source"], m["data"]["seq"]) for m in after} == set(last.items())
        jsonschema.validate(notice, asyncapi()["components"]["schemas"]["Conflated"])
        skipped = notice["skipped"]
        assert len(before) + skipped + len(after) == len(published)
        assert await relay.metric("pingpong_conflated_total") == skipped
        assert not relay.events("slow_client_closed")
    finally:
        stalled.close()
        await reader.close()
