"""What the relay tells its service manager (systemd's notify protocol), and when.

The messages (`READY=1`, `STATUS=…`, `WATCHDOG=1`, `STOPPING=1`), the watchdog interval
read from the environment systemd sets, the one-line status shown by `systemctl status`,
and `Readiness`, which decides when readiness and a new status are due. Pure: the socket
is `app.sd_notify`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = [
    "WATCHDOG",
    "Readiness",
    "clients_text",
    "notify_message",
    "status_line",
    "watchdog_interval_s",
]

WATCHDOG: Final = b"WATCHDOG=1"


def notify_message(**fields: str) -> bytes:
    """One datagram of newline-separated assignments, e.g. `READY=1\\nSTATUS=…`.

    A value cannot hold a newline (it would start another assignment), so any line break
    in one (an error text's, say) becomes a space.
    """
    lines = []
    for name, value in fields.items():
        flat = " ".join(value.splitlines())
        lines.append(f"{name}={flat}")
    return "\n".join(lines).encode()


def watchdog_interval_s(environ: Mapping[str, str], pid: int) -> float | None:
    """How often to send WATCHDOG=1: half of $WATCHDOG_USEC, as systemd advises; None when
    there is no watchdog, or it is meant for another process ($WATCHDOG_PID), or the value
    is not a positive number of microseconds."""
    usec = environ.get("WATCHDOG_USEC", "")
    owner = environ.get("WATCHDOG_PID", "")
    if owner and owner != str(pid):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    if value <= 0:
        return None
    return value / 2 / 1_000_000


def _state(health: Mapping[str, Any], ready: bool) -> str:
    """Everything the status line says but the client count: what changes rarely."""
    parts = []
    workers = health.get("workers")
    if isinstance(workers, list):
        up = sum(1 for worker in workers if worker.get("status") == "ok")
        parts.append(f"{up} of {len(workers)} workers ready")
    redis = str(health.get("redis", "not started"))
    if redis == "subscribed" and health.get("status") == "ok":
        parts.append("Redis subscribed")
    else:
        reason = health.get("reason")
        said = "waiting for Redis" if not ready else f"Redis {redis}"
        parts.append(f"{said} ({reason})" if reason else said)
    if "mqtt" in health:
        parts.append(f"MQTT {health['mqtt']}")
    return "; ".join(parts)


def clients_text(count: int) -> str:
    """A client count in words: "1 client", "3 clients"."""
    return f"{count} client{'' if count == 1 else 's'}"


def status_line(health: Mapping[str, Any], *, ready: bool) -> str:
    """The `STATUS=` text from a /healthz?detail=1 body (one relay's, or the workers'
    merged), e.g. "Redis subscribed; 12 clients; MQTT subscribed"; before the relay is
    ready, "waiting for Redis (…why…); 0 clients"."""
    return f"{_state(health, ready)}; {clients_text(int(health.get('clients', 0)))}"


class Readiness:
    """Decides what to tell the service manager after each look at the relay's health:
    `READY=1` (with the status) the first time it is ok; afterwards a new status at once
    when Redis's or MQTT's state changes, and at most every `stats_interval_s` when only the
    client count does."""

    def __init__(self, stats_interval_s: float, clock: Callable[[], float]) -> None:
        self.stats_interval_s = stats_interval_s
        self._clock = clock
        self.ready = False
        self._sent_state: str | None = None
        self._sent_line: str | None = None
        self._sent_at = 0.0

    def update(self, ok: bool, health: Mapping[str, Any]) -> bytes | None:
        """The message due now, if any, given whether the relay is ok and its health."""
        now = self._clock()
        if ok and not self.ready:
            self.ready = True
            line = status_line(health, ready=True)
            self._remember(_state(health, True), line, now)
            return notify_message(READY="1", STATUS=line)
        state = _state(health, self.ready)
        line = status_line(health, ready=self.ready)
        changed = state != self._sent_state
        due = line != self._sent_line and now - self._sent_at >= self.stats_interval_s
        if not (changed or due):
            return None
        self._remember(state, line, now)
        return notify_message(STATUS=line)

    def _remember(self, state: str, line: str, now: float) -> None:
        self._sent_state, self._sent_line, self._sent_at = state, line, now
