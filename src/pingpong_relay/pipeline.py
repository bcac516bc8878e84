"""The message pipeline, the hot path: a bot message validated, gated, and its envelope written.

Only after the writes is the message recorded in the history and observed for statistics
and alerts. Pure: the wiring hands in the I/O.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Final, Protocol

from pingpong_relay.audience import Group
from pingpong_relay.hub import Hub
from pingpong_relay.instruments import Counter, Labelled
from pingpong_relay.limits import BotAllowList, BotRateLimiter, LogThrottle
from pingpong_relay.messages import (
    BotMessage,
    RejectedMessage,
    check_channel,
    encode_envelope,
    encode_tagged_envelope,
    excerpt,
    format_bot_time,
    format_latency,
    parse_bot_message,
)
from pingpong_relay.subscriptions import RECORDED, bot_id

__all__ = ["Pipeline", "PipelineMetrics", "Recorder"]

log = logging.getLogger("pingpong_relay.pipeline")

BOT_DROP_LOG_INTERVAL_S: Final = 10.0

# Appends one message to the history: (bot, channel, raw, relay_ms, then-call-with-its-id).
Recorder = Callable[[str, str, bytes, int, Callable[[str | None], None] | None], None]
# Statistics and alerts: (bot, message, now in s).
Observer = Callable[[str, BotMessage, float], None]


class PipelineMetrics(Protocol):
    """What the pipeline counts (`telemetry.metrics.RelayMetrics` has these and more)."""

    @property
    def messages_received(self) -> Counter:
        """Counts every message read from Redis, valid or not."""

    @property
    def messages_rejected(self) -> Labelled[Counter]:
        """Counts refused messages by reason (`messages.REJECT_REASONS`)."""

    @property
    def messages_forwarded(self) -> Counter:
        """Counts valid messages written to the clients that want them."""

    @property
    def message_errors(self) -> Counter:
        """Counts messages whose handling failed with an internal error (a bug)."""

    @property
    def bot_messages_dropped(self) -> Counter:
        """Counts messages dropped because their bot went over --max-bot-rate."""


class Pipeline:
    """Turns each bot message into writes to the clients that want it.

    The envelope is spliced once from the validated bytes and written to every matching
    group in the same loop turn; history, statistics and alerts come after the writes, so
    they never delay the heartbeat itself.
    """

    def __init__(
        self,
        hub: Hub,
        metrics: PipelineMetrics,
        observe: Observer,
        *,
        max_message_bytes: int,
        accept_bots: BotAllowList,
        max_bot_rate: float,
        wall_clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.hub = hub
        self.metrics = metrics
        self._observe = observe
        self._max_message_bytes = max_message_bytes
        self._accepted_bots = accept_bots
        self._max_bot_rate = max_bot_rate
        self._bot_limiter = BotRateLimiter(max_bot_rate)
        self._wall_clock_ns = wall_clock_ns
        self._drop_logged_at: dict[str, float] = {}
        self._not_accepted_log = LogThrottle(BOT_DROP_LOG_INTERVAL_S)
        self._log_info = log.isEnabledFor(logging.INFO)
        # Set by the wiring once the history is open; None while history is off.
        self.record: Recorder | None = None

    def on_message(self, channel: str, raw: bytes) -> None:
        """One message as the subscriber read it; never raises."""
        try:
            self._relay(channel, raw)
        except Exception:
            # A bug in handling one message must not end the subscription for all the
            # ones after it: log it with its payload, count it, carry on.
            self.metrics.message_errors.inc()
            shown = excerpt(raw)
            log.exception(
                "internal error handling a message on %s; payload: %s",
                channel,
                shown,
                extra={"event": "message_error", "channel": channel, "excerpt": shown},
            )

    def _relay(self, channel: str, raw: bytes) -> None:
        received = time.perf_counter()
        self.metrics.messages_received.inc()
        message = self._validate(channel, raw)
        if message is None:
            return
        now_ns = self._wall_clock_ns()
        now_s, relay_ms = now_ns / 1e9, now_ns // 1_000_000
        bot = bot_id(channel, message.source)
        if not self._admit(bot, now_s):
            return
        envelope = encode_envelope(message, relay_ms)
        # Matched once, counted for the log line and written to from the same snapshot.
        targets = self.hub.targets("pingpong", bot, message.type)
        done = self._log_received(channel, bot, message, targets) if self._log_info else None
        self.hub.deliver(envelope, targets, ("pingpong", bot, message.type), received, done)
        # After the writes: history, statistics and alerts must not delay the heartbeat.
        if self.record is not None:
            recorded = partial(self._recorded, bot, message.type, message.raw, relay_ms)
            self.record(bot, channel, message.raw, relay_ms, recorded)
        else:
            self._recorded(bot, message.type, message.raw, relay_ms, None)
        self._observe(bot, message, now_s)
        self.metrics.messages_forwarded.inc()

    def _validate(self, channel: str, raw: bytes) -> BotMessage | None:
        """The message, or None once a refusal is counted and logged with its excerpt."""
        try:
            check_channel(channel, raw)
            return parse_bot_message(raw, self._max_message_bytes)
        except RejectedMessage as rejected:
            self.metrics.messages_rejected.labels(rejected.reason).inc()
            shown = rejected.excerpt
            if rejected.reason == "bad_channel":
                channel = excerpt(channel.encode("utf-8", "surrogatepass"))
            log.warning(
                "rejected message on %s: %s; payload: %s",
                channel,
                rejected,
                shown,
                extra={
                    "event": "rejected",
                    "channel": channel,
                    "reason": rejected.reason,
                    "detail": rejected.detail,
                    "excerpt": shown,
                    "size_bytes": len(raw),
                },
            )
            return None

    def _admit(self, bot: str, now_s: float) -> bool:
        """--accept-bots and --max-bot-rate: False (counted, logged throttled) to drop it."""
        if not self._accepted_bots.accepts(bot):
            self._not_accepted(bot, now_s)
            return False
        if not self._bot_limiter.allow(bot, now_s):
            self._dropped_over_rate(bot, now_s)
            return False
        return True

    def _log_received(
        self, channel: str, bot: str, message: BotMessage, targets: list[Group]
    ) -> Callable[[], None]:
        """The design's log lines for one message; returns what logs "broadcast done"."""
        clients = sum(len(group.members) for group in targets)
        bot_time = format_bot_time(message.timestamp_ms)
        log.info(
            "received %s from bot on %s: latency %s, bot time %s",
            message.type.upper(),
            channel,
            format_latency(message.latency_ms),
            bot_time,
            extra={
                "event": "received",
                "channel": channel,
                "type": message.type,
                "latency_ms": message.latency_ms,
                "bot_timestamp_ms": message.timestamp_ms,
                "bot_time": bot_time,
                "source": message.source,
                "bot": bot,
            },
        )
        log.info(
            "broadcasting to %d clients",
            clients,
            extra={"event": "broadcasting", "clients": clients},
        )
        return partial(_broadcast_done, clients)

    def _recorded(
        self, bot: str, kind: str, raw: bytes, relay_ms: int, entry_id: str | None
    ) -> None:
        """Once a message has its history id (None: history is off), the tagged envelope
        to clients that asked for ids."""
        targets = self.hub.targets(RECORDED, bot, kind)
        if not targets and not self.hub.holding:
            return
        payload = encode_tagged_envelope(raw, relay_ms, bot, entry_id)
        if entry_id is not None:
            self.hub.hold_recorded(payload, bot, kind, entry_id)
        self.hub.deliver(payload, targets, ("pingpong", bot, kind))

    def _not_accepted(self, bot: str, now_s: float) -> None:
        """A bot --accept-bots does not name: counted; logged at most once per 10 s."""
        self.metrics.messages_rejected.labels("bot_not_accepted").inc()
        count = self._not_accepted_log.note("bot_not_accepted", now_s)
        if not count:
            return
        log.warning(
            "%d message(s) from bots that --accept-bots does not name (e.g. %s) were not "
            "relayed, recorded or tracked",
            count,
            bot,
            extra={"event": "bot_not_accepted", "bot": bot, "messages": count},
        )

    def _dropped_over_rate(self, bot: str, now_s: float) -> None:
        self.metrics.bot_messages_dropped.inc()
        if now_s - self._drop_logged_at.get(bot, 0.0) < BOT_DROP_LOG_INTERVAL_S:
            return
        self._drop_logged_at[bot] = now_s
        dropped = self._bot_limiter.take_dropped().get(bot, 0)
        log.warning(
            "bot %s is over --max-bot-rate %g/s: %d message(s) dropped",
            bot,
            self._max_bot_rate,
            dropped,
            extra={"event": "bot_rate_limited", "bot": bot, "dropped": dropped},
        )


def _broadcast_done(clients: int) -> None:
    # Logged once the envelope was written (on the loop turn after it was queued),
    # so the design's stages keep their order: received, broadcasting, sent, done.
    log.info(
        "broadcast done: to %d clients",
        clients,
        extra={"event": "broadcast_done", "delivered": clients},
    )
