"""Bot statuses the alert engine derives, and the JSON (alert_events.py) of alerts and statuses."""

from __future__ import annotations

import orjson

from pingpong_relay.alert_events import STATUS_VALUES, StatusChange
from pingpong_relay.alerts import AlertEngine
from pingpong_relay.rules import SilenceRule, default_rules
from tests.unit.alerts_support import BOT, T0, FakeMetrics, latency_engine, status_trail

# --- statuses ------------------------------------------------------------------------------


def test_first_seen_bot_is_up_with_no_previous() -> None:
    metrics = FakeMetrics(seen={BOT: T0})
    engine = AlertEngine(default_rules())
    (change,) = engine.evaluate(metrics, T0 + 1)[1]
    assert change == StatusChange(BOT, "up", None, T0 + 1, T0 + 1, T0, "first seen")
    assert engine.evaluate(metrics, T0 + 2)[1] == []  # no change, no event


def test_bot_never_seen_has_no_status() -> None:
    metrics = FakeMetrics(listed=[BOT])
    engine = AlertEngine(default_rules())
    assert engine.evaluate(metrics, T0) == ([], [])
    assert engine.statuses() == {}


def test_bot_with_no_applicable_rule_is_up_once_seen() -> None:
    metrics = FakeMetrics(seen={BOT: T0})
    engine = AlertEngine([SilenceRule("s", bots=("bot:other*",), for_s=0)])
    ((_, status),) = status_trail(engine.evaluate(metrics, T0)[1])
    assert status == "up"
    assert engine.evaluate(metrics, T0 + 3600) == ([], [])  # silent, but no rule applies


def test_status_goes_up_pending_down_up_with_silence() -> None:
    metrics = FakeMetrics(seen={BOT: T0})
    engine = AlertEngine([SilenceRule("silence", timeout_s=30.0, for_s=30.0)])
    trail: list[StatusChange] = []
    for t in (0, 31, 45, 61):
        trail += engine.evaluate(metrics, T0 + t)[1]
    metrics.seen[BOT] = T0 + 70
    trail += engine.evaluate(metrics, T0 + 70)[1]
    assert status_trail(trail) == [
        (None, "up"),
        ("up", "pending"),
        ("pending", "down"),
        ("down", "up"),
    ]
    assert [change.since_s - T0 for change in trail] == [0, 31, 61, 70]
    assert "silent for 31 s" in trail[1].reason
    assert "silent for 61 s" in trail[2].reason
    assert trail[3].reason == "no alert active"
    assert trail[3].last_seen_s == T0 + 70


def test_status_goes_up_degraded_up_with_latency() -> None:
    metrics = FakeMetrics(seen={BOT: T0})
    engine = AlertEngine(default_rules(latency_for_s=30.0))
    trail: list[StatusChange] = []
    # The bot keeps sending (seen 1 s ago each time), so only latency matters.
    for t, ms in [(0, 100.0), (1, 900.0), (31, 900.0), (32, 100.0)]:
        metrics.seen[BOT] = T0 + t - 1
        metrics.set_latency(BOT, ms)
        trail += engine.evaluate(metrics, T0 + t)[1]
    assert [event.rule for event in engine.recent_resolved()] == ["latency"]
    assert status_trail(trail) == [(None, "up"), ("up", "degraded"), ("degraded", "up")]
    assert "p95 latency 900.0 ms" in trail[1].reason


def test_down_outranks_degraded() -> None:
    metrics = FakeMetrics(seen={BOT: T0})
    engine = AlertEngine(default_rules(latency_for_s=0.0, silence_for_s=0.0))
    metrics.set_latency(BOT, 900.0)
    assert engine.evaluate(metrics, T0)[1][0].status == "degraded"
    (change,) = engine.evaluate(metrics, T0 + 31)[1]
    assert (change.previous, change.status) == ("degraded", "down")
    assert engine.statuses()[BOT].status == "down"


def test_first_seen_bot_that_is_already_silent_starts_pending() -> None:
    metrics = FakeMetrics(seen={BOT: T0})
    engine = AlertEngine(default_rules())
    (change,) = engine.evaluate(metrics, T0 + 40)[1]
    assert (change.previous, change.status) == (None, "pending")
    assert "silent for 40 s" in change.reason


def test_status_values_for_the_up_gauge() -> None:
    assert dict(STATUS_VALUES) == {"up": 1.0, "degraded": 0.5, "pending": 0.5, "down": 0.0}


def test_statuses_are_current_as_of_the_last_evaluation() -> None:
    metrics = FakeMetrics(seen={BOT: T0, "bot:b": T0})
    engine = AlertEngine(default_rules())
    engine.evaluate(metrics, T0)
    metrics.seen[BOT] = T0 + 5
    engine.evaluate(metrics, T0 + 6)
    current = engine.statuses()
    assert list(current) == ["bot:b", BOT]
    assert current[BOT] == StatusChange(BOT, "up", None, T0, T0 + 6, T0 + 5, "first seen")


# --- JSON ----------------------------------------------------------------------------------


def test_alert_event_json_shape() -> None:
    metrics = FakeMetrics(seen={BOT: T0})
    metrics.set_latency(BOT, 812.0)
    _, firing = latency_engine(for_s=0.0).evaluate(metrics, T0 + 0.1234)[0]
    decoded = orjson.loads(orjson.dumps(firing.to_json()))
    assert decoded == {
        "type": "bot:alert",
        "rule": "latency",
        "kind": "latency",
        "bot": BOT,
        "state": "firing",
        "since_ms": 1_700_000_000_123,
        "at_ms": 1_700_000_000_123,
        "value": 812.0,
        "threshold": 500.0,
        "repeat": False,
        "fired": True,
        "summary": firing.summary,
    }
    assert isinstance(decoded["since_ms"], int)


def test_status_change_json_shape() -> None:
    change = StatusChange(BOT, "down", "pending", T0 + 1.5, T0 + 2, T0, "silent")
    assert orjson.loads(orjson.dumps(change.to_json())) == {
        "type": "bot:status",
        "bot": BOT,
        "status": "down",
        "previous": "pending",
        "since_ms": 1_700_000_001_500,
        "at_ms": 1_700_000_002_000,
        "last_seen_ms": 1_700_000_000_000,
        "reason": "silent",
    }
    first = StatusChange(BOT, "up", None, T0, T0, T0, "first seen").to_json()
    assert orjson.loads(orjson.dumps(first))["previous"] is None
