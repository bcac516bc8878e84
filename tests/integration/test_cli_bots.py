"""`publish` and `simulate` as a newcomer uses them (issue 14, point 5): named bots, several
at once, a latency of its own when none is given, and a Redis that is not there, or that
nobody listens on, said in one line."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import orjson

from tests.support import Collector, RedisServer, RelayProcess, free_port


async def _start(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pingpong_relay", *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "100"},
    )  # fmt: skip


async def _cli(*args: str) -> tuple[int, str, str]:
    process = await _start(*args)
    # Generous: what is asserted is that it ends (and how), never how fast.
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _bots(relay: RelayProcess) -> set[str]:
    status, body = await relay.get("/bots")
    assert status == 200
    return set(orjson.loads(body)["bots"])


async def test_publish_source_names_the_bot(redis_server: RedisServer, relay: RelayProcess) -> None:
    client = Collector()
    await client.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    code, out, err = await _cli(
        "publish", "ping", "--source", "gate-1", "--latency", "12", "--redis-url", redis_server.url
    )
    assert code == 0, err
    assert out.strip() == (
        "published ping (latency 12 ms) to bot:pingpong as bot:pingpong/gate-1: 1 subscriber(s)"
    )
    [message] = await client.wait_count(1)
    assert message["data"]["source"] == "gate-1"
    assert message["data"]["latency"] == 12
    assert await _bots(relay) == {"bot:pingpong/gate-1"}
    await client.close()


async def test_publish_without_latency_sends_the_redis_round_trip(
    redis_server: RedisServer, relay: RelayProcess
) -> None:
    client = Collector()
    await client.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    code, out, err = await _cli("publish", "pong", "--redis-url", redis_server.url)
    assert code == 0, err
    assert "a Redis round trip" in out
    [message] = await client.wait_count(1)
    data = message["data"]
    assert data["type"] == "pong"
    assert data["source"] == "bot"
    assert isinstance(data["latency"], int | float)
    assert 0 <= data["latency"] < 10_000


async def test_simulate_several_bots_shows_each_in_bots(
    redis_server: RedisServer, relay: RelayProcess
) -> None:
    client = Collector()
    await client.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    code, _, err = await _cli(
        "simulate", "--source", "gate", "--bots", "3", "--count", "2", "--rate", "20",
        "--redis-url", redis_server.url,
    )  # fmt: skip
    assert code == 0, err
    messages = await client.wait_count(6)
    sources = [m["data"]["source"] for m in messages]
    assert sorted(sources) == ["gate-1", "gate-1", "gate-2", "gate-2", "gate-3", "gate-3"]
    assert await _bots(relay) == {f"bot:pingpong/gate-{n}" for n in (1, 2, 3)}
    assert "simulate: 3 bots (bot:pingpong/gate-1, gate-2, gate-3) publish to" in err


async def test_publish_and_simulate_say_in_one_line_that_redis_is_unreachable() -> None:
    port = free_port()
    for command in (["publish", "ping", "--latency", "1"], ["simulate"]):
        code, out, err = await _cli(*command, "--redis-url", f"redis://:hunter2@127.0.0.1:{port}/0")
        assert code == 1
        assert out == ""
        assert err.splitlines() == [
            f"{command[0]}: cannot reach Redis at redis://:***@127.0.0.1:{port}/0: "
            "Connection refused"
        ]


async def test_a_message_nobody_received_is_warned_about(redis_server: RedisServer) -> None:
    code, out, err = await _cli(
        "publish", "ping", "--latency", "3", "--redis-url", redis_server.url
    )
    assert code == 0
    assert "0 subscriber(s)" in out
    assert err.splitlines() == [
        "publish: no relay is subscribed to bot:pingpong; nobody received it"
    ]
    code, _, err = await _cli(
        "simulate", "--count", "3", "--rate", "50", "--redis-url", redis_server.url
    )
    assert code == 0
    warnings = [line for line in err.splitlines() if "no relay is subscribed" in line]
    assert warnings == [
        "simulate: no relay is subscribed to bot:pingpong; nobody receives the heartbeats"
    ]


async def test_simulate_says_once_that_redis_went_away_and_when_it_is_back(
    redis_server: RedisServer,
) -> None:
    simulate = await _start("simulate", "--rate", "20", "--redis-url", redis_server.url)
    assert simulate.stderr is not None
    seen: list[str] = []

    async def line_with(text: str) -> None:
        while not any(text in line for line in seen):
            line = await asyncio.wait_for(simulate.stderr.readline(), 30)  # type: ignore[union-attr]
            assert line, f"simulate exited; it said {seen}"
            seen.append(line.decode().rstrip("\n"))

    try:
        await line_with("no relay is subscribed")  # it is publishing
        redis_server.kill()
        await line_with(f"simulate: lost Redis at {redis_server.url}")
        await redis_server.start()
        await line_with(f"simulate: Redis at {redis_server.url} is back")
    finally:
        simulate.send_signal(signal.SIGTERM)
        await asyncio.wait_for(simulate.wait(), 30)
    assert simulate.returncode == 0
    assert len([line for line in seen if "lost Redis" in line]) == 1, seen
