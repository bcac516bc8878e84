"""The Redis subscription: connect, subscribe, prove it alive, and reconnect with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import RedisError

from pingpong_relay.backoff import Backoff
from pingpong_relay.redis_io.clients import redis_client
from pingpong_relay.redis_io.lean_pubsub import LeanSubscription, SubscriptionLost
from pingpong_relay.redis_io.resp import lean_url
from pingpong_relay.tasks import cancel_and_wait
from pingpong_relay.telemetry.metrics import RelayMetrics
from pingpong_relay.urls import is_cluster_url, redact_url

__all__ = ["DeafHandler", "MessageHandler", "RedisSource", "SubscriptionLost", "as_text"]

log = logging.getLogger("pingpong_relay.source")

MessageHandler = Callable[[str, bytes], None]
# (deaf since, deaf until or None while it lasts), wall-clock seconds
DeafHandler = Callable[[float, float | None], None]


async def _sharded_pubsub(client: Any) -> bool:
    """Whether the cluster's servers have sharded Pub/Sub (SSUBSCRIBE, Redis 7.0+)."""
    info = await client.info("server")
    # A cluster client answers per node; any node tells the version.
    if info and all(isinstance(v, dict) for v in info.values()):
        info = next(iter(info.values()))
    version = str(info.get("redis_version", "0"))
    return int(version.split(".")[0]) >= 7


