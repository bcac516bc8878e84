"""The Grafana dashboard's every query, run by a real Prometheus (Debian's package) that
scrapes a real relay under a small load: each one parses and returns data, and the panels
that count what the load did show it.

The load: three bots established, two of them beating on and one falling silent (so an
alert fires, a webhook and a notification go out), two token-holding WebSocket clients, a
client without a token and one from a foreign origin refused, one invalid message and one
push. Grafana is not needed: its variables are filled in here as it would fill them.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import orjson
import pytest

from harness.grafana import PanelQuery, expand, load_dashboard, panel_queries
from tests.integration.notify.support import json_url
from tests.integration.webhooks.support import HookServer
from tests.support import (
    FAST_SILENCE,
    Collector,
    PrometheusServer,
    RedisServer,
    RelayFactory,
    RelayProcess,
    publish,
    publish_established,
    scrape_job,
)

SECRET = "grafana-dashboard-test-secret-" + "k" * 40
METRICS_TOKEN = "scrape-me-0123456789"
PUSH_TOKEN = "grafana-push-0123456789"
JOB = "pingpong-relay"
BEATING = ("alpha", "beta")
SILENT = "quiet"
BEAT_EVERY_S = 0.25
BEATS_AT_MOST = 400  # 100 s of beats: the test ends long before, and cancels them
# Grafana makes $__rate_interval at least four scrape intervals (1 s here); the load runs
# within the last 30 s, so every rate sees it.
RATE_INTERVAL = "30s"
RANGE_S = 30.0

# Queries whose data must show the load, not just exist (a value above 0 somewhere).
SHOWS_THE_LOAD = (
    "up{",
    "pingpong_redis_subscribed",
    "pingpong_clients_connected",
    "pingpong_deliveries_total",
    "pingpong_relay_latency_seconds_bucket",
    "pingpong_messages_received_total",
    "pingpong_messages_forwarded_total",
    "pingpong_messages_rejected_total",
    "pingpong_auth_failures_total",
    "pingpong_connections_refused_total",
    "pingpong_ingest_accepted_total",
    "pingpong_bot_latency_seconds_bucket",
    "pingpong_bot_up",
    "pingpong_bot_last_seen_timestamp_seconds",
    "pingpong_alerts_firing",
    "pingpong_webhook_deliveries_total",
    "pingpong_notifications_sent_total",
)


def _beat(source: str, n: int) -> bytes:
    return orjson.dumps(
        {"type": "ping", "latency": 10 + n % 7, "timestamp": n + 1, "source": source}
    )


def _beats(source: str) -> Callable[[int], bytes]:
    return lambda n: _beat(source, n)


def _token() -> str:
    return jwt.encode({"sub": "grafana-test", "exp": 4_102_444_800}, SECRET, algorithm="HS256")


async def _refused(url: str, **options: Any) -> int:
    """The HTTP status a WebSocket upgrade was refused with."""
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(url, **options)
    return refused.value.status


async def _refuse_twice(relay: RelayProcess, prometheus: PrometheusServer) -> None:
    """A client without a token (401) and one from a foreign origin (403), twice: these
    series are born at their first refusal, which rate() cannot see (no earlier sample),
    so the second comes once Prometheus has scraped the first."""
    for _ in range(2):
        assert await _refused(relay.ws_url) == 401
        assert (
            await _refused(relay.ws_url_with(f"token={_token()}"), origin="https://x.test") == 403
        )
        await prometheus.wait_for("pingpong_auth_failures_total")
        await prometheus.wait_for("pingpong_connections_refused_total")


async def _keep_beating(redis: RedisServer) -> None:
    for n in range(BEATS_AT_MOST):
        await asyncio.gather(*(publish(redis.url, _beat(bot, 10 + n)) for bot in BEATING))
        await asyncio.sleep(BEAT_EVERY_S)


@contextlib.asynccontextmanager
async def _load(
    relay: RelayProcess, redis: RedisServer, hooks: HookServer, prometheus: PrometheusServer
) -> AsyncIterator[None]:
    """The scenario above, run until the silent bot's alert reached both receivers; the
    beating bots and the clients go on until the block ends."""
    clients = [Collector(), Collector()]
    beating: asyncio.Task[None] | None = None
    try:
        for client in clients:
            await client.connect(relay.ws_url_with(f"token={_token()}"))
        await _refuse_twice(relay, prometheus)
        bots = (*BEATING, SILENT)
        await asyncio.gather(*(publish_established(redis, _beats(bot)) for bot in bots))
        beating = asyncio.create_task(_keep_beating(redis), name="beating-bots")
        await publish(redis.url, b"\xff not json")
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{relay.http_url}/api/push/{PUSH_TOKEN}?status=up&ping=12") as pushed,
        ):
            assert pushed.status == 200
        await clients[0].wait_count(10)
        await hooks.until(lambda: bool(hooks.at("ok/webhook")) and bool(hooks.at("ok/notify")))
        yield
    finally:
        if beating is not None:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
        for client in clients:
            await client.close()


def _values(answer: dict[str, Any]) -> list[float]:
    """Every sample value in an instant or range query's answer."""
    values: list[float] = []
    for series in answer["data"]["result"]:
        samples = series["values"] if "values" in series else [series["value"]]
        values += [float(value) for _, value in samples]
    return values


