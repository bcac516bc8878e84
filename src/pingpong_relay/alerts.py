"""Alert rules, the per-(rule, bot) alert state machine and bot statuses: pure, clock passed in."""

from __future__ import annotations

import math
import re
import tomllib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fnmatch import fnmatchcase
from itertools import islice
from types import MappingProxyType
from typing import Any, ClassVar, Final, Literal, NoReturn, Protocol, TypeAlias

from pingpong_relay.defaults import WINDOW_NAMES
from pingpong_relay.parsing import parse_duration

RuleKind: TypeAlias = Literal["latency", "silence"]
AlertState: TypeAlias = Literal["pending", "firing", "resolved"]
Status: TypeAlias = Literal["up", "degraded", "pending", "down"]

RULE_KINDS: Final = ("latency", "silence")
# Values of the Prometheus `up` gauge; read-only because it is module-level.
STATUS_VALUES: Final[Mapping[str, float]] = MappingProxyType(
    {"up": 1.0, "degraded": 0.5, "pending": 0.5, "down": 0.0}
)
RESOLVED_HISTORY: Final = 256
ALERT_EVENT_TYPE: Final = "bot:alert"
STATUS_EVENT_TYPE: Final = "bot:status"


class BotMetrics(Protocol):
    """What the engine reads from the windowed latency statistics."""

    def bots(self) -> list[str]: ...

    def last_seen_s(self, bot: str) -> float | None: ...

    def typical_interval_s(self, bot: str, now_s: float) -> float | None: ...

    def latency_quantile(self, bot: str, window: str, q: float, now_s: float) -> float | None: ...


def _format_s(seconds: float) -> str:
    # Whole seconds read best in a sentence; tenths only matter below ten.
    if abs(seconds) >= 10:
        return f"{seconds:.0f}"
    return f"{seconds:.1f}".rstrip("0").rstrip(".")


def percentile_label(percentile: float) -> str:
    """0.95 -> "p95", 0.999 -> "p99.9"."""
    return f"p{percentile * 100:g}"


# --- rules ---------------------------------------------------------------------------------


def _check_duration(owner: str, name: str, value: float, *, positive: bool = False) -> None:
    ok = math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        bound = "> 0" if positive else ">= 0"
        raise ValueError(
            f"{owner}: {name} must be a finite number of seconds {bound}, not {value!r}"
        )


def _check_common(owner: str, name: str, for_s: float, bots: tuple[str, ...]) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{owner}: name must be a non-empty string, not {name!r}")
    _check_duration(owner, "for_s", for_s)
    for pattern in bots:
        if not isinstance(pattern, str) or not pattern:
            raise ValueError(f"{owner}: bots must be non-empty patterns, not {pattern!r}")


def _matches(patterns: tuple[str, ...], bot: str) -> bool:
    # fnmatchcase, not fnmatch: bot ids are case-sensitive on every platform.
    return not patterns or any(fnmatchcase(bot, pattern) for pattern in patterns)


@dataclass(frozen=True, slots=True)
class LatencyRule:
    """Alert while a bot's latency quantile over `window` is above `threshold_ms`."""

    kind: ClassVar[RuleKind] = "latency"

    name: str
    window: str = "1m"
    percentile: float = 0.95
    threshold_ms: float = 500.0
    for_s: float = 30.0
    bots: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        owner = f"latency rule {self.name!r}"
        object.__setattr__(self, "bots", tuple(self.bots))
        _check_common(owner, self.name, self.for_s, self.bots)
        if self.window not in WINDOW_NAMES:
            raise ValueError(
                f"{owner}: window must be one of {', '.join(WINDOW_NAMES)}, not {self.window!r}"
            )
        if not 0 < self.percentile <= 1:
            raise ValueError(f"{owner}: percentile must be in (0, 1], not {self.percentile!r}")
        if not (math.isfinite(self.threshold_ms) and self.threshold_ms >= 0):
            raise ValueError(
                f"{owner}: threshold_ms must be a finite number >= 0, not {self.threshold_ms!r}"
            )

    def applies_to(self, bot: str) -> bool:
        return _matches(self.bots, bot)


