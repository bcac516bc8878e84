"""The message pipeline, the hot path: a bot message validated, gated, and its envelope written.

Only after the writes is the message recorded in the history and observed for statistics
and alerts. Pure: the wiring hands in the I/O. The design's stage lines (received,
broadcasting, broadcast done) are DEBUG unless asked for at INFO; what an operator reads at
INFO is one summary line per interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final, Protocol

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

__all__ = ["Pipeline", "PipelineMetrics", "Recorder", "Traffic"]

log = logging.getLogger("pingpong_relay.pipeline")

BOT_DROP_LOG_INTERVAL_S: Final = 10.0
# Distinct bots a summary counts at most: a flood of made-up ids must not grow a set.
SUMMARY_MAX_BOTS: Final = 10_000

# Appends one message to the history: (bot, channel, raw, relay_ms, then-call-with-its-id).
Recorder = Callable[[str, str, bytes, int, Callable[[str | None], None] | None], None]
# Statistics and alerts: (bot, message, now in s).
Observer = Callable[[str, BotMessage, float], None]


@dataclass(slots=True)
class Traffic:
    """What the pipeline did since the last summary line (pure): the line's figures."""

    messages: int = 0  # relayed
    rejected: int = 0  # refused by validation or --accept-bots
    dropped: int = 0  # over --max-bot-rate
    bots: set[str] = field(default_factory=set)  # at most SUMMARY_MAX_BOTS

    def relayed(self, bot: str) -> None:
        """One message relayed from `bot`."""
        self.messages += 1
        if len(self.bots) < SUMMARY_MAX_BOTS:
            self.bots.add(bot)

    def summary(self, interval_s: float, clients: int, p99_ms: float | None) -> dict[str, Any]:
        """The summary's fields, as its JSON log line carries them."""
        return {
            "event": "summary",
            "interval_s": interval_s,
            "messages": self.messages,
            "bots": len(self.bots),
            "clients": clients,
            "rejected": self.rejected,
            "dropped": self.dropped,
            "p99_relay_latency_ms": None if p99_ms is None else round(p99_ms, 3),
        }


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
        stage_level: int = logging.DEBUG,
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
        # The design's per-message lines: DEBUG, or INFO with --log-stages. Checked once:
        # at INFO, three lines per message would be most of the hot path's cost.
        self._stage_level = stage_level
        self._log_stages = log.isEnabledFor(stage_level)
        self.traffic = Traffic()
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
        done = self._log_received(channel, bot, message, targets) if self._log_stages else None
        self.hub.deliver(envelope, targets, ("pingpong", bot, message.type), received, done)
        # After the writes: history, statistics and alerts must not delay the heartbeat.
        if self.record is not None:
            recorded = partial(self._recorded, bot, message.type, message.raw, relay_ms)
            self.record(bot, channel, message.raw, relay_ms, recorded)
        else:
            self._recorded(bot, message.type, message.raw, relay_ms, None)
        self._observe(bot, message, now_s)
        self.metrics.messages_forwarded.inc()
        self.traffic.relayed(bot)

    def _validate(self, channel: str, raw: bytes) -> BotMessage | None:
        """The message, or None once a refusal is counted and logged with its excerpt."""
        try:
            check_channel(channel, raw)
            return parse_bot_message(raw, self._max_message_bytes)
        except RejectedMessage as rejected:
            self.metrics.messages_rejected.labels(rejected.reason).inc()
            self.traffic.rejected += 1
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
        level = self._stage_level
        log.log(
            level,
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
        log.log(
            level,
            "broadcasting to %d clients",
            clients,
            extra={"event": "broadcasting", "clients": clients},
        )
        return partial(_broadcast_done, level, clients)

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
        self.traffic.rejected += 1
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
        self.traffic.dropped += 1
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

    # --- the summary an operator reads at INFO ----------------------------------------------
    async def keep_summarising(self, interval_s: float) -> None:
        """Logs a summary every `interval_s` until cancelled (the wiring owns the task)."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                self.log_summary(interval_s)
            except Exception:
                log.exception("traffic summary failed; trying again next interval")

    def log_summary(self, interval_s: float) -> dict[str, Any] | None:
        """One INFO line with what was relayed since the last one (and the relay latency's
        p99 over it), then starts counting again; none, and None, when nothing happened."""
        traffic, self.traffic = self.traffic, Traffic()
        latency_ms = self.hub.take_relay_latency()
        if not (traffic.messages or traffic.rejected or traffic.dropped):
            return None
        fields = traffic.summary(interval_s, len(self.hub), latency_ms.quantile(0.99))
        bots = f"{fields['bots']}{'+' if fields['bots'] >= SUMMARY_MAX_BOTS else ''}"
        notes = [f"rejected {traffic.rejected}"]
        if traffic.dropped:
            notes.append(f"dropped {traffic.dropped} over --max-bot-rate")
        if fields["p99_relay_latency_ms"] is not None:
            notes.append(f"p99 relay latency {fields['p99_relay_latency_ms']:.3g} ms")
        log.info(
            "relayed %d messages from %s bots to %d clients in the last %g s (%s)",
            traffic.messages,
            bots,
            fields["clients"],
            interval_s,
            ", ".join(notes),
            extra=fields,
        )
        return fields


def _broadcast_done(level: int, clients: int) -> None:
    # Logged once the envelope was written (on the loop turn after it was queued),
    # so the design's stages keep their order: received, broadcasting, sent, done.
    log.log(
        level,
        "broadcast done: to %d clients",
        clients,
        extra={"event": "broadcast_done", "delivered": clients},
    )
