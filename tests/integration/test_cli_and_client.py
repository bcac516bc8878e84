"""The bot-side publisher, the Python client and the publish/watch/simulate commands."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web

from pingpong_relay.backoff import Backoff
from pingpong_relay.client import Heartbeat, envelopes, heartbeats
from pingpong_relay.publisher import Publisher, PublishError
from tests.support import Collector, RedisServer, RelayFactory, RelayProcess, free_port, run_cli


async def _run_cli(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    return await run_cli(*args, timeout=timeout)


async def _watch(relay: RelayProcess, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pingpong_relay",
        "watch",
        relay.ws_url,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_publisher_api_sends_the_design_message_and_counts_subscribers(
    redis_server: RedisServer, relay: RelayProcess
) -> None:
    client = Collector()
    await client.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    async with Publisher(redis_server.url, clock_ms=lambda: 1_700_000_000_123) as bot:
        assert await bot.ping(12.5) == 1
        assert await bot.pong(13) == 1
    messages = await client.wait_count(2)
    assert [m["data"] for m in messages] == [
        {"type": "ping", "latency": 12.5, "timestamp": 1_700_000_000_123, "source": "bot"},
        {"type": "pong", "latency": 13, "timestamp": 1_700_000_000_123, "source": "bot"},
    ]
    await client.close()


async def test_publisher_raises_a_clear_error_when_redis_is_unreachable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with Publisher(f"redis://127.0.0.1:{free_port()}/0") as bot:
        with pytest.raises(PublishError, match="bot:pingpong") as refused:
            await bot.ping(1)
    assert refused.value.reason == "Connection refused"
    # Raised, not logged as well: the caller reports it, once.
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_publish_and_watch_commands(redis_server: RedisServer, relay: RelayProcess) -> None:
    watch = await _watch(relay, "--count", "2")
    await relay.wait_for("client_connected")
    code, out, _ = await _run_cli(
        "publish", "ping", "--latency", "42", "--redis-url", redis_server.url
    )
    assert code == 0
    assert "1 subscriber" in out
    code, _, _ = await _run_cli(
        "publish", "pong", "--latency", "7.5", "--redis-url", redis_server.url
    )
    assert code == 0
    stdout, _ = await asyncio.wait_for(watch.communicate(), 30)
    lines = stdout.decode().splitlines()
    assert watch.returncode == 0
    assert lines[0].startswith("PING latency 42 ms bot time 20")
    assert lines[1].startswith("PONG latency 7.5 ms bot time 20")
    assert "relay time 20" in lines[1]


async def test_watch_json_prints_the_raw_envelope(
    redis_server: RedisServer, relay: RelayProcess
) -> None:
    watch = await _watch(relay, "--json", "--count", "1")
    await relay.wait_for("client_connected")
    await redis_server.publish(b'{"type":"ping","latency":1,"timestamp":2,"source":"bot"}')
    stdout, _ = await asyncio.wait_for(watch.communicate(), 30)
    envelope = orjson.loads(stdout.splitlines()[0])
    assert envelope["data"] == {"type": "ping", "latency": 1, "timestamp": 2, "source": "bot"}


async def test_publish_refuses_bad_arguments() -> None:
    code, _, err = await _run_cli("publish", "pang", "--latency", "1")
    assert code == 2
    assert "kind: 'pang' is not one of ping, pong" in err
    code, _, err = await _run_cli("publish", "ping", "--latency", "-3")
    assert code == 2
    assert "must be a number >= 0" in err


async def test_publish_to_an_unreachable_redis_fails_with_exit_1() -> None:
    code, _, err = await _run_cli(
        "publish", "ping", "--latency", "1", "--redis-url", f"redis://127.0.0.1:{free_port()}/0"
    )
    assert code == 1
    assert "publish: cannot reach Redis at redis://127.0.0.1:" in err


async def test_simulate_publishes_alternating_heartbeats_with_varying_latency(
    redis_server: RedisServer, relay: RelayProcess
) -> None:
    client = Collector()
    await client.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    code, _, err = await _run_cli(
        "simulate",
        "--rate",
        "50",
        "--count",
        "10",
        "--seed",
        "7",
        "--redis-url",
        redis_server.url,
    )
    assert code == 0, err
    messages = await client.wait_count(10)
    data = [m["data"] for m in messages]
    assert [d["type"] for d in data] == ["ping", "pong"] * 5
    latencies = [d["latency"] for d in data]
    assert all(latency > 0 for latency in latencies)
    assert len(set(latencies)) > 5
    await client.close()


async def test_client_iterator_reconnects_after_the_relay_restarts(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url)
    received: list[dict[str, object]] = []
    got_one = asyncio.Event()

    async def consume() -> None:
        async for envelope in envelopes(relay.ws_url, backoff=Backoff(base_s=0.05, cap_s=0.2)):
            received.append(envelope)
            got_one.set()

    consumer = asyncio.create_task(consume())
    try:
        await relay.wait_for("client_connected")
        await redis_server.publish(b'{"type":"ping","latency":1}')
        await asyncio.wait_for(got_one.wait(), 20)
        await relay.stop()

        # A new relay on the same port: the iterator finds it by itself.
        again = RelayProcess(redis_server.url, port=relay.port, http_port=relay.http_port)
        await again.start()
        try:
            await again.wait_for("client_connected")
            got_one.clear()
            await redis_server.publish(b'{"type":"pong","latency":2}')
            await asyncio.wait_for(got_one.wait(), 20)
        finally:
            await again.stop()
        assert [e["data"] for e in received] == [
            {"type": "ping", "latency": 1},
            {"type": "pong", "latency": 2},
        ]
    finally:
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer


async def test_heartbeats_split_the_delay_between_bot_relay_and_client(
    redis_server: RedisServer, relay: RelayProcess
) -> None:
    now_ms = time.time_ns() / 1e6
    received: list[Heartbeat] = []

    async def consume() -> None:
        async for beat in heartbeats(relay.ws_url, reconnect=False):
            received.append(beat)
            return

    consumer = asyncio.create_task(consume())
    await relay.wait_for("client_connected")
    # The bot's clock runs 5 s behind: bot → relay shows it, relay → client does not.
    bot_ms = int(now_ms) - 5000
    await redis_server.publish(orjson.dumps({"type": "ping", "latency": 3, "timestamp": bot_ms}))
    await asyncio.wait_for(consumer, 20)
    [beat] = received
    assert beat.bot_to_relay_ms is not None
    assert beat.relay_to_client_ms is not None
    assert beat.total_ms is not None
    assert 5000 <= beat.bot_to_relay_ms < 15_000
    assert -5 < beat.relay_to_client_ms < 5000
    assert beat.total_ms == pytest.approx(beat.bot_to_relay_ms + beat.relay_to_client_ms)


async def test_watch_delays_prints_the_split(
    redis_server: RedisServer, relay: RelayProcess
) -> None:
    watch = await _watch(relay, "--delays", "--count", "1")
    await relay.wait_for("client_connected")
    await redis_server.publish(b'{"type":"pong","latency":2}')
    stdout, _ = await asyncio.wait_for(watch.communicate(), 30)
    line = stdout.decode().splitlines()[0]
    assert line.startswith("PONG latency 2 ms bot time N/A")
    assert "| bot→relay N/A, relay→client " in line
    assert line.endswith(" ms")


# --- a relay that sends anything: the client skips what is no envelope and goes on -------

HOSTILE_FRAMES: list[str | bytes] = [
    "not json {",
    "[1, 2]",
    "42",
    "null",
    "{}",
    '{"type":5}',
    '{"type":"bot:pingpong"}',
    '{"type":"bot:pingpong","data":[1]}',
    # 1,023 levels in all: orjson reads it but could not write it again.
    '{"type":"bot:pingpong","data":{"type":"ping","x":' + "[" * 1021 + "]" * 1021 + "}}",
    '{"type":"bot:pingpong","data":' + "[" * 1100 + "]" * 1100 + "}",  # past what orjson reads
    '{"type":\n"\x1b[2J FORGED',
    b"\x00\x01binary",
]
VALID_ENVELOPE = (
    '{"type":"bot:pingpong","data":{"type":"pong","latency":7.5,"timestamp":1234567890,'
    '"source":"bot"},"timestamp":1234567891,"source":"bot"}'
)


@contextlib.asynccontextmanager
async def _fake_relay(frames: list[str | bytes]) -> AsyncIterator[str]:
    """A WebSocket server on loopback that sends `frames` to each client, then waits."""

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        for frame in frames:
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_str(frame)
        async for _ in ws:  # until the client goes
            pass
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"ws://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("mode", [(), ("--json",), ("--delays",)])
async def test_watch_skips_what_is_no_envelope_and_prints_the_next_one(
    mode: tuple[str, ...],
) -> None:
    async with _fake_relay([*HOSTILE_FRAMES, VALID_ENVELOPE]) as url:
        code, out, err = await _run_cli("watch", url, "--count", "1", *mode)
    assert code == 0, err
    [line] = out.splitlines()
    if mode == ("--json",):
        assert orjson.loads(line) == orjson.loads(VALID_ENVELOPE)
    else:
        assert line.startswith("PONG latency 7.5 ms bot time 1970-01-15T06:56:07.890Z")
    warnings = [w for w in err.splitlines() if "skipped a frame" in w]
    assert len(warnings) == len(HOSTILE_FRAMES)
    assert "not JSON" in warnings[0]
    assert "nested deeper than 64 levels" in warnings[8]
    assert "a binary frame" in warnings[-1]
    for text in (out, err):
        assert "\x1b" not in text
        assert not any(line.startswith(("FORGED", '"')) for line in text.splitlines())


async def test_client_iterator_goes_on_after_frames_that_are_no_envelope() -> None:
    weird = '{"type":"bot:pingpong","data":{"type":[1],"latency":"fast"},"timestamp":{}}'
    async with _fake_relay([*HOSTILE_FRAMES, weird, *HOSTILE_FRAMES, VALID_ENVELOPE]) as url:
        received = []
        async for envelope in envelopes(url, reconnect=False):
            received.append(envelope)
            if len(received) == 2:
                break
    assert received == [orjson.loads(weird), orjson.loads(VALID_ENVELOPE)]
    beats = [Heartbeat(envelope, 0.0) for envelope in received]
    assert beats[0].bot_to_relay_ms is None
    assert beats[1].bot_to_relay_ms == 1
