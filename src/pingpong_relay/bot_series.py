"""Per-bot metric series (status, last seen, latency, firing alerts), for established bots only.

A flood of made-up ids creates no series, and a bot that leaves takes its series with it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Protocol

from pingpong_relay.alert_events import STATUS_VALUES, AlertEvent, Status
from pingpong_relay.instruments import Gauge, Histogram, Labelled

__all__ = ["BotMetrics", "BotSeries"]


class BotMetrics(Protocol):
    """The per-bot series (`telemetry.metrics.RelayMetrics` has these and more)."""

    @property
    def bot_up(self) -> Labelled[Gauge]:
        """Each bot's status by bot: 1 up, 0.5 degraded or pending, 0 down."""

    @property
    def bot_last_seen(self) -> Labelled[Gauge]:
        """When the relay last got a message from each bot, by bot (Unix seconds)."""

    @property
    def bot_latency(self) -> Labelled[Histogram]:
        """The exchange latency each bot reports, by bot, observed in seconds."""

    @property
    def alerts_firing(self) -> Labelled[Gauge]:
        """1 by (rule, bot) while that alert is firing; the series is removed when it resolves."""


class BotSeries:
    """Which bots have metric series, and what those series say.

    Only established bots have series: otherwise a flood of made-up ids would churn
    through series in every scrape (and cost a series to make and remove per message).
    """

    def __init__(self, metrics: BotMetrics) -> None:
        self._metrics = metrics
        self._bots: set[str] = set()

    def __contains__(self, bot: str) -> bool:
        return bot in self._bots

    def add(self, bot: str, status: Status | None) -> None:
        """A bot just established (or seeded): from now on it has its series."""
        self._bots.add(bot)
        if status is not None:
            self._metrics.bot_up.labels(bot).set(STATUS_VALUES[status])

    def heard(self, bot: str, now_s: float, latency_ms: float | None) -> None:
        """A message from an established bot: when, and the latency it reported."""
        self._metrics.bot_last_seen.labels(bot).set(now_s)
        if latency_ms is not None:
            self._metrics.bot_latency.labels(bot).observe(latency_ms / 1000.0)

    def status(self, bot: str, status: Status) -> None:
        """A bot's status changed (a bot without series stays without)."""
        if bot in self._bots:
            self._metrics.bot_up.labels(bot).set(STATUS_VALUES[status])

    def alert(self, event: AlertEvent) -> None:
        """An alert transition: firing sets its series, resolved removes it."""
        if event.state == "firing":
            self.firing(event.rule, event.bot)
        elif event.state == "resolved" and event.fired:
            with contextlib.suppress(KeyError):
                self._metrics.alerts_firing.remove(event.rule, event.bot)

    def firing(self, rule: str, bot: str) -> None:
        """An alert of `rule` is firing for `bot` (also when restored at start)."""
        self._metrics.alerts_firing.labels(rule, bot).set(1)

    def drop(self, bot: str, rules: Iterable[str]) -> None:
        """A bot evicted or forgotten: every series of it goes, the alerts' of `rules` too."""
        if bot not in self._bots:
            return
        self._bots.discard(bot)
        metrics = self._metrics
        for labelled in (metrics.bot_up, metrics.bot_last_seen, metrics.bot_latency):
            with contextlib.suppress(KeyError):
                labelled.remove(bot)
        for rule in rules:
            with contextlib.suppress(KeyError):
                metrics.alerts_firing.remove(rule, bot)
