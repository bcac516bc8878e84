"""The one door into Redis for heartbeats the relay hears itself: validated exactly like a
message from Redis (size, schema, depth, --accept-bots, --max-bot-rate), then published to
the channel, so every relay on that Redis relays, records and tracks it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Final, Protocol

from redis.exceptions import RedisError

from pingpong_relay.ingest import Report, Via, heartbeat
from pingpong_relay.instruments import Counter, Labelled
from pingpong_relay.limits import BotAllowList, BotRateLimiter
from pingpong_relay.messages import RejectedMessage, excerpt, parse_bot_message
from pingpong_relay.redis_io.clients import redis_client
from pingpong_relay.refusals import Refusals

__all__ = ["Inlet", "InletMetrics", "Refused"]

log = logging.getLogger("pingpong_relay.ingestion")

# The HTTP status each refusal answers with (MQTT and pollers only count and log them).
_STATUS: Final = {
    "unknown_token": 404,
    "push_off": 404,
    "token_rate": 429,
    "address_rate": 429,
    "bot_rate": 429,
    "bot_not_accepted": 403,
    "redis_unavailable": 503,
}


class Refused(Exception):
    """A heartbeat not published: `reason` (a metrics label), `status` (the HTTP answer)
    and the message, which names what was wrong but never a token."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = _STATUS.get(reason, 400)


class InletMetrics(Protocol):
    """What the inlet counts."""

    @property
    def ingest_accepted(self) -> Labelled[Counter]:
        """Heartbeats published, by via."""

    @property
    def ingest_rejected(self) -> Labelled[Counter]:
        """Heartbeats refused, by via and reason."""


class Inlet:
    """Validates and publishes heartbeats to `channel` on Redis at `redis_url`."""

    def __init__(
        self,
        redis_url: str,
        channel: str,
        metrics: InletMetrics,
        *,
        max_message_bytes: int,
        accept_bots: BotAllowList,
        max_bot_rate: float,
        clock: Callable[[], float] = time.monotonic,
        wall_clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.channel = channel
        self.metrics = metrics
        self.redis: Any = redis_client(redis_url, socket_connect_timeout=5, socket_timeout=5)
        self._max_bytes = max_message_bytes
        self._accept = accept_bots
        self._bot_rate = BotRateLimiter(max_bot_rate)
        self._clock = clock
        self._wall_clock_ns = wall_clock_ns
        # Logged per way in and reason ("push/unknown_token"), counted here by both labels.
        self._refusals = Refusals(
            None,
            clock=clock,
            what="ingestion",
            describe=lambda key: f"heartbeat(s) via {key.replace('/', ' (', 1)})",
            logger=log,
            event="ingest_refused",
        )

    def bot_id(self, source: str) -> str:
        """The id a bot pushing as `source` has at every relay: `<channel>/<source>`."""
        return f"{self.channel}/{source}"

    def now_ms(self) -> int:
        """The wall clock, in ms: the timestamp of a heartbeat whose sender gave none."""
        return self._wall_clock_ns() // 1_000_000

    async def report(self, source: str, report: Report, via: Via) -> int:
        """Publishes what a push, ping or poll says of bot `source`; returns how many
        Redis subscribers received it. Refused (counted and logged) when it is not."""
        return await self.publish(source, heartbeat(report, source, via, self.now_ms()), via)

    async def publish(self, source: str, raw: bytes, via: Via) -> int:
        """Publishes one bot message (its `source` already set to `source`); Refused,
        counted and logged, when it is invalid, not accepted, over the bot's rate, or
        Redis does not take it."""
        bot = self.bot_id(source)
        try:
            parse_bot_message(raw, self._max_bytes)
        except RejectedMessage as exc:
            raise self.refuse(via, exc.reason, f"{bot}: {exc.detail}") from None
        if not self._accept.accepts(bot):
            raise self.refuse(via, "bot_not_accepted", f"{bot} is not named by --accept-bots")
        if not self._bot_rate.allow(bot, self._clock()):
            raise self.refuse(via, "bot_rate", f"{bot} is over --max-bot-rate")
        try:
            receivers = int(await self.redis.publish(self.channel, raw))
        except (RedisError, OSError) as exc:
            raise self.refuse(
                via, "redis_unavailable", f"Redis did not take the heartbeat: {exc}"
            ) from None
        self.metrics.ingest_accepted.labels(via).inc()
        log.debug(
            "published a heartbeat of %s (via %s) to %s",
            bot,
            via,
            self.channel,
            extra={"event": "ingested", "bot": bot, "via": via, "receivers": receivers},
        )
        return receivers

    def refuse(self, via: Via, reason: str, detail: str) -> Refused:
        """Counts a refusal and logs it (at most once per interval per via and reason, with
        how many there were); returns the Refused to raise or answer with."""
        self.metrics.ingest_rejected.labels(via, reason).inc()
        self._refusals(f"{via}/{reason}", excerpt(detail.encode(), 200))
        return Refused(reason, detail)

    async def aclose(self) -> None:
        """Closes the Redis connection (and drops the refusal lines still held back)."""
        self._refusals.close()
        await self.redis.aclose()
