"""Prometheus metrics of one relay, in a registry of its own (no process-global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .messages import REJECT_REASONS

# Relay latency is sub-millisecond when healthy; the buckets resolve that range and
# still show a stalled event loop.
_BOT_LATENCY_BUCKETS_S = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
_LATENCY_BUCKETS_S = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)


class RelayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.clients_connected = Gauge(
            "pingpong_clients_connected", "WebSocket clients currently connected", registry=r
        )
        self.connections_total = Counter(
            "pingpong_connections", "WebSocket connections accepted", registry=r
        )
        self.messages_received = Counter(
            "pingpong_messages_received", "Messages received from Redis", registry=r
        )
        self.messages_forwarded = Counter(
            "pingpong_messages_forwarded", "Valid messages broadcast to clients", registry=r
        )
        self.messages_rejected = Counter(
            "pingpong_messages_rejected",
            "Messages from Redis refused by validation, by reason",
            ["reason"],
            registry=r,
        )
        for reason in REJECT_REASONS:
            self.messages_rejected.labels(reason)
        self.message_errors = Counter(
            "pingpong_message_errors",
            "Messages whose handling failed with an internal error (a bug; see the log)",
            registry=r,
        )
        self.deliveries = Counter(
            "pingpong_deliveries", "Envelopes written to client sockets", registry=r
        )
        self.send_failures = Counter(
            "pingpong_send_failures", "Writes to a client socket that failed", registry=r
        )
        self.slow_client_closes = Counter(
            "pingpong_slow_client_closes",
            "Clients closed because their unsent data exceeded --max-client-buffer",
            registry=r,
        )
        self.client_frames_refused = Counter(
            "pingpong_client_frames_refused",
            "Frames from clients that the relay answered with an error",
            registry=r,
        )
        self.redis_reconnects = Counter(
            "pingpong_redis_reconnects",
            "Times the Redis subscription was re-established",
            registry=r,
        )
        self.redis_subscribed = Gauge(
            "pingpong_redis_subscribed",
            "1 while the Redis subscription is verified alive, else 0",
            registry=r,
        )
        self.relay_latency = Histogram(
            "pingpong_relay_latency_seconds",
            "Time from receiving a message from Redis to issuing every client write",
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )

        # Per bot: cardinality is bounded by --max-bots.
        self.bot_up = Gauge(
            "pingpong_bot_up",
            "Bot status: 1 up, 0.5 degraded or pending, 0 down",
            ["bot"],
            registry=r,
        )
        self.bot_latency = Histogram(
            "pingpong_bot_latency_seconds",
            "Exchange latency the bot reported, per bot",
            ["bot"],
            buckets=_BOT_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.bot_last_seen = Gauge(
            "pingpong_bot_last_seen_timestamp_seconds",
            "When the relay last received a message from the bot (Unix time)",
            ["bot"],
            registry=r,
        )
        self.alerts_firing = Gauge(
            "pingpong_alerts_firing", "1 while the alert is firing", ["rule", "bot"], registry=r
        )
        self.bots_refused = Counter(
            "pingpong_bot_messages_untracked",
            "Messages relayed but not tracked per bot because --max-bots was reached",
            registry=r,
        )
        self.webhook_sent = Counter(
            "pingpong_webhook_deliveries", "Alert webhooks delivered", registry=r
        )
        self.webhook_failed = Counter(
            "pingpong_webhook_failures", "Alert webhooks that failed after every retry", registry=r
        )
        self.webhook_dropped = Counter(
            "pingpong_webhook_dropped",
            "Alert webhooks dropped because the queue was full",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
