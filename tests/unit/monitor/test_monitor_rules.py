"""rules_from_settings (app/rules_setup.py): rules from the flags, or from a TOML file instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from pingpong_relay.app.rules_setup import rules_from_settings
from pingpong_relay.rules import LatencyRule, SilenceRule
from pingpong_relay.settings import Settings

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
