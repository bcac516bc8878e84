"""The mute gate: stands before whatever sends alerts (webhooks, the lease, channels).

An alert a mute covers is held back; when its mute ends (or is expired) while the alert
still fires, the gate sends it then, once. The mutes come from a callable (the store's
cache), so the alert path never waits on Redis.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from pingpong_relay.mutes import Mute, covering

__all__ = ["MuteGate"]

log = logging.getLogger("pingpong_relay.mutes")

AlertSink = Callable[[dict[str, Any]], None]


class MuteGate:
    """Wraps an alert sink: muted alerts are held, and sent when their mute ends."""

    def __init__(
        self, mutes: Callable[[], Sequence[Mute]], clock: Callable[[], float] = time.time
    ) -> None:
        self._mutes = mutes
        self._clock = clock
        self._sink: AlertSink = lambda _alert: None
        self._held: dict[tuple[str, str], dict[str, Any]] = {}  # firing while muted
        # Told of each alert sent when its mute ended (the wiring tells the clients that
        # saw it muted: the same event again, unmuted, as a repeat).
        self.on_unmuted: AlertSink = lambda _alert: None

    def muted(self, bot: str, rule: str) -> bool:
        """Whether a mute in force now covers this bot and rule."""
        return covering(self._mutes(), bot, rule, self._clock()) is not None

    def wrap(self, sink: AlertSink) -> AlertSink:
        """The sink to bind in place of `sink`: it passes on what no mute covers."""
        self._sink = sink
        return self.submit

    def submit(self, alert: dict[str, Any]) -> None:
        """One alert transition: sent on, or held while a mute covers it."""
        key = (str(alert.get("rule")), str(alert.get("bot")))
        if alert.get("muted") or self.muted(key[1], key[0]):
            if alert.get("state") == "firing":
                self._held[key] = alert
            else:  # resolved (or pending) under the mute: nothing left to tell anyone
                self._held.pop(key, None)
            return
        self._held.pop(key, None)
        self._sink(alert)

    def check(self) -> int:
        """Sends each held alert whose mute has ended while it still fires; how many."""
        sent = 0
        for key, alert in list(self._held.items()):
            if self.muted(key[1], key[0]):
                continue
            del self._held[key]
            unmuted = {k: v for k, v in alert.items() if k != "muted"}
            unmuted["at_ms"] = round(self._clock() * 1000)
            log.info(
                "mute ended on firing alert %s for bot %s: notifying now",
                key[0],
                key[1],
                extra={"event": "mute_ended_firing", "rule": key[0], "bot": key[1]},
            )
            self._sink(unmuted)
            self.on_unmuted(unmuted)
            sent += 1
        return sent

    @property
    def held(self) -> int:
        """How many firing alerts a mute holds back now."""
        return len(self._held)
