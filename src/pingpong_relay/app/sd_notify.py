"""systemd's `Type=notify`: readiness, status, watchdog pings and stopping, sent to $NOTIFY_SOCKET.

The protocol is a datagram of `NAME=value` lines on an AF_UNIX socket whose address systemd
puts in $NOTIFY_SOCKET (a path, or an abstract name when it starts with "@"); see
sd_notify(3). No library needed. Without $NOTIFY_SOCKET there is no notifier at all, so a
relay not run by systemd sends and spends nothing. What is said and when is decided by
the pure `readiness` module; this one sends it, from the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from pingpong_relay.readiness import (
    WATCHDOG,
    Readiness,
    notify_message,
    watchdog_interval_s,
)

__all__ = ["HealthProbe", "SystemdNotifier"]

log = logging.getLogger("pingpong_relay.systemd")

# The variables systemd sets for the main process; taken out of the environment so that a
# child (the embedded redis-server, a worker) cannot speak for the relay.
NOTIFY_VARIABLES: Final = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")

# How often the relay's health is looked at: often until it is ready (READY=1 follows the
# Redis subscription closely), then once a second (a change of Redis's state shows in
# `systemctl status` within a second; the client count at most every --stats-interval).
STARTING_LOOK_S: Final = 0.2
RUNNING_LOOK_S: Final = 1.0

# (ok, the /healthz?detail=1 body): one relay's, or every worker's merged.
HealthProbe = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]


class SystemdNotifier:
    """The service manager's notify socket, and the loops that keep it informed."""

    def __init__(self, address: str, *, watchdog_s: float | None, stats_interval_s: float) -> None:
        # "@name" is Linux's abstract namespace: the name after a NUL byte.
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_s = watchdog_s
        self.readiness = Readiness(stats_interval_s, time.monotonic)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._socket.setblocking(False)
        self._failing = False

    @classmethod
    def from_environ(
        cls, environ: MutableMapping[str, str], pid: int, stats_interval_s: float
    ) -> SystemdNotifier | None:
        """The notifier systemd asked for, or None; either way the variables are removed
        from `environ` (as sd_notify's unset_environment does) so children do not see them."""
        taken = {name: environ.pop(name) for name in NOTIFY_VARIABLES if name in environ}
        address = taken.get("NOTIFY_SOCKET", "")
        if not address:
            return None
        if not address.startswith(("/", "@")):
            log.warning(
                "NOTIFY_SOCKET=%s is neither a path nor an abstract socket (@name); "
                "not notifying systemd",
                address,
                extra={"event": "systemd_socket_unsupported"},
            )
            return None
        watchdog_s = watchdog_interval_s(taken, pid)
        log.info(
            "notifying systemd at %s%s",
            address,
            f", watchdog every {watchdog_s:g} s" if watchdog_s else "",
            extra={"event": "systemd_notify", "watchdog_s": watchdog_s},
        )
        return cls(address, watchdog_s=watchdog_s, stats_interval_s=stats_interval_s)

    def send(self, message: bytes) -> None:
        """One datagram; a failure is logged (a warning the first time in a row), never
        raised: the relay serves its clients whether or not systemd hears it."""
        try:
            self._socket.sendto(message, self.address)
        except OSError as exc:
            level = logging.DEBUG if self._failing else logging.WARNING
            self._failing = True
            log.log(
                level,
                "cannot notify systemd: %s",
                exc,
                extra={"event": "systemd_notify_failed", "error": str(exc)},
            )
            return
        self._failing = False

    async def keep_watchdog(self) -> None:
        """WATCHDOG=1 every half of $WATCHDOG_USEC, until cancelled. It runs on the event
        loop, so a loop that stops turning stops the pings and systemd restarts the relay."""
        if self.watchdog_s is None:
            return
        while True:
            self.send(WATCHDOG)
            await asyncio.sleep(self.watchdog_s)

    async def keep_status(self, probe: HealthProbe) -> None:
        """READY=1 once `probe` says ok (listening and subscribed), and STATUS= lines, until
        cancelled."""
        while True:
            ok, health = await probe()
            message = self.readiness.update(ok, health)
            if message is not None:
                self.send(message)
            await asyncio.sleep(RUNNING_LOOK_S if self.readiness.ready else STARTING_LOOK_S)

    def stopping(self, status: str = "shutting down") -> None:
        """STOPPING=1 (shutdown has begun), with a last status."""
        self.send(notify_message(STOPPING="1", STATUS=status))

    def close(self) -> None:
        """Closes the socket."""
        self._socket.close()