@dataclass(frozen=True, slots=True)
class SilenceRule:
    """Alert while a bot has sent nothing for max(timeout_s, interval_factor × its interval)."""

    kind: ClassVar[RuleKind] = "silence"

    name: str
    timeout_s: float = 30.0
    interval_factor: float = 3.0
    for_s: float = 30.0
    bots: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        owner = f"silence rule {self.name!r}"
        object.__setattr__(self, "bots", tuple(self.bots))
        _check_common(owner, self.name, self.for_s, self.bots)
        _check_duration(owner, "timeout_s", self.timeout_s, positive=True)
        if not (math.isfinite(self.interval_factor) and self.interval_factor >= 0):
            raise ValueError(
                f"{owner}: interval_factor must be a finite number >= 0, "
                f"not {self.interval_factor!r}"
            )

    def applies_to(self, bot: str) -> bool:
        return _matches(self.bots, bot)

    def timeout_for(self, typical_interval_s: float | None) -> float:
        """The effective timeout: a bot that publishes every 20 s is not silent after 30 s."""
        if typical_interval_s is None:
            return self.timeout_s
        return max(self.timeout_s, self.interval_factor * typical_interval_s)


Rule: TypeAlias = LatencyRule | SilenceRule


def default_rules(
    latency_threshold_ms: float = 500.0,
    latency_window: str = "1m",
    latency_percentile: float = 0.95,
    latency_for_s: float = 30.0,
    silence_timeout_s: float = 30.0,
    silence_for_s: float = 30.0,
) -> list[Rule]:
    """One latency rule named "latency" and one silence rule named "silence", for every bot."""
    return [
        LatencyRule(
            name="latency",
            window=latency_window,
            percentile=latency_percentile,
            threshold_ms=latency_threshold_ms,
            for_s=latency_for_s,
        ),
        SilenceRule(name="silence", timeout_s=silence_timeout_s, for_s=silence_for_s),
    ]


# --- loading rules from TOML ---------------------------------------------------------------


def _non_negative(value: object) -> float | None:
    """The value as a float if it is a finite number >= 0, else None."""
    # TOML booleans are Python bools, and bool is an int subclass; `true` is not a number.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def _toml_duration(value: object) -> float:
    if isinstance(value, str):
        return parse_duration(value)
    seconds = _non_negative(value)
    if seconds is None:
        raise ValueError(
            f'must be a duration like "30s" or a number of seconds >= 0, not {value!r}'
        )
    return seconds


def _toml_timeout(value: object) -> float:
    seconds = _toml_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be longer than 0 s, not {value!r}")
    return seconds


def _toml_number(value: object) -> float:
    number = _non_negative(value)
    if number is None:
        raise ValueError(f"must be a number >= 0, not {value!r}")
    return number


def _toml_window(value: object) -> str:
    if isinstance(value, str) and value in WINDOW_NAMES:
        return value
    raise ValueError(f"must be one of {', '.join(map(repr, WINDOW_NAMES))}, not {value!r}")


_PERCENTILE_NAME: Final = re.compile(r"p(\d+(?:\.\d+)?)")


def _toml_percentile(value: object) -> float:
    fraction: float | None
    if isinstance(value, str) and (match := _PERCENTILE_NAME.fullmatch(value.strip().lower())):
        # Decimal keeps "p99.9" at exactly 0.999 rather than 0.9990000000000001.
        fraction = float(Decimal(match[1]) / 100)
    else:
        fraction = _non_negative(value)
    if fraction is None:
        raise ValueError(f'must be like "p99" or a fraction like 0.99, not {value!r}')
    if not 0 < fraction <= 1:
        raise ValueError(f'must be in (0, 1] (0.99) or "p1".."p100", not {value!r}')
    return fraction


def _toml_patterns(value: object) -> tuple[str, ...]:
    if isinstance(value, list) and all(isinstance(item, str) and item for item in value):
        return tuple(value)
    raise ValueError(f'must be a list of bot id patterns like ["bot:gate*"], not {value!r}')


# TOML key -> (dataclass field, converter), per rule kind.
_Field: TypeAlias = tuple[str, Callable[[object], Any]]
_COMMON_KEYS: Final[dict[str, _Field]] = {
    "for": ("for_s", _toml_duration),
    "bots": ("bots", _toml_patterns),
}
_KEYS: Final[dict[str, dict[str, _Field]]] = {
    "latency": {
        "window": ("window", _toml_window),
        "percentile": ("percentile", _toml_percentile),
        "threshold_ms": ("threshold_ms", _toml_number),
        **_COMMON_KEYS,
    },
    "silence": {
        "timeout": ("timeout_s", _toml_timeout),
        "interval_factor": ("interval_factor", _toml_number),
        **_COMMON_KEYS,
    },
}


