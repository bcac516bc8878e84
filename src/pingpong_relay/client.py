"""The Python client API: envelopes from a relay as an async iterator that reconnects by itself."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A bot:pingpong envelope with the time this client received it.

    The three clocks in play (the bot's `data.timestamp`, the relay's `timestamp` and
    the client's receipt) split the delay: bot → relay (includes Redis) and
    relay → client. Each is only as good as the clocks' agreement: a negative value
    means skew, and is reported as it is rather than clamped.
    """

    envelope: dict[str, Any]
    received_ms: float

    @property
    def data(self) -> dict[str, Any]:
        data = self.envelope.get("data")
        return data if isinstance(data, dict) else {}

    @property
    def bot_to_relay_ms(self) -> float | None:
        bot, relay = _number(self.data.get("timestamp")), _number(self.envelope.get("timestamp"))
        return None if bot is None or relay is None else relay - bot

    @property
    def relay_to_client_ms(self) -> float | None:
        relay = _number(self.envelope.get("timestamp"))
        return None if relay is None else self.received_ms - relay

    @property
    def total_ms(self) -> float | None:
        bot = _number(self.data.get("timestamp"))
        return None if bot is None else self.received_ms - bot


async def heartbeats(
    url: str = DEFAULT_RELAY_URL,
    *,
    reconnect: bool = True,
    backoff: Backoff | None = None,
    clock_ms: Callable[[], float] = lambda: time.time_ns() / 1e6,
) -> AsyncIterator[Heartbeat]:
    """Like `envelopes`, but only bot:pingpong messages, each stamped on receipt."""
    async for envelope in envelopes(url, reconnect=reconnect, backoff=backoff):
        if envelope.get("type") == "bot:pingpong":
            yield Heartbeat(envelope, clock_ms())


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
