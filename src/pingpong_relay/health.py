"""The relay's own health: the operator's detailed view, the public one, and what clients hear.

Watching clients are told by `relay:state` and `relay:deaf` messages. Pure; the wiring
hands in the subscriber once it exists.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import orjson

from pingpong_relay import __version__
from pingpong_relay.hub import Hub
from pingpong_relay.wire_types import RELAY_DEAF_TYPE, RELAY_STATE_TYPE

__all__ = ["MqttState", "PollerState", "RelayHealth", "SourceState", "public_health"]


class SourceState(Protocol):
    """What health reads of the Redis subscriber (`redis_io.subscriber.RedisSource`)."""

    down_since: float | None

    def is_alive(self) -> bool:
        """Subscribed, and verified alive recently."""

    def status(self) -> str:
        """ "subscribed" or "disconnected"."""

    @property
    def last_error(self) -> str:
        """Why it is not subscribed, in words that may name Redis's address."""


class MqttState(Protocol):
    """What health reads of the MQTT bridge (`ingestion.mqtt.MqttBridge`), when there is one:
    shown, never a reason for the relay to be unhealthy (Redis is its lifeline)."""

    def status(self) -> str:
        """ "subscribed" or "disconnected"."""

    @property
    def broker(self) -> str:
        """The broker's URL, its password redacted."""

    @property
    def last_error(self) -> str:
        """Why it is not subscribed, in words that may name the broker's address."""


class PollerState(Protocol):
    """What health reads of the pollers (`ingestion.pollers.Pollers`)."""

    @property
    def polling(self) -> bool:
        """Whether this relay polls the --poll targets now (it holds their lease)."""

    @property
    def target_count(self) -> int:
        """How many --poll targets there are."""


def public_health(ok: bool, detail: Mapping[str, Any]) -> dict[str, Any]:
    """What anyone may read of the relay's health: up or not, and whether Redis is.

    No addresses, error texts, process ids, versions or client counts: those are for the
    log and the authenticated ?detail=1 view.
    """
    return {
        "status": "ok" if ok else "unavailable",
        "redis": "subscribed" if detail.get("redis") == "subscribed" else "unavailable",
    }


class RelayHealth:
    """Answers "is this relay working?" for /healthz, sibling workers and watching clients."""

    def __init__(
        self,
        hub: Hub,
        *,
        relay_id: str,
        channels: list[str],
        worker: int | None = None,
        wall_clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.hub = hub
        self.relay_id = relay_id
        self._channels = channels
        self._worker = worker
        self._wall_clock_ns = wall_clock_ns
        self._started_at = time.monotonic()
        # Bound by the wiring: the subscriber once started, and where deaf periods are
        # recorded (the history) when it is on.
        self.source: SourceState | None = None
        self.pollers: PollerState | None = None
        self.record_deaf: Callable[[int, int, str], None] | None = None
        self.mqtt: MqttState | None = None  # bound when --mqtt-url is set

    def health(self, *, error_text: bool = True) -> tuple[bool, dict[str, Any]]:
        """The operator's view: /healthz?detail=1, and what sibling workers merge. Without
        `error_text` the reason leaves out the Redis error, which names Redis's address."""
        source = self.source
        alive = source is not None and source.is_alive()
        body: dict[str, Any] = {
            "status": "ok" if alive else "unavailable",
            "redis": source.status() if source is not None else "not started",
            "clients": len(self.hub),
            "channels": self._channels,
            "uptime_s": round(time.monotonic() - self._started_at, 3),
            "version": __version__,
            "pid": os.getpid(),
        }
        if self._worker is not None:
            body["worker"] = self._worker
        if self.mqtt is not None:
            body.update(_mqtt_health(self.mqtt, error_text))
        if self.pollers is not None:  # one relay among those on one Redis polls
            body["pollers"] = {
                "targets": self.pollers.target_count,
                "polling": self.pollers.polling,
            }
        if not alive:
            reason = "relay starting" if source is None else "Redis subscription not verified"
            body["reason"] = (
                f"{reason}: {source.last_error}" if source is not None and error_text else reason
            )
            if source is not None and source.down_since is not None:
                body["redis_down_since_ms"] = int(source.down_since * 1000)
        return alive, body

    def public(self) -> tuple[bool, dict[str, Any]]:
        """What anyone may see of this relay's health (the data port's /healthz)."""
        ok, body = self.health()
        return ok, public_health(ok, body)

    def state_message(self) -> bytes:
        """This relay's own health as a message: what /healthz?detail=1 says, for `relay`
        watchers, but with a generic reason (the error text names Redis's address; it is in
        the log)."""
        _, health = self.health(error_text=False)
        return orjson.dumps(
            {
                "type": RELAY_STATE_TYPE,
                "relay": self.relay_id,
                "at_ms": self._wall_clock_ns() // 1_000_000,
                **health,
            }
        )

    def deaf(self, since_s: float, until_s: float | None) -> None:
        """Tells status watchers (and the history) when this relay could not hear Redis."""
        body: dict[str, Any] = {
            "type": RELAY_DEAF_TYPE,
            "relay": self.relay_id,
            "from_ms": int(since_s * 1000),
            "to_ms": int(until_s * 1000) if until_s is not None else None,
        }
        if until_s is not None:
            body["duration_s"] = round(until_s - since_s, 3)
            if self.record_deaf is not None:
                self.record_deaf(body["from_ms"], body["to_ms"], self.relay_id)
        self.hub.broadcast(orjson.dumps(body), "status", key=(RELAY_DEAF_TYPE,))
        self.hub.broadcast(self.state_message(), "relay", key=(RELAY_STATE_TYPE,))

    async def keep_telling(self, interval_s: float) -> None:
        """Every `interval_s`, the relay's state to whoever watches it (clients come and go)."""
        while True:
            await asyncio.sleep(interval_s)
            targets = self.hub.targets("relay")
            if targets:
                self.hub.deliver(self.state_message(), targets, (RELAY_STATE_TYPE,))


def _mqtt_health(mqtt: MqttState, error_text: bool) -> dict[str, Any]:
    """The MQTT bridge's lines of the operator's view; its address and error only there."""
    status = mqtt.status()
    body: dict[str, Any] = {"mqtt": status}
    if error_text:
        body["mqtt_broker"] = mqtt.broker
        if status != "subscribed":
            body["mqtt_error"] = mqtt.last_error
    return body
