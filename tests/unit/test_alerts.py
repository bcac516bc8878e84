"""Alert rules, their TOML loading, the alert state machine and bot statuses (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pingpong_relay.alert_events import STATUS_VALUES, AlertEvent, StatusChange
from pingpong_relay.alerts import AlertEngine
from pingpong_relay.defaults import WINDOW_NAMES
from pingpong_relay.parsing import parse_duration
from pingpong_relay.rules import (
    LatencyRule,
    SilenceRule,
    default_rules,
    load_rules,
    percentile_label,
)

BOT = "bot:pingpong/gate-1"
T0 = 1_700_000_000.0


@dataclass
class FakeMetrics:
    """BotMetrics from plain dicts; `listed` overrides bots() to model a bot that went away."""

    seen: dict[str, float] = field(default_factory=dict)
    latency_ms: dict[tuple[str, str, float], float] = field(default_factory=dict)
    interval_s: dict[str, float] = field(default_factory=dict)
    listed: list[str] | None = None

    def bots(self) -> list[str]:
        return list(self.seen) if self.listed is None else list(self.listed)

    def last_seen_s(self, bot: str) -> float | None:
        return self.seen.get(bot)

    def typical_interval_s(self, bot: str, now_s: float) -> float | None:
        return self.interval_s.get(bot)

    def latency_quantile(self, bot: str, window: str, q: float, now_s: float) -> float | None:
        return self.latency_ms.get((bot, window, q))

    def set_latency(self, bot: str, ms: float | None, window: str = "1m", q: float = 0.95) -> None:
        if ms is None:
            self.latency_ms.pop((bot, window, q), None)
        else:
            self.latency_ms[(bot, window, q)] = ms


def latency_engine(for_s: float = 30.0, repeat_s: float = 3600.0) -> AlertEngine:
    return AlertEngine([LatencyRule("latency", for_s=for_s)], repeat_s=repeat_s)


def states(events: list[AlertEvent]) -> list[str]:
    return [event.state for event in events]


# --- parse_duration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("250ms", 0.25),
        ("1m30s", 90.0),
        ("1.5s", 1.5),
        ("2d", 172800.0),
        ("30", 30.0),
        ("0.5", 0.5),
        ("0", 0.0),
        (" 10s ", 10.0),
    ],
)
def test_parse_duration_accepts(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "s", "-5s", "5x", "1h 30m", "inf", "nan", "1e3", "5 s", "m5", "1_000", "ms"]
)
def test_parse_duration_rejects_with_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration") as caught:
        parse_duration(text)
    assert repr(text) in str(caught.value)


@given(st.integers(0, 99), st.integers(0, 59), st.integers(0, 59), st.integers(0, 999))
def test_parse_duration_adds_up_compound_parts(h: int, m: int, s: int, ms: int) -> None:
    assert parse_duration(f"{h}h{m}m{s}s{ms}ms") == pytest.approx(h * 3600 + m * 60 + s + ms / 1000)


@given(st.text(max_size=20))
def test_parse_duration_raises_only_value_error(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ValueError:
        return
    assert seconds >= 0


# --- rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: LatencyRule(""), "name must be a non-empty string"),
        (lambda: LatencyRule("x", window="2m"), "window must be one of 1m, 5m, 15m, 1h"),
        (lambda: LatencyRule("x", percentile=0.0), "percentile must be in"),
        (lambda: LatencyRule("x", percentile=1.5), "percentile must be in"),
        (lambda: LatencyRule("x", percentile=float("nan")), "percentile must be in"),
        (lambda: LatencyRule("x", threshold_ms=-1.0), "threshold_ms must be"),
        (lambda: LatencyRule("x", for_s=-1.0), "for_s must be"),
        (lambda: LatencyRule("x", for_s=float("inf")), "for_s must be"),
        (lambda: LatencyRule("x", bots=("",)), "bots must be non-empty patterns"),
        (lambda: SilenceRule(" "), "name must be a non-empty string"),
        (lambda: SilenceRule("x", timeout_s=0.0), "timeout_s must be"),
        (lambda: SilenceRule("x", timeout_s=-3.0), "timeout_s must be"),
        (lambda: SilenceRule("x", for_s=-0.1), "for_s must be"),
        (lambda: SilenceRule("x", interval_factor=-1.0), "interval_factor must be"),
    ],
)
def test_rules_refuse_bad_values(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_rule_bots_are_fnmatch_patterns_and_empty_means_every_bot() -> None:
    gate = LatencyRule("x", bots=("bot:gate*", "bot:okx-?"))
    assert gate.applies_to("bot:gate-1")
    assert gate.applies_to("bot:okx-2")
    assert not gate.applies_to("bot:okx-22")
    assert not gate.applies_to("bot:binance")
    assert not gate.applies_to("BOT:GATE-1")  # case-sensitive on every platform
    assert SilenceRule("y").applies_to("anything")


def test_rule_bots_given_as_a_list_become_a_tuple() -> None:
    rule = SilenceRule("x", bots=["bot:a"])  # type: ignore[arg-type]
    assert rule.bots == ("bot:a",)
    assert hash(rule) == hash(SilenceRule("x", bots=("bot:a",)))


def test_silence_timeout_is_the_larger_of_timeout_and_factor_times_interval() -> None:
    rule = SilenceRule("s", timeout_s=30.0, interval_factor=3.0)
    assert rule.timeout_for(None) == 30.0
    assert rule.timeout_for(5.0) == 30.0
    assert rule.timeout_for(20.0) == 60.0


def test_default_rules() -> None:
    latency, silence = default_rules(800.0, "5m", 0.99, 10.0, 45.0, 15.0)
    assert latency == LatencyRule("latency", "5m", 0.99, 800.0, 10.0)
    assert silence == SilenceRule("silence", timeout_s=45.0, for_s=15.0)
    assert [rule.kind for rule in default_rules()] == ["latency", "silence"]


@pytest.mark.parametrize(
    ("percentile", "label"), [(0.95, "p95"), (0.99, "p99"), (0.999, "p99.9"), (0.5, "p50")]
)
def test_percentile_label(percentile: float, label: str) -> None:
    assert percentile_label(percentile) == label


# --- load_rules ----------------------------------------------------------------------------

GOOD_TOML = """
[[rule]]
name = "slow-exchange"
kind = "latency"
window = "5m"
percentile = "p99"
threshold_ms = 800
for = "1m"
bots = ["bot:gate*"]

