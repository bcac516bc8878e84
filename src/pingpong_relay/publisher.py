"""The bot-side API: publish the design's ping/pong heartbeat to Redis."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import orjson
from redis.exceptions import RedisError

from pingpong_relay.defaults import DEFAULT_CHANNEL, DEFAULT_REDIS_URL
from pingpong_relay.logs import os_words
from pingpong_relay.messages import build_bot_message, check_source, format_latency
from pingpong_relay.redis_io.clients import redis_client
from pingpong_relay.urls import redact_url

__all__ = ["PublishError", "Publisher"]

log = logging.getLogger("pingpong_relay.publisher")


class PublishError(RuntimeError):
    """A heartbeat Redis did not take (unreachable, refused); the Redis error is its cause,
    `reason` says it in a few words ("Connection refused")."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _reason(exc: BaseException) -> str:
    """Why Redis failed, in a few words: the OS's word for it when there is one."""
    words = os_words(exc)
    if words is not None:
        return words
    text = str(exc).strip().rstrip(".")
    # redis-py: "Error 111 connecting to host:port. Connection refused."
    return text.rpartition(". ")[2] if text.startswith("Error ") else text or type(exc).__name__


class Publisher:
    """Publishes heartbeats for one bot, `source` (its id at the relay: `<channel>/<source>`).

    >>> async with Publisher("redis://127.0.0.1:6379/0", source="gate-1") as bot:
    ...     receivers = await bot.ping(12.5)
    """

    def __init__(
        self,
        redis_url: str = DEFAULT_REDIS_URL,
        channel: str = DEFAULT_CHANNEL,
        *,
        source: str = "bot",
        timeout_s: float = 5.0,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.redis_url = redis_url
        self.channel = channel
        self.source = check_source(source)
        self._clock_ms = clock_ms
        self._redis = redis_client(
            redis_url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s
        )

    def _failed(self, what: str, exc: BaseException) -> PublishError:
        reason = _reason(exc)
        where = redact_url(self.redis_url)
        # Raised, not logged: the caller decides how to report it (once).
        log.debug("%s failed at %s: %s", what, where, exc, extra={"event": "publish_failed"})
        return PublishError(f"{what} failed at {where}: {reason}", reason)

    async def round_trip_ms(self) -> float:
        """The time a Redis PING takes to come back, in ms (connecting first if need be,
        which is not timed); PublishError when Redis cannot be reached."""
        try:
            await self._redis.ping()
            started = time.perf_counter()
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            raise self._failed("PING", exc) from exc
        return (time.perf_counter() - started) * 1000.0

    async def ping(self, latency_ms: float) -> int:
        """Publish a ping; returns how many Redis subscribers received it."""
        return await self.publish("ping", latency_ms)

    async def pong(self, latency_ms: float) -> int:
        """Publish a pong; returns how many Redis subscribers received it."""
        return await self.publish("pong", latency_ms)

    async def publish(
        self, kind: str, latency_ms: float, *, source: str | None = None, **extra: Any
    ) -> int:
        """Publish one heartbeat, as this bot or as `source`; `extra` fields are added to
        the bot's object as given. PublishError (not logged) when Redis does not take it."""
        payload = build_bot_message(kind, latency_ms, self._clock_ms(), source or self.source)
        if extra:
            payload = orjson.dumps({**orjson.loads(payload), **extra})
        try:
            receivers = int(await self._redis.publish(self.channel, payload))
        except (RedisError, OSError) as exc:
            raise self._failed(f"PUBLISH {kind} to {self.channel}", exc) from exc
        log.info(
            "published %s to %s: latency %s (%d subscribers)",
            kind.upper(),
            self.channel,
            format_latency(latency_ms),
            receivers,
            extra={
                "event": "published",
                "type": kind,
                "latency_ms": latency_ms,
                "receivers": receivers,
            },
        )
        return receivers

    async def aclose(self) -> None:
        """Closes the connection to Redis (`async with` does it on the way out)."""
        await self._redis.aclose()

    async def __aenter__(self) -> Publisher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