async def _run(
    prometheus: PrometheusServer, query: PanelQuery, variables: dict[str, str]
) -> dict[str, Any]:
    expr = expand(query.expr, variables)
    if query.instant:
        return await prometheus.query(expr)
    return await prometheus.query_range(expr, RANGE_S)


async def test_every_panel_query_parses_and_returns_data_from_a_real_prometheus(
    redis_server: RedisServer, start_relay: RelayFactory, tmp_path: Path
) -> None:
    dashboard = load_dashboard()
    async with HookServer.serving() as hooks:
        relay = await start_relay(
            redis_server.url,
            "--auth", "jwt",
            "--metrics-token", METRICS_TOKEN,
            *FAST_SILENCE,
            "--push-token", f"{PUSH_TOKEN}=cron-1",
            "--webhook-url", hooks.url("ok/webhook"),
            "--notify", json_url(hooks, "ok/notify"),
            "--notify-group-wait", "0.2",
            # The shared broker, on a topic no one publishes to: the MQTT panel has its gauge.
            "--mqtt-url", "mqtt://127.0.0.1:1883",
            "--mqtt-topic", f"grafana-test-{os.getpid()}/+",
            "--mqtt-share-group", "",
            env={"PINGPONG_JWT_SECRET": SECRET},
        )  # fmt: skip
        instance = f"127.0.0.1:{relay.http_port}"
        prometheus = PrometheusServer(
            tmp_path / "prometheus", [scrape_job(JOB, [instance], bearer=METRICS_TOKEN)]
        )
        await prometheus.start()
        try:
            await prometheus.wait_for(f'up{{job="{JOB}"}} == 1')
            async with _load(relay, redis_server, hooks, prometheus):
                # Scraped after the scenario played out (the alert's webhook was last).
                for done in (
                    f'pingpong_alerts_firing{{bot="bot:pingpong/{SILENT}"}} == 1',
                    "pingpong_webhook_deliveries_total > 0",
                    "pingpong_notifications_sent_total > 0",
                    'pingpong_ingest_accepted_total{via="push"} > 0',
                    "pingpong_auth_failures_total > 1",
                ):
                    await prometheus.wait_for(done)
                variables = {
                    "datasource": "prometheus",
                    "job": JOB,
                    "instance": instance,
                    "bot": ".*",  # the variable's All
                    "__rate_interval": RATE_INTERVAL,
                    "__range": f"{RANGE_S:g}s",
                }
                await _check_variables(prometheus, dashboard, variables, instance)
                answers = [
                    (query, await _run(prometheus, query, variables))
                    for query in panel_queries(dashboard)
                ]
        finally:
            await prometheus.stop()

    print(f"\n{'panel':<52} {'ref':<3} {'series':>6}  query")
    for query, answer in answers:
        series = len(answer["data"]["result"]) if answer["status"] == "success" else "error"
        print(f"{query.title:<52} {query.ref_id:<3} {series:>6}  {query.expr}")
    for query, answer in answers:
        where = f"{query.title} ({query.ref_id}): {query.expr}"
        assert answer["status"] == "success", f"{where}: {answer}"
        assert answer["data"]["result"], f"{where}: no data"
        if any(metric in query.expr for metric in SHOWS_THE_LOAD):
            finite = [v for v in _values(answer) if math.isfinite(v)]
            assert finite, f"{where}: only NaN"
            assert max(finite) > 0, f"{where}: {answer['data']['result']}"


async def _check_variables(
    prometheus: PrometheusServer,
    dashboard: dict[str, Any],
    variables: dict[str, str],
    instance: str,
) -> None:
    """Each query variable's label_values(selector, label) lists what the scenario made."""
    expected = {
        "job": {JOB},
        "instance": {instance},
        "bot": {f"bot:pingpong/{bot}" for bot in (*BEATING, SILENT)},
    }
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        inner = variable["definition"].removeprefix("label_values(").removesuffix(")")
        selector, _, label = inner.rpartition(",")
        values = await prometheus.label_values(label.strip(), expand(selector, variables))
        assert set(values) >= expected[variable["name"]], (variable["name"], values)
