"""Many bots: the cap on tracked bots, probation, eviction, forgetting and restored alerts."""

from __future__ import annotations

import logging

import pytest

from pingpong_relay.hub import Hub
from pingpong_relay.rules import SilenceRule
from pingpong_relay.stats import ESTABLISHED_MESSAGES
from pingpong_relay.telemetry.metrics import RelayMetrics
from tests.unit.monitor.support import (
    ALPHA,
    BETA,
    SILENCE_NOW,
    Clock,
    MonitorFactory,
    RecordingSender,
    alerts_of,
    establish,
    firing_sample,
    message,
    statuses_of,
    watcher,
)

# --- too many bots ---------------------------------------------------------------------------


def test_bots_over_max_bots_are_counted_untracked_and_logged_once(
    hub: Hub,
    metrics: RelayMetrics,
    clock: Clock,
    make_monitor: MonitorFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="pingpong_relay.monitor")
    monitor = make_monitor(max_bots=1)
    status = watcher(hub, "status", "status")
    establish(monitor, ALPHA, clock)
    for bot in (BETA, "bot:pingpong/gamma", BETA):
        monitor.observe(bot, message(), clock.now)
    assert metrics.registry.get_sample_value("pingpong_bot_messages_untracked_total") == 3
    warnings = [r for r in caplog.records if getattr(r, "event", None) == "max_bots_reached"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert getattr(warnings[0], "bot", None) == BETA
    assert "more than 1 established bots" in warnings[0].getMessage()
    assert "--max-bots" in warnings[0].getMessage()
    # The untracked bots get no status, metrics or per-bot statistics.
    assert statuses_of(status) == [(ALPHA, "up", None)]
    assert list(monitor.statuses()) == [ALPHA]
    assert monitor.view.bots() == [ALPHA]
    last_seen = "pingpong_bot_last_seen_timestamp_seconds"
    assert metrics.registry.get_sample_value(last_seen, {"bot": BETA}) is None
    # They still count overall.
    assert monitor.stats("1m")["overall"]["count"] == ESTABLISHED_MESSAGES + 3


def test_known_bots_are_still_tracked_after_the_cap(
    metrics: RelayMetrics, clock: Clock, make_monitor: MonitorFactory
) -> None:
    monitor = make_monitor(max_bots=1)
    establish(monitor, ALPHA, clock)
    monitor.observe(BETA, message(), clock.now)
    clock.now += 1.0
    monitor.observe(ALPHA, message(), clock.now)
    assert metrics.registry.get_sample_value("pingpong_bot_messages_untracked_total") == 1
    assert monitor.view.last_seen_s(ALPHA) == clock.now


# --- probation, eviction, forgetting and restored alerts -------------------------------------


def bot_series(metrics: RelayMetrics) -> set[str]:
    """Every bot that some per-bot metric series is labelled with."""
    return {
        sample.labels["bot"]
        for family in metrics.registry.collect()
        for sample in family.samples
        if "bot" in sample.labels
    }


def test_a_flood_of_one_message_bots_neither_alerts_nor_starves_a_real_bot(
    hub: Hub,
    metrics: RelayMetrics,
    clock: Clock,
    make_monitor: MonitorFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pingpong_relay.monitor")
    monitor = make_monitor(max_bots=5)
    recorder = RecordingSender()
    monitor.alert_sink = recorder.submit
    alerts = watcher(hub, "alerts", "alerts")
    establish(monitor, ALPHA, clock)
    for i in range(1000):
        clock.now += 0.001
        # Slow enough for the latency rule, which would pend (and page) at once.
        monitor.observe(f"bot:pingpong/junk{i}", message(latency_ms=900.0), clock.now)
    assert alerts.sent == []
    assert recorder.submitted == []
    # One slot holds ALPHA, the other four turn over; bots on probation have no series.
    assert len(monitor.book) == 5
    assert metrics.registry.get_sample_value("pingpong_bots_evicted_total") == 996
    assert metrics.registry.get_sample_value("pingpong_bot_messages_untracked_total") == 0
    assert bot_series(metrics) == {ALPHA}
    assert set(monitor.statuses()) == set(monitor.book.bots())
    # Logged at most once per 10 s with a count: once for the first, once for the rest.
    clock.now += 10.0
    monitor._log_evictions(monitor._evictions_log.flush("evicted", clock.now))
    logged = [r for r in caplog.records if getattr(r, "event", None) == "bots_evicted"]
    assert [getattr(r, "bots", None) for r in logged] == [1, 995]
    # A real bot arriving after the flood is tracked, gets a status, and alerts once
    # established; its silence pages, the junk's never does.
    establish(monitor, BETA, clock)
    assert monitor.statuses()[BETA]["status"] == "up"
    assert monitor.stats("1m", BETA)["bots"][BETA]["count"] == ESTABLISHED_MESSAGES
    clock.now += 100.0
    monitor._publish(*monitor.engine.evaluate(monitor.view, clock.now))
    silent = {(a["rule"], a["bot"], a["state"]) for a in recorder.submitted}
    assert silent == {
        ("silent", bot, state) for bot in (ALPHA, BETA) for state in ("pending", "firing")
    }


def test_a_bot_on_probation_goes_silent_without_an_alert(
    hub: Hub, metrics: RelayMetrics, clock: Clock, make_monitor: MonitorFactory
) -> None:
    monitor = make_monitor([SILENCE_NOW])
    status = watcher(hub, "status", "status")
    alerts = watcher(hub, "alerts", "alerts")
    monitor.observe(ALPHA, message(), clock.now)
    monitor.observe(ALPHA, message(), clock.now + 0.1)
    clock.now += 600.0
    assert monitor.engine.evaluate(monitor.view, clock.now) == ([], [])
    assert statuses_of(status) == [(ALPHA, "up", None)]
    assert alerts.sent == []
    # Heard once more, over the span: established, and from then on silence counts.
    monitor.observe(ALPHA, message(), clock.now)
    assert monitor.book.is_established(ALPHA)
    clock.now += 31.0
    monitor._publish(*monitor.engine.evaluate(monitor.view, clock.now))
    assert alerts_of(alerts) == [("silent", ALPHA, "pending"), ("silent", ALPHA, "firing")]
    assert firing_sample(metrics, "silent", ALPHA) == 1.0


def test_bots_silent_past_forget_after_are_forgotten_without_a_notification(
    hub: Hub,
    metrics: RelayMetrics,
    clock: Clock,
    make_monitor: MonitorFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pingpong_relay.monitor")
    monitor = make_monitor([SILENCE_NOW], forget_after_s=3600.0)
    recorder = RecordingSender()
    monitor.alert_sink = recorder.submit
    establish(monitor, ALPHA, clock)
    monitor.observe(BETA, message(), clock.now)
    clock.now += 60.0
    monitor._publish(*monitor.engine.evaluate(monitor.view, clock.now))
    assert firing_sample(metrics, "silent", ALPHA) == 1.0
    sent = len(recorder.submitted)
    clock.now += 3600.0
    assert sorted(monitor.forget_silent(clock.now)) == [ALPHA, BETA]
    monitor._publish(*monitor.engine.evaluate(monitor.view, clock.now))
    assert len(recorder.submitted) == sent
    assert monitor.statuses() == {}
    assert monitor.alerts()["active"] == []
    assert bot_series(metrics) == set()
    [forgotten] = [r for r in caplog.records if getattr(r, "event", None) == "bots_forgotten"]
    assert getattr(forgotten, "bots", None) == 2
    assert make_monitor(forget_after_s=0.0).forget_silent(clock.now + 1e9) == []


def test_a_seeded_bot_takes_up_an_alert_already_notified_instead_of_sending_it_again(
    hub: Hub, metrics: RelayMetrics, clock: Clock, make_monitor: MonitorFactory
) -> None:
    rule = SilenceRule(name="silent", timeout_s=30.0, for_s=30.0)
    monitor = make_monitor([rule])
    recorder = RecordingSender()
    monitor.alert_sink = recorder.submit
    monitor._started_s = clock.now  # as start() sets it, without its loops
    last_seen = clock.now - 600.0
    fired_at = last_seen + 60.0
    assert monitor.seed(ALPHA, last_seen, [("silent", "firing", fired_at)])
    assert monitor.seed(BETA, last_seen, [("silent", "resolved", fired_at)])
    monitor._publish(*monitor.engine.evaluate(monitor.view, clock.now))
    assert monitor.statuses()[ALPHA]["status"] == "down"
    assert firing_sample(metrics, "silent", ALPHA) == 1.0
    assert metrics.registry.get_sample_value("pingpong_bot_up", {"bot": ALPHA}) == 0.0
    [active] = monitor.alerts()["active"]
    assert (active["bot"], active["state"], active["since_ms"]) == (
        ALPHA,
        "firing",
        int(fired_at * 1000),
    )
    # BETA's last notification was a resolution: judged afresh from the relay's start.
    assert monitor.statuses()[BETA]["status"] == "up"
    assert recorder.submitted == []
    for _ in range(2):  # pending past the timeout, firing 30 s later
        clock.now += 31.0
        monitor._publish(*monitor.engine.evaluate(monitor.view, clock.now))
    assert [(a["bot"], a["state"]) for a in recorder.submitted] == [
        (BETA, "pending"),
        (BETA, "firing"),
    ]
    # ALPHA speaks: its alert resolves, as one that had fired.
    monitor.observe(ALPHA, message(), clock.now)
    assert (recorder.submitted[-1]["bot"], recorder.submitted[-1]["state"]) == (ALPHA, "resolved")
    assert recorder.submitted[-1]["fired"] is True
