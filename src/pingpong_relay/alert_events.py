"""Alert transitions and bot status changes: what the alert engine reports (pure).

Each event is also the message clients, webhooks and metrics receive: `to_json` is its
wire form, the `bot:alert` and `bot:status` messages of the protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias

from pingpong_relay.rules import (
    LatencyRule,
    ReportRule,
    Rule,
    RuleKind,
    format_s,
    percentile_label,
)
from pingpong_relay.wire_types import ALERT_EVENT_TYPE, STATUS_EVENT_TYPE

__all__ = [
    "STATUS_VALUES",
    "AlertEvent",
    "AlertState",
    "Status",
    "StatusChange",
    "alert_event",
]

AlertState: TypeAlias = Literal["pending", "firing", "resolved"]
Status: TypeAlias = Literal["up", "degraded", "pending", "down"]

# Values of the Prometheus `up` gauge; read-only because it is module-level.
STATUS_VALUES: Final[Mapping[str, float]] = MappingProxyType(
    {"up": 1.0, "degraded": 0.5, "pending": 0.5, "down": 0.0}
)


# --- events --------------------------------------------------------------------------------


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One alert transition or repeat; `since_s` is when its current state began."""

    rule: str
    kind: RuleKind
    bot: str
    state: AlertState
    since_s: float
    at_s: float
    value: float | None
    threshold: float
    repeat: bool
    fired: bool
    summary: str

    def to_json(self) -> dict[str, Any]:
        """The `bot:alert` message clients and webhooks receive; times in ms since the epoch."""
        return {
            "type": ALERT_EVENT_TYPE,
            "rule": self.rule,
            "kind": self.kind,
            "bot": self.bot,
            "state": self.state,
            "since_ms": _ms(self.since_s),
            "at_ms": _ms(self.at_s),
            "value": self.value,
            "threshold": self.threshold,
            "repeat": self.repeat,
            "fired": self.fired,
            "summary": self.summary,
        }


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A bot's status; `previous` is None the first time the bot is seen."""

    bot: str
    status: Status
    previous: Status | None
    since_s: float
    at_s: float
    last_seen_s: float
    reason: str

    def to_json(self) -> dict[str, Any]:
        """The `bot:status` message clients receive; times in ms since the epoch."""
        return {
            "type": STATUS_EVENT_TYPE,
            "bot": self.bot,
            "status": self.status,
            "previous": self.previous,
            "since_ms": _ms(self.since_s),
            "at_ms": _ms(self.at_s),
            "last_seen_ms": _ms(self.last_seen_s),
            "reason": self.reason,
        }


def alert_event(
    rule: Rule,
    bot: str,
    state: AlertState,
    since_s: float,
    now_s: float,
    value: float | None,
    threshold: float,
    held_s: float,
    *,
    repeat: bool = False,
    fired: bool = False,
    detail: str = "",
) -> AlertEvent:
    """One transition of a rule's alert for a bot, with its human summary; `detail` is a
    report rule's reason (what the bot said of itself)."""
    return AlertEvent(
        rule=rule.name,
        kind=rule.kind,
        bot=bot,
        state=state,
        since_s=since_s,
        at_s=now_s,
        value=value,
        threshold=threshold,
        repeat=repeat,
        fired=fired,
        summary=_summary(rule, bot, state, value, threshold, held_s, detail),
    )


def _summary(
    rule: Rule,
    bot: str,
    state: AlertState,
    value: float | None,
    threshold: float,
    held_s: float,
    detail: str,
) -> str:
    if isinstance(rule, ReportRule):
        if state == "resolved":
            return f"{bot} no longer reports itself {rule.level}"
        return f"{bot} reported {rule.level}: {detail or 'no reason given'}"
    if isinstance(rule, LatencyRule):
        quantile = f"{bot} {percentile_label(rule.percentile)} latency"
        if state == "resolved":
            if value is None:
                return f"{quantile} over {rule.window} has no samples any more"
            return (
                f"{quantile} {value:.1f} ms over {rule.window} back at or below {threshold:.1f} ms"
            )
        above = f"{quantile} {value or 0.0:.1f} ms over {rule.window} above {threshold:.1f} ms"
        if state == "pending":
            return f"{above}, firing if it lasts {format_s(rule.for_s)} s"
        return f"{above} for {format_s(held_s)} s"
    silent = value or 0.0
    if state == "resolved":
        return f"{bot} is sending again (last message {format_s(silent)} s ago)"
    sentence = f"{bot} silent for {format_s(silent)} s (timeout {format_s(threshold)} s)"
    if state == "pending":
        return f"{sentence}, down if it lasts {format_s(rule.for_s)} s"
    return sentence
