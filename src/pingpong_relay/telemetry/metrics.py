"""Prometheus metrics of one relay, in a registry of its own (no process-global state)."""

from __future__ import annotations

import platform
from functools import partial
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from pingpong_relay import __version__
from pingpong_relay.auth import AUTH_REASONS
from pingpong_relay.ingest import INGEST_REJECT_REASONS, VIA_VALUES
from pingpong_relay.limits import CONNECTION_REFUSAL_REASONS
from pingpong_relay.messages import REJECT_REASONS

__all__ = ["HTTP_REFUSAL_REASONS", "RelayMetrics", "http_refusal_words"]


def _one_two_five(low_s: float, count: int) -> tuple[float, ...]:
    """Histogram buckets 1, 2.5, 5 × 10^k from `low_s`: even steps on a log scale."""
    steps = (1.0, 2.5, 5.0)
    return tuple(round(low_s * steps[i % 3] * 10 ** (i // 3), 10) for i in range(count))


# Relay latency is sub-millisecond when healthy; 0.1 ms to 1 s resolves that and still
# shows a stalled event loop. Bots report exchange latency: 1 ms to 10 s.
_LATENCY_BUCKETS_S = _one_two_five(0.0001, 13)
_BOT_LATENCY_BUCKETS_S = _one_two_five(0.001, 13)
# Why the HTTP plane refuses a connection or request: the metric's label values, and the
# words its throttled log line uses for each.
HTTP_REFUSAL_REASONS: Final = {
    "host": "request(s) naming a Host that is not this relay",
    "capacity": "connection(s) past --max-http-connections",
    "timeout": "connection(s) that did not send a request's headers within --http-request-timeout",
    "bad_request": "request(s) that are not valid HTTP",
    "unauthorized": "request(s) without a valid token or the operator's credential (401)",
    "forbidden": "request(s) whose token does not grant the endpoint (403)",
    "unknown_bot": "request(s) for a bot never seen or outside the token's bots (404)",
    "bad_parameter": "request(s) whose parameters or body the OpenAPI document refuses (400)",
    "internal_error": "request(s) the relay failed to answer (500; the error is logged)",
}


def http_refusal_words(reason: str) -> str:
    """What the HTTP plane's refusal log line says of a reason (the reason itself if new)."""
    return HTTP_REFUSAL_REASONS.get(reason, reason)


class RelayMetrics:
    """Every metric the relay exports, by the component that counts it; each component
    sees only the protocol it needs (hub.HubMetrics, monitor.MonitorMetrics, ...).

    `mqtt`: whether the relay bridges an MQTT broker (--mqtt-url); the MQTT families are
    exported only then, so an alert on `pingpong_mqtt_connected == 0` never fires for a
    relay that has no broker.
    """

    def __init__(self, *, mqtt: bool = False) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.build_info = Gauge(
            "pingpong_relay_build_info",
            "Always 1; the labels say which relay and Python this is",
            ["version", "python", "implementation"],
            registry=self.registry,
        )
        self.build_info.labels(
            __version__, platform.python_version(), platform.python_implementation()
        ).set(1)
        self._messages_and_clients()
        self._bots()
        self._refusals()
        self._history_and_webhooks()
        self._notifications()
        self._ingestion(mqtt)

    def _messages_and_clients(self) -> None:
        counter = partial(Counter, registry=self.registry)
        gauge = partial(Gauge, registry=self.registry)
        histogram = partial(Histogram, registry=self.registry)
        self.clients_connected = gauge(
            "pingpong_clients_connected", "WebSocket clients currently connected"
        )
        self.connections_total = counter("pingpong_connections", "WebSocket connections accepted")
        self.messages_received = counter(
            "pingpong_messages_received", "Messages received from Redis"
        )
        self.messages_forwarded = counter(
            "pingpong_messages_forwarded", "Valid messages broadcast to clients"
        )
        self.messages_rejected = counter(
            "pingpong_messages_rejected",
            "Messages from Redis refused by validation, by reason",
            ["reason"],
        )
        for reason in REJECT_REASONS:
            self.messages_rejected.labels(reason)
        self.message_errors = counter(
            "pingpong_message_errors",
            "Messages whose handling failed with an internal error (a bug; see the log)",
        )
        self.deliveries = counter(
            "pingpong_deliveries", "Messages (envelopes and events) written to client sockets"
        )
        self.conflated = counter(
            "pingpong_conflated",
            "Messages skipped for a backed-up client in favour of a newer one of the same bot "
            "and type (--slow-client conflate)",
        )
        self.send_failures = counter(
            "pingpong_send_failures", "Writes to a client socket that failed"
        )
        self.slow_client_closes = counter(
            "pingpong_slow_client_closes",
            "Clients closed because their unsent data exceeded --max-client-buffer",
        )
        self.client_frames_refused = counter(
            "pingpong_client_frames_refused",
            "Frames from clients that the relay answered with an error",
        )
        self.redis_reconnects = counter(
            "pingpong_redis_reconnects", "Times the Redis subscription was re-established"
        )
        self.redis_subscribed = gauge(
            "pingpong_redis_subscribed", "1 while the Redis subscription is verified alive, else 0"
        )
        self.relay_latency = histogram(
            "pingpong_relay_latency_seconds",
            "Time from receiving a message from Redis to issuing every client write",
            buckets=_LATENCY_BUCKETS_S,
        )

    def _bots(self) -> None:
        counter = partial(Counter, registry=self.registry)
        gauge = partial(Gauge, registry=self.registry)
        histogram = partial(Histogram, registry=self.registry)
        # Per bot: only established bots have series (bot_series.py), so cardinality is
        # bounded by --max-bots and a flood of made-up ids creates none; a forgotten bot's
        # series are removed.
        self.bot_up = gauge(
            "pingpong_bot_up", "Bot status: 1 up, 0.5 degraded or pending, 0 down", ["bot"]
        )
        self.bot_latency = histogram(
            "pingpong_bot_latency_seconds",
            "Exchange latency the bot reported, per bot",
            ["bot"],
            buckets=_BOT_LATENCY_BUCKETS_S,
        )
        self.bot_last_seen = gauge(
            "pingpong_bot_last_seen_timestamp_seconds",
            "When the relay last received a message from the bot (Unix time)",
            ["bot"],
        )
        self.alerts_firing = gauge(
            "pingpong_alerts_firing", "1 while the alert is firing", ["rule", "bot"]
        )
        self.bots_refused = counter(
            "pingpong_bot_messages_untracked",
            "Messages relayed but not tracked per bot because --max-bots established bots "
            "were tracked already",
        )
        self.bots_evicted = counter(
            "pingpong_bots_evicted",
            "Bots on probation (not yet established) evicted to make room for a new bot",
        )
        self.clock_skew_messages = counter(
            "pingpong_clock_skew_messages",
            "Messages whose timestamp was more than --max-clock-skew from the relay's clock: "
            "relayed, but left out of the transit statistics",
        )

    def _refusals(self) -> None:
        counter = partial(Counter, registry=self.registry)
        self.auth_failures = counter(
            "pingpong_auth_failures", "Clients refused before the upgrade, by reason", ["reason"]
        )
        self.connections_refused = counter(
            "pingpong_connections_refused",
            "Upgrades refused before they happened (origin, capacity), by reason",
            ["reason"],
        )
        for labelled, reasons in (
            (self.auth_failures, AUTH_REASONS),
            (self.connections_refused, CONNECTION_REFUSAL_REASONS),
        ):
            for reason in reasons:
                labelled.labels(reason)
        self.http_refused = counter(
            "pingpong_http_refused",
            "HTTP-plane connections and requests refused: host (a Host that does not name the "
            "relay), capacity (past --max-http-connections), timeout (headers not sent within "
            "--http-request-timeout), bad_request (not valid HTTP), unauthorized (401), "
            "forbidden (403), unknown_bot (404)",
            ["reason"],
        )
        for reason in HTTP_REFUSAL_REASONS:
            self.http_refused.labels(reason)
        self.client_rate_limited = counter(
            "pingpong_client_frames_rate_limited",
            "Client frames over --client-frame-rate, answered with an error",
        )
        self.client_policy_closes = counter(
            "pingpong_client_policy_closes", "Clients closed with 1008 for repeated violations"
        )
        self.bot_messages_dropped = counter(
            "pingpong_bot_messages_dropped",
            "Bot messages over --max-bot-rate, dropped before the broadcast",
        )

    def _history_and_webhooks(self) -> None:
        counter = partial(Counter, registry=self.registry)
        self.history_recorded = counter(
            "pingpong_history_recorded", "Messages this relay appended to the history"
        )
        self.history_duplicates = counter(
            "pingpong_history_duplicates",
            "Messages another relay had already recorded (exactly-once across relays)",
        )
        self.history_dropped = counter(
            "pingpong_history_dropped",
            "Messages not recorded because the history queue was full while Redis failed",
        )
        self.webhook_sent = counter("pingpong_webhook_deliveries", "Alert webhooks delivered")
        self.webhook_failed = counter(
            "pingpong_webhook_failures", "Alert webhooks that failed after every retry"
        )
        self.webhook_dropped = counter(
            "pingpong_webhook_dropped", "Alert webhooks dropped because the queue was full"
        )

    def _notifications(self) -> None:
        # Per --notify channel: its position (from 1) and scheme, never its URL, which
        # carries the service's token. Bounded by the number of --notify flags.
        counter = partial(Counter, registry=self.registry)
        labels = ["channel", "scheme"]
        self.notifications_sent = counter(
            "pingpong_notifications_sent",
            "Notifications delivered, per --notify channel (its position) and scheme",
            labels,
        )
        self.notification_failures = counter(
            "pingpong_notification_failures",
            "Notifications that failed after every retry, per --notify channel and scheme",
            labels,
        )
        self.notifications_dropped = counter(
            "pingpong_notifications_dropped",
            "Notifications dropped because the channel's queue was full, per channel and scheme",
            labels,
        )
        self.notification_errors = counter(
            "pingpong_notification_errors",
            "Alert transitions the notifier could not read (a bug; see the log)",
        )

    def _ingestion(self, mqtt: bool) -> None:
        # Labels from fixed lists (how a heartbeat came, why it was refused): bounded.
        counter = partial(Counter, registry=self.registry)
        self.ingest_accepted = counter(
            "pingpong_ingest_accepted",
            "Heartbeats from push URLs, ping URLs, MQTT and pollers published to Redis, by via",
            ["via"],
        )
        self.ingest_rejected = counter(
            "pingpong_ingest_rejected",
            "Pushes, pings, MQTT messages and poll results not published, by via and reason",
            ["via", "reason"],
        )
        for via in VIA_VALUES:
            self.ingest_accepted.labels(via)
            for reason in (*INGEST_REJECT_REASONS, *REJECT_REASONS):
                self.ingest_rejected.labels(via, reason)
        # Without a broker the MQTT metrics still exist for the code to update, but
        # unregistered: not exported.
        mqtt_registry = self.registry if mqtt else None
        self.mqtt_connected = Gauge(
            "pingpong_mqtt_connected",
            "1 while subscribed to the --mqtt-url broker, else 0",
            registry=mqtt_registry,
        )
        self.mqtt_reconnects = Counter(
            "pingpong_mqtt_reconnects",
            "Times the MQTT subscription was re-established",
            registry=mqtt_registry,
        )
        self.polls = counter(
            "pingpong_polls", "Polls of --poll targets, by what they found", ["result"]
        )
        for result in ("up", "degraded", "down"):
            self.polls.labels(result)

    def render(self) -> bytes:
        """The registry in Prometheus's text exposition format."""
        return generate_latest(self.registry)
