"""Who may upgrade: the origin and Host policy, the connection cap, and per-address limits.

The per-address limits are a count and a rate; each refusal is counted and answered with
a JSON error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import orjson
from picows import WSUpgradeResponse, WSUpgradeResponseWithListener

from pingpong_relay.hub import Hub
from pingpong_relay.limits import TokenBucket
from pingpong_relay.messages import excerpt
from pingpong_relay.origins import HostPolicy
from pingpong_relay.telemetry.metrics import RelayMetrics

__all__ = ["Admission", "json_error"]

log = logging.getLogger("pingpong_relay.dataplane")


def json_error(
    status: int, code: str, message: str, extra: Mapping[str, str] | None = None
) -> WSUpgradeResponseWithListener:
    """A refused upgrade: `status` with the relay's JSON error body."""
    return WSUpgradeResponseWithListener(
        WSUpgradeResponse.create_error_response(
            status,
            orjson.dumps({"error": code, "message": message}),
            {"Content-Type": "application/json", **(extra or {})},
        ),
        None,
    )


class Admission:
    """Decides, before the upgrade, whether a client may connect (0 turns a limit off)."""

    def __init__(
        self,
        hub: Hub,
        metrics: RelayMetrics,
        hosts: HostPolicy,
        *,
        max_connections: int,
        max_per_ip: int,
        connection_rate_per_ip: float,
    ) -> None:
        self._hub = hub
        self._metrics = metrics
        self._hosts = hosts
        self._max_connections = max_connections
        self._max_per_ip = max_per_ip
        self._ip_rate = connection_rate_per_ip
        self._per_ip: dict[str, int] = {}
        self._ip_rates: dict[str, TokenBucket] = {}

    def refuse(
        self, headers: Mapping[str, str], ip: str, local_ip: str
    ) -> WSUpgradeResponseWithListener | None:
        """The answer for an upgrade that must not happen, else None."""
        return self._refuse_upgrade(headers, local_ip) or self._refuse_ip(ip)

    def _refuse_ip(self, ip: str) -> WSUpgradeResponseWithListener | None:
        """Per-address limits (0: off). Behind a proxy every client has the proxy's address."""
        if self._max_per_ip and self._per_ip.get(ip, 0) >= self._max_per_ip:
            self._metrics.connections_refused.labels("per_ip").inc()
            log.warning(
                "refused a client from %s: %d connections is its limit",
                ip,
                self._max_per_ip,
                extra={"event": "per_ip_refused", "ip": ip},
            )
            return json_error(
                503, "per_ip_limit", "too many connections from this address", {"Retry-After": "5"}
            )
        if not self._ip_rate:
            return None
        bucket = self._ip_rates.get(ip)
        if bucket is None:
            if len(self._ip_rates) >= 10_000:
                self._ip_rates.clear()  # bounded: forget idle addresses
            bucket = self._ip_rates[ip] = TokenBucket(self._ip_rate, 2 * self._ip_rate)
        if not bucket.allow(time.monotonic()):
            self._metrics.connections_refused.labels("per_ip_rate").inc()
            log.warning(
                "refused a client from %s: connecting too often",
                ip,
                extra={"event": "per_ip_rate_refused", "ip": ip},
            )
            return json_error(
                429, "too_many_connections", "connecting too often; slow down", {"Retry-After": "1"}
            )
        return None

    def joined(self, ip: str) -> None:
        """A client from `ip` connected."""
        self._per_ip[ip] = self._per_ip.get(ip, 0) + 1

    def left(self, ip: str) -> None:
        """A client from `ip` is gone."""
        count = self._per_ip.get(ip, 0) - 1
        if count > 0:
            self._per_ip[ip] = count
        else:
            self._per_ip.pop(ip, None)

    def _refuse_upgrade(
        self, headers: Mapping[str, str], local_ip: str
    ) -> WSUpgradeResponseWithListener | None:
        """An answer for an upgrade that must not happen (origin, capacity), else None."""
        origin = headers.get("Origin")
        if not self._hosts.origin_allowed(origin, local_ip):
            # A page on another site must not read bot data with the visitor's network
            # position (cross-site WebSocket hijacking); bots and SDKs send no Origin.
            shown = excerpt(str(origin).encode(), 200)
            self._metrics.connections_refused.labels("origin").inc()
            log.warning(
                "refused a client from origin %s",
                shown,
                extra={"event": "origin_refused", "origin": shown},
            )
            return json_error(403, "forbidden_origin", "this origin may not connect")
        if len(self._hub) >= self._max_connections:
            self._metrics.connections_refused.labels("capacity").inc()
            log.warning(
                "refused a client: %d connections is the limit",
                self._max_connections,
                extra={"event": "capacity_refused"},
            )
            return json_error(
                503, "capacity", "the relay is at its connection limit", {"Retry-After": "5"}
            )
        return None
