"""One attempt at the relay's Pub/Sub subscription over a lean connection (`redis_io.resp`).

Each message is handed on inside the read that brought it: no client library, no task
switch and no timer per message, which redis-py's `get_message` costs (docs/benchmarks.md).
What `subscriber.RedisSource` does around an attempt (backoff, outage reports, health) is
unchanged; this is used for the URLs `resp.lean_url` accepts, redis-py for the others.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from pingpong_relay.redis_io.resp import RespConnection

__all__ = ["LeanSubscription", "Subscriber", "SubscriptionLost"]


class SubscriptionLost(Exception):
    """The subscription stopped working without a connection error (Redis did not confirm
    it, dropped it or left a PING unanswered, or the sharded listener ended); the loop
    reconnects."""


class Subscriber(Protocol):
    """What a lean subscription needs of its owner (`subscriber.RedisSource`)."""

    url: str
    channels: list[str]
    patterns: list[str]

    @property
    def health_interval_s(self) -> float:
        """Seconds of silence after which the link is proved with a PING (and then failed)."""

    def deliver(self, channel: str, data: bytes) -> None:
        """A message published to a subscribed channel."""

    def deliver_pattern(self, pattern: str, channel: str, data: bytes) -> None:
        """A message on a channel that a subscribed pattern matched."""

    def verified(self, now: float) -> None:
        """Redis was heard from at `now` (monotonic seconds)."""

    def subscribed(self) -> None:
        """Every channel and pattern is confirmed."""

    def stopping_now(self) -> bool:
        """Whether the relay is shutting down (unsubscribe politely on the way out)."""


class LeanSubscription:
    """Subscribes, confirms, then reads until the link fails: raises why."""

    def __init__(self, owner: Subscriber) -> None:
        self._owner = owner
        self._pending = {("subscribe", c) for c in owner.channels}
        self._pending |= {("psubscribe", p) for p in owner.patterns}
        self._dropped: SubscriptionLost | None = None
        self._heard_at = 0.0
        self._ping_sent_at: float | None = None
        # Resolved by a confirmation, a pong or a drop: the waits below wake on it.
        self._wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def run(self) -> None:
        """Until cancelled or failed (ConnectionError, OSError, TimeoutError, SubscriptionLost)."""
        owner = self._owner
        interval = owner.health_interval_s
        connection = await RespConnection.open(owner.url, max(1.0, interval))
        try:
            self._heard_at = time.monotonic()
            connection.listen(self._push)
            if owner.channels:
                connection.send("SUBSCRIBE", *owner.channels)
            if owner.patterns:
                connection.send("PSUBSCRIBE", *owner.patterns)
            deadline = time.monotonic() + max(2.0, interval)
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SubscriptionLost(
                        f"Redis did not confirm SUBSCRIBE to {sorted(self._pending)}"
                    )
                await self._wait(connection, remaining)
            owner.subscribed()
            while True:
                self._check_health(connection, interval)
                await self._wait(connection, interval / 2)
        finally:
            if owner.stopping_now():
                connection.send("UNSUBSCRIBE")
                if owner.patterns:
                    connection.send("PUNSUBSCRIBE")
            connection.close()

    async def _wait(self, connection: RespConnection, timeout_s: float) -> None:
        """Until the connection is gone, something woke us, or `timeout_s`; raises if over."""
        if not self._wake.done():
            waits: list[asyncio.Future[Any]] = [connection.gone, self._wake]
            await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        if self._wake.done():
            self._wake = asyncio.get_running_loop().create_future()
        if self._dropped is not None:
            raise self._dropped
        if connection.gone.done():
            raise connection.gone.result()

    def _check_health(self, connection: RespConnection, interval: float) -> None:
        """Proves the link with a PING after `interval` of silence; fails after another."""
        now = time.monotonic()
        sent = self._ping_sent_at
        if sent is not None and now - sent > interval:
            raise SubscriptionLost(f"no reply to PING within {interval:g} s")
        if sent is None and now - self._heard_at >= interval:
            connection.send("PING")
            self._ping_sent_at = now

    def _woken(self) -> None:
        if not self._wake.done():
            self._wake.set_result(None)

    def _push(self, reply: Any) -> None:
        """Every reply of the subscribed connection, as hiredis parsed it."""
        kind = reply[0]
        now = time.monotonic()
        self._heard_at = now
        owner = self._owner
        owner.verified(now)
        if kind == b"message":  # the common case first
            owner.deliver(reply[1].decode("utf-8", "replace"), reply[2])
        elif kind == b"pmessage":
            owner.deliver_pattern(
                reply[1].decode("utf-8", "replace"), reply[2].decode("utf-8", "replace"), reply[3]
            )
        elif kind == b"pong":
            self._ping_sent_at = None
            self._woken()
        elif kind in (b"subscribe", b"psubscribe"):
            self._pending.discard((kind.decode(), reply[1].decode("utf-8", "replace")))
            self._woken()
        elif kind in (b"unsubscribe", b"punsubscribe"):
            self._dropped = SubscriptionLost("Redis dropped the subscription")
            self._woken()
