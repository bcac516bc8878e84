"""The alert rules the flags or --alert-rules ask for, checked before the relay starts."""

from __future__ import annotations

from pathlib import Path

from pingpong_relay.rules import Rule, default_rules, load_rules
from pingpong_relay.settings import Settings

__all__ = ["rules_from_settings"]


def rules_from_settings(settings: Settings) -> list[Rule]:
    """The alert rules: the TOML file's when one is named, else the flags'.

    Raises ValueError naming the file and the problem, for the CLI to report.
    """
    if settings.alert_rules:
        try:
            text = Path(settings.alert_rules).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"--alert-rules {settings.alert_rules}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"--alert-rules {settings.alert_rules}: not UTF-8 text (byte {exc.start})"
            ) from None
        try:
            return load_rules(text)
        except ValueError as exc:
            raise ValueError(f"--alert-rules {settings.alert_rules}: {exc}") from None
    return default_rules(
        latency_threshold_ms=settings.latency_threshold,
        latency_window=settings.latency_window,
        latency_percentile=settings.latency_percentile,
        latency_for_s=settings.latency_for,
        silence_timeout_s=settings.silence_timeout,
        silence_for_s=settings.silence_for,
    )
