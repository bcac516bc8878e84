"""Alert rules (rules.py): their checks, TOML loading and the durations they are written in."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pingpong_relay.defaults import WINDOW_NAMES
from pingpong_relay.parsing import parse_duration
from pingpong_relay.rules import (
    LatencyRule,
    SilenceRule,
    default_rules,
    load_rules,
    percentile_label,
)

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


def test_windows_are_the_metrics_windows() -> None:
    assert WINDOW_NAMES == ("1m", "5m", "15m", "1h")
