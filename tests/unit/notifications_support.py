"""What the notification tests share: alert transitions as the engine makes them, by hand."""

from __future__ import annotations

from typing import Any

from pingpong_relay.alert_events import AlertEvent, AlertState
from pingpong_relay.rules import RuleKind

# 2026-01-01T00:00:00Z: times in the texts are easy to read.
T0 = 1_767_225_600.0
GATE = "bot:pingpong/gate-1"


def event(
    bot: str = GATE,
    state: AlertState = "firing",
    *,
    kind: RuleKind = "silence",
    rule: str | None = None,
    value: float | None = 125.0,
    threshold: float | None = None,
    at_s: float = T0,
    since_s: float | None = None,
    repeat: bool = False,
    fired: bool | None = None,
    summary: str | None = None,
) -> AlertEvent:
    """An AlertEvent; by default a silence alert firing at T0 for a bot silent 125 s."""
    return AlertEvent(
        rule=rule or kind,
        kind=kind,
        bot=bot,
        state=state,
        since_s=at_s if since_s is None else since_s,
        at_s=at_s,
        value=value,
        threshold=threshold if threshold is not None else (30.0 if kind == "silence" else 500.0),
        repeat=repeat,
        fired=state != "pending" if fired is None else fired,
        summary=summary or f"{bot} {state} summary",
    )


def alert(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """The `bot:alert` JSON of event(*args, **kwargs)."""
    return event(*args, **kwargs).to_json()
