"""The MQTT bridge: heartbeats heard on the --mqtt-url broker's topics, through the inlet.

It subscribes to the --mqtt-topic filters, hands every message to the inlet, and reconnects
with backoff and resubscribes after the broker goes away. What a message means is decided
in `mqtt_topics` (pure)."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Sequence
from typing import Final, Protocol

import aiomqtt

from pingpong_relay.backoff import Backoff
from pingpong_relay.ingest import IngestError, Report
from pingpong_relay.ingestion.inlet import Inlet, Refused
from pingpong_relay.instruments import Counter, Gauge
from pingpong_relay.mqtt_topics import broker, read_payload, shared_filter, topic_source
from pingpong_relay.tasks import cancel_and_wait
from pingpong_relay.urls import redact_url

__all__ = ["MqttBridge", "MqttMetrics", "SubscriptionRefused"]

log = logging.getLogger("pingpong_relay.mqtt")
# paho-mqtt's own chatter (every packet, at DEBUG) goes to a child logger of ours.
_client_log = logging.getLogger("pingpong_relay.mqtt.client")

# A broker that stops answering is noticed after 1.5 keepalives (paho's rule).
KEEPALIVE_S: Final = 15
CONNECT_TIMEOUT_S: Final = 10.0
# Messages heard but not yet published (Redis slow): beyond this the client drops them,
# saying so, rather than growing without bound.
MAX_QUEUED_MESSAGES: Final = 10_000


class SubscriptionRefused(aiomqtt.MqttError):
    """The broker answered SUBSCRIBE with a failure code (not authorised, no shared
    subscriptions); the loop reconnects and asks again."""


class MqttMetrics(Protocol):
    """What the bridge sets and counts."""

    @property
    def mqtt_connected(self) -> Gauge:
        """1 while subscribed, else 0."""

    @property
    def mqtt_reconnects(self) -> Counter:
        """Subscriptions re-established after losing one."""


class MqttBridge:
    """One MQTT client that keeps a subscription to every filter alive for as long as it
    runs, and publishes what it hears through `inlet` (via "mqtt").

    aiomqtt's client does not reconnect by itself: each attempt builds a fresh client,
    subscribes to every filter (as `$share/<group>/<filter>` with a share group) and reads
    until the connection ends; a message refused is counted and never stops the loop.
    """

    def __init__(
        self,
        url: str,
        topic_filters: Sequence[str],
        inlet: Inlet,
        metrics: MqttMetrics,
        *,
        client_id: str,
        share_group: str = "",
        max_message_bytes: int,
        backoff: Backoff | None = None,
    ) -> None:
        self.url = url
        self.topic_filters = list(topic_filters)
        self.subscriptions = [shared_filter(f, share_group) for f in self.topic_filters]
        self.client_id = client_id
        self._broker = broker(url)
        self._inlet = inlet
        self._metrics = metrics
        self._max_bytes = max_message_bytes
        self._backoff = backoff or Backoff(base_s=0.2, cap_s=10.0)
        self._subscribed = False
        self._ever_subscribed = False
        self._last_error = "not connected yet"
        self._task: asyncio.Task[None] | None = None
        self.down_since: float | None = None  # wall-clock seconds, while an outage lasts

    # --- state read by /healthz -----------------------------------------------------
    def status(self) -> str:
        """ "subscribed" while every filter is, else "disconnected"."""
        return "subscribed" if self._subscribed else "disconnected"

    @property
    def broker(self) -> str:
        """The broker's URL, its password redacted."""
        return redact_url(self.url)

    @property
    def last_error(self) -> str:
        """Why the subscription last failed or is not up yet."""
        return self._last_error

    # --- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        """Starts the loop as an owned task."""
        self._task = asyncio.create_task(self.run(), name="mqtt-bridge")

    async def stop(self) -> None:
        """Cancels the loop; the client disconnects on its way out."""
        await cancel_and_wait(self._task)
        self._task = None
        self._subscribed = False
        self._metrics.mqtt_connected.set(0)

    async def run(self) -> None:
        """Subscribes and publishes every heartbeat heard until cancelled; after any failure
        reconnects with backoff, logging each outage once when it starts and once when it
        ends."""
        attempt = 0
        while True:
            try:
                await self._subscribe_and_read()
            except aiomqtt.MqttError as exc:
                self._last_error = str(exc) or type(exc).__name__
            except Exception as exc:
                # A bug here (ours or the client library's) must not end MQTT for good.
                self._last_error = f"{type(exc).__name__}: {exc}"
                log.exception(
                    "unexpected error in the MQTT bridge; starting it over",
                    extra={"event": "mqtt_unexpected_error", "error": self._last_error},
                )
            attempt = self._lost(attempt)
            delay = self._backoff.delay(attempt)
            attempt += 1
            log.debug(
                "MQTT: retry %d in %.2f s (%s)",
                attempt,
                delay,
                self._last_error,
                extra={"event": "mqtt_retry", "attempt": attempt, "delay_s": round(delay, 3)},
            )
            await asyncio.sleep(delay)

    def _lost(self, attempt: int) -> int:
        """Notes a failed or ended session; the attempt number to go on with."""
        was_subscribed = self._subscribed
        self._subscribed = False
        self._metrics.mqtt_connected.set(0)
        if was_subscribed or (attempt == 0 and self.down_since is None):
            self.down_since = time.time()
            log.warning(
                "MQTT broker %s %s (%s); heartbeats over MQTT wait, the relay keeps serving",
                self.broker,
                "lost" if was_subscribed else "not reachable",
                self._last_error,
                extra={
                    "event": "mqtt_outage_start",
                    "broker": self.broker,
                    "error": self._last_error,
                },
            )
            return 0
        return attempt

    def _client(self) -> aiomqtt.Client:
        where = self._broker
        return aiomqtt.Client(
            where.host,
            where.port,
            username=where.username,
            password=where.password,
            identifier=self.client_id,
            tls_context=ssl.create_default_context() if where.tls else None,
            keepalive=KEEPALIVE_S,
            timeout=CONNECT_TIMEOUT_S,
            max_queued_incoming_messages=MAX_QUEUED_MESSAGES,
            logger=_client_log,
        )

    async def _subscribe_and_read(self) -> None:
        async with self._client() as client:
            granted = await client.subscribe([(s, 0) for s in self.subscriptions])
            codes = [code if isinstance(code, int) else code.value for code in granted]
            # A SUBACK code of 0x80 or more is a refusal (MQTT 3.1.1 and 5 alike).
            refused = [
                f"{sub} (code {code})"
                for sub, code in zip(self.subscriptions, codes, strict=False)
                if code >= 0x80
            ]
            if refused:
                raise SubscriptionRefused(f"the broker refused SUBSCRIBE to {', '.join(refused)}")
            self._mark_subscribed()
            async for message in client.messages:
                payload = message.payload
                raw = payload if isinstance(payload, bytes) else str(payload or "").encode()
                await self.hear(message.topic.value, raw)

    def _mark_subscribed(self) -> None:
        self._subscribed = True
        self._metrics.mqtt_connected.set(1)
        if self._ever_subscribed:
            self._metrics.mqtt_reconnects.inc()
        self._ever_subscribed = True
        fields = {"broker": self.broker, "topics": self.subscriptions, "client_id": self.client_id}
        if self.down_since is not None:
            outage_s = time.time() - self.down_since
            self.down_since = None
            log.info(
                "MQTT broker %s back after %.1f s; subscribed to %s",
                self.broker,
                outage_s,
                ", ".join(self.subscriptions),
                extra={"event": "mqtt_outage_end", "outage_s": round(outage_s, 3), **fields},
            )
        else:
            log.info(
                "subscribed to %s on MQTT broker %s",
                ", ".join(self.subscriptions),
                self.broker,
                extra={"event": "mqtt_subscribed", **fields},
            )

    async def hear(self, topic: str, payload: bytes) -> None:
        """Publishes what one message on `topic` says, or counts (and logs) its refusal."""
        try:
            source = topic_source(self.topic_filters, topic)
            heard = read_payload(payload, source, self._max_bytes)
        except IngestError as exc:
            self._inlet.refuse("mqtt", exc.code, f"{topic[:100]}: {exc}")
            return
        try:
            if isinstance(heard, Report):
                await self._inlet.report(source, heard, "mqtt")
            else:
                await self._inlet.publish(source, heard, "mqtt")
        except Refused:
            pass  # the inlet counted and logged it; the next message may do better
