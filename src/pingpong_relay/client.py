"""The Python client API: envelopes from a relay as an async iterator that reconnects by itself."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from .backoff import Backoff
from .messages import format_bot_time, format_latency

log = logging.getLogger("pingpong_relay.client")

DEFAULT_RELAY_URL = "ws://localhost:2808/"


async def envelopes(
    url: str = DEFAULT_RELAY_URL,
    *,
    reconnect: bool = True,
    backoff: Backoff | None = None,
    heartbeat_s: float = 20.0,
) -> AsyncIterator[dict[str, Any]]:
    """Yields every message the relay sends, parsed, in order.

    When the connection drops (relay restart, network), it reconnects with capped
    exponential backoff and carries on; with reconnect=False it returns instead.
    Messages sent while disconnected are not replayed.
    """
    backoff = backoff or Backoff()
    attempt = 0
    async with aiohttp.ClientSession() as session:
        while True:
            connected = False
            try:
                async with session.ws_connect(url, heartbeat=heartbeat_s, autoping=True) as ws:
                    connected = True
                    log.info("connected to %s", url)
                    attempt = 0
                    async for frame in ws:
                        if frame.type == aiohttp.WSMsgType.TEXT:
                            yield orjson.loads(frame.data)
                        elif frame.type == aiohttp.WSMsgType.ERROR:
                            break
                    reason = f"closed by relay ({ws.close_code})"
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            if not reconnect:
                return
            delay = backoff.delay(attempt)
            attempt += 1
            what = "connection to %s lost" if connected else "cannot connect to %s"
            log.warning(what + " (%s); retrying in %.2f s", url, reason, delay)
            await asyncio.sleep(delay)


def describe(envelope: dict[str, Any]) -> str:
    """One human line for an envelope, as the design's client examples print it."""
    if envelope.get("type") != "bot:pingpong" or not isinstance(envelope.get("data"), dict):
        return f"{envelope.get('type', '?')}: {orjson.dumps(envelope).decode()}"
    data = envelope["data"]
    kind = str(data.get("type", "?")).upper()
    latency = format_latency(_number(data.get("latency")))
    bot_time = format_bot_time(_number(data.get("timestamp")))
    relay_time = format_bot_time(_number(envelope.get("timestamp")))
    return f"{kind} latency {latency} bot time {bot_time} relay time {relay_time}"


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
