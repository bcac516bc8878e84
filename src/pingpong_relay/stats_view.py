"""The alert engine's view of the statistics (its BotMetrics protocol), with what bots
last reported of themselves (pure)."""

from __future__ import annotations

from typing import Any

from pingpong_relay.ingest import reported_status
from pingpong_relay.stats import StatsBook

__all__ = ["StatsView"]


class StatsView:
    """The alert engine's view of the statistics (its BotMetrics protocol)."""

    def __init__(self, book: StatsBook) -> None:
        self.book = book
        # When the relay itself was deaf (its Redis subscription down), a bot's silence
        # is not the bot's doing: silence is measured from when the relay could hear again.
        self.hearing_since_s: float | None = None
        # Bots whose last message reported them down or degraded: (status, reason).
        self.reports: dict[str, tuple[str, str]] = {}

    def bots(self) -> list[str]:
        """Every bot the statistics track."""
        return self.book.bots()

    def last_seen_s(self, bot: str) -> float | None:
        """When the bot was last heard, but no earlier than when the relay could hear Redis
        again: silence while the relay was deaf is not the bot's."""
        stats = self.book.get(bot)
        seen = stats.last_seen_s if stats is not None else None
        if seen is None or self.hearing_since_s is None:
            return seen
        return max(seen, self.hearing_since_s)

    def typical_interval_s(self, bot: str, now_s: float) -> float | None:
        """The bot's median seconds between messages over "5m"; None if it is not tracked
        or sent fewer than two messages in that window."""
        stats = self.book.get(bot)
        return stats.typical_interval_s(now_s) if stats is not None else None

    def latency_quantile(self, bot: str, window: str, q: float, now_s: float) -> float | None:
        """The bot's latency quantile `q` (0 to 1) over `window`, in ms; None if it is not
        tracked or reported no latency in the window."""
        stats = self.book.get(bot)
        return stats.latency_quantile(window, q, now_s) if stats is not None else None

    def reported(self, bot: str) -> tuple[str, str] | None:
        """What the bot's last message said of it, when it said down or degraded."""
        return self.reports.get(bot)

    def note_report(self, bot: str, fields: dict[str, Any]) -> None:
        """Keeps what a message reports of its bot (a message without a report clears it)."""
        report = reported_status(fields) if "status" in fields else None
        if report is not None:
            self.reports[bot] = report
        elif self.reports:
            self.reports.pop(bot, None)
