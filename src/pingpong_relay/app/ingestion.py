"""The ingestion wiring: the inlet, the push tokens, the MQTT bridge and the pollers of one
relay, started on the relay's exit stack (see `pingpong_relay.ingestion`)."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack

from pingpong_relay.ingestion.inlet import Inlet
from pingpong_relay.ingestion.pollers import Pollers
from pingpong_relay.limits import BotAllowList
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
