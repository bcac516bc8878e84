"""The soak's reading of the relay's log: events of interest kept, everything else tallied."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from harness.logs import LogFollower, Record

from .session import SOURCE

INTERESTING: Final = frozenset(
    {
        "listening",
        "redis_subscribed",
        "redis_outage_start",
        "redis_outage_end",
        "worker_started",
        "worker_exited",
        "worker_restarting",
        "worker_start_failed",
        "workers_stopped",
        "supervising",
        "shutdown",
        "stopped",
    }
)


def _parse_time(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


class SoakLog:
    """Keeps the relay's events of interest (with "t", their time in epoch seconds) and
    tallies the rest: a long run's log is too big to hold. `take` is the follower's `keep`."""

    def __init__(self) -> None:
        self.follower: LogFollower | None = None
        self.connected: dict[str, int] = {}  # client_connected per worker
        self.retries = 0
        self.levels: dict[str, int] = {}  # "WARNING:event" → count
        # Per worker index: bot timestamps (ms) of our messages it logged as received.
        self.received: dict[int, set[int]] = {}
        self.lines = 0

    def take(self, record: Record) -> bool:
        """Tallies one record; True for one to keep."""
        self.lines += 1
        event = record.get("event")
        if event == "unparsed":
            key = "RAW:" + str(record.get("message", ""))[:60]
            self.levels[key] = self.levels.get(key, 0) + 1
            return False
        level = record.get("level")
        if level in ("WARNING", "ERROR", "CRITICAL"):
            key = f"{level}:{event or str(record.get('message', '?'))[:60]}"
            self.levels[key] = self.levels.get(key, 0) + 1
        if event == "received":
            if record.get("source") == SOURCE and record.get("bot_timestamp_ms") is not None:
                worker = int(record.get("worker", -1))
                stamp = int(record["bot_timestamp_ms"])
                self.received.setdefault(worker, set()).add(stamp)
        elif event == "client_connected":
            key = str(record.get("worker"))
            self.connected[key] = self.connected.get(key, 0) + 1
        elif event == "redis_retry":
            self.retries += 1
        elif event in INTERESTING:
            record["t"] = _parse_time(record.get("time"))
            return True
        return False

    @property
    def events(self) -> list[Record]:
        """The events of interest so far."""
        if self.follower is None:
            return []
        self.follower.poll()
        return self.follower.records

    def of(self, event: str, worker: int | None = None) -> list[Record]:
        """The events of interest of one name (and one worker, if given)."""
        return [
            e
            for e in self.events
            if e.get("event") == event and (worker is None or e.get("worker") == worker)
        ]
