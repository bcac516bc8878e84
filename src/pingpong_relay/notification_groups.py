"""When notifications leave: bursts of alert transitions grouped into one message (pure).

When many bots fail at once (an exchange outage), people get one message listing them,
not one message each. Alertmanager's group_wait and group_interval are the model: the
first transition after a quiet spell opens a group that leaves `group_wait_s` later
(promptly: seconds), and what happens while groups keep leaving joins the next one, at
most one every `group_interval_s`. The caller passes the time in (any monotonic clock).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Final

from pingpong_relay.alert_events import AlertEvent
from pingpong_relay.notifications import (
    ChannelSpec,
    Notification,
    Transition,
    alert_from_json,
    began_s,
    notifies,
    render,
)

__all__ = [
    "DEFAULT_GROUP_INTERVAL_S",
    "DEFAULT_GROUP_WAIT_S",
    "Grouper",
    "NotificationPlan",
    "StartTimes",
]

DEFAULT_GROUP_WAIT_S: Final = 5.0
DEFAULT_GROUP_INTERVAL_S: Final = 60.0
# Alerts whose start is remembered for the resolution's "lasted"; a bot the monitor
# forgets while its alert fires never resolves, so the memory is bounded.
STARTS_REMEMBERED: Final = 10_000


def _check_seconds(name: str, value: float, *, positive: bool = False) -> None:
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number of seconds {bound}, not {value!r}")


class Grouper:
    """Collects transitions and says when to send them; the newest transition of each
    alert (rule, bot) replaces an older one not yet sent."""

    def __init__(
        self,
        group_wait_s: float = DEFAULT_GROUP_WAIT_S,
        group_interval_s: float = DEFAULT_GROUP_INTERVAL_S,
    ) -> None:
        _check_seconds("group_wait_s", group_wait_s)
        _check_seconds("group_interval_s", group_interval_s, positive=True)
        self.group_wait_s = group_wait_s
        self.group_interval_s = group_interval_s
        self._pending: dict[tuple[str, str], Transition] = {}
        self._flush_at_s = 0.0
        self._last_flush_s: float | None = None

    def add(self, transition: Transition, now_s: float) -> None:
        """Adds a transition to the next group, opening one if none is waiting."""
        if not self._pending:
            last = self._last_flush_s
            if last is None or now_s - last >= self.group_interval_s:
                # The first after a quiet spell: sent promptly, with what joins it meanwhile.
                self._flush_at_s = now_s + self.group_wait_s
            else:
                self._flush_at_s = last + self.group_interval_s
        # Re-inserted, so a group lists its alerts in the order of their latest transition.
        self._pending.pop(transition.key, None)
        self._pending[transition.key] = transition

    def due_at(self) -> float | None:
        """When the waiting group is to be sent; None while nothing waits."""
        return self._flush_at_s if self._pending else None

    def __len__(self) -> int:
        return len(self._pending)

    def flush(self, now_s: float, *, force: bool = False) -> list[Transition]:
        """The waiting group, if it is due by `now_s` or `force`d (at shutdown); it is no
        longer waiting then."""
        if not self._pending or (now_s < self._flush_at_s and not force):
            return []
        group = list(self._pending.values())
        self._pending.clear()
        self._last_flush_s = now_s
        return group


class StartTimes:
    """When the trouble of each firing alert began, so that its resolution can say how
    long it lasted (the resolved event itself does not tell)."""

    def __init__(self, limit: int = STARTS_REMEMBERED) -> None:
        self.limit = limit
        self._started: OrderedDict[tuple[str, str], float] = OrderedDict()

    def note(self, event: AlertEvent) -> Transition:
        """The event with its alert's start: noted at its first firing, forgotten once it
        resolves (a repeat keeps the first start)."""
        key = (event.rule, event.bot)
        if event.state != "firing":
            return Transition(event, self._started.pop(key, None))
        if not event.repeat or key not in self._started:
            self._started[key] = began_s(event)
            self._started.move_to_end(key)
            while len(self._started) > self.limit:
                self._started.popitem(last=False)
        return Transition(event, self._started[key])


class NotificationPlan:
    """Everything but the sending: which `bot:alert` transitions notify, how they group,
    and what each channel is sent (only the transitions its filters accept)."""

    def __init__(
        self,
        channels: Sequence[ChannelSpec],
        *,
        public_url: str | None = None,
        group_wait_s: float = DEFAULT_GROUP_WAIT_S,
        group_interval_s: float = DEFAULT_GROUP_INTERVAL_S,
    ) -> None:
        self.channels = tuple(channels)
        self.public_url = public_url or None
        self.grouper = Grouper(group_wait_s, group_interval_s)
        self.starts = StartTimes()

    def add(self, alert: Mapping[str, Any], now_s: float) -> bool:
        """Takes one `bot:alert` transition; whether a channel will be told of it.
        ValueError (saying which field) for a message that is not a `bot:alert`."""
        transition = self.starts.note(alert_from_json(alert))
        event = transition.event
        if not notifies(event) or not any(channel.accepts(event) for channel in self.channels):
            return False
        self.grouper.add(transition, now_s)
        return True

    def due_at(self) -> float | None:
        """When the next group is to be sent (None: nothing waits)."""
        return self.grouper.due_at()

    def flush(self, now_s: float, *, force: bool = False) -> list[tuple[ChannelSpec, Notification]]:
        """The notification for each channel, if a group is due (or `force`d): one per
        channel that accepts at least one of its transitions, in the channels' order."""
        group = self.grouper.flush(now_s, force=force)
        sent: list[tuple[ChannelSpec, Notification]] = []
        for channel in self.channels:
            mine = [transition for transition in group if channel.accepts(transition.event)]
            if mine:
                sent.append((channel, render(mine, self.public_url)))
        return sent
