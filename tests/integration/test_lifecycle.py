"""Start-up, shutdown, health, configuration and logs of a real relay process."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time

import orjson
import pytest

from tests.support import (
    DESIGN_PING,
    ROOT,
    Collector,
    RedisServer,
    RelayFactory,
    RelayProcess,
    free_port,
)


async def test_sigterm_closes_every_client_with_1001_and_exits_0(
    redis_server: RedisServer, relay: RelayProcess
) -> None:
    clients = [Collector() for _ in range(20)]
    await asyncio.gather(*(c.connect(relay.ws_url) for c in clients))
    await relay.wait_for("client_connected", count=20)
    relay.signal(signal.SIGTERM)
    await asyncio.gather(*(asyncio.wait_for(c.closed.wait(), 10) for c in clients))
    assert [c.close_code for c in clients] == [1001] * 20
    assert await relay.wait_exit() == 0
    assert relay.events("stopped")
    # Redis stopped counting the relay as a subscriber: it unsubscribed or disconnected.
    assert await redis_server.publish(DESIGN_PING) == 0
    for client in clients:
        await client.close()


async def test_embedded_redis_starts_when_nothing_is_on_6379_and_leaves_nothing_behind() -> None:
    # A fresh network namespace has its own empty loopback, so 127.0.0.1:6379 answers
    # nothing there, without touching the machine's own Redis.
    process = await asyncio.create_subprocess_exec(
        "unshare",
        "--net",
        "--fork",
        sys.executable,
        "-m",
        "tests.integration.embedded_scenario",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, stderr.decode()[-3000:]
    result = orjson.loads(stdout.splitlines()[-1])
    assert result["redis_url"].startswith("redis://127.0.0.1:")
    assert not result["redis_url"].endswith(":6379/0")
    assert result["receivers"] == 1
    assert result["envelope"]["data"] == orjson.loads(DESIGN_PING)
    assert result["exit_code"] == 0
    assert result["embedded_gone_after_sigterm"] is True
    assert result["embedded_gone_after_sigkill"] is True


async def test_health_on_both_planes_and_redirect_from_the_data_port(
    redis_server: RedisServer, relay: RelayProcess
) -> None:
    for data_port in (False, True):
        status, body = await relay.get("/healthz", data_port=data_port)
        assert status == 200
        assert orjson.loads(body) == {"status": "ok", "redis": "subscribed"}
    status, body = await relay.get("/healthz?detail=1")
    assert status == 200
    health = orjson.loads(body)
    assert health["status"] == "ok"
    assert health["redis"] == "subscribed"
    assert health["clients"] == 0
    status, _ = await relay.get("/metrics?x=1", data_port=True)
    assert status == 302
    status, body = await relay.get("/metrics")
    assert status == 200
    text = body.decode()
    for name in (
        "pingpong_clients_connected",
        "pingpong_messages_received_total",
        "pingpong_messages_forwarded_total",
        "pingpong_messages_rejected_total",
        "pingpong_deliveries_total",
        "pingpong_send_failures_total",
        "pingpong_slow_client_closes_total",
        "pingpong_redis_reconnects_total",
        "pingpong_relay_latency_seconds_bucket",
    ):
        assert name in text, name


async def test_data_port_redirect_points_at_the_http_plane(
    redis_server: RedisServer, relay: RelayProcess
) -> None:
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{relay.port}/metrics", allow_redirects=False) as response,
    ):
        assert response.status == 302
        assert response.headers["Location"] == f"http://127.0.0.1:{relay.http_port}/metrics"
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{relay.port}/metrics") as response,
    ):
        assert response.status == 200
        assert "pingpong_deliveries_total" in await response.text()


async def test_http_plane_off_with_port_0(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--http-port", "0")
    listening = relay.events("listening")[0]
    assert listening["http_port"] == 0
    status, _ = await relay.get("/healthz", data_port=True)
    assert status == 200
    status, _ = await relay.get("/anything", data_port=True)
    assert status == 426


async def test_env_vars_configure_the_relay_and_flags_win(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(
        redis_server.url,
        "--channel",
        "bots:b",
        env={"PINGPONG_CHANNEL": "bots:a,bots:z", "PINGPONG_LOG_LEVEL": "DEBUG"},
    )
    # The flag replaced the env var's channels; the env var's DEBUG level applied.
    assert relay.events("redis_subscribed")[0]["channels"] == ["bots:b"]
    client = Collector()
    await client.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    assert await redis_server.publish(DESIGN_PING, channel="bots:a") == 0
    assert await redis_server.publish(DESIGN_PING, channel="bots:b") == 1
    await client.wait_count(1)
    sent = await relay.wait_for("sent")
    assert sent["level"] == "DEBUG"
    assert sent["client"].startswith("CLIENT-")
    await client.close()


async def test_several_channels_and_a_password_protected_redis_with_a_db_number(
    start_relay: RelayFactory,
) -> None:
    server = RedisServer("--requirepass", "s3cret")
    await server.start()
    try:
        url = f"redis://:s3cret@127.0.0.1:{server.port}/3"
        relay = await start_relay(
            url, "--channel", "bot:one", "--channel", "bot:two", "--log-stages"
        )
        client = Collector()
        await client.connect(relay.ws_url)
        await relay.wait_for("client_connected")
        assert await _publish_auth(url, "bot:one", DESIGN_PING) == 1
        assert await _publish_auth(url, "bot:two", DESIGN_PING.replace(b"ping", b"pong")) == 1
        messages = await client.wait_count(2)
        assert [m["data"]["type"] for m in messages] == ["ping", "pong"]
        await relay.wait_for("received", count=2)
        received = relay.events("received")
        assert [r["channel"] for r in received] == ["bot:one", "bot:two"]
        assert "s3cret" not in "\n".join(relay.raw_lines)
        await client.close()
    finally:
        server.stop()


async def _publish_auth(url: str, channel: str, payload: bytes) -> int:
    from tests.support import publish

    return await publish(url, payload, channel)


async def test_json_logs_carry_each_stage_as_fields(
    redis_server: RedisServer, relay: RelayProcess
) -> None:
    client = Collector()
    await client.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    await redis_server.publish(DESIGN_PING)
    await client.wait_count(1)
    received = await relay.wait_for("received")
    assert received["type"] == "ping"
    assert received["latency_ms"] == 10
    assert received["bot_time"] == "1970-01-15T06:56:07.890Z"
    assert received["message"].startswith("received PING from bot")
    broadcasting = await relay.wait_for("broadcasting")
    assert broadcasting["clients"] == 1
    done = await relay.wait_for("broadcast_done")
    assert done["delivered"] == 1
    assert done["message"] == "broadcast done: to 1 clients"
    # Per-client lines are DEBUG only, even with --log-stages (the fixture's relay).
    assert not relay.events("sent")
    await client.close()


async def test_at_the_default_level_one_summary_line_instead_of_three_per_message(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--log-summary-interval", "1")
    client = Collector()
    await client.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    now_ms = int(time.time() * 1000)
    for n in range(20):
        beat = {"type": "ping", "latency": n, "timestamp": now_ms, "source": f"bot{n % 2}"}
        await redis_server.publish(orjson.dumps(beat))
    await redis_server.publish(b"not json")
    await client.wait_count(20)

    # Summaries come every second while there is traffic; these 21 messages may straddle
    # two of them, so the figures are summed.
    count = 1
    while True:
        await relay.wait_for("summary", count=count)
        summaries = relay.events("summary")
        if sum(s["messages"] for s in summaries) >= 20 and sum(s["rejected"] for s in summaries):
            break
        count += 1
    assert sum(s["messages"] for s in summaries) == 20
    assert sum(s["rejected"] for s in summaries) == 1
    for summary in summaries:
        assert summary["level"] == "INFO"
        assert summary["clients"] == 1
        assert summary["interval_s"] == 1
        assert summary["bots"] in (1, 2)
        assert summary["message"].startswith(f"relayed {summary['messages']} messages from ")
    if len(summaries) == 1:
        assert summaries[0]["bots"] == 2
        assert summaries[0]["p99_relay_latency_ms"] is not None
    # No line per message: the design's stages are DEBUG (or INFO with --log-stages).
    per_message = {"received", "broadcasting", "broadcast_done", "sent"}
    assert [r for r in relay.records if r.get("event") in per_message] == []
    await client.close()


def test_serve_help_explains_every_flag() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pingpong_relay", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for flag, env in (
        ("--host", "PINGPONG_HOST"),
        ("--port", "PINGPONG_PORT"),
        ("--http-port", "PINGPONG_HTTP_PORT"),
        ("--redis-url", "PINGPONG_REDIS_URL"),
        ("--channel", "PINGPONG_CHANNEL"),
        ("--log-level", "PINGPONG_LOG_LEVEL"),
        ("--log-format", "PINGPONG_LOG_FORMAT"),
        ("--max-client-buffer", "PINGPONG_MAX_CLIENT_BUFFER"),
    ):
        assert flag in out
        assert env in out


def test_bad_configuration_is_refused_with_a_clear_message() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pingpong_relay",
            "serve",
            "--ping-interval",
            "5",
            "--ping-timeout",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "--ping-timeout" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "pingpong_relay", "serve"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PINGPONG_PORT": "70000", "PATH": ""},
    )
    assert done.returncode == 2
    assert "PINGPONG_PORT" in done.stderr


@pytest.mark.parametrize("taken", ["data", "http"])
async def test_a_port_in_use_ends_serve_with_exit_1_and_says_which(
    redis_server: RedisServer, taken: str
) -> None:
    port = free_port()
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", port)
    relay = (
        RelayProcess(redis_server.url, port=port)
        if taken == "data"
        else RelayProcess(redis_server.url, http_port=port)
    )
    try:
        await relay.start_process()
        # Stopping what had already started (history, rollups) must not hang the exit.
        assert await relay.wait_exit(20) == 1
        failed = relay.events("start_failed")
        assert len(failed) == 1
        assert "address already in use" in failed[0]["message"]
    finally:
        blocker.close()
        await relay.stop()
