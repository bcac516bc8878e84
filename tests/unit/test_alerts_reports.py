"""The built-in report rules: a bot that reports itself down is down at once, with its own
reason, on probation or not, until a message without the report."""

from __future__ import annotations

from pingpong_relay.alerts import AlertEngine
from pingpong_relay.notifications import Transition, render
from pingpong_relay.rules import REPORT_RULES, LatencyRule, SilenceRule
from tests.unit.alerts_support import BOT, T0, FakeMetrics


def _engine(*, established: bool = True) -> AlertEngine:
    return AlertEngine(
        [LatencyRule("latency"), SilenceRule("silence")],
        alerting=lambda _bot: established,
    )


def test_the_report_rules_are_built_in() -> None:
    names = [rule.name for rule in _engine().rules]
    assert names == sorted(["latency", "silence", *(rule.name for rule in REPORT_RULES)])


def test_a_reported_down_bot_is_down_at_once_with_its_reason() -> None:
    engine, metrics = _engine(), FakeMetrics(seen={BOT: T0})
    metrics.reports[BOT] = ("down", "exchange unreachable")
    events, changes = engine.evaluate(metrics, T0)
    assert [(e.rule, e.state, e.kind) for e in events] == [
        ("reported-down", "pending", "report"),
        ("reported-down", "firing", "report"),
    ]
    assert events[-1].summary == f"{BOT} reported down: exchange unreachable"
    assert [(c.status, c.reason) for c in changes] == [("down", events[-1].summary)]
    del metrics.reports[BOT]
    events, changes = engine.evaluate(metrics, T0 + 1)
    assert [(e.rule, e.state, e.fired) for e in events] == [("reported-down", "resolved", True)]
    assert events[0].summary == f"{BOT} no longer reports itself down"
    assert [c.status for c in changes] == ["up"]


def test_a_reported_degraded_bot_is_degraded_and_down_wins_over_it() -> None:
    engine, metrics = _engine(), FakeMetrics(seen={BOT: T0})
    metrics.reports[BOT] = ("degraded", "last process 7m ago")
    _, changes = engine.evaluate(metrics, T0)
    assert [(c.status, c.reason) for c in changes] == [
        ("degraded", f"{BOT} reported degraded: last process 7m ago")
    ]
    metrics.reports[BOT] = ("down", "gone")
    _, changes = engine.evaluate(metrics, T0 + 1)
    assert [c.status for c in changes] == ["down"]


def test_a_bot_on_probation_still_counts_its_own_report() -> None:
    engine, metrics = _engine(established=False), FakeMetrics(seen={BOT: T0})
    metrics.reports[BOT] = ("down", "cron failed")
    events, changes = engine.evaluate(metrics, T0)
    assert {e.rule for e in events} == {"reported-down"}
    assert [c.status for c in changes] == ["down"]
    # Other rules still wait for probation to end: a long silence fires nothing.
    del metrics.reports[BOT]
    events, _ = engine.evaluate(metrics, T0 + 3600)
    assert {e.rule for e in events} == {"reported-down"}


def test_a_notification_of_a_report_tells_the_bots_own_words() -> None:
    engine, metrics = _engine(), FakeMetrics(seen={BOT: T0})
    metrics.reports[BOT] = ("down", "disk full")
    firing = engine.evaluate(metrics, T0)[0][-1]
    text = render([Transition(firing, T0)])
    assert "reported down: disk full" in text.title
    assert "the bot's own report" in text.body
