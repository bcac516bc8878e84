"""What the monitor makes of each message: status and alert changes to the clients watching."""

from __future__ import annotations

import logging

import pytest

from pingpong_relay.hub import Hub
from pingpong_relay.messages import parse_bot_message
from pingpong_relay.rules import LatencyRule
from pingpong_relay.stats import ESTABLISHED_MESSAGES, ESTABLISHED_SPAN_S
from pingpong_relay.telemetry.metrics import RelayMetrics
from tests.unit.monitor.support import (
    ALPHA,
    BETA,
    T0,
    Clock,
    FakePeer,
    MonitorFactory,
    RecordingSender,
    alerts_of,
    establish,
    firing_sample,
    message,
    statuses_of,
    watcher,
)

# --- observe: statuses -----------------------------------------------------------------------


def test_a_first_message_broadcasts_up_to_status_watchers_only(
    hub: Hub, metrics: RelayMetrics, clock: Clock, make_monitor: MonitorFactory
) -> None:
    monitor = make_monitor()
    plain = FakePeer("CLIENT-plain")
    hub.add(plain)
    status = watcher(hub, "status", "status")
    alerts = watcher(hub, "alerts", "alerts")
    monitor.observe(ALPHA, message(latency_ms=20.0), clock.now)
    assert status.messages == [
        {
            "type": "bot:status",
            "bot": ALPHA,
            "status": "up",
            "previous": None,
            "since_ms": int(T0 * 1000),
            "at_ms": int(T0 * 1000),
            "last_seen_ms": int(T0 * 1000),
            "reason": "first seen",
        }
    ]
    assert plain.sent == []
    assert alerts.sent == []
    # On probation: no metric series yet (made-up ids must not churn through them).
    labels = {"bot": ALPHA}
    last_seen = "pingpong_bot_last_seen_timestamp_seconds"
    assert metrics.registry.get_sample_value("pingpong_bot_up", labels) is None
    assert metrics.registry.get_sample_value(last_seen, labels) is None
    # Established: its series from then on.
    for _ in range(ESTABLISHED_MESSAGES - 1):
        clock.now += ESTABLISHED_SPAN_S
        monitor.observe(ALPHA, message(latency_ms=20.0), clock.now)
    assert metrics.registry.get_sample_value("pingpong_bot_up", labels) == 1.0
    assert metrics.registry.get_sample_value(last_seen, labels) == clock.now
    assert metrics.registry.get_sample_value("pingpong_bot_latency_seconds_count", labels) == 1
    assert metrics.registry.get_sample_value("pingpong_bot_latency_seconds_sum", labels) == 0.02
    assert len(status.messages) == 1


def test_further_healthy_messages_broadcast_no_status(
    hub: Hub, clock: Clock, make_monitor: MonitorFactory
) -> None:
    monitor = make_monitor()
    status = watcher(hub, "status", "status")
    for _ in range(3):
        monitor.observe(ALPHA, message(), clock.now)
        clock.now += 1.0
    assert statuses_of(status) == [(ALPHA, "up", None)]


def test_status_messages_go_only_to_watchers_of_that_bot(
    hub: Hub, clock: Clock, make_monitor: MonitorFactory
) -> None:
    monitor = make_monitor()
    beta_only = watcher(hub, "beta", "status", bots=("*beta",))
    monitor.observe(ALPHA, message(), clock.now)
    monitor.observe(BETA, message(), clock.now)
    assert statuses_of(beta_only) == [(BETA, "up", None)]


def test_a_message_without_latency_is_not_observed_as_latency(
    metrics: RelayMetrics, clock: Clock, make_monitor: MonitorFactory
) -> None:
    monitor = make_monitor()
    monitor.observe(ALPHA, message(latency_ms=None), clock.now)
    labels = {"bot": ALPHA}
    assert metrics.registry.get_sample_value("pingpong_bot_latency_seconds_count", labels) is None
    assert monitor.view.latency_quantile(ALPHA, "1m", 0.5, clock.now) is None
    assert monitor.view.last_seen_s(ALPHA) == T0


# --- observe: alerts -------------------------------------------------------------------------


def test_latency_over_the_threshold_pends_fires_and_degrades_at_once(
    hub: Hub, metrics: RelayMetrics, clock: Clock, make_monitor: MonitorFactory
) -> None:
    monitor = make_monitor()
    recorder = RecordingSender()
    monitor.alert_sink = recorder.submit
    alerts = watcher(hub, "alerts", "alerts")
    status = watcher(hub, "status", "status")
    plain = FakePeer("CLIENT-plain")
    hub.add(plain)
    establish(monitor, ALPHA, clock)
    monitor.observe(ALPHA, message(latency_ms=20.0), clock.now)
    assert alerts.sent == []
    assert firing_sample(metrics, "slow", ALPHA) is None

    clock.now += 1.0
    monitor.observe(ALPHA, message(latency_ms=900.0), clock.now)
    assert alerts_of(alerts) == [("slow", ALPHA, "pending"), ("slow", ALPHA, "firing")]
    pending, firing = alerts.messages
    assert pending["kind"] == "latency"
    assert pending["threshold"] == 100.0
    assert firing["fired"] is True
    assert firing["value"] > 100.0
    assert firing["at_ms"] == int(clock.now * 1000)
    assert firing_sample(metrics, "slow", ALPHA) == 1.0
    assert statuses_of(status) == [(ALPHA, "up", None), (ALPHA, "degraded", "up")]
    assert metrics.registry.get_sample_value("pingpong_bot_up", {"bot": ALPHA}) == 0.5
    assert plain.sent == []
    # Every alert event goes to the webhooks too, exactly as the clients got it.
    assert recorder.submitted == alerts.messages


