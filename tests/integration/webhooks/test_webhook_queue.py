"""WebhookSender against a real aiohttp HTTP server on loopback: the bounded queue, stopping."""

from __future__ import annotations

import asyncio

from pingpong_relay.notify.webhooks import WebhookSender
from pingpong_relay.telemetry.metrics import RelayMetrics
from tests.integration.webhooks.support import (
    FAST_BACKOFF,
    WAIT_S,
    FailureLog,
    HookServer,
    SenderFactory,
    alert,
    dropped,
    failed,
    sent,
)

# --- the bounded queue -----------------------------------------------------------------------


async def _fill_behind_a_held_request(
    server: HookServer, sender: WebhookSender, queued: int
) -> None:
    """Alert 0 is held at /slow/a; alerts 1..queued wait in the sender's queue."""
    sender.start()
    sender.submit(alert(0))
    await server.until(lambda: len(server.at("slow/a")) == 1)
    for number in range(1, queued + 1):
        sender.submit(alert(number))


async def test_a_full_queue_drops_the_oldest_alert_and_counts_it(
    server: HookServer,
    make_sender: SenderFactory,
    metrics: RelayMetrics,
    failures: FailureLog,
) -> None:
    sender = make_sender([server.url("slow/a")], attempts=1, queue_size=2)
    await _fill_behind_a_held_request(server, sender, queued=2)
    assert dropped(metrics) == 0
    sender.submit(alert(3))  # the queue holds 1 and 2: 1 goes
    assert dropped(metrics) == 1
    sender.submit(alert(4))  # now 2 goes
    assert dropped(metrics) == 2
    assert sum("dropped the oldest" in r.getMessage() for r in failures.warnings) == 2
    server.release.set()
    await server.until(lambda: len(server.seen) == 3)
    assert server.bodies("slow/a") == [alert(0), alert(3), alert(4)]
    assert failed(metrics) == 0


async def test_stop_after_an_overflow_returns_once_the_queue_is_delivered(
    server: HookServer, make_sender: SenderFactory, metrics: RelayMetrics
) -> None:
    sender = make_sender([server.url("slow/a")], attempts=1, queue_size=2)
    await _fill_behind_a_held_request(server, sender, queued=3)  # alert 1 is dropped
    assert dropped(metrics) == 1
    server.release.set()
    await server.until(lambda: len(server.seen) == 3)
    # Everything left was delivered, so the drain has nothing to wait for: stop() must
    # not sit out its drain timeout (60 s here) because of the alert that was dropped.
    await asyncio.wait_for(sender.stop(drain_timeout_s=60), WAIT_S)
    assert server.bodies("slow/a") == [alert(0), alert(2), alert(3)]
    assert sent(metrics) == 3


# --- stop ------------------------------------------------------------------------------------


async def test_stop_delivers_what_is_queued_to_a_fast_endpoint(
    server: HookServer, make_sender: SenderFactory, metrics: RelayMetrics
) -> None:
    sender = make_sender([server.url("ok/a")])
    sender.start()
    for number in range(10):
        sender.submit(alert(number))
    await asyncio.wait_for(sender.stop(drain_timeout_s=WAIT_S), WAIT_S * 2)
    # No waiting on the server here: stop() itself waited for every delivery.
    assert server.bodies("ok/a") == [alert(number) for number in range(10)]
    assert sent(metrics) == 10


async def test_stop_gives_up_on_a_stuck_endpoint_after_its_drain_timeout(
    server: HookServer, make_sender: SenderFactory, metrics: RelayMetrics
) -> None:
    sender = make_sender([server.url("slow/a")], attempts=1, timeout_s=60.0)
    sender.start()
    sender.submit(alert(0))
    sender.submit(alert(1))
    await server.until(lambda: len(server.at("slow/a")) == 1)
    await asyncio.wait_for(sender.stop(drain_timeout_s=0.2), WAIT_S)
    assert not server.release.is_set()  # the endpoint never answered
    assert server.bodies("slow/a") == [alert(0)]
    assert sent(metrics) == 0
    assert failed(metrics) == 0  # cancelled at shutdown, not failed after retries
    # No worker is left behind.
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "webhook-sender"]
    await sender.stop()  # a second stop is a no-op


async def test_stop_before_start_is_a_no_op(make_sender: SenderFactory, server: HookServer) -> None:
    sender = make_sender([server.url("ok/a")])
    await asyncio.wait_for(sender.stop(), WAIT_S)
    assert server.seen == []


async def test_start_twice_runs_one_worker(server: HookServer, make_sender: SenderFactory) -> None:
    sender = make_sender([server.url("ok/a")])
    sender.start()
    sender.start()
    assert len([t for t in asyncio.all_tasks() if t.get_name() == "webhook-sender"]) == 1
    sender.submit(alert())
    await server.until(lambda: len(server.seen) == 1)
    await sender.stop()
    assert server.bodies("ok/a") == [alert()]


# --- no URLs ---------------------------------------------------------------------------------


async def test_without_urls_nothing_starts_and_submit_does_nothing(
    metrics: RelayMetrics,
) -> None:
    sender = WebhookSender([], metrics, queue_size=1, backoff=FAST_BACKOFF)
    before = asyncio.all_tasks()
    sender.start()
    assert asyncio.all_tasks() == before
    # Not even encoded: an unserialisable alert and an overflowing count are both ignored.
    sender.submit({"not": object()})
    for number in range(5):
        sender.submit(alert(number))
    assert dropped(metrics) == 0
    assert sent(metrics) == 0
    await asyncio.wait_for(sender.stop(), WAIT_S)
    assert asyncio.all_tasks() == before
