"""WebhookSender against a real HTTP server on loopback: delivery, retries, a slow endpoint."""

from __future__ import annotations

import inspect

import pytest

from pingpong_relay.notify.webhooks import WebhookSender
from pingpong_relay.telemetry.metrics import RelayMetrics
from pingpong_relay.urls import url_origin
from tests.integration.webhooks.support import (
    FailureLog,
    HookServer,
    SenderFactory,
    alert,
    failed,
    sent,
)

# --- delivery --------------------------------------------------------------------------------


async def test_posts_the_alert_as_json_to_every_url(
    server: HookServer, make_sender: SenderFactory, metrics: RelayMetrics
) -> None:
    sender = make_sender([server.url("ok/a"), server.url("ok/b")])
    sender.start()
    body = alert(number=7, value=None, nested={"tags": ["x", "ü"], "n": 1})
    sender.submit(body)
    await server.until(lambda: len(server.seen) == 2)
    assert server.bodies("ok/a") == [body]
    assert server.bodies("ok/b") == [body]
    assert {seen.content_type for seen in server.seen} == {"application/json"}
    await sender.stop()
    assert sent(metrics) == 2
    assert failed(metrics) == 0


async def test_alerts_arrive_in_the_order_submitted(
    server: HookServer, make_sender: SenderFactory
) -> None:
    sender = make_sender([server.url("ok/a")])
    sender.start()
    for number in range(5):
        sender.submit(alert(number))
    await server.until(lambda: len(server.seen) == 5)
    assert server.bodies("ok/a") == [alert(number) for number in range(5)]


# --- retries and failures --------------------------------------------------------------------


async def test_a_503_is_retried_until_it_succeeds(
    server: HookServer, make_sender: SenderFactory, metrics: RelayMetrics
) -> None:
    sender = make_sender([server.url("flaky/2")], attempts=4)
    sender.start()
    sender.submit(alert())
    await server.until(lambda: len(server.seen) == 3)
    await sender.stop()
    assert server.bodies("flaky/2") == [alert()] * 3
    assert sent(metrics) == 1
    assert failed(metrics) == 0


async def test_503_and_refused_connections_are_retried_then_counted_as_failures(
    server: HookServer,
    make_sender: SenderFactory,
    metrics: RelayMetrics,
    failures: FailureLog,
    refused_url: str,
) -> None:
    attempts = 3
    sender = make_sender(
        [server.url("status/503"), refused_url, server.url("ok/a")], attempts=attempts
    )
    sender.start()
    sender.submit(alert())
    await failures.until_failed(2)
    assert server.bodies("status/503") == [alert()] * attempts
    # A healthy endpoint gets its alert whatever the others do, and exactly once.
    assert server.bodies("ok/a") == [alert()]
    assert failed(metrics) == 2
    assert sent(metrics) == 1
    messages = sorted(record.getMessage() for record in failures.failed)
    assert all(f"after {attempts} attempt(s)" in message for message in messages)
    assert any("HTTP 503" in message for message in messages)
    # Scheme and host only: chat webhooks keep their secret in the path and query.
    assert {getattr(record, "url", None) for record in failures.failed} == {
        url_origin(server.url("status/503")),
        url_origin(refused_url),
    }
    assert not [m for m in messages if "status/503" in m]


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
async def test_a_client_error_is_not_retried(
    server: HookServer,
    make_sender: SenderFactory,
    metrics: RelayMetrics,
    failures: FailureLog,
    status: int,
) -> None:
    sender = make_sender([server.url(f"status/{status}")], attempts=4)
    sender.start()
    sender.submit(alert())
    await failures.until_failed(1)
    assert len(server.at(f"status/{status}")) == 1
    assert failed(metrics) == 1
    assert sent(metrics) == 0
    assert "after 1 attempt(s)" in failures.failed[0].getMessage()
    assert f"HTTP {status}" in failures.failed[0].getMessage()


@pytest.mark.parametrize("status", [408, 429, 500, 502])
async def test_timeouts_throttling_and_server_errors_are_retried(
    server: HookServer,
    make_sender: SenderFactory,
    metrics: RelayMetrics,
    failures: FailureLog,
    status: int,
) -> None:
    sender = make_sender([server.url(f"status/{status}")], attempts=3)
    sender.start()
    sender.submit(alert())
    await failures.until_failed(1)
    assert len(server.at(f"status/{status}")) == 3
    assert failed(metrics) == 1


# --- a slow endpoint -------------------------------------------------------------------------


def test_submit_is_a_plain_function() -> None:
    # The monitor calls it on the hot path: it must hand off without awaiting anything.
    assert not inspect.iscoroutinefunction(WebhookSender.submit)


async def test_a_slow_endpoint_blocks_neither_submit_nor_the_other_urls_and_times_out(
    server: HookServer,
    make_sender: SenderFactory,
    metrics: RelayMetrics,
    failures: FailureLog,
) -> None:
    sender = make_sender([server.url("slow/a"), server.url("ok/b")], attempts=2, timeout_s=0.3)
    sender.start()
    sender.submit(alert(1))
    await server.until(lambda: len(server.at("slow/a")) == 1 and len(server.at("ok/b")) == 1)
    # The slow endpoint holds its request; submitting more returns at once all the same
    # (reaching the next line with the request still held proves it).
    sender.submit(alert(2))
    sender.submit(alert(3))
    assert len(server.at("slow/a")) == 1
    assert server.bodies("ok/b") == [alert(1)]
    # The client timeout ends the first attempt, the retry times out too: one failure.
    await failures.until_failed(1)
    assert server.bodies("slow/a")[:2] == [alert(1), alert(1)]
    assert failed(metrics) == 1
    assert "Timeout" in failures.failed[0].getMessage()
    # Once the endpoint answers again, the alerts queued meanwhile go out.
    server.release.set()
    await server.until(lambda: len(server.at("ok/b")) == 3 and len(server.at("slow/a")) == 4)
    assert server.bodies("ok/b") == [alert(1), alert(2), alert(3)]
    assert server.bodies("slow/a")[2:] == [alert(2), alert(3)]
    await sender.stop()
    assert failed(metrics) == 1
    assert sent(metrics) == 5
