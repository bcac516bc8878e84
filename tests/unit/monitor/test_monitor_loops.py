"""The monitor's background loops: evaluation (silence) and the statistics broadcast."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pingpong_relay.defaults import WINDOWS
from pingpong_relay.hub import Hub
from pingpong_relay.monitor import OVERALL
from pingpong_relay.telemetry.metrics import RelayMetrics
from tests.unit.monitor.support import (
    ALPHA,
    BETA,
    SILENCE_NOW,
    WAIT_S,
    Clock,
    FakePeer,
    MonitorFactory,
    alerts_of,
    establish,
    firing_sample,
    message,
    statuses_of,
    watcher,
)

# --- the evaluation loop ---------------------------------------------------------------------


def test_evaluation_notices_a_silent_bot(
    hub: Hub, metrics: RelayMetrics, clock: Clock, make_monitor: MonitorFactory
) -> None:
    monitor = make_monitor([SILENCE_NOW])
    status = watcher(hub, "status", "status")
    alerts = watcher(hub, "alerts", "alerts")
    establish(monitor, ALPHA, clock)
    clock.now += 30.0
    events, changes = monitor.engine.evaluate(monitor.view, clock.now)
    assert (events, changes) == ([], [])
    clock.now += 1.0
    monitor._publish(*monitor.engine.evaluate(monitor.view, clock.now))
    assert statuses_of(status) == [(ALPHA, "up", None), (ALPHA, "down", "up")]
    assert alerts_of(alerts) == [("silent", ALPHA, "pending"), ("silent", ALPHA, "firing")]
    assert alerts.messages[-1]["value"] == 31.0
    assert firing_sample(metrics, "silent", ALPHA) == 1.0
    assert metrics.registry.get_sample_value("pingpong_bot_up", {"bot": ALPHA}) == 0.0
    # The bot speaks again: up, and the alert resolves.
    clock.now += 1.0
    monitor.observe(ALPHA, message(), clock.now)
    assert statuses_of(status)[-1] == (ALPHA, "up", "down")
    assert alerts_of(alerts)[-1] == ("silent", ALPHA, "resolved")
    assert firing_sample(metrics, "silent", ALPHA) is None


async def test_the_evaluation_loop_broadcasts_down_for_a_silent_bot(
    hub: Hub, metrics: RelayMetrics, clock: Clock, make_monitor: MonitorFactory
) -> None:
    monitor = make_monitor([SILENCE_NOW], evaluation_interval_s=0.001, stats_interval_s=3600.0)
    status = watcher(hub, "status", "status")
    establish(monitor, ALPHA, clock)
    clock.now += 31.0
    monitor.start()
    tasks = {t.get_name() for t in asyncio.all_tasks()}
    assert {"alert-evaluation", "stats-broadcast"} <= tasks
    await status.until(lambda ms: any(m.get("status") == "down" for m in ms))
    assert statuses_of(status) == [(ALPHA, "up", None), (ALPHA, "down", "up")]
    assert firing_sample(metrics, "silent", ALPHA) == 1.0
    await asyncio.wait_for(monitor.stop(), WAIT_S)
    tasks = {t.get_name() for t in asyncio.all_tasks()}
    assert not {"alert-evaluation", "stats-broadcast"} & tasks


async def test_the_evaluation_loop_survives_a_failed_evaluation(
    hub: Hub,
    clock: Clock,
    make_monitor: MonitorFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monitor = make_monitor([SILENCE_NOW], evaluation_interval_s=0.001, stats_interval_s=3600.0)
    status = watcher(hub, "status", "status")
    establish(monitor, ALPHA, clock)
    clock.now += 31.0
    real_evaluate = monitor.engine.evaluate
    calls: list[float] = []

    def evaluate_failing_once(*args: Any) -> Any:
        calls.append(clock.now)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real_evaluate(*args)

    monkeypatch.setattr(monitor.engine, "evaluate", evaluate_failing_once)
    monitor.start()
    await status.until(lambda ms: any(m.get("status") == "down" for m in ms))
    assert len(calls) >= 2
    assert any("alert evaluation failed" in r.getMessage() for r in caplog.records)


# --- statistics broadcast --------------------------------------------------------------------


def stats_bots(peer: FakePeer) -> list[str]:
    return [m["bot"] for m in peer.messages if m["type"] == "bot:stats"]


async def test_stats_go_to_stats_watchers_of_each_bot_and_overall(
    hub: Hub, clock: Clock, make_monitor: MonitorFactory
) -> None:
    monitor = make_monitor()
    monitor.observe(ALPHA, message(latency_ms=20.0), clock.now)
    monitor.observe(BETA, message(latency_ms=30.0), clock.now)
    everything = watcher(hub, "everything", "stats")
    alpha_only = watcher(hub, "alpha", "stats", bots=("*alpha",))
    overall_only = watcher(hub, "overall", "stats", bots=("[*]",))
    bots_only = watcher(hub, "bots", "stats", bots=("bot:*",))
    status = watcher(hub, "status", "status")
    plain = FakePeer("CLIENT-plain")
    hub.add(plain)
    clock.now += 1.0
    await monitor._broadcast_stats()
    assert stats_bots(everything) == [OVERALL, ALPHA, BETA]
    assert stats_bots(alpha_only) == [ALPHA]
    assert stats_bots(overall_only) == [OVERALL]
    assert stats_bots(bots_only) == [ALPHA, BETA]
    assert status.sent == []
    assert plain.sent == []
    overall, alpha, _ = everything.messages
    assert overall == {
        "type": "bot:stats",
        "bot": OVERALL,
        "generated_at_ms": int(clock.now * 1000),
        "windows": overall["windows"],
    }
    assert list(overall["windows"]) == list(WINDOWS)
    assert overall["windows"]["1m"]["count"] == 2
    assert alpha["windows"]["1m"]["count"] == 1
    assert alpha["windows"]["1h"]["latency_ms"]["max"] == 20.0


async def test_stats_only_for_bots_someone_watches(
    hub: Hub, clock: Clock, make_monitor: MonitorFactory
) -> None:
    monitor = make_monitor()
    monitor.observe(ALPHA, message(), clock.now)
    monitor.observe(BETA, message(), clock.now)
    beta_only = watcher(hub, "beta", "stats", bots=("*beta",))
    await monitor._broadcast_stats()
    assert stats_bots(beta_only) == [BETA]


async def test_no_stats_when_nobody_watches_them(
    hub: Hub, metrics: RelayMetrics, clock: Clock, make_monitor: MonitorFactory
) -> None:
    monitor = make_monitor()
    monitor.observe(ALPHA, message(), clock.now)
    plain = FakePeer("CLIENT-plain")
    hub.add(plain)
    status = watcher(hub, "status", "status")
    deliveries_before = metrics.registry.get_sample_value("pingpong_deliveries_total")
    await monitor._broadcast_stats()
    assert plain.sent == []
    assert status.sent == []
    assert metrics.registry.get_sample_value("pingpong_deliveries_total") == deliveries_before


async def test_the_stats_loop_broadcasts_on_its_interval(
    hub: Hub, clock: Clock, make_monitor: MonitorFactory
) -> None:
    monitor = make_monitor(evaluation_interval_s=3600.0, stats_interval_s=0.001)
    monitor.observe(ALPHA, message(), clock.now)
    everything = watcher(hub, "everything", "stats")
    monitor.start()
    messages = await everything.until(lambda ms: len(ms) >= 4)
    assert [m["bot"] for m in messages[:4]] == [OVERALL, ALPHA, OVERALL, ALPHA]
    await asyncio.wait_for(monitor.stop(), WAIT_S)
