"""The alert engine (alerts.py): latency and silence alerts from pending to resolved, over bots."""

from __future__ import annotations

import pytest

from pingpong_relay.alert_events import AlertEvent
from pingpong_relay.alerts import AlertEngine
from pingpong_relay.rules import LatencyRule, SilenceRule, default_rules
from tests.unit.alerts_support import BOT, T0, FakeMetrics, latency_engine, status_trail


def states(events: list[AlertEvent]) -> list[str]:
    return [event.state for event in events]


# --- the latency alert lifecycle -----------------------------------------------------------


def test_latency_alert_goes_pending_firing_resolved() -> None:
    metrics = FakeMetrics(seen={BOT: T0})
    engine = latency_engine(for_s=30.0)

    metrics.set_latency(BOT, 100.0)
    assert engine.evaluate(metrics, T0)[0] == []

    metrics.set_latency(BOT, 812.0)
    (pending,) = engine.evaluate(metrics, T0 + 1)[0]
    assert (pending.state, pending.since_s, pending.at_s) == ("pending", T0 + 1, T0 + 1)
    assert (pending.value, pending.threshold, pending.fired, pending.repeat) == (
        812.0,
        500.0,
        False,
        False,
    )
    assert (pending.rule, pending.kind, pending.bot) == ("latency", "latency", BOT)

    assert engine.evaluate(metrics, T0 + 30.9)[0] == []  # 29.9 s held: still pending

    (firing,) = engine.evaluate(metrics, T0 + 31)[0]
    assert (firing.state, firing.since_s, firing.fired, firing.repeat) == (
        "firing",
        T0 + 31,
        True,
        False,
    )
    assert firing.summary == f"{BOT} p95 latency 812.0 ms over 1m above 500.0 ms for 30 s"

    assert engine.evaluate(metrics, T0 + 60)[0] == []

    metrics.set_latency(BOT, 320.0)
    (resolved,) = engine.evaluate(metrics, T0 + 61)[0]
    assert (resolved.state, resolved.since_s, resolved.value, resolved.fired) == (
        "resolved",
        T0 + 61,
        320.0,
        True,
    )
    assert "320.0 ms" in resolved.summary
    assert engine.evaluate(metrics, T0 + 62)[0] == []


def test_latency_at_the_threshold_is_not_above_it() -> None:
    metrics = FakeMetrics(seen={BOT: T0})
    metrics.set_latency(BOT, 500.0)
    assert latency_engine().evaluate(metrics, T0)[0] == []


def test_rule_window_and_percentile_are_what_is_queried() -> None:
    metrics = FakeMetrics(seen={BOT: T0})
    engine = AlertEngine([LatencyRule("slow", window="15m", percentile=0.99, for_s=0)])
    metrics.set_latency(BOT, 900.0)  # the default 1m/p95 is not this rule's
    assert engine.evaluate(metrics, T0)[0] == []
    metrics.set_latency(BOT, 900.0, window="15m", q=0.99)
    assert states(engine.evaluate(metrics, T0 + 1)[0]) == ["pending", "firing"]


def test_pending_that_clears_before_for_resolves_unfired() -> None:
    metrics = FakeMetrics(seen={BOT: T0})
    engine = latency_engine(for_s=30.0)
    metrics.set_latency(BOT, 900.0)
    assert states(engine.evaluate(metrics, T0)[0]) == ["pending"]
    metrics.set_latency(BOT, 100.0)
    (resolved,) = engine.evaluate(metrics, T0 + 10)[0]
    assert (resolved.state, resolved.fired) == ("resolved", False)
    assert engine.active() == []


def test_for_zero_fires_in_the_same_evaluation() -> None:
    metrics = FakeMetrics(seen={BOT: T0})
    engine = latency_engine(for_s=0.0)
    metrics.set_latency(BOT, 900.0)
    pending, firing = engine.evaluate(metrics, T0)[0]
    assert (pending.state, firing.state) == ("pending", "firing")
    assert pending.since_s == firing.since_s == firing.at_s == T0
    metrics.set_latency(BOT, 1.0)
    (resolved,) = engine.evaluate(metrics, T0 + 1)[0]
    assert (resolved.state, resolved.fired) == ("resolved", True)


def test_flapping_condition_restarts_the_for_clock() -> None:
    metrics = FakeMetrics(seen={BOT: T0})
    engine = latency_engine(for_s=10.0)
    seen: list[str] = []
    # True for 6 s, false, true for 6 s: 12 s above in total, never 10 s in a row.
    for t, ms in [(0, 900), (6, 900), (7, 100), (8, 900), (14, 900), (15, 100)]:
        metrics.set_latency(BOT, ms)
        seen += states(engine.evaluate(metrics, T0 + t)[0])
    assert seen == ["pending", "resolved", "pending", "resolved"]
    metrics.set_latency(BOT, 900)
    engine.evaluate(metrics, T0 + 20)
    assert states(engine.evaluate(metrics, T0 + 30)[0]) == ["firing"]