[[rule]]
name = "p999"
kind = "latency"
percentile = 0.999
for = 0

[[rule]]
name = "silent"
kind = "silence"
timeout = "30s"
interval_factor = 2.5
for = "30s"
"""


def test_load_rules_reads_a_good_file() -> None:
    assert load_rules(GOOD_TOML) == [
        LatencyRule("slow-exchange", "5m", 0.99, 800.0, 60.0, ("bot:gate*",)),
        LatencyRule("p999", percentile=0.999, for_s=0.0),
        SilenceRule("silent", timeout_s=30.0, interval_factor=2.5, for_s=30.0),
    ]


def test_load_rules_of_an_empty_file_is_no_rules() -> None:
    assert load_rules("") == []


def test_load_rules_accepts_p99_9_exactly() -> None:
    (rule,) = load_rules('[[rule]]\nname = "a"\nkind = "latency"\npercentile = "p99.9"\n')
    assert isinstance(rule, LatencyRule)
    assert rule.percentile == 0.999


def rule_toml(**keys: str) -> str:
    """One [[rule]] table; values are TOML literals."""
    return "[[rule]]\n" + "".join(f"{key} = {value}\n" for key, value in keys.items())


LAT = {"name": '"lat"', "kind": '"latency"'}
SIL = {"name": '"sil"', "kind": '"silence"'}


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("[[rule]\n", ["not valid TOML"]),
        ("title = 'x'\n", ["top-level key 'title'"]),
        ("rule = 3\n", ["'rule' must be an array of tables"]),
        ("[rule]\nname = 'x'\n", ["'rule' must be an array of tables"]),
        (rule_toml(kind='"latency"'), ["rule 1", "'name' is missing"]),
        (rule_toml(name="5", kind='"latency"'), ["rule 1", "'name'", "non-empty string"]),
        (rule_toml(name='""', kind='"latency"'), ["rule 1", "'name'"]),
        (rule_toml(name='"a"'), ["rule 1 ('a')", "'kind' is missing"]),
        (rule_toml(name='"a"', kind='"cpu"'), ["rule 1 ('a')", "'kind'", "'cpu'"]),
        (rule_toml(**LAT, timeout='"5s"'), ["rule 1 ('lat')", "'timeout'", "not known"]),
        (rule_toml(**LAT, threshold="5"), ["rule 1 ('lat')", "'threshold'", "not known"]),
        (rule_toml(**SIL, window='"1m"'), ["rule 1 ('sil')", "'window'", "not known"]),
        (rule_toml(**LAT, window='"2m"'), ["'window'", "'2m'"]),
        (rule_toml(**LAT, percentile='"p0"'), ["'percentile'", "(0, 1]"]),
        (rule_toml(**LAT, percentile="99"), ["'percentile'", "(0, 1]"]),
        (rule_toml(**LAT, percentile='"99th"'), ["'percentile'", "'99th'"]),
        (rule_toml(**LAT, percentile="true"), ["'percentile'"]),
        (rule_toml(**LAT, threshold_ms="-1"), ["'threshold_ms'", ">= 0"]),
        (rule_toml(**LAT, threshold_ms='"800"'), ["'threshold_ms'", "'800'"]),
        (rule_toml(**LAT, threshold_ms="nan"), ["'threshold_ms'"]),
        (rule_toml(**LAT, **{"for": '"soon"'}), ["'for'", "'soon'"]),
        (rule_toml(**LAT, **{"for": "-5"}), ["'for'", "-5"]),
        (rule_toml(**LAT, **{"for": "true"}), ["'for'", "True"]),
        (rule_toml(**LAT, bots='"bot:*"'), ["'bots'", "list"]),
        (rule_toml(**LAT, bots='["ok", 3]'), ["'bots'"]),
        (rule_toml(**LAT, bots='[""]'), ["'bots'"]),
        (rule_toml(**SIL, timeout='"0s"'), ["rule 1 ('sil')", "'timeout'", "longer than 0"]),
        (rule_toml(**SIL, timeout='"later"'), ["'timeout'", "'later'"]),
        (rule_toml(**SIL, interval_factor="-2"), ["'interval_factor'", ">= 0"]),
        (rule_toml(**SIL) + rule_toml(**SIL), ["rule 2 ('sil')", "'name'", "rule 1"]),
        (rule_toml(**SIL) + rule_toml(kind='"silence"'), ["rule 2", "'name' is missing"]),
    ],
)
def test_load_rules_refuses_bad_files_naming_the_rule_and_key(
    text: str, fragments: list[str]
) -> None:
    with pytest.raises(ValueError, match=re.escape(fragments[0])) as caught:
        load_rules(text)
    for fragment in fragments[1:]:
        assert fragment in str(caught.value)


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


# --- statuses ------------------------------------------------------------------------------


def status_trail(changes: list[StatusChange]) -> list[tuple[str | None, str]]:
    return [(change.previous, change.status) for change in changes]


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


def test_windows_are_the_metrics_windows() -> None:
    assert WINDOW_NAMES == ("1m", "5m", "15m", "1h")
