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
from pingpong_relay.messages import build_bot_message, format_latency
from pingpong_relay.redis_io.clients import redis_client
from pingpong_relay.urls import redact_url

__all__ = ["PublishError", "Publisher"]

log = logging.getLogger("pingpong_relay.publisher")


class PublishError(RuntimeError):
    """A heartbeat Redis did not take (unreachable, refused); the Redis error is its cause."""


class Publisher:
    """Publishes heartbeats for one bot.

    >>> async with Publisher("redis://127.0.0.1:6379/0") as bot:
    ...     receivers = await bot.ping(12.5)
    """

    def __init__(
        self,
        redis_url: str = DEFAULT_REDIS_URL,
        channel: str = DEFAULT_CHANNEL,
        *,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.redis_url = redis_url
        self.channel = channel
        self._clock_ms = clock_ms
        self._redis = redis_client(redis_url, socket_connect_timeout=5, socket_timeout=5)

    async def ping(self, latency_ms: float) -> int:
        """Publish a ping; returns how many Redis subscribers received it."""
        return await self.publish("ping", latency_ms)

    async def pong(self, latency_ms: float) -> int:
        """Publish a pong; returns how many Redis subscribers received it."""
        return await self.publish("pong", latency_ms)

    async def publish(self, kind: str, latency_ms: float, **extra: Any) -> int:
        """Publish one heartbeat; `extra` fields are added to the bot's object as given."""
        payload = build_bot_message(kind, latency_ms, self._clock_ms())
        if extra:
            payload = orjson.dumps({**orjson.loads(payload), **extra})
        try:
            receivers = int(await self._redis.publish(self.channel, payload))
        except (RedisError, OSError) as exc:
            log.error(
                "failed to publish %s to %s on %s: %s",
                kind.upper(),
                self.channel,
                redact_url(self.redis_url),
                exc,
                extra={"event": "publish_failed", "type": kind, "error": str(exc)},
            )
            raise PublishError(f"publish to {self.channel} failed: {exc}") from exc
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
