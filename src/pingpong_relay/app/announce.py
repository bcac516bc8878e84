"""The relay's start-up log lines an operator reads first: where it listens, what it relays.

They say where it relays from too, and warn when it serves anonymous clients beyond
loopback.
"""

from __future__ import annotations

import logging

from pingpong_relay.origins import is_loopback
from pingpong_relay.settings import Settings
from pingpong_relay.urls import redact_url

__all__ = ["log_listening", "warn_if_exposed"]

log = logging.getLogger("pingpong_relay.server")


def warn_if_exposed(settings: Settings) -> None:
    """Warns when anyone who can reach the ports reads every bot's data."""
    if settings.auth == "none" and not is_loopback(settings.host):
        log.warning(
            "serving %s with no authentication (--allow-anonymous): anyone who can reach "
            "ports %d and %d reads every bot's data",
            settings.host,
            settings.port,
            settings.http_port,
            extra={"event": "anonymous_exposed", "host": settings.host},
        )


def log_listening(
    settings: Settings, *, ws_port: int, http_port: int, tls: bool, source: str, redis_url: str
) -> None:
    """The `listening` line: both planes' URLs (HTTP off when `http_port` is 0), what is
    relayed, and from which Redis (its password redacted)."""
    http = (
        f"{'https' if tls else 'http'}://{settings.host}:{http_port}/ (HTTP)"
        if http_port
        else "HTTP plane off"
    )
    log.info(
        "relay listening: %s://%s:%d/ (data), %s; relaying %s from %s",
        "wss" if tls else "ws",
        settings.host,
        ws_port,
        http,
        source,
        redact_url(redis_url),
        extra={
            "event": "listening",
            "ws_port": ws_port,
            "tls": tls,
            "http_port": http_port,
            "host": settings.host,
            "redis_url": redact_url(redis_url),
            "channels": settings.channel,
            "patterns": settings.channel_pattern,
        },
    )
