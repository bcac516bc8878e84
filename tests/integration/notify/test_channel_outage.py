"""NotificationSender when a channel's receiver is down, refuses, or hangs: retries, failures
counted and logged once per outage, other channels unaffected, submit never blocked."""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web

from pingpong_relay.telemetry.metrics import RelayMetrics
from tests.integration.notify.support import (
    WAIT_S,
    EventLog,
    SenderFactory,
    dropped,
    failed,
    json_url,
    sent,
    transition,
)
from tests.integration.webhooks.support import HookServer


async def test_a_receiver_that_answers_503_is_retried_then_counted(
    receiver: HookServer, make_sender: SenderFactory, metrics: RelayMetrics, sender_log: EventLog
) -> None:
    sender = make_sender([json_url(receiver, "status/503")], attempts=3)
    sender.submit(transition())
    await sender_log.until("notification_failed")
    assert len(receiver.at("status/503")) == 3
    assert failed(metrics, 1) == 1
    assert sent(metrics, 1) == 0
    (record,) = sender_log.of("notification_failed")
    assert record.getMessage().startswith("notification channel 1 (json://…) failed after 3")
    assert record.levelname == "WARNING"


async def test_a_channel_that_is_down_is_logged_once_per_outage_and_others_still_deliver(
    receiver: HookServer,
    make_sender: SenderFactory,
    metrics: RelayMetrics,
    sender_log: EventLog,
    refused_port: socket.socket,
) -> None:
    port = refused_port.getsockname()[1]
    down = f"json://hook-user:hook-s3cret@127.0.0.1:{port}/token-path-abcdef"
    sender = make_sender([down, json_url(receiver, "ok/b")], attempts=2, group_interval_s=0.2)
    sender.submit(transition("bot:a"))
    await sender_log.until("notification_failed")
    await receiver.until(lambda: len(receiver.seen) == 1)
    assert (failed(metrics, 1), sent(metrics, 2)) == (1, 1)
    # A second outage-time notification: counted, not logged again.
    sender.submit(transition("bot:b"))
    await receiver.until(lambda: len(receiver.seen) == 2)
    await sender_log.until("notification_failed_again")
    assert failed(metrics, 1) == 2
    assert len(sender_log.of("notification_failed")) == 1
    # Neither the password nor the token path is ever logged.
    assert "s3cret" not in sender_log.text()
    assert "token-path" not in sender_log.text()
    assert "Connection" in sender_log.of("notification_failed")[0].getMessage()

    # The receiver comes up on that very port: the next notification is delivered, the
    # recovery logged, and a new outage would be logged again.
    recovered = HookServer()
    app = web.Application()
    app.router.add_post("/{tail:.*}", recovered.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    refused_port.listen()
    await web.SockSite(runner, refused_port).start()
    try:
        sender.submit(transition("bot:c"))
        await sender_log.until("notification_recovered")
        assert [body["title"].split()[1] for body in recovered.bodies("token-path-abcdef")] == [
            "bot:c"
        ]
        assert "(1 more notification(s) failed meanwhile)" in (
            sender_log.of("notification_recovered")[0].getMessage()
        )
        assert sent(metrics, 1) == 1
    finally:
        await runner.cleanup()


async def test_a_stuck_send_blocks_neither_submit_nor_the_other_channel(
    receiver: HookServer, make_sender: SenderFactory, metrics: RelayMetrics
) -> None:
    # rto: Apprise's read timeout, long enough that the held request stays held.
    stuck = json_url(receiver, "slow/a") + "?rto=60"
    sender = make_sender(
        [stuck, json_url(receiver, "ok/b")], timeout_s=60.0, group_wait_s=0, group_interval_s=0.1
    )
    sender.submit(transition("bot:1"))
    await receiver.until(lambda: len(receiver.at("slow/a")) == 1 and len(receiver.at("ok/b")) == 1)
    # Channel 1's request is held. More transitions go in at once, and channel 2 gets
    # each of their groups while channel 1 still waits for its first answer.
    for n in (2, 3):
        sender.submit(transition(f"bot:{n}"))
        await receiver.until(lambda n=n: len(receiver.at("ok/b")) == n)  # type: ignore[misc]
    assert len(receiver.at("slow/a")) == 1
    receiver.release.set()
    await receiver.until(lambda: len(receiver.at("slow/a")) == 3)
    await sender.stop()
    assert [b["title"].split()[1] for b in receiver.bodies("slow/a")] == ["bot:1", "bot:2", "bot:3"]
    assert (sent(metrics, 1), sent(metrics, 2)) == (3, 3)


async def test_a_full_queue_drops_the_oldest_notification_and_counts_it(
    receiver: HookServer, make_sender: SenderFactory, metrics: RelayMetrics, sender_log: EventLog
) -> None:
    stuck = json_url(receiver, "slow/a") + "?rto=60"
    sender = make_sender(
        [stuck], timeout_s=60.0, queue_size=1, group_wait_s=0, group_interval_s=0.05
    )
    sender.submit(transition("bot:1"))
    await receiver.until(lambda: len(receiver.at("slow/a")) == 1)
    # One group each (waiting for each to leave its group): 2 waits in the queue, 3
    # pushes it out, 4 pushes out 3.
    sender.submit(transition("bot:2"))
    await sender_log.until("notification_group", 2)
    sender.submit(transition("bot:3"))
    await sender_log.until("notification_dropped")
    assert dropped(metrics, 1) == 1
    sender.submit(transition("bot:4"))
    await sender_log.until("notification_dropped_again")
    assert dropped(metrics, 1) == 2
    assert len(sender_log.of("notification_dropped")) == 1  # logged once
    receiver.release.set()
    await receiver.until(lambda: len(receiver.seen) == 2)
    await sender.stop()
    assert [b["title"].split()[1] for b in receiver.bodies("slow/a")] == ["bot:1", "bot:4"]


async def test_stop_sends_the_waiting_group_at_once(
    receiver: HookServer, make_sender: SenderFactory, metrics: RelayMetrics
) -> None:
    sender = make_sender([json_url(receiver, "ok/a")], group_wait_s=3600.0)
    sender.submit(transition())
    await asyncio.wait_for(sender.stop(drain_timeout_s=WAIT_S), WAIT_S * 2)
    # No waiting on the receiver: stop() itself waited for the delivery.
    assert len(receiver.seen) == 1
    assert sent(metrics, 1) == 1


async def test_stop_gives_up_on_a_stuck_channel_after_its_drain_timeout(
    receiver: HookServer, make_sender: SenderFactory, metrics: RelayMetrics
) -> None:
    stuck = json_url(receiver, "slow/a") + "?rto=60"
    sender = make_sender([stuck], timeout_s=60.0, group_wait_s=0)
    sender.submit(transition())
    await receiver.until(lambda: len(receiver.seen) == 1)
    await asyncio.wait_for(sender.stop(drain_timeout_s=0.2), WAIT_S)
    assert not receiver.release.is_set()  # the receiver never answered
    assert (sent(metrics, 1), failed(metrics, 1)) == (0, 0)  # cancelled, not failed
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("notification-")]
    await sender.stop()  # a second stop is a no-op
