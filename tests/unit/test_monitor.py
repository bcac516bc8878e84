"""The monitor: statuses, alerts and statistics fanned out through a real hub, with a fake clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from pingpong_relay.defaults import WINDOWS
from pingpong_relay.frames import text_payloads
from pingpong_relay.hub import Hub
from pingpong_relay.messages import BotMessage, parse_bot_message
from pingpong_relay.monitor import OVERALL, Monitor, StatsView, rules_from_settings
from pingpong_relay.rules import LatencyRule, Rule, SilenceRule
from pingpong_relay.settings import Settings
from pingpong_relay.stats import ESTABLISHED_MESSAGES, ESTABLISHED_SPAN_S
from pingpong_relay.subscriptions import DEFAULT_SUBSCRIPTION, Subscription
from pingpong_relay.telemetry.metrics import RelayMetrics

T0 = 1_700_000_000.0
WAIT_S = 10.0  # bound on every wait for a background loop; a healthy run needs milliseconds
ALPHA = "bot:pingpong/alpha"
BETA = "bot:pingpong/beta"


@dataclass
class Clock:
    """A clock the test moves by hand."""

    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakePeer:
    client_id: str
    subscription: Subscription = DEFAULT_SUBSCRIPTION
    remote: str = "127.0.0.1:50000"
    sent: list[bytes] = field(default_factory=list)
    closes: list[tuple[int, bytes]] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def write(self, data: bytes) -> None:
        self.sent.extend(text_payloads(data))
        self._arrived.set()

    def buffered_bytes(self) -> int:
        return 0

    def is_open(self) -> bool:
        return not self.closes

    def close(self, code: int, reason: bytes) -> None:
        self.closes.append((code, reason))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [orjson.loads(payload) for payload in self.sent]

    async def until(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout_s: float = WAIT_S
    ) -> list[dict[str, Any]]:
        """Waits until the messages received so far satisfy `predicate`."""

        async def wait() -> list[dict[str, Any]]:
            while not predicate(messages := self.messages):
                self._arrived.clear()
                await self._arrived.wait()
            return messages

        return await asyncio.wait_for(wait(), timeout_s)


class RecordingSender:
    """Where the monitor sends alert transitions (the webhooks, in a relay), recording them."""

    def __init__(self) -> None:
        self.submitted: list[dict[str, Any]] = []

    def submit(self, alert: dict[str, Any]) -> None:
        self.submitted.append(alert)


def statuses_of(peer: FakePeer) -> list[tuple[str, str, str | None]]:
    return [
        (m["bot"], m["status"], m["previous"]) for m in peer.messages if m["type"] == "bot:status"
    ]


def alerts_of(peer: FakePeer) -> list[tuple[str, str, str]]:
    return [(m["rule"], m["bot"], m["state"]) for m in peer.messages if m["type"] == "bot:alert"]


def message(latency_ms: float | None = 20.0, kind: str = "ping") -> BotMessage:
    fields: dict[str, Any] = {"type": kind, "timestamp": int(T0 * 1000), "source": "bot"}
    if latency_ms is not None:
        fields["latency"] = latency_ms
    return parse_bot_message(orjson.dumps(fields))


def establish(monitor: Monitor, bot: str, clock: Clock) -> None:
    """Heard ESTABLISHED_MESSAGES times over ESTABLISHED_SPAN_S, without a latency (so no
    sample of it counts): past probation, so the rules apply to it from now on."""
    for i in range(ESTABLISHED_MESSAGES):
        if i:
            clock.now += ESTABLISHED_SPAN_S / (ESTABLISHED_MESSAGES - 1)
        monitor.observe(bot, message(latency_ms=None), clock.now)
    assert monitor.book.is_established(bot)


LATENCY_NOW = LatencyRule(name="slow", percentile=0.95, threshold_ms=100.0, for_s=0.0)
SILENCE_NOW = SilenceRule(name="silent", timeout_s=30.0, interval_factor=3.0, for_s=0.0)


@pytest.fixture
def metrics() -> RelayMetrics:
    return RelayMetrics()


class WritingHub(Hub):
    """The hub, writing each message at once: its batching per loop turn is test_hub's."""

    def deliver(self, *args: Any, **kwargs: Any) -> int:
        peers = super().deliver(*args, **kwargs)
        self.flush()
        return peers


@pytest.fixture
def hub(metrics: RelayMetrics) -> Hub:
    return WritingHub(metrics, max_client_buffer_bytes=1 << 20)


