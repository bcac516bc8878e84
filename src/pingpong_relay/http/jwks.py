"""The JWKS refresher: keeps an identity provider's signing keys current for --jwks-url."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

import aiohttp

from pingpong_relay.auth import JwksKeys

__all__ = ["keep_jwks"]

log = logging.getLogger("pingpong_relay.jwks")

JWKS_TIMEOUT_S: Final = 5.0
JWKS_MIN_INTERVAL_S: Final = 2.0


async def keep_jwks(keys: JwksKeys, url: str, refresh_s: float) -> None:
    """Fetches the JWKS now, every `refresh_s`, and when a token names an unknown key;
    runs until cancelled."""
    wanted = asyncio.Event()
    keys.refresh_requested = wanted.set
    timeout = aiohttp.ClientTimeout(total=JWKS_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while True:
            wanted.clear()  # a request from here on leads to the next fetch
            await _fetch(session, keys, url)
            # At most one fetch per JWKS_MIN_INTERVAL_S, however many tokens ask.
            await asyncio.sleep(JWKS_MIN_INTERVAL_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wanted.wait(), max(0.0, refresh_s - JWKS_MIN_INTERVAL_S))


async def _fetch(session: aiohttp.ClientSession, keys: JwksKeys, url: str) -> None:
    try:
        async with session.get(url) as response:
            response.raise_for_status()
            count = keys.load(await response.json(content_type=None))
        log.info(
            "loaded %d key(s) from the JWKS at %s",
            count,
            url,
            extra={"event": "jwks_loaded", "keys": count},
        )
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning(
            "could not load the JWKS from %s: %s",
            url,
            exc,
            extra={"event": "jwks_failed", "error": str(exc)},
        )
