"""The alert path's wiring: the monitor's transitions fan out to webhooks and notification channels.

Every relay evaluates every alert; where webhooks or channels are configured, the relays
sharing one Redis elect one sender with redis_io.lease.WebhookLease, and only its
transitions reach the fan-out. With --webhook-format alertmanager each webhook body is
Alertmanager's version 4 payload of one transition, and transitions a person would not
be told of (pending ones) are not sent.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

from pingpong_relay.alertmanager import alertmanager_payload
from pingpong_relay.notification_groups import StartTimes
from pingpong_relay.notifications import alert_from_json, notifies, parse_channel
from pingpong_relay.notify.channels import NotificationSender, apprise_channel
from pingpong_relay.notify.webhooks import WebhookSender
from pingpong_relay.redis_io.lease import WebhookLease
from pingpong_relay.settings import Settings
from pingpong_relay.telemetry.metrics import RelayMetrics

__all__ = ["AlertPath", "AlertmanagerWebhooks", "check_channels"]

AlertSink = Callable[[dict[str, Any]], None]


def check_channels(settings: Settings) -> None:
    """ValueError, naming the channel by position and scheme, for a --notify URL Apprise
    cannot use; called before starting so the CLI reports it in one line."""
    for position, text in enumerate(settings.notify, 1):
        apprise_channel(parse_channel(text, position))


class AlertmanagerWebhooks:
    """Turns each `bot:alert` transition into Alertmanager's payload before the webhook
    sender queues it; pending transitions, which Alertmanager never sends, are skipped."""

    def __init__(self, submit: AlertSink, external_url: str | None) -> None:
        self._submit = submit
        self._external_url = external_url
        self._starts = StartTimes()

    def submit(self, alert: dict[str, Any]) -> None:
        """Queues the payload of one transition (nothing for one that notifies nobody)."""
        event = alert_from_json(alert)
        if not notifies(event):
            return
        transition = self._starts.note(event)
        self._submit(alertmanager_payload([transition], self._external_url))


class AlertPath:
    """The webhook sender, the notification sender and the lease of one relay, and the
    one sink the monitor hands every transition to."""

    def __init__(self, settings: Settings, metrics: RelayMetrics) -> None:
        self.settings = settings
        public_url = settings.public_url or None
        self.webhooks = WebhookSender(settings.webhook_url, metrics)
        self.channels = NotificationSender(
            settings.notify,
            metrics,
            public_url=public_url,
            group_wait_s=settings.notify_group_wait,
            group_interval_s=settings.notify_group_interval,
        )
        self._webhook_sink: AlertSink = self.webhooks.submit
        if settings.webhook_format == "alertmanager":
            self._webhook_sink = AlertmanagerWebhooks(self.webhooks.submit, public_url).submit
        self.lease: WebhookLease | None = None

    @property
    def configured(self) -> bool:
        """Whether anything is told of alerts (a webhook or a channel)."""
        return bool(self.settings.webhook_url or self.settings.notify)

    def send(self, alert: dict[str, Any]) -> None:
        """Hands one transition to the webhooks and to the channels, without waiting."""
        self._webhook_sink(alert)
        self.channels.submit(alert)

    async def start(
        self, stack: AsyncExitStack, redis_url: str, relay_id: str, lease_ttl_s: float
    ) -> AlertSink:
        """Starts the senders (and the lease, when anything is configured), registering
        each stop on `stack`; returns the sink for the monitor's transitions."""
        self.webhooks.start()
        stack.push_async_callback(self.webhooks.stop)
        self.channels.start()
        stack.push_async_callback(self.channels.stop)
        if not self.configured:
            return self.send
        self.lease = WebhookLease(redis_url, relay_id, self.send, ttl_s=lease_ttl_s)
        self.lease.start()
        stack.push_async_callback(self.lease.stop)  # notes what was sent, hands it over
        return self.lease.notify