def test_latency_without_samples_resolves_a_firing_alert() -> None:
    metrics = FakeMetrics(seen={BOT: T0})
    engine = latency_engine(for_s=0.0)
    metrics.set_latency(BOT, 900.0)
    engine.evaluate(metrics, T0)
    metrics.set_latency(BOT, None)
    (resolved,) = engine.evaluate(metrics, T0 + 1)[0]
    assert (resolved.state, resolved.value, resolved.fired) == ("resolved", None, True)
    assert "no samples" in resolved.summary


# --- repeats -------------------------------------------------------------------------------


def test_firing_repeats_once_per_repeat_period_and_not_after_resolve() -> None:
    metrics = FakeMetrics(seen={BOT: T0})
    engine = latency_engine(for_s=0.0, repeat_s=10.0)
    metrics.set_latency(BOT, 900.0)
    assert states(engine.evaluate(metrics, T0)[0]) == ["pending", "firing"]

    repeats: list[AlertEvent] = []
    for t in range(1, 36):
        repeats += engine.evaluate(metrics, T0 + t)[0]
    assert [event.at_s - T0 for event in repeats] == [10.0, 20.0, 30.0]
    assert all(event.state == "firing" and event.repeat for event in repeats)
    assert all(event.since_s == T0 for event in repeats)  # the firing state began at T0
    assert engine.active()[-1] == repeats[-1]

    metrics.set_latency(BOT, 100.0)
    (resolved,) = engine.evaluate(metrics, T0 + 36)[0]
    assert (resolved.state, resolved.repeat) == ("resolved", False)
    assert all(engine.evaluate(metrics, T0 + t)[0] == [] for t in range(37, 80))


def test_no_repeat_just_before_repeat_s() -> None:
    metrics = FakeMetrics(seen={BOT: T0})
    engine = latency_engine(for_s=0.0, repeat_s=60.0)
    metrics.set_latency(BOT, 900.0)
    engine.evaluate(metrics, T0)
    assert engine.evaluate(metrics, T0 + 59.5)[0] == []
    (repeat,) = engine.evaluate(metrics, T0 + 60)[0]
    assert repeat.repeat


# --- silence -------------------------------------------------------------------------------


def test_silence_uses_the_larger_of_timeout_and_factor_times_interval() -> None:
    metrics = FakeMetrics(seen={BOT: T0}, interval_s={BOT: 20.0})
    engine = AlertEngine([SilenceRule("silence", timeout_s=30.0, interval_factor=3.0, for_s=0)])
    assert engine.evaluate(metrics, T0 + 59)[0] == []  # above 30 s, within 3 × 20 s
    assert engine.evaluate(metrics, T0 + 60)[0] == []  # exactly the timeout is not silent
    pending, firing = engine.evaluate(metrics, T0 + 61)[0]
    assert (pending.kind, pending.value, pending.threshold) == ("silence", 61.0, 60.0)
    assert firing.summary == f"{BOT} silent for 61 s (timeout 60 s)"

    metrics.seen[BOT] = T0 + 62
    (resolved,) = engine.evaluate(metrics, T0 + 62.5)[0]
    assert (resolved.state, resolved.value, resolved.fired) == ("resolved", 0.5, True)


def test_silence_without_a_typical_interval_uses_the_timeout() -> None:
    metrics = FakeMetrics(seen={BOT: T0})
    engine = AlertEngine([SilenceRule("silence", timeout_s=30.0, for_s=0)])
    assert engine.evaluate(metrics, T0 + 30)[0] == []
    events = engine.evaluate(metrics, T0 + 31)[0]
    assert [(event.state, event.threshold) for event in events] == [
        ("pending", 30.0),
        ("firing", 30.0),
    ]


def test_short_interval_does_not_shorten_the_timeout() -> None:
    metrics = FakeMetrics(seen={BOT: T0}, interval_s={BOT: 1.0})
    engine = AlertEngine([SilenceRule("silence", timeout_s=30.0, for_s=0)])
    assert engine.evaluate(metrics, T0 + 29)[0] == []


# --- several bots, one bot, forgetting -----------------------------------------------------


def test_events_come_ordered_by_bot_then_rule_name() -> None:
    metrics = FakeMetrics(seen={"bot:b": T0, "bot:a": T0})
    rules = [SilenceRule("z-silence", for_s=0), SilenceRule("a-silence", for_s=0)]
    events, changes = AlertEngine(rules).evaluate(metrics, T0 + 31)
    assert [(event.bot, event.rule, event.state) for event in events] == [
        ("bot:a", "a-silence", "pending"),
        ("bot:a", "a-silence", "firing"),
        ("bot:a", "z-silence", "pending"),
        ("bot:a", "z-silence", "firing"),
        ("bot:b", "a-silence", "pending"),
        ("bot:b", "a-silence", "firing"),
        ("bot:b", "z-silence", "pending"),
        ("bot:b", "z-silence", "firing"),
    ]
    assert [change.bot for change in changes] == ["bot:a", "bot:b"]


