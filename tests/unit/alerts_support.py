"""What the alert test modules share: a BotMetrics from plain dicts, one bot, one start time."""

from __future__ import annotations

from dataclasses import dataclass, field

from pingpong_relay.alert_events import StatusChange
from pingpong_relay.alerts import AlertEngine
from pingpong_relay.rules import LatencyRule

BOT = "bot:pingpong/gate-1"
T0 = 1_700_000_000.0


@dataclass
class FakeMetrics:
    """BotMetrics from plain dicts; `listed` overrides bots() to model a bot that went away."""

    seen: dict[str, float] = field(default_factory=dict)
    latency_ms: dict[tuple[str, str, float], float] = field(default_factory=dict)
    interval_s: dict[str, float] = field(default_factory=dict)
    reports: dict[str, tuple[str, str]] = field(default_factory=dict)
    listed: list[str] | None = None

    def bots(self) -> list[str]:
        return list(self.seen) if self.listed is None else list(self.listed)

    def last_seen_s(self, bot: str) -> float | None:
        return self.seen.get(bot)

    def typical_interval_s(self, bot: str, now_s: float) -> float | None:
        return self.interval_s.get(bot)

    def latency_quantile(self, bot: str, window: str, q: float, now_s: float) -> float | None:
        return self.latency_ms.get((bot, window, q))

    def reported(self, bot: str) -> tuple[str, str] | None:
        return self.reports.get(bot)

    def set_latency(self, bot: str, ms: float | None, window: str = "1m", q: float = 0.95) -> None:
        if ms is None:
            self.latency_ms.pop((bot, window, q), None)
        else:
            self.latency_ms[(bot, window, q)] = ms


def latency_engine(for_s: float = 30.0, repeat_s: float = 3600.0) -> AlertEngine:
    return AlertEngine([LatencyRule("latency", for_s=for_s)], repeat_s=repeat_s)


def status_trail(changes: list[StatusChange]) -> list[tuple[str | None, str]]:
    return [(change.previous, change.status) for change in changes]