def _rule_from_table(index: int, table: dict[str, Any]) -> Rule:
    name = table.get("name")
    where = f"rule {index}" + (f" ({name!r})" if isinstance(name, str) and name else "")

    def fail(key: str, problem: str) -> NoReturn:
        raise ValueError(f"{where}: key {key!r} {problem}")

    if "name" not in table:
        fail("name", "is missing")
    if not isinstance(name, str) or not name.strip():
        fail("name", f"must be a non-empty string, not {name!r}")
    if "kind" not in table:
        fail("kind", 'is missing; it is "latency" or "silence"')
    kind = table["kind"]
    if kind not in RULE_KINDS:
        fail("kind", f'must be "latency" or "silence", not {kind!r}')
    keys = _KEYS[kind]
    values: dict[str, Any] = {"name": name}
    for key, raw in table.items():
        if key in ("name", "kind"):
            continue
        if key not in keys:
            fail(key, f"is not known for a {kind} rule; use {', '.join(['name', 'kind', *keys])}")
        attribute, convert = keys[key]
        try:
            values[attribute] = convert(raw)
        except ValueError as exc:
            fail(key, str(exc))
    try:
        return LatencyRule(**values) if kind == "latency" else SilenceRule(**values)
    except ValueError as exc:
        # Only reachable for checks the converters do not repeat; still say which rule.
        raise ValueError(f"{where}: {exc}") from None


def load_rules(text: str) -> list[Rule]:
    """Rules from TOML `[[rule]]` tables; ValueError names the rule and key that are wrong."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"alert rules are not valid TOML: {exc}") from None
    for key in document:
        if key != "rule":
            raise ValueError(f"unknown top-level key {key!r}; write each rule as a [[rule]] table")
    tables = document.get("rule", [])
    if not isinstance(tables, list) or not all(isinstance(table, dict) for table in tables):
        raise ValueError("key 'rule' must be an array of tables; write each rule as [[rule]]")
    rules: list[Rule] = []
    first_index: dict[str, int] = {}
    for index, table in enumerate(tables, start=1):
        rule = _rule_from_table(index, table)
        if rule.name in first_index:
            raise ValueError(
                f"rule {index} ({rule.name!r}): key 'name' repeats the name of "
                f"rule {first_index[rule.name]}; names must be unique"
            )
        first_index[rule.name] = index
        rules.append(rule)
    return rules


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


def _alert_event(
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
) -> AlertEvent:
    """One transition of a rule's alert for a bot, with its human summary."""
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
        summary=_summary(rule, bot, state, value, threshold, held_s),
    )


def _summary(
    rule: Rule, bot: str, state: AlertState, value: float | None, threshold: float, held_s: float
) -> str:
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
            return f"{above}, firing if it lasts {_format_s(rule.for_s)} s"
        return f"{above} for {_format_s(held_s)} s"
    silent = value or 0.0
    if state == "resolved":
        return f"{bot} is sending again (last message {_format_s(silent)} s ago)"
    sentence = f"{bot} silent for {_format_s(silent)} s (timeout {_format_s(threshold)} s)"
    if state == "pending":
        return f"{sentence}, down if it lasts {_format_s(rule.for_s)} s"
    return sentence


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
        event = _alert_event(
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
        status, reason = self._status_of(bot_state)
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
        applied = state.rules if self._alerting is None or self._alerting(bot) else ()
        for rule in applied:
            value: float | None
            if isinstance(rule, LatencyRule):
                value = metrics.latency_quantile(bot, rule.window, rule.percentile, now_s)
                threshold = rule.threshold_ms
                # No samples in the window is no evidence of slowness; silence rules
                # are what catch a bot that stopped sending.
                active = value is not None and value > threshold
            else:
                if not interval_read:
                    interval_s = metrics.typical_interval_s(bot, now_s)
                    interval_read = True
                threshold = rule.timeout_for(interval_s)
                value = max(0.0, now_s - last_seen_s)
                active = value > threshold
            self._step(state, rule, bot, active, value, threshold, now_s, events)
        state.last_seen_s = last_seen_s
        state.at_s = now_s
        status, reason = self._status_of(state)
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
    ) -> None:
        def event(
            alert_state: AlertState,
            since_s: float,
            held_s: float,
            *,
            repeat: bool = False,
            fired: bool = False,
        ) -> AlertEvent:
            made = _alert_event(
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

    @staticmethod
    def _status_of(state: _BotState) -> tuple[Status, str]:
        # The first alert (in rule-name order) of the worst kind explains the status.
        down: _Alert | None = None
        pending: _Alert | None = None
        degraded: _Alert | None = None
        for rule in state.rules:
            alert = state.alerts.get(rule.name)
            if alert is None:
                continue
            if rule.kind == "latency":
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
