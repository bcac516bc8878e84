"""The per-(rule, bot) alert state machine and bot statuses: pure, clock passed in."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Final, Protocol

from pingpong_relay.alert_events import (
    AlertEvent,
    AlertState,
    Status,
    StatusChange,
    alert_event,
)
from pingpong_relay.rules import (
    REPORT_RULES,
    LatencyRule,
    ReportRule,
    Rule,
    SilenceRule,
)

__all__ = ["AlertEngine", "BotMetrics"]

RESOLVED_HISTORY: Final = 256


class BotMetrics(Protocol):
    """What the engine reads from the windowed latency statistics."""

    def bots(self) -> list[str]:
        """Every bot with statistics: the bots the engine evaluates."""

    def last_seen_s(self, bot: str) -> float | None:
        """When the relay last got a message from the bot (clock seconds); None if never."""

    def typical_interval_s(self, bot: str, now_s: float) -> float | None:
        """The bot's usual seconds between messages, which adaptive silence timeouts scale
        with; None while too few recent messages tell."""

    def latency_quantile(self, bot: str, window: str, q: float, now_s: float) -> float | None:
        """The bot's latency quantile `q` (0 to 1) in ms over the named window; None when
        the window holds no samples."""

    def reported(self, bot: str) -> tuple[str, str] | None:
        """What the bot's last message reported of it, when it said down or degraded:
        (status, reason); None otherwise."""


# --- the engine ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Alert:
    """A pending or firing alert; it is deleted when it resolves."""

    state: AlertState
    active_since_s: float
    last_notified_s: float
    last_event: AlertEvent


@dataclass(slots=True)
class _BotState:
    rules: tuple[Rule, ...]
    alerts: dict[str, _Alert] = field(default_factory=dict)
    status: Status | None = None
    previous: Status | None = None
    since_s: float = 0.0
    at_s: float = 0.0
    last_seen_s: float = 0.0
    reason: str = ""


class AlertEngine:
    """Evaluates rules against BotMetrics and reports alert transitions and status changes.

    Sans-I/O: the caller passes the time in and delivers the returned events itself.
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        repeat_s: float = 3600.0,
        *,
        history: int = RESOLVED_HISTORY,
        alerting: Callable[[str], bool] | None = None,
    ) -> None:
        """`alerting(bot)` says whether rules apply to a bot yet (default: always). A bot
        they do not apply to still gets a status (`up`, never pending, down or degraded)
        but no alert of any rule: the monitor uses it for bots on probation."""
        if not (math.isfinite(repeat_s) and repeat_s > 0):
            raise ValueError(f"repeat_s must be a finite number of seconds > 0, not {repeat_s!r}")
        if history < 0:
            raise ValueError(f"history must be >= 0, not {history!r}")
        rules = [*rules, *REPORT_RULES]  # built in: a bot that says it is down is down
        names = [rule.name for rule in rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique; repeated: {', '.join(duplicates)}")
        # Sorted once so every evaluation emits events in rule-name order.
        self._rules = tuple(sorted(rules, key=lambda rule: rule.name))
        self._repeat_s = repeat_s
        self._bots: dict[str, _BotState] = {}
        self._resolved: deque[AlertEvent] = deque(maxlen=history)
        self._alerting = alerting

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules the engine evaluates, sorted by name (the order events come in)."""
        return self._rules

    def evaluate(
        self, metrics: BotMetrics, now_s: float
    ) -> tuple[list[AlertEvent], list[StatusChange]]:
        """Every bot in metrics.bots(): the alert events and status changes since the last call."""
        events: list[AlertEvent] = []
        changes: list[StatusChange] = []
        for bot in sorted(metrics.bots()):
            self._evaluate_bot(metrics, bot, now_s, events, changes)
        return events, changes

    def evaluate_bot(
        self, metrics: BotMetrics, bot: str, now_s: float
    ) -> tuple[list[AlertEvent], list[StatusChange]]:
        """The same as evaluate() for one bot, e.g. right after its message arrived."""
        events: list[AlertEvent] = []
        changes: list[StatusChange] = []
        self._evaluate_bot(metrics, bot, now_s, events, changes)
        return events, changes

    def active(self) -> list[AlertEvent]:
        """Pending and firing alerts, each as of its last event, by bot then rule."""
        return [
            self._bots[bot].alerts[rule.name].last_event
            for bot in sorted(self._bots)
            for rule in self._bots[bot].rules
            if rule.name in self._bots[bot].alerts
        ]

    def firing(self) -> list[tuple[str, str]]:
        """(rule, bot) of every firing alert, for metrics."""
        return [
            (event.rule, event.bot)
            for event in self.active()
            if self._bots[event.bot].alerts[event.rule].state == "firing"
        ]

    def recent_resolved(self, limit: int = 50) -> list[AlertEvent]:
        """The latest resolved events, newest first (pending ones that never fired included)."""
        return list(islice(reversed(self._resolved), max(0, limit)))

    def statuses(self) -> dict[str, StatusChange]:
        """The current status of every bot seen, as of its last evaluation (for a new client)."""
        current: dict[str, StatusChange] = {}
        for bot, state in sorted(self._bots.items()):
            if state.status is not None:
                current[bot] = StatusChange(
                    bot=bot,
                    status=state.status,
                    previous=state.previous,
                    since_s=state.since_s,
                    at_s=state.at_s,
                    last_seen_s=state.last_seen_s,
                    reason=state.reason,
                )
        return current

    def status(self, bot: str) -> Status | None:
        """A bot's current status (None before its first evaluation)."""
        state = self._bots.get(bot)
        return state.status if state is not None else None

    def forget(self, bot: str) -> None:
        """Drop a bot's alerts and status without events; it starts afresh if seen again."""
        self._bots.pop(bot, None)

    def restore(
        self,
        bot: str,
        rule_name: str,
        notified: str,
        since_s: float,
        now_s: float,
        last_seen_s: float,
    ) -> bool:
        """Take up a silence alert another relay (or this one before a restart) already
        notified as `notified` since `since_s`, without emitting anything: it goes on from
        there (fires when its `for` has passed since it went pending, repeats, resolves
        when the bot is heard). False, and nothing done, for a rule that is not a silence
        rule of this bot or a state that is not pending or firing.
        """
        state: AlertState
        if notified == "pending":
            state = "pending"
        elif notified == "firing":
            state = "firing"
        else:
            return False
        rule = next((r for r in self._rules if r.name == rule_name and r.applies_to(bot)), None)
        if not isinstance(rule, SilenceRule):
            return False
        bot_state = self._bots.get(bot)
        if bot_state is None:
            rules = tuple(r for r in self._rules if r.applies_to(bot))
            bot_state = self._bots[bot] = _BotState(rules=rules)
        if rule.name in bot_state.alerts:
            return False
        value = max(0.0, now_s - last_seen_s)
        threshold = rule.timeout_for(None)
        # A firing alert's since is when it fired; it went pending `for` earlier.
        active_since_s = since_s if state == "pending" else since_s - rule.for_s
        event = alert_event(
            rule,
            bot,
            state,
            since_s,
            now_s,
            value,
            threshold,
            now_s - active_since_s,
            fired=state == "firing",
        )
        bot_state.alerts[rule.name] = _Alert(state, active_since_s, now_s, event)
        bot_state.last_seen_s = last_seen_s
        bot_state.at_s = now_s
        status, reason = _status_of(bot_state)
        if status != bot_state.status:
            bot_state.previous, bot_state.status = bot_state.status, status
            bot_state.since_s = since_s
            bot_state.reason = reason
        return True

    def _evaluate_bot(
        self,
        metrics: BotMetrics,
        bot: str,
        now_s: float,
        events: list[AlertEvent],
        changes: list[StatusChange],
    ) -> None:
        last_seen_s = metrics.last_seen_s(bot)
        if last_seen_s is None:
            # Nothing to judge before a first message; a bot that metrics no longer
            # remembers keeps its state until forget().
            return
        state = self._bots.get(bot)
        if state is None:
            # Pattern matching is done once per bot, not once per evaluation.
            rules = tuple(rule for rule in self._rules if rule.applies_to(bot))
            state = self._bots[bot] = _BotState(rules=rules)
        interval_s: float | None = None
        interval_read = False
        applied = state.rules
        if self._alerting is not None and not self._alerting(bot):
            # On probation only a bot's own report counts: it knows it is down.
            applied = tuple(rule for rule in applied if isinstance(rule, ReportRule))
        for rule in applied:
            value: float | None
            detail = ""
            if isinstance(rule, ReportRule):
                active, detail = _reported(metrics, rule, bot)
                value, threshold = None, 0.0
            elif isinstance(rule, LatencyRule):
                value = metrics.latency_quantile(bot, rule.window, rule.percentile, now_s)
                threshold = rule.threshold_ms
                # No samples in the window is no evidence of slowness; silence rules
                # are what catch a bot that stopped sending.
                active = value is not None and value > threshold
            else:
                value = max(0.0, now_s - last_seen_s)
                if value <= rule.timeout_s and rule.name not in state.alerts:
                    # Within the least timeout it can have, with no alert to resolve: the
                    # step would do nothing (so the bot's usual interval is not needed).
                    continue
                if not interval_read:
                    interval_s = metrics.typical_interval_s(bot, now_s)
                    interval_read = True
                threshold = rule.timeout_for(interval_s)
                active = value > threshold
            self._step(state, rule, bot, active, value, threshold, now_s, events, detail)
        state.last_seen_s = last_seen_s
        state.at_s = now_s
        status, reason = _status_of(state)
        if status != state.status:
            if state.status is None:
                reason = "first seen" if status == "up" else reason
            state.previous, state.status = state.status, status
            state.since_s = now_s
            state.reason = reason
            changes.append(
                StatusChange(
                    bot=bot,
                    status=status,
                    previous=state.previous,
                    since_s=now_s,
                    at_s=now_s,
                    last_seen_s=last_seen_s,
                    reason=reason,
                )
            )

    def _step(
        self,
        state: _BotState,
        rule: Rule,
        bot: str,
        active: bool,
        value: float | None,
        threshold: float,
        now_s: float,
        events: list[AlertEvent],
        detail: str = "",
    ) -> None:
        def event(
            alert_state: AlertState,
            since_s: float,
            held_s: float,
            *,
            repeat: bool = False,
            fired: bool = False,
        ) -> AlertEvent:
            made = alert_event(
                rule,
                bot,
                alert_state,
                since_s,
                now_s,
                value,
                threshold,
                held_s,
                repeat=repeat,
                fired=fired,
                detail=detail,
            )
            events.append(made)
            return made

        alert = state.alerts.get(rule.name)
        if alert is None:
            if not active:
                return
            alert = _Alert("pending", now_s, now_s, event("pending", now_s, 0.0))
            state.alerts[rule.name] = alert
        elif not active:
            # A pending alert resolves too (fired=False), so every pending has an end.
            del state.alerts[rule.name]
            fired = alert.state == "firing"
            self._resolved.append(event("resolved", now_s, 0.0, fired=fired))
            return
        held_s = now_s - alert.active_since_s
        if alert.state == "pending":
            if held_s >= rule.for_s:
                alert.state = "firing"
                alert.last_notified_s = now_s
                alert.last_event = event("firing", now_s, held_s, fired=True)
        elif now_s - alert.last_notified_s >= self._repeat_s:
            alert.last_notified_s = now_s
            since_s = alert.last_event.since_s
            alert.last_event = event("firing", since_s, held_s, repeat=True, fired=True)


def _reported(metrics: BotMetrics, rule: ReportRule, bot: str) -> tuple[bool, str]:
    """Whether the bot's last message reported it at the rule's level, and its reason."""
    reported = metrics.reported(bot)
    if reported is None or reported[0] != rule.level:
        return False, ""
    return True, reported[1]


def _status_of(state: _BotState) -> tuple[Status, str]:
    # The first alert (in rule-name order) of the worst kind explains the status.
    down: _Alert | None = None
    pending: _Alert | None = None
    degraded: _Alert | None = None
    for rule in state.rules:
        alert = state.alerts.get(rule.name)
        if alert is None:
            continue
        if rule.kind == "latency" or (isinstance(rule, ReportRule) and rule.level == "degraded"):
            degraded = degraded or alert
        elif alert.state == "firing":
            down = down or alert
        else:
            pending = pending or alert
    if down is not None:
        return "down", down.last_event.summary
    if pending is not None:
        return "pending", pending.last_event.summary
    if degraded is not None:
        return "degraded", degraded.last_event.summary
    return "up", "no alert active"
