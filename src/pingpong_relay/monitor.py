"""Bot health: statistics, statuses and alerts, and where they go (clients, metrics, webhooks)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import orjson

from pingpong_relay.alert_events import AlertEvent, StatusChange
from pingpong_relay.alerts import AlertEngine
from pingpong_relay.bot_series import BotMetrics, BotSeries
from pingpong_relay.defaults import MAX_CLOCK_SKEW_S, WINDOWS
from pingpong_relay.hub import Hub, HubMetrics
from pingpong_relay.instruments import Counter
from pingpong_relay.limits import LogThrottle
from pingpong_relay.messages import BotMessage
from pingpong_relay.rules import Rule
from pingpong_relay.stats import ESTABLISHED_MESSAGES, ESTABLISHED_SPAN_S, StatsBook
from pingpong_relay.stats_view import StatsView
from pingpong_relay.tasks import cancel_and_wait
from pingpong_relay.wire_types import STATS_TYPE

__all__ = ["OVERALL", "Monitor", "MonitorMetrics"]

log = logging.getLogger("pingpong_relay.monitor")

OVERALL = "*"  # the `bot` of the all-bots statistics message
EVICTION_LOG_INTERVAL_S = 10.0
CLOCK_SKEW_LOG_INTERVAL_S = 60.0  # a bot's wrong clock is wrong in every message


class MonitorMetrics(HubMetrics, BotMetrics, Protocol):
    """What the monitor counts, besides what its hub does and the per-bot series."""

    @property
    def bots_refused(self) -> Counter:
        """Counts messages relayed but not tracked: --max-bots established bots fill the book."""

    @property
    def bots_evicted(self) -> Counter:
        """Counts bots on probation evicted to make room for a new bot."""

    @property
    def clock_skew_messages(self) -> Counter:
        """Counts messages left out of the transit statistics: past --max-clock-skew."""


class Monitor:
    """Owns the statistics and the alert engine, and the two timed loops around them.

    The hot path calls `observe` once per valid message; everything else runs in the
    evaluation loop (silence is noticed by the clock, not by a message) and the stats
    loop, each a named task cancelled on shutdown.
    """

    def __init__(
        self,
        hub: Hub,
        metrics: MonitorMetrics,
        rules: Sequence[Rule],
        *,
        alert_sink: Callable[[dict[str, Any]], None] = lambda _alert: None,
        alert_repeat_s: float = 3600.0,
        max_bots: int = 256,
        max_clock_skew_s: float = MAX_CLOCK_SKEW_S,
        forget_after_s: float = 86400.0,
        evaluation_interval_s: float = 1.0,
        stats_interval_s: float = 5.0,
        clock: Callable[[], float] = time.time,
        hearing: Callable[[], bool] = lambda: True,
    ) -> None:
        self.hub = hub
        self.metrics = metrics
        self.book = StatsBook(
            max_bots,
            on_evict=self._evicted,
            max_clock_skew_s=max_clock_skew_s,
            on_clock_skew=self._clock_skewed,
        )
        self.view = StatsView(self.book)
        # Bots on probation get a status but no alert: a made-up id that sends one message
        # (or a few at once) must not page anyone.
        self.engine = AlertEngine(rules, alert_repeat_s, alerting=self.book.is_established)
        self.forget_after_s = forget_after_s
        # Where alert transitions go besides the clients: the webhook sender, or with several
        # relays on one Redis the lease that lets one of them send. The wiring binds it.
        self.alert_sink = alert_sink
        self.muted: Callable[[str, str], bool] = lambda _b, _r: False  # the mute gate's
        self._clock = clock
        self._evaluation_interval_s = evaluation_interval_s
        self._stats_interval_s = stats_interval_s
        self._untracked_logged = False
        self._evictions_log = LogThrottle(EVICTION_LOG_INTERVAL_S)
        self._skew_log = LogThrottle(CLOCK_SKEW_LOG_INTERVAL_S)
        self._skewed_last: tuple[str, float] = ("", 0.0)
        self.series = BotSeries(metrics)  # the established bots' metric series
        self._evicted_last: str | None = None
        self._hearing = hearing
        self._deaf = False
        self._tasks: list[asyncio.Task[None]] = []
        self._started_s: float | None = None

    # --- the hot path ---------------------------------------------------------------
    def observe(self, bot: str, message: BotMessage, now_s: float) -> None:
        """Records a valid message from `bot` received at `now_s` (clock seconds) and sends
        out the status changes and alert events it causes; past --max-bots, only counts it."""
        if not self.book.record(bot, now_s, message.type, message.latency_ms, message.timestamp_ms):
            self.metrics.bots_refused.inc()
            if not self._untracked_logged:
                self._untracked_logged = True
                _log_untracked(self.book.max_bots, bot)
            return
        self.view.note_report(bot, message.fields)
        established = self.book.is_established(bot)
        if established:
            self.series.heard(bot, now_s, message.latency_ms)
        events, changes = self.engine.evaluate_bot(self.view, bot, now_s)
        if events or changes:
            self._publish(events, changes)
        if established and bot not in self.series:
            self.series.add(bot, self.engine.status(bot))

    def seed(
        self,
        bot: str,
        last_seen_s: float,
        notified: Sequence[tuple[str, str, float]] = (),
    ) -> bool:
        """An established bot this relay has not heard yet but the history knows: judged
        silent (counting from this relay's start at the earliest) until it is heard.

        `notified` is (rule, state, since_s) of each of its alerts that was last notified
        as pending or firing (by this relay before a restart, or by another one): those go
        on where they were, with no new notification, instead of starting over. False when
        every slot is taken by an established bot.
        """
        now_s = self._clock()
        restored = [
            (rule, state, since_s)
            for rule, state, since_s in notified
            if state in ("pending", "firing")
        ]
        # Silence counts from this relay's start at the earliest: before it nothing was
        # heard, whatever the history says (bots may have published while no relay listened).
        # Not for a bot already notified as silent: it is silent since its last message.
        judged_from = last_seen_s if restored else max(last_seen_s, self._started_s or now_s)
        if not self.book.seed(bot, judged_from):
            return False
        self.metrics.bot_last_seen.labels(bot).set(last_seen_s)
        for rule, state, since_s in restored:
            restored_here = self.engine.restore(bot, rule, state, since_s, now_s, last_seen_s)
            if restored_here and state == "firing":
                self.series.firing(rule, bot)
        self.series.add(bot, self.engine.status(bot))
        return True

    # --- bots leaving the book ----------------------------------------------------------
    def _drop_bot(self, bot: str) -> None:
        """A bot evicted or forgotten: its status, alerts and metric series go, unannounced."""
        self.series.drop(bot, (rule.name for rule in self.engine.rules))
        self.engine.forget(bot)
        self.view.reports.pop(bot, None)

    def _log_evictions(self, count: int) -> None:
        """Evictions are logged at most once per EVICTION_LOG_INTERVAL_S, with a count."""
        if not count:
            return
        log.warning(
            "evicted %d bot(s) on probation (not yet heard %d times over %g s) to make room "
            "for new ones (--max-bots %d is full); last evicted: %s",
            count,
            ESTABLISHED_MESSAGES,
            ESTABLISHED_SPAN_S,
            self.book.max_bots,
            self._evicted_last,
            extra={"event": "bots_evicted", "bots": count, "last": self._evicted_last},
        )

    def _evicted(self, bot: str) -> None:
        self._drop_bot(bot)
        self.metrics.bots_evicted.inc()
        self._evicted_last = bot
        self._log_evictions(self._evictions_log.note("evicted", self._clock()))

    def _clock_skewed(self, bot: str, transit_ms: float) -> None:
        self.metrics.clock_skew_messages.inc()
        self._skewed_last = (bot, transit_ms)
        self._log_clock_skew(self._skew_log.note("clock_skew", self._clock()))

    def _log_clock_skew(self, count: int) -> None:
        if count:
            _log_clock_skew(count, *self._skewed_last, self.book.max_clock_skew_s)

    def forget_silent(self, now_s: float) -> list[str]:
        """Forgets every bot silent for longer than forget_after_s (0: never): its status,
        alerts and series go without a notification, as after a restart (which does not
        bring such bots back either)."""
        if self.forget_after_s <= 0:
            return []
        gone = self.book.silent_since(now_s - self.forget_after_s)
        for bot in gone:
            self.book.forget(bot)
            self._drop_bot(bot)
        if gone:
            log.info(
                "forgot %d bot(s) silent for over %g s (--forget-after), e.g. %s",
                len(gone),
                self.forget_after_s,
                gone[0],
                extra={"event": "bots_forgotten", "bots": len(gone), "example": gone[0]},
            )
        return gone

    # --- what clients and HTTP ask for ------------------------------------------------
    def bots(self) -> list[str]:
        """Every bot the relay knows (tracked in the statistics)."""
        return self.book.bots()

    def knows(self, bot: str) -> bool:
        """Whether the statistics track `bot`."""
        return self.book.get(bot) is not None

    def status_messages(self, wants_bot: Callable[[str], bool]) -> list[bytes]:
        """The current status of every bot the client may see, for one that starts watching."""
        return [
            orjson.dumps(change.to_json())
            for bot, change in sorted(self.engine.statuses().items())
            if wants_bot(bot)
        ]

    def stats(self, window: str, bot: str | None = None) -> dict[str, Any]:
        """The statistics over `window`, overall and per bot (only `bot`'s when given;
        KeyError if it is not tracked), as /stats serves them."""
        return self.book.summary(window, self._clock(), bot)

    def alerts(self) -> dict[str, Any]:
        """The active alerts and the recently resolved ones, as /alerts serves them."""
        return {
            "active": [event.to_json() for event in self.engine.active()],
            "recently_resolved": [event.to_json() for event in self.engine.recent_resolved()],
        }

    def statuses(self) -> dict[str, Any]:
        """Every bot's current `bot:status` message by bot, as /bots serves them."""
        return {bot: change.to_json() for bot, change in sorted(self.engine.statuses().items())}

    # --- fan-out ----------------------------------------------------------------------
    def _publish(self, events: list[AlertEvent], changes: list[StatusChange]) -> None:
        for change in changes:
            _log_status_change(change)
            self.series.status(change.bot, change.status)
            self.hub.broadcast(
                orjson.dumps(change.to_json()), "status", change.bot, key=("status", change.bot)
            )
        for event in events:
            _log_alert(event)
            self.series.alert(event)
            body = event.to_json()
            if self.muted(event.bot, event.rule):
                body["muted"] = True
            self.hub.broadcast(
                orjson.dumps(body), "alerts", event.bot, key=("alert", event.rule, event.bot)
            )
            self.alert_sink(body)

    # --- timed loops ------------------------------------------------------------------
    def start(self) -> None:
        """Starts the alert-evaluation and stats-broadcast loops on the running event loop;
        seeded bots are judged silent from now at the earliest."""
        self._started_s = self._clock()
        self._tasks = [
            asyncio.create_task(self._evaluate_loop(), name="alert-evaluation"),
            asyncio.create_task(self._stats_loop(), name="stats-broadcast"),
        ]

    async def stop(self) -> None:
        """Cancels both loops and waits until they have ended."""
        await cancel_and_wait(*self._tasks)
        self._tasks = []

    async def _evaluate_loop(self) -> None:
        while True:
            await asyncio.sleep(self._evaluation_interval_s)
            try:
                now_s = self._clock()
                self._log_evictions(self._evictions_log.flush("evicted", now_s))
                self._log_clock_skew(self._skew_log.flush("clock_skew", now_s))
                if not self._check_hearing():
                    continue
                self.forget_silent(now_s)
                events, changes = self.engine.evaluate(self.view, self._clock())
                if events or changes:
                    self._publish(events, changes)
            except Exception:
                log.exception("alert evaluation failed; trying again next interval")

    def _check_hearing(self) -> bool:
        """False while the relay cannot hear Redis: no bot is judged silent meanwhile."""
        if not self._hearing():
            if not self._deaf:
                self._deaf = True
                log.warning(
                    "Redis subscription down: silence checks paused until it is back",
                    extra={"event": "silence_checks_paused"},
                )
            return False
        if self._deaf:
            self._deaf = False
            self.view.hearing_since_s = self._clock()
            log.info(
                "Redis subscription back: silence checks resume, counting from now",
                extra={"event": "silence_checks_resumed"},
            )
        return True

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(self._stats_interval_s)
            try:
                await self._broadcast_stats()
            except Exception:
                log.exception("stats broadcast failed; trying again next interval")

    async def _broadcast_stats(self) -> None:
        # Summaries cost real CPU (merging 60 slots per window), so only bots that some
        # client watches are summarised, and the loop yields between bots.
        for bot in (OVERALL, *self.book.bots()):
            targets = self.hub.targets("stats", bot)
            if not targets:
                continue
            now_s = self._clock()
            stats = self.book.overall if bot == OVERALL else self.book.get(bot)
            if stats is None:
                continue
            body = {
                "type": STATS_TYPE,
                "bot": bot,
                "generated_at_ms": int(now_s * 1000),
                "windows": {window: stats.summary(window, now_s) for window in WINDOWS},
            }
            # No await since the targets were taken: they are still the groups to write to.
            self.hub.deliver(orjson.dumps(body), targets, ("stats", bot))
            await asyncio.sleep(0)


def _log_status_change(change: StatusChange) -> None:
    log.info(
        "bot %s is %s (was %s): %s",
        change.bot,
        change.status,
        change.previous or "unknown",
        change.reason,
        extra={
            "event": "bot_status",
            "bot": change.bot,
            "status": change.status,
            "previous": change.previous,
        },
    )


def _log_alert(event: AlertEvent) -> None:
    level = logging.INFO if event.state == "pending" else logging.WARNING
    log.log(
        level,
        "alert %s %s for %s%s: %s",
        event.rule,
        event.state,
        event.bot,
        " (repeat)" if event.repeat else "",
        event.summary,
        extra={
            "event": "alert",
            "rule": event.rule,
            "bot": event.bot,
            "state": event.state,
            "repeat": event.repeat,
            "value": event.value,
        },
    )


def _log_clock_skew(count: int, bot: str, transit_ms: float, bound_s: float) -> None:
    # INFO, not WARNING: the messages were relayed, and only the transit statistics leave
    # them out; the bot's clock is wrong, not the relay. At most once per interval.
    log.info(
        "%d message(s) with a timestamp more than %g s from the relay's clock (--max-clock-"
        "skew), relayed but left out of the transit statistics; latest from %s, %.0f s %s",
        count,
        bound_s,
        bot,
        abs(transit_ms) / 1000.0,
        "behind" if transit_ms > 0 else "ahead",
        extra={"event": "clock_skew", "messages": count, "bot": bot, "transit_ms": transit_ms},
    )


def _log_untracked(max_bots: int, bot: str) -> None:
    log.warning(
        "more than %d established bots: %s and later new bots are relayed but not tracked "
        "(raise --max-bots)",
        max_bots,
        bot,
        extra={"event": "max_bots_reached", "bot": bot},
    )