@pytest.fixture
def clock() -> Clock:
    return Clock()


MonitorFactory = Callable[..., Monitor]


@pytest.fixture
async def make_monitor(
    hub: Hub, metrics: RelayMetrics, clock: Clock
) -> AsyncIterator[MonitorFactory]:
    """make_monitor(rules=…, **options) -> a Monitor on the test's hub and clock, stopped after."""
    made: list[Monitor] = []

    def make(rules: list[Rule] | None = None, **options: Any) -> Monitor:
        chosen: list[Rule] = [LATENCY_NOW, SILENCE_NOW] if rules is None else rules
        monitor = Monitor(hub, metrics, chosen, clock=clock, **options)
        made.append(monitor)
        return monitor

    try:
        yield make
    finally:
        for monitor in made:
            await asyncio.wait_for(monitor.stop(), WAIT_S)


def watcher(hub: Hub, name: str, *events: str, bots: tuple[str, ...] | None = None) -> FakePeer:
    peer = FakePeer(f"CLIENT-{name}", Subscription(bots=bots, events=frozenset(events)))
    hub.add(peer)
    return peer


def firing_sample(metrics: RelayMetrics, rule: str, bot: str) -> float | None:
    return metrics.registry.get_sample_value("pingpong_alerts_firing", {"rule": rule, "bot": bot})


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


# --- rules_from_settings ---------------------------------------------------------------------


def test_rules_from_the_settings_flags() -> None:
    settings = Settings(
        latency_threshold=250.0,
        latency_window="5m",
        latency_percentile=0.99,
        latency_for=10.0,
        silence_timeout=60.0,
        silence_for=5.0,
    )
    assert rules_from_settings(settings) == [
        LatencyRule(name="latency", window="5m", percentile=0.99, threshold_ms=250.0, for_s=10.0),
        SilenceRule(name="silence", timeout_s=60.0, for_s=5.0),
    ]


def test_rules_from_default_settings() -> None:
    assert rules_from_settings(Settings()) == [
        LatencyRule(name="latency", window="1m", percentile=0.95, threshold_ms=500.0, for_s=30.0),
        SilenceRule(name="silence", timeout_s=30.0, for_s=30.0),
    ]


def test_rules_from_a_toml_file_replace_the_flags(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        """
[[rule]]
name = "gateway-latency"
kind = "latency"
window = "5m"
percentile = "p99"
threshold_ms = 800
for = "1m"
bots = ["bot:gate*"]

[[rule]]
name = "quiet"
kind = "silence"
timeout = "2m"
for = "30s"
""",
        encoding="utf-8",
    )
    settings = Settings(alert_rules=str(path), latency_threshold=1.0)
    assert rules_from_settings(settings) == [
        LatencyRule(
            name="gateway-latency",
            window="5m",
            percentile=0.99,
            threshold_ms=800.0,
            for_s=60.0,
            bots=("bot:gate*",),
        ),
        SilenceRule(name="quiet", timeout_s=120.0, for_s=30.0),
    ]


def test_an_empty_rules_file_means_no_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("", encoding="utf-8")
    assert rules_from_settings(Settings(alert_rules=str(path))) == []


def test_a_missing_rules_file_names_the_flag_and_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ValueError, match="--alert-rules") as raised:
        rules_from_settings(Settings(alert_rules=str(path)))
    assert str(path) in str(raised.value)
    assert "No such file" in str(raised.value)


def test_a_directory_as_rules_file_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--alert-rules") as raised:
        rules_from_settings(Settings(alert_rules=str(tmp_path)))
    assert str(tmp_path) in str(raised.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[[rule]\nname = 'x'", "not valid TOML"),
        ("[[rule]]\nname = 'x'\nkind = 'latency'\nthreshold_ms = -1\n", "threshold_ms"),
        ("[[rule]]\nkind = 'silence'\n", "'name' is missing"),
        ("[rules]\n", "unknown top-level key"),
    ],
)
def test_a_bad_rules_file_names_the_flag_the_file_and_the_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="--alert-rules") as raised:
        rules_from_settings(Settings(alert_rules=str(path)))
    assert str(path) in str(raised.value)
    assert problem in str(raised.value)


def test_a_rules_file_that_is_not_utf8_names_the_flag_and_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_bytes(b"[[rule]]\nname = '\xff\xfe'\nkind = 'silence'\n")
    with pytest.raises(ValueError, match="--alert-rules") as raised:
        rules_from_settings(Settings(alert_rules=str(path)))
    assert str(path) in str(raised.value)


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