class RedisSource:
    """Keeps one Pub/Sub subscription to every channel alive for as long as it runs.

    redis-py's PubSub does not survive a dropped connection by itself (a killed server
    leaves it reading a dead socket), so each attempt builds a fresh client, subscribes
    to every channel, waits for Redis to confirm each one, and then proves the link is
    alive with a PING every `health_interval_s` while messages flow.
    """

    def __init__(
        self,
        url: str,
        channels: Sequence[str],
        on_message: MessageHandler,
        metrics: RelayMetrics,
        *,
        health_interval_s: float = 5.0,
        backoff: Backoff | None = None,
        patterns: Sequence[str] = (),
        on_deaf: DeafHandler | None = None,
    ) -> None:
        self.url = url
        self._on_deaf = on_deaf
        self.channels = list(channels)
        self.patterns = list(patterns)
        self._channel_set = frozenset(self.channels)
        self._first_pattern: dict[str, str] = {}
        self._on_message = on_message
        self._lean = lean_url(url)
        self._metrics = metrics
        self._health_interval_s = health_interval_s
        self._backoff = backoff or Backoff()
        self._verified_at: float | None = None
        self._subscribed = False
        self._last_error = "not connected yet"
        self._stopping = False
        self.down_since: float | None = None  # wall-clock seconds, for outage reports

    # --- state read by /healthz ---------------------------------------------------
    def is_alive(self) -> bool:
        """True only while every channel is subscribed and Redis answered recently."""
        if not self._subscribed or self._verified_at is None:
            return False
        return time.monotonic() - self._verified_at <= 2 * self._health_interval_s + 1.0

    def status(self) -> str:
        """The subscription's state as /healthz reports it: "subscribed" or "disconnected"."""
        return "subscribed" if self.is_alive() else "disconnected"

    @property
    def last_error(self) -> str:
        """Why the subscription last failed or is not up yet, for /healthz and the logs."""
        return self._last_error

    # --- the loop -----------------------------------------------------------------
    async def run(self) -> None:
        """Subscribes and hands every message to `on_message` until cancelled; reconnects
        with backoff after any failure, reporting each deaf period to `on_deaf`."""
        attempt = 0
        ever_subscribed = False
        while True:
            try:
                await self._subscribe_and_read()
            except asyncio.CancelledError:
                raise
            except (TimeoutError, RedisError, OSError, SubscriptionLost) as exc:
                self._last_error = f"{type(exc).__name__}: {exc}"
            except Exception as exc:
                # A bug here (ours or the client library's) must not end the subscription
                # for good while the relay looks alive: log it whole and start over.
                self._last_error = f"{type(exc).__name__}: {exc}"
                log.exception(
                    "unexpected error in the Redis subscription; starting it over",
                    extra={"event": "redis_unexpected_error", "error": self._last_error},
                )
            was_subscribed = self._subscribed
            self._subscribed = False
            self._metrics.redis_subscribed.set(0)
            if was_subscribed:
                ever_subscribed = True
                attempt = 0
                self.down_since = time.time()
                log.warning(
                    "Redis subscription lost (%s); relay keeps serving clients and reconnects",
                    self._last_error,
                    extra={"event": "redis_outage_start", "error": self._last_error},
                )
                if self._on_deaf is not None:
                    self._on_deaf(self.down_since, None)
            delay = self._backoff.delay(attempt)
            attempt += 1
            level = logging.WARNING if attempt == 1 and not ever_subscribed else logging.INFO
            log.log(
                level,
                "cannot subscribe to Redis at %s (%s); retry %d in %.2f s",
                redact_url(self.url),
                self._last_error,
                attempt,
                delay,
                extra={
                    "event": "redis_retry",
                    "attempt": attempt,
                    "delay_s": round(delay, 3),
                    "error": self._last_error,
                },
            )
            await asyncio.sleep(delay)

    # --- what a LeanSubscription needs (lean_pubsub.Subscriber) ---------------------------
    @property
    def health_interval_s(self) -> float:
        """Seconds of silence after which the link is proved with a PING."""
        return self._health_interval_s

    def deliver(self, channel: str, data: bytes) -> None:
        """A message on a subscribed channel: to the pipeline."""
        self._on_message(channel, data)

    def deliver_pattern(self, pattern: str, channel: str, data: bytes) -> None:
        """A message a pattern matched: to the pipeline, once (see `_owns`)."""
        if self._owns(channel, pattern):
            self._on_message(channel, data)

    def verified(self, now: float) -> None:
        """Redis was heard from at `now` (monotonic seconds)."""
        self._verified_at = now

    def stopping_now(self) -> bool:
        """Whether the coming cancellation is a shutdown."""
        return self._stopping

    # --- one attempt ------------------------------------------------------------------
    async def _subscribe_and_read(self) -> None:
        if self._lean:
            # One server: a connection of our own reads each message in the read that
            # brought it (lean_pubsub); redis-py for a cluster or Sentinel.
            await LeanSubscription(self).run()
            return
        client = redis_client(
            self.url,
            socket_connect_timeout=max(1.0, self._health_interval_s),
            socket_keepalive=True,
            health_check_interval=0,
        )
        cluster = is_cluster_url(self.url)
        if cluster:
            await client.initialize()  # learn the slots before choosing a node to listen on
        pubsub = client.pubsub()
        sharded: asyncio.Task[None] | None = None
        try:
            if self.channels:
                await pubsub.subscribe(*self.channels)
            if self.patterns:
                await pubsub.psubscribe(*self.patterns)
            await self._await_confirmations(pubsub)
            if cluster and self.channels and await _sharded_pubsub(client):
                # On a cluster a bot may SPUBLISH (sharded Pub/Sub): listen on each
                # channel's shard as well as to the cluster-wide PUBLISH above.
                await pubsub.ssubscribe(*self.channels)
                sharded = asyncio.create_task(
                    self._read_sharded(pubsub), name="redis-sharded-reader"
                )
            self.subscribed()
            await self._read(pubsub, sharded)
        finally:
            await cancel_and_wait(sharded)
            if self._stopping:
                # Polite on shutdown: Redis stops counting us before the socket closes.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pubsub.unsubscribe(), 1.0)
                    if self.patterns:
                        await asyncio.wait_for(pubsub.punsubscribe(), 1.0)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pubsub.aclose(), 1.0)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.aclose(), 1.0)

    async def _await_confirmations(self, pubsub: Any) -> None:
        pending = {("subscribe", c) for c in self.channels}
        pending |= {("psubscribe", p) for p in self.patterns}
        deadline = time.monotonic() + max(2.0, self._health_interval_s)
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SubscriptionLost(f"Redis did not confirm SUBSCRIBE to {sorted(pending)}")
            message = await pubsub.get_message(timeout=remaining)
            if message is None:
                continue
            kind = message["type"]
            if kind in ("subscribe", "psubscribe"):
                pending.discard((kind, as_text(message["channel"])))
            else:
                self._dispatch(kind, message)

    def subscribed(self) -> None:
        """Every channel and pattern is confirmed: up (again), and said so."""
        now = time.monotonic()
        self._verified_at = now
        self._subscribed = True
        self._metrics.redis_subscribed.set(1)
        if self.down_since is not None:
            restored = time.time()
            outage_s = restored - self.down_since
            self._metrics.redis_reconnects.inc()
            log.warning(
                "Redis subscription restored after %.1f s outage; subscribed to %s",
                outage_s,
                self.describe(),
                extra={
                    "event": "redis_outage_end",
                    "outage_s": round(outage_s, 3),
                    "channels": self.channels,
                    "patterns": self.patterns,
                },
            )
            if self._on_deaf is not None:
                self._on_deaf(self.down_since, restored)
            self.down_since = None
        else:
            log.info(
                "subscribed to %s on %s",
                self.describe(),
                redact_url(self.url),
                extra={
                    "event": "redis_subscribed",
                    "channels": self.channels,
                    "patterns": self.patterns,
                    "redis_url": redact_url(self.url),
                },
            )

    async def _read_sharded(self, pubsub: Any) -> None:
        on_message = self._on_message
        while True:
            message = await pubsub.get_sharded_message(
                ignore_subscribe_messages=True, timeout=self._health_interval_s
            )
            if message is not None and message["type"] == "smessage":
                on_message(as_text(message["channel"]), message["data"])

    async def _read(self, pubsub: Any, sharded: asyncio.Task[None] | None = None) -> None:
        interval = self._health_interval_s
        ping_sent_at: float | None = None
        on_message = self._on_message
        while True:
            if sharded is not None and sharded.done():
                # The shard subscriptions failed: start over, as for the main one.
                raise SubscriptionLost(f"sharded subscription ended: {sharded.exception()!r}")
            message = await pubsub.get_message(timeout=interval)
            now = time.monotonic()
            if message is not None:
                self._verified_at = now
                kind = message["type"]
                if kind == "message":  # the common case, kept to one call
                    on_message(as_text(message["channel"]), message["data"])
                elif kind == "pong":
                    ping_sent_at = None
                elif kind in ("unsubscribe", "punsubscribe"):
                    raise SubscriptionLost("Redis dropped the subscription")
                else:
                    self._dispatch(kind, message)
            if ping_sent_at is not None and now - ping_sent_at > interval:
                raise SubscriptionLost(f"no reply to PING within {interval:g} s")
            if ping_sent_at is None and now - (self._verified_at or now) >= interval:
                await pubsub.ping()
                ping_sent_at = now

    def _dispatch(self, kind: str, message: dict[str, Any]) -> None:
        if kind == "message":
            self._on_message(as_text(message["channel"]), message["data"])
        elif kind == "pmessage":
            channel = as_text(message["channel"])
            if self._owns(channel, as_text(message["pattern"])):
                self._on_message(channel, message["data"])

    def _owns(self, channel: str, pattern: str) -> bool:
        """Whether this pattern's copy of a message is the one to relay.

        Redis delivers a message once per matching subscription, so a channel that is
        also subscribed by name, or matched by several patterns, would be relayed twice.
        The named subscription wins, then the first matching pattern in flag order.
        """
        if channel in self._channel_set:
            return False
        first = self._first_pattern.get(channel)
        if first is None:
            first = next((p for p in self.patterns if fnmatch.fnmatchcase(channel, p)), pattern)
            if len(self._first_pattern) < 10_000:
                self._first_pattern[channel] = first
        return first == pattern

    def describe(self) -> str:
        """The channels and patterns subscribed to, for a log line: `a, b, c* (pattern)`."""
        return ", ".join([*self.channels, *(f"{p} (pattern)" for p in self.patterns)])

    def stopping(self) -> None:
        """Marks the coming cancellation as a shutdown, so the loop unsubscribes on its way out."""
        self._stopping = True
        self._subscribed = False


def as_text(value: object) -> str:
    """A Redis reply value (bytes, with decode_responses off) as text."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
