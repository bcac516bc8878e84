"""`promtool check metrics` on live /metrics: one relay with every optional family and
traffic through it, and the merged exposition of `--workers 2`."""

from __future__ import annotations

import platform
import re
import time
from collections.abc import AsyncIterator

import orjson
import pytest

from pingpong_relay import __version__
from tests.integration.prometheus_support import promtool, start_busy_relay
from tests.support import (
    Collector,
    FakeFreqtrade,
    RedisServer,
    RelayFactory,
    publish_established,
)


@pytest.fixture
async def freqtrade() -> AsyncIterator[FakeFreqtrade]:
    async with FakeFreqtrade() as server:
        yield server


def _lint(text: str) -> None:
    checked = promtool("check", "metrics", stdin=text)
    problems = (checked.stdout + checked.stderr).strip()
    assert (checked.returncode, problems) == (0, ""), problems


def _build_info(text: str) -> list[str]:
    return re.findall(r"^pingpong_relay_build_info\{.*$", text, re.MULTILINE)


async def test_a_busy_relay_with_every_family_passes_promtool(
    redis_server: RedisServer, start_relay: RelayFactory, freqtrade: FakeFreqtrade
) -> None:
    exposition = await start_busy_relay(redis_server, start_relay, freqtrade)
    text = exposition.text
    for family in (
        "pingpong_mqtt_connected 1.0",
        'pingpong_ingest_accepted_total{via="poll"}',
        'pingpong_ingest_accepted_total{via="push"} 1.0',
        'pingpong_bot_latency_seconds_bucket{bot="bot:pingpong/bot"',
        "# TYPE pingpong_notifications_sent_total counter",
        "pingpong_clients_connected",
    ):
        assert family in text, family
    (info,) = _build_info(text)
    assert f'version="{__version__}"' in info
    assert f'python="{platform.python_version()}"' in info
    assert info.endswith(" 1.0")
    _lint(text)


async def test_a_relay_without_a_broker_exports_no_mqtt_families(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url)
    status, body = await relay.get("/metrics")
    assert status == 200
    assert "pingpong_mqtt" not in body.decode()
    assert "pingpong_ingest_accepted_total" in body.decode()


async def test_the_merged_metrics_of_two_workers_pass_promtool_with_one_build_info(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--workers", "2")
    await relay.wait_for("redis_subscribed", count=2)
    clients = [Collector() for _ in range(4)]
    for client in clients:
        await client.connect(relay.ws_url)
    try:
        await publish_established(
            redis_server,
            lambda n: orjson.dumps(
                {"type": "ping", "latency": n, "timestamp": int(time.time() * 1000)}
            ),
        )
        await redis_server.publish(b"not json")
        for client in clients:
            await client.wait_count(3)
        assert await relay.metric("pingpong_deliveries_total") >= 12
        status, body = await relay.get("/metrics")
    finally:
        for client in clients:
            await client.close()
    assert status == 200
    text = body.decode()
    assert "pingpong_bot_latency_seconds_bucket" in text
    (info,) = _build_info(text)
    assert info.endswith(" 1.0")
    _lint(text)