def test_a_resolved_alert_removes_its_firing_sample(
    hub: Hub, metrics: RelayMetrics, clock: Clock, make_monitor: MonitorFactory
) -> None:
    monitor = make_monitor()
    alerts = watcher(hub, "alerts", "alerts")
    status = watcher(hub, "status", "status")
    establish(monitor, ALPHA, clock)
    monitor.observe(ALPHA, message(latency_ms=900.0), clock.now)
    assert firing_sample(metrics, "slow", ALPHA) == 1.0
    # Past the 1m window the slow sample is gone; a fast one resolves the alert.
    clock.now += 120.0
    monitor.observe(ALPHA, message(latency_ms=10.0), clock.now)
    assert alerts_of(alerts) == [
        ("slow", ALPHA, "pending"),
        ("slow", ALPHA, "firing"),
        ("slow", ALPHA, "resolved"),
    ]
    assert alerts.messages[-1]["fired"] is True
    assert firing_sample(metrics, "slow", ALPHA) is None
    assert "pingpong_alerts_firing{" not in metrics.render().decode()
    assert statuses_of(status)[-1] == (ALPHA, "up", "degraded")
    assert metrics.registry.get_sample_value("pingpong_bot_up", {"bot": ALPHA}) == 1.0


def test_a_pending_alert_that_resolves_never_sets_the_firing_gauge(
    hub: Hub, metrics: RelayMetrics, clock: Clock, make_monitor: MonitorFactory
) -> None:
    rule = LatencyRule(name="slow", percentile=0.5, threshold_ms=100.0, for_s=60.0)
    monitor = make_monitor([rule])
    alerts = watcher(hub, "alerts", "alerts")
    establish(monitor, ALPHA, clock)
    monitor.observe(ALPHA, message(latency_ms=900.0), clock.now)
    clock.now += 120.0
    monitor.observe(ALPHA, message(latency_ms=10.0), clock.now)
    assert alerts_of(alerts) == [("slow", ALPHA, "pending"), ("slow", ALPHA, "resolved")]
    assert alerts.messages[-1]["fired"] is False
    assert firing_sample(metrics, "slow", ALPHA) is None


def test_alert_messages_go_only_to_watchers_of_that_bot(
    hub: Hub, clock: Clock, make_monitor: MonitorFactory
) -> None:
    monitor = make_monitor()
    alpha_only = watcher(hub, "alpha", "alerts", bots=("*alpha",))
    establish(monitor, BETA, clock)
    establish(monitor, ALPHA, clock)
    monitor.observe(BETA, message(latency_ms=900.0), clock.now)
    assert alpha_only.sent == []
    monitor.observe(ALPHA, message(latency_ms=900.0), clock.now)
    assert alerts_of(alpha_only) == [("slow", ALPHA, "pending"), ("slow", ALPHA, "firing")]


# --- observe: a bot clock far from the relay's -------------------------------------------------


def test_a_message_past_the_clock_skew_bound_is_counted_logged_and_still_observed(
    metrics: RelayMetrics,
    clock: Clock,
    make_monitor: MonitorFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pingpong_relay.monitor")
    monitor = make_monitor(max_clock_skew_s=300.0)
    design = parse_bot_message(
        b'{"type":"ping","latency":10,"timestamp":1234567890,"source":"bot"}'
    )
    for _ in range(3):
        monitor.observe(ALPHA, design, clock.now)
        clock.now += 1.0
    monitor.observe(ALPHA, message(latency_ms=20.0), clock.now)  # a clock that is right
    assert metrics.registry.get_sample_value("pingpong_clock_skew_messages_total") == 3
    stats = monitor.stats("1m", ALPHA)["bots"][ALPHA]
    assert stats["clock_skew"] == {"messages": 3}
    assert stats["clock_skew_suspected"] is True
    assert stats["transit_ms"]["max"] == pytest.approx(3000.0, rel=0.03)  # the sound one
    assert stats["count"] == 4  # and every message in the other figures
    assert monitor.statuses()[ALPHA]["status"] == "up"
    # At INFO (the message was relayed; the bot's clock is wrong, not the relay), at most
    # once a minute, with how many and how far: the first, then the rest at the interval.
    clock.now += 60.0
    monitor._log_clock_skew(monitor._skew_log.flush("clock_skew", clock.now))
    logged = [r for r in caplog.records if getattr(r, "event", None) == "clock_skew"]
    assert [(r.levelno, getattr(r, "messages", None)) for r in logged] == [
        (logging.INFO, 1),
        (logging.INFO, 2),
    ]
    assert getattr(logged[0], "bot", None) == ALPHA
    assert "--max-clock-skew" in logged[0].getMessage()
    assert "left out of the transit statistics" in logged[0].getMessage()
    assert "s behind" in logged[0].getMessage()
