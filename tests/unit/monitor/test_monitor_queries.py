"""What clients and HTTP ask the monitor for: the shapes of statuses, alerts and statistics."""

from __future__ import annotations

import orjson
import pytest

from pingpong_relay.stats_view import StatsView
from tests.unit.monitor.support import ALPHA, BETA, T0, Clock, MonitorFactory, establish, message

# --- what clients and HTTP ask for -----------------------------------------------------------


def test_status_messages_filter_by_bot(clock: Clock, make_monitor: MonitorFactory) -> None:
    monitor = make_monitor()
    assert monitor.status_messages(lambda bot: True) == []
    establish(monitor, ALPHA, clock)
    monitor.observe(BETA, message(), clock.now)
    monitor.observe(ALPHA, message(latency_ms=900.0), clock.now)
    everything = [orjson.loads(m) for m in monitor.status_messages(lambda bot: True)]
    assert [(m["type"], m["bot"], m["status"]) for m in everything] == [
        ("bot:status", ALPHA, "degraded"),
        ("bot:status", BETA, "up"),
    ]
    only_beta = [orjson.loads(m) for m in monitor.status_messages(lambda bot: bot == BETA)]
    assert [(m["bot"], m["status"]) for m in only_beta] == [(BETA, "up")]
    assert monitor.status_messages(lambda bot: False) == []


def test_statuses_shape(clock: Clock, make_monitor: MonitorFactory) -> None:
    monitor = make_monitor()
    assert monitor.statuses() == {}
    monitor.observe(BETA, message(), clock.now)
    monitor.observe(ALPHA, message(), clock.now)
    statuses = monitor.statuses()
    assert list(statuses) == [ALPHA, BETA]
    assert statuses[ALPHA] == {
        "type": "bot:status",
        "bot": ALPHA,
        "status": "up",
        "previous": None,
        "since_ms": int(T0 * 1000),
        "at_ms": int(T0 * 1000),
        "last_seen_ms": int(T0 * 1000),
        "reason": "first seen",
    }


def test_alerts_shape(clock: Clock, make_monitor: MonitorFactory) -> None:
    monitor = make_monitor()
    assert monitor.alerts() == {"active": [], "recently_resolved": []}
    establish(monitor, ALPHA, clock)
    monitor.observe(ALPHA, message(latency_ms=900.0), clock.now)
    active = monitor.alerts()["active"]
    assert [(a["type"], a["rule"], a["bot"], a["state"]) for a in active] == [
        ("bot:alert", "slow", ALPHA, "firing")
    ]
    assert monitor.alerts()["recently_resolved"] == []
    clock.now += 120.0
    monitor.observe(ALPHA, message(latency_ms=10.0), clock.now)
    alerts = monitor.alerts()
    assert alerts["active"] == []
    resolved = alerts["recently_resolved"]
    assert [(a["rule"], a["bot"], a["state"], a["fired"]) for a in resolved] == [
        ("slow", ALPHA, "resolved", True)
    ]


def test_stats_shape(clock: Clock, make_monitor: MonitorFactory) -> None:
    monitor = make_monitor()
    monitor.observe(ALPHA, message(latency_ms=20.0), clock.now)
    clock.now += 2.0
    monitor.observe(ALPHA, message(latency_ms=40.0, kind="pong"), clock.now)
    monitor.observe(BETA, message(latency_ms=30.0), clock.now)
    clock.now += 1.0
    everything = monitor.stats("1m")
    assert everything["window"] == "1m"
    assert everything["generated_at_ms"] == int(clock.now * 1000)
    assert everything["overall"]["count"] == 3
    assert list(everything["bots"]) == [ALPHA, BETA]
    alpha = everything["bots"][ALPHA]
    assert (alpha["count"], alpha["ping"], alpha["pong"]) == (2, 1, 1)
    assert alpha["latency_ms"]["min"] == 20.0
    assert alpha["latency_ms"]["max"] == 40.0
    assert alpha["interval_ms"]["min"] == 2000.0
    one = monitor.stats("5m", BETA)
    assert one["window"] == "5m"
    assert list(one["bots"]) == [BETA]
    assert one["overall"]["count"] == 3
    with pytest.raises(KeyError):
        monitor.stats("1m", "bot:unknown")
    with pytest.raises(ValueError, match="unknown window"):
        monitor.stats("2m")


def test_stats_view_answers_none_for_unknown_bots(
    clock: Clock, make_monitor: MonitorFactory
) -> None:
    monitor = make_monitor()
    view = monitor.view
    assert isinstance(view, StatsView)
    assert view.bots() == []
    assert view.last_seen_s("bot:unknown") is None
    assert view.typical_interval_s("bot:unknown", clock.now) is None
    assert view.latency_quantile("bot:unknown", "1m", 0.5, clock.now) is None
    for step in range(3):
        monitor.observe(ALPHA, message(latency_ms=50.0), clock.now)
        if step < 2:
            clock.now += 4.0
    assert view.bots() == [ALPHA]
    assert view.last_seen_s(ALPHA) == clock.now
    typical = view.typical_interval_s(ALPHA, clock.now)
    assert typical == pytest.approx(4.0, rel=0.03)
    quantile = view.latency_quantile(ALPHA, "1m", 0.5, clock.now)
    assert quantile == pytest.approx(50.0, rel=0.03)
    assert view.last_seen_s("bot:unknown") is None
