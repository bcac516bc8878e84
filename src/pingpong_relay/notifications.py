"""Alert transitions as notifications for people: which, to which channel, in what words (pure).

The monitor hands each alert transition on as its `bot:alert` JSON. A person is told when
an alert fires (and again on each repeat the engine marks) and when an alert that fired
resolves; never of a pending alert, nor of one that resolved without firing. A channel
(`--notify URL`, any Apprise URL) may be limited to some bots and rules by two query
parameters the relay takes off the URL before Apprise sees it:

    tgram://TOKEN/CHAT?bots=bot:pingpong/gate-*,bot:pingpong/desk-*&rules=silence

One transition is one specific notification (`[FIRING] bot:pingpong/gate-1 silent for 2m
(rule silence)`); several that come together are one notification listing them all
(notification_groups.py decides when).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeAlias
from urllib.parse import quote, unquote

from pingpong_relay.alert_events import AlertEvent, AlertState
from pingpong_relay.limits import BotAllowList
from pingpong_relay.rules import RuleKind, format_s

__all__ = [
    "FILTER_KEYS",
    "MAX_LISTED",
    "ChannelSpec",
    "Notification",
    "Severity",
    "Transition",
    "alert_from_json",
    "began_s",
    "dashboard_link",
    "describe",
    "format_duration",
    "iso_utc",
    "notifies",
    "parse_channel",
    "render",
]

# The query parameters of a --notify URL that are the relay's, not the service's. No
# Apprise service reads a parameter of these names (checked against Apprise 2.3).
FILTER_KEYS: Final = ("bots", "rules")
# Bots listed per state and rule in a grouped notification; the rest are counted.
MAX_LISTED: Final = 25

Severity: TypeAlias = Literal["failure", "success", "warning"]
_STATES: Final[Mapping[str, AlertState]] = {
    "pending": "pending",
    "firing": "firing",
    "resolved": "resolved",
}
_KINDS: Final[Mapping[str, RuleKind]] = {
    "latency": "latency",
    "silence": "silence",
    "report": "report",
}


# --- which transitions ---------------------------------------------------------------------


def _text(alert: Mapping[str, Any], name: str) -> str:
    value = alert.get(name)
    if not isinstance(value, str):
        raise ValueError(f"bot:alert field {name!r} is {value!r}, not a string")
    return value


def _number(alert: Mapping[str, Any], name: str) -> float:
    value = alert.get(name)
    # bool is an int subclass, and true is not a number.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"bot:alert field {name!r} is {value!r}, not a number")
    return float(value)


def _flag(alert: Mapping[str, Any], name: str) -> bool:
    value = alert.get(name)
    if not isinstance(value, bool):
        raise ValueError(f"bot:alert field {name!r} is {value!r}, not true or false")
    return value


def alert_from_json(alert: Mapping[str, Any]) -> AlertEvent:
    """The AlertEvent a `bot:alert` message (AlertEvent.to_json) came from; ValueError
    naming the field that is missing or of the wrong type."""
    state = _STATES.get(_text(alert, "state"))
    if state is None:
        raise ValueError(f"bot:alert field 'state' is {alert['state']!r}, not {', '.join(_STATES)}")
    kind = _KINDS.get(_text(alert, "kind"))
    if kind is None:
        raise ValueError(f"bot:alert field 'kind' is {alert['kind']!r}, not {', '.join(_KINDS)}")
    return AlertEvent(
        rule=_text(alert, "rule"),
        kind=kind,
        bot=_text(alert, "bot"),
        state=state,
        since_s=_number(alert, "since_ms") / 1000.0,
        at_s=_number(alert, "at_ms") / 1000.0,
        value=None if alert.get("value") is None else _number(alert, "value"),
        threshold=_number(alert, "threshold"),
        repeat=_flag(alert, "repeat"),
        fired=_flag(alert, "fired"),
        summary=_text(alert, "summary"),
    )


def began_s(firing: AlertEvent) -> float:
    """When the trouble a firing event reports began: the bot's last message before a
    silence, the moment a latency alert fired."""
    if firing.kind == "silence" and firing.value is not None:
        return firing.at_s - firing.value
    return firing.since_s


def notifies(event: AlertEvent) -> bool:
    """Whether a person hears of this transition: firing (a repeat included) and the
    resolution of an alert that fired; not pending, nor a pending alert that went away."""
    return event.state == "firing" or (event.state == "resolved" and event.fired)


@dataclass(frozen=True, slots=True)
class Transition:
    """A transition to notify, with when its trouble began (began_s of the alert's firing
    event; None for a resolution whose firing this relay never saw)."""

    event: AlertEvent
    started_s: float | None

    @property
    def key(self) -> tuple[str, str]:
        """(rule, bot): the alert this is a transition of."""
        return (self.event.rule, self.event.bot)


# --- channels ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """One --notify value: the Apprise URL (without the relay's filter parameters), and
    the bot patterns and rule names it is limited to (none: every bot, every rule)."""

    position: int
    url: str
    scheme: str
    bots: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    _allowed: BotAllowList = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Compiled once: accepts() runs for every transition.
        object.__setattr__(self, "_allowed", BotAllowList(self.bots))

    @property
    def name(self) -> str:
        """How logs and errors name the channel: its position and scheme, never its URL
        (Apprise URLs carry tokens in the host, path and query)."""
        return f"channel {self.position} ({self.scheme}://…)"

    def accepts(self, event: AlertEvent) -> bool:
        """Whether this channel is told of the event's bot and rule."""
        if self.rules and event.rule not in self.rules:
            return False
        return self._allowed.accepts(event.bot)


def parse_channel(text: str, position: int) -> ChannelSpec:
    """A --notify value as a ChannelSpec (`position` counts from 1, for messages);
    ValueError naming the channel by position and scheme, never quoting the URL."""
    scheme, sep, _ = text.strip().partition("://")
    if not sep or not scheme or not scheme.replace("+", "").replace("-", "").isalnum():
        raise ValueError(
            f"notification channel {position}: not an Apprise URL (scheme://…, e.g. "
            "tgram://TOKEN/CHAT_ID or mailtos://user:password@example.com)"
        )
    scheme = scheme.lower()
    base, qmark, query = text.strip().partition("?")
    kept: list[str] = []
    found: dict[str, list[str]] = {key: [] for key in FILTER_KEYS}
    for pair in query.split("&") if qmark else ():
        key, _, value = pair.partition("=")
        if key not in FILTER_KEYS:
            kept.append(pair)
            continue
        items = [unquote(item).strip() for item in value.split(",")]
        if not all(items):
            raise ValueError(
                f"notification channel {position} ({scheme}://…): {key}= needs a "
                f"comma-separated list of {'bot patterns' if key == 'bots' else 'rule names'}"
            )
        found[key] += items
    url = base + ("?" + "&".join(kept) if kept else "")
    return ChannelSpec(position, url, scheme, tuple(found["bots"]), tuple(found["rules"]))


# --- words ---------------------------------------------------------------------------------


def format_duration(seconds: float) -> str:
    """A duration as people write it: 4.5s, 2m, 2m 10s, 1h 5m, 3d 2h (two units at most)."""
    if seconds < 10:
        return f"{format_s(max(0.0, seconds))}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    units = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    first = next(index for index, (amount, _) in enumerate(units) if amount)
    return " ".join(f"{amount}{unit}" for amount, unit in units[first : first + 2] if amount)


def iso_utc(seconds: float) -> str:
    """Seconds since the epoch as UTC ISO 8601, to the second: 2026-01-02T03:04:05Z."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dashboard_link(public_url: str, bot: str | None = None) -> str:
    """The dashboard at `public_url`, opened on `bot` when one is given."""
    base = public_url.rstrip("/") + "/"
    return base + (f"?bot={quote(bot, safe='')}" if bot is not None else "")


def _headline(event: AlertEvent) -> str:
    """What happened to the bot, in a few words (no bot, no rule)."""
    if event.kind == "report":  # the bot's own words: the summary after its name
        return event.summary.removeprefix(f"{event.bot} ")
    if event.kind == "silence":
        if event.state == "resolved":
            return "sending again"
        return f"silent for {format_duration(event.value or 0.0)}"
    if event.value is None:
        return "latency has no samples"
    relation = "above" if event.state == "firing" else "back at or below"
    return f"latency {event.value:.1f} ms {relation} {event.threshold:.1f} ms"


def _value_line(event: AlertEvent) -> str:
    if event.kind == "report":
        return "Value: the bot's own report"
    if event.kind == "silence":
        return (
            f"Value: silent for {format_s(event.value or 0.0)} s, "
            f"threshold {format_s(event.threshold)} s"
        )
    shown = "no samples" if event.value is None else f"{event.value:.1f} ms"
    return f"Value: {shown}, threshold {event.threshold:.1f} ms"


def _when_line(transition: Transition) -> str:
    event, started_s = transition.event, transition.started_s
    if event.state == "firing":
        since = event.since_s if started_s is None else started_s
        lasted = event.at_s - since
        return f"Since: {iso_utc(since)}" + (f" ({format_duration(lasted)})" if lasted >= 1 else "")
    if started_s is None:
        return f"Resolved: {iso_utc(event.at_s)}"
    lasted_for = format_duration(event.at_s - started_s)
    return f"From {iso_utc(started_s)} to {iso_utc(event.at_s)} ({lasted_for})"


def describe(transition: Transition) -> str:
    """Two lines: the value against the threshold, and since when (and how long)."""
    return f"{_value_line(transition.event)}\n{_when_line(transition)}"


def _state_word(event: AlertEvent) -> str:
    return "FIRING" if event.state == "firing" else "RESOLVED"


@dataclass(frozen=True, slots=True)
class Notification:
    """What a channel is sent: a title, a plain-text body, and how bad it is (Apprise's
    notify type: failure while anything fires, success once all resolved, warning mixed)."""

    title: str
    body: str
    severity: Severity
    transitions: tuple[Transition, ...]


def _severity(transitions: Sequence[Transition]) -> Severity:
    states = {t.event.state for t in transitions}
    if states == {"resolved"}:
        return "success"
    return "failure" if states == {"firing"} else "warning"


def _render_one(transition: Transition, public_url: str | None) -> Notification:
    event = transition.event
    repeat = ", still firing" if event.repeat else ""
    title = f"[{_state_word(event)}] {event.bot} {_headline(event)} (rule {event.rule}{repeat})"
    kind = "" if event.rule == event.kind else f" ({event.kind})"
    lines = [event.summary, "", f"Bot: {event.bot}", f"Rule: {event.rule}{kind}"]
    lines.append(describe(transition))
    if public_url:
        lines.append(f"Dashboard: {dashboard_link(public_url, event.bot)}")
    return Notification(title, "\n".join(lines), _severity([transition]), (transition,))


def _group_line(transition: Transition) -> str:
    event = transition.event
    if event.state == "firing":
        since = event.since_s if transition.started_s is None else transition.started_s
        when = f"since {iso_utc(since)}"
    elif transition.started_s is not None:
        when = f"lasted {format_duration(event.at_s - transition.started_s)}"
    else:
        when = f"at {iso_utc(event.at_s)}"
    return f"- {event.bot}: {_headline(event)}, {when}"


def _render_group(transitions: Sequence[Transition], public_url: str | None) -> Notification:
    sections: dict[tuple[str, str], list[Transition]] = {}
    for transition in transitions:
        event = transition.event
        sections.setdefault((_state_word(event), event.rule), []).append(transition)
    # Bots, not alerts: a bot both silent and slow counts once in the title.
    counts = {
        state: len({t.event.bot for t in transitions if _state_word(t.event) == state})
        for state in ("FIRING", "RESOLVED")
    }
    rules = sorted({rule for _, rule in sections})
    heads = [f"[{state}] {n} {'bot' if n == 1 else 'bots'}" for state, n in counts.items() if n]
    title = ", ".join(heads) + f": {_group_subject(transitions, rules)}"
    lines: list[str] = []
    for (state, rule), members in sorted(sections.items()):
        lines += ["", f"{state}, rule {rule} ({len(members)}):"]
        lines += [_group_line(member) for member in members[:MAX_LISTED]]
        if len(members) > MAX_LISTED:
            lines.append(f"… and {len(members) - MAX_LISTED} more")
    if public_url:
        lines += ["", f"Dashboard: {dashboard_link(public_url)}"]
    return Notification(title, "\n".join(lines[1:]), _severity(transitions), tuple(transitions))


def _group_subject(transitions: Sequence[Transition], rules: list[str]) -> str:
    kinds = {t.event.kind for t in transitions}
    states = {t.event.state for t in transitions}
    named = f"(rule {rules[0]})" if len(rules) == 1 else f"(rules {', '.join(rules)})"
    if len(kinds) == 1 and len(states) == 1:
        kind, state = kinds.pop(), states.pop()
        if kind == "silence":
            return f"{'silent' if state == 'firing' else 'sending again'} {named}"
        if kind == "report":
            return f"{'reported' if state == 'firing' else 'no longer reported'} {named}"
        return f"latency {'above' if state == 'firing' else 'back at or below'} threshold {named}"
    return named.strip("()")


def render(transitions: Sequence[Transition], public_url: str | None = None) -> Notification:
    """One notification telling of `transitions` (at least one): a single one in full, several
    as a list, by state and rule, of at most MAX_LISTED bots each. With `public_url`, a link
    to the dashboard (on the bot, for a single transition)."""
    if not transitions:
        raise ValueError("a notification needs at least one transition")
    if len(transitions) == 1:
        return _render_one(transitions[0], public_url)
    return _render_group(transitions, public_url)
