"""The ingestion wiring: the inlet, the push tokens, the MQTT bridge and the pollers of one
relay, started on the relay's exit stack (see `pingpong_relay.ingestion`)."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack

from pingpong_relay.http.push import PushPlane
from pingpong_relay.ingestion.inlet import Inlet
from pingpong_relay.ingestion.mqtt import MqttBridge
from pingpong_relay.ingestion.pollers import Pollers
from pingpong_relay.limits import BotAllowList
from pingpong_relay.mqtt_topics import client_id
from pingpong_relay.redis_io.push_tokens import PushTokens
from pingpong_relay.settings import Settings
from pingpong_relay.telemetry.metrics import RelayMetrics

__all__ = ["Ingestion"]

log = logging.getLogger("pingpong_relay.ingestion")


class Ingestion:
    """Every way a heartbeat reaches this relay other than Redis Pub/Sub."""

    def __init__(self, settings: Settings, metrics: RelayMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.inlet: Inlet | None = None
        self.tokens: PushTokens | None = None
        self.mqtt: MqttBridge | None = None
        self.pollers: Pollers | None = None

    async def start(self, stack: AsyncExitStack, redis_url: str, relay_id: str) -> None:
        """Opens the inlet (and the MQTT bridge and pollers when configured), registering
        each stop on `stack`. Without a --channel (only patterns) there is no channel to
        publish to: ingestion stays off, and says so."""
        settings = self.settings
        if not settings.channel:
            log.warning(
                "push URLs, MQTT and pollers are off: they publish to the first --channel, "
                "and only --channel-pattern is given",
                extra={"event": "ingestion_off"},
            )
            return
        inlet = self.inlet = Inlet(
            redis_url,
            settings.channel[0],
            self.metrics,
            max_message_bytes=settings.max_message_bytes,
            accept_bots=BotAllowList(settings.accept_bots),
            max_bot_rate=settings.max_bot_rate,
        )
        stack.push_async_callback(inlet.aclose)
        self.tokens = PushTokens(inlet.redis, settings.push_token)
        if settings.mqtt_url:
            self.mqtt = self._start_mqtt(stack, inlet, relay_id)
        if settings.poll:
            pollers = self.pollers = Pollers(
                settings.poll,
                inlet,
                self.metrics,
                redis_url,
                relay_id,
                lease_ttl_s=settings.poll_lease,
            )
            pollers.start()
            stack.push_async_callback(pollers.stop)

    def _start_mqtt(self, stack: AsyncExitStack, inlet: Inlet, relay_id: str) -> MqttBridge:
        """The MQTT bridge, running until the stack stops it (before the inlet closes)."""
        settings = self.settings
        bridge = MqttBridge(
            settings.mqtt_url,
            settings.mqtt_topic,
            inlet,
            self.metrics,
            client_id=client_id(relay_id),
            share_group=settings.mqtt_share_group,
            max_message_bytes=settings.max_message_bytes,
        )
        bridge.start()
        stack.push_async_callback(bridge.stop)
        return bridge

    def push_plane(self) -> PushPlane | None:
        """What the HTTP plane's push and ping URLs need (None: ingestion is off)."""
        if self.inlet is None or self.tokens is None:
            return None
        return PushPlane(
            self.inlet,
            self.tokens,
            token_rate_per_s=self.settings.push_rate,
            address_rate_per_s=self.settings.push_address_rate,
        )