def test_bots_patterns_limit_rules_and_status() -> None:
    metrics = FakeMetrics(seen={"bot:gate-1": T0, "bot:okx-1": T0})
    engine = AlertEngine([SilenceRule("gate-silence", for_s=0, bots=("bot:gate*",))])
    events, changes = engine.evaluate(metrics, T0 + 31)
    assert {event.bot for event in events} == {"bot:gate-1"}
    assert {change.bot: change.status for change in changes} == {
        "bot:gate-1": "down",
        "bot:okx-1": "up",
    }


def test_evaluate_bot_evaluates_only_that_bot() -> None:
    metrics = FakeMetrics(seen={"bot:a": T0, "bot:b": T0})
    engine = AlertEngine(default_rules(silence_for_s=0))
    events, changes = engine.evaluate_bot(metrics, "bot:b", T0 + 31)
    assert {event.bot for event in events} == {"bot:b"}
    assert [change.bot for change in changes] == ["bot:b"]
    assert list(engine.statuses()) == ["bot:b"]


def test_a_message_resolves_silence_through_evaluate_bot() -> None:
    metrics = FakeMetrics(seen={BOT: T0})
    engine = AlertEngine(default_rules(silence_for_s=0))
    engine.evaluate(metrics, T0 + 31)
    metrics.seen[BOT] = T0 + 40
    events, changes = engine.evaluate_bot(metrics, BOT, T0 + 40)
    assert states(events) == ["resolved"]
    assert status_trail(changes) == [("down", "up")]


def test_bot_that_disappears_keeps_its_state_until_forgotten() -> None:
    metrics = FakeMetrics(seen={BOT: T0})
    engine = AlertEngine(default_rules(silence_for_s=0))
    engine.evaluate(metrics, T0 + 31)
    assert engine.firing() == [("silence", BOT)]

    metrics.listed = []
    assert engine.evaluate(metrics, T0 + 100) == ([], [])
    assert engine.firing() == [("silence", BOT)]
    assert engine.statuses()[BOT].status == "down"

    engine.forget(BOT)
    assert engine.firing() == []
    assert engine.statuses() == {}
    metrics.listed = None
    metrics.seen[BOT] = T0 + 200
    (change,) = engine.evaluate(metrics, T0 + 200)[1]
    assert (change.previous, change.status) == (None, "up")


def test_forget_of_an_unknown_bot_is_harmless() -> None:
    engine = AlertEngine(default_rules())
    engine.forget("bot:nobody")
    assert engine.statuses() == {}


# --- active, firing, history ---------------------------------------------------------------


def test_active_and_firing_list_current_alerts() -> None:
    metrics = FakeMetrics(seen={BOT: T0})
    engine = AlertEngine(default_rules(latency_for_s=30.0, silence_for_s=0.0))
    metrics.set_latency(BOT, 900.0)
    engine.evaluate(metrics, T0 + 1)
    assert [(event.rule, event.state) for event in engine.active()] == [("latency", "pending")]
    assert engine.firing() == []
    engine.evaluate(metrics, T0 + 31)
    assert [(event.rule, event.state) for event in engine.active()] == [
        ("latency", "firing"),
        ("silence", "firing"),
    ]
    assert engine.firing() == [("latency", BOT), ("silence", BOT)]


def test_recent_resolved_is_bounded_and_newest_first() -> None:
    metrics = FakeMetrics(seen={BOT: T0})
    engine = AlertEngine([LatencyRule("latency", for_s=0)], history=3)
    for t in range(5):
        metrics.set_latency(BOT, 900.0)
        engine.evaluate(metrics, T0 + 2 * t)
        metrics.set_latency(BOT, 100.0)
        engine.evaluate(metrics, T0 + 2 * t + 1)
    assert [event.at_s - T0 for event in engine.recent_resolved()] == [9.0, 7.0, 5.0]
    assert [event.at_s - T0 for event in engine.recent_resolved(limit=1)] == [9.0]
    assert engine.recent_resolved(limit=0) == []
    assert all(event.state == "resolved" for event in engine.recent_resolved())


def test_recent_resolved_includes_pending_that_never_fired() -> None:
    metrics = FakeMetrics(seen={BOT: T0})
    engine = latency_engine(for_s=30.0)
    metrics.set_latency(BOT, 900.0)
    engine.evaluate(metrics, T0)
    metrics.set_latency(BOT, 100.0)
    engine.evaluate(metrics, T0 + 1)
    assert [event.fired for event in engine.recent_resolved()] == [False]


@pytest.mark.parametrize(
    ("rules", "repeat_s", "message"),
    [
        ([SilenceRule("a"), LatencyRule("a")], 3600.0, "repeated: a"),
        (default_rules(), 0.0, "repeat_s"),
        (default_rules(), float("nan"), "repeat_s"),
    ],
)
def test_engine_refuses_bad_arguments(
    rules: list[LatencyRule | SilenceRule], repeat_s: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        AlertEngine(rules, repeat_s=repeat_s)
