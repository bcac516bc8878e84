"""Refusals counted by reason and logged at most once per interval each: the HTTP plane's,
the WebSocket upgrade's and the ingestion's (pure: the caller hands in its counter)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final

from pingpong_relay.instruments import Counter, Labelled
from pingpong_relay.limits import LogThrottle

__all__ = ["REFUSAL_LOG_INTERVAL_S", "Refusals"]

log = logging.getLogger("pingpong_relay.http")

# Refusals of one kind are logged at most this often, with how many there were.
REFUSAL_LOG_INTERVAL_S: Final = 10.0


class Refusals:
    """Counts every refusal by reason and logs them at WARNING, at most one line per reason
    every REFUSAL_LOG_INTERVAL_S, saying how many there were; those held back are logged
    when their interval ends, even if none follow.

    `what` names whose refusals they are, `describe` puts a reason in words, `logger` and
    `event` say where they are logged (`counter` None: someone else counts them).
    """

    def __init__(
        self,
        counter: Labelled[Counter] | None,
        interval_s: float = REFUSAL_LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        *,
        what: str = "HTTP plane",
        describe: Callable[[str], str] = lambda reason: reason,
        logger: logging.Logger = log,
        event: str = "http_refused",
    ) -> None:
        self._counter = counter
        self._what, self._describe, self._logger, self._event = what, describe, logger, event
        self._log = LogThrottle(interval_s)
        self._clock = clock
        self._latest: dict[str, str] = {}
        self._flushes: dict[str, asyncio.TimerHandle] = {}

    def __call__(self, reason: str, detail: str) -> None:
        """Counts one refusal; logs it now, or with the others held back at the interval's end."""
        if self._counter is not None:
            self._counter.labels(reason).inc()
        self._latest[reason] = detail
        now = self._clock()
        count = self._log.note(reason, now)
        if count:
            self._write(reason, count)
            return
        due = self._log.due_at(reason)
        if due is not None and reason not in self._flushes:
            # Those held back are logged when their interval ends, even if none follow.
            self._flushes[reason] = asyncio.get_running_loop().call_later(
                max(0.0, due - now), self._flush, reason
            )

    def _flush(self, reason: str) -> None:
        self._flushes.pop(reason, None)
        count = self._log.flush(reason, self._clock())
        if count:
            self._write(reason, count)

    def _write(self, reason: str, count: int) -> None:
        detail = self._latest.get(reason, "")
        self._logger.warning(
            "%s refused %d %s (latest: %s)",
            self._what,
            count,
            self._describe(reason),
            detail,
            extra={"event": self._event, "reason": reason, "count": count, "detail": detail},
        )

    def close(self) -> None:
        """Cancels the pending flushes (the plane is stopping)."""
        for handle in self._flushes.values():
            handle.cancel()
        self._flushes.clear()
