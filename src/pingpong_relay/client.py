"""The Python client API: envelopes from a relay as an async iterator that reconnects by itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import orjson

from pingpong_relay.backoff import Backoff, Retries
from pingpong_relay.logs import os_words
from pingpong_relay.messages import (
    MAX_DEPTH,
    escape_controls,
    excerpt,
    format_bot_time,
    format_latency,
    nesting_depth_exceeds,
)
from pingpong_relay.resume import Resume
from pingpong_relay.wire_types import ENVELOPE_TYPE

__all__ = [
    "CLIENT_BACKOFF",
    "DEFAULT_RELAY_URL",
    "FINAL_CLOSE_CODES",
    "MAX_ENVELOPE_DEPTH",
    "MAX_RETRY_AFTER_S",
    "ClosedByRelay",
    "Disconnected",
    "HandshakeRefused",
    "Heartbeat",
    "InvalidFrame",
    "Refused",
    "describe",
    "envelopes",
    "heartbeats",
    "one_line_json",
    "parse_envelope",
    "parse_retry_after",
    "received_envelopes",
]

log = logging.getLogger("pingpong_relay.client")

DEFAULT_RELAY_URL = "ws://localhost:2808/"
# Twice what a relay sends (a bot's object of MAX_DEPTH levels inside the envelope): a
# deeper frame is no envelope, and would fail anything that encodes it again.
MAX_ENVELOPE_DEPTH: Final = 2 * MAX_DEPTH


class InvalidFrame(ValueError):
    """A frame from the relay that is not an envelope this client can use."""


def parse_envelope(text: str | bytes) -> dict[str, Any]:
    """One frame from the relay as an envelope; InvalidFrame saying why it is not one.

    An envelope is a JSON object with a string "type", nested at most MAX_ENVELOPE_DEPTH
    levels; a bot:pingpong one also has an object "data". Anything else in it is read
    defensively where it is used.
    """
    try:
        envelope = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidFrame(f"not JSON ({exc})") from None
    if not isinstance(envelope, dict):
        raise InvalidFrame(f"not a JSON object but {type(envelope).__name__}")
    if nesting_depth_exceeds(text.encode() if isinstance(text, str) else text, MAX_ENVELOPE_DEPTH):
        raise InvalidFrame(f"nested deeper than {MAX_ENVELOPE_DEPTH} levels")
    if not isinstance(envelope.get("type"), str):
        raise InvalidFrame('no "type" string')
    if envelope["type"] == ENVELOPE_TYPE and not isinstance(envelope.get("data"), dict):
        raise InvalidFrame('a bot:pingpong envelope without a "data" object')
    return envelope


class Refused(Exception):
    """The relay said no in a way that asking again unchanged would only repeat."""


class HandshakeRefused(Refused):
    """The relay answered the WebSocket handshake with an HTTP error: `status`, and the
    `error` and `message` of its JSON body (or the status's phrase and the body's text);
    `retry_after_s`: its Retry-After header, in seconds (None: none, or not a number)."""

    def __init__(
        self, status: int, error: str, message: str, *, retry_after_s: float | None = None
    ) -> None:
        super().__init__(f"{status} {error}" + (f" ({message})" if message else ""))
        self.status = status
        self.error = error
        self.message = message
        self.retry_after_s = retry_after_s

    @property
    def retryable(self) -> bool:
        """Whether trying again may succeed: a server error, a timeout or a rate limit (a
        capacity 503, a 429); any other 4xx (a token, an origin, a query) would only repeat."""
        return self.status >= 500 or self.status in (408, 429)


# At most this much of a refusal's body is read: the relay's JSON errors are far shorter.
_REFUSAL_BODY_BYTES: Final = 4096
# The longest a Retry-After makes the client wait: a relay (or a proxy in front of it) asking
# for an hour must not make a watcher look dead for that long.
MAX_RETRY_AFTER_S: Final = 60.0


# Retry-After's delta-seconds (digits; a fraction is tolerated), as the TypeScript client reads it.
_RETRY_AFTER_SECONDS: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def parse_retry_after(value: str | None) -> float | None:
    """A Retry-After header's seconds, at most MAX_RETRY_AFTER_S; None when there is no
    header or it is not a number of seconds (an HTTP date is not used: the relay sends
    seconds, and a date would need the two clocks to agree)."""
    if value is None or not _RETRY_AFTER_SECONDS.fullmatch(value := value.strip()):
        return None
    return min(float(value), MAX_RETRY_AFTER_S)


async def _refuse(response: aiohttp.ClientResponse) -> None:
    """aiohttp's raise_for_status hook: an HTTP error answering the handshake, with its body."""
    if response.status < 400:
        return
    body = await response.content.read(_REFUSAL_BODY_BYTES)
    error, message = (response.reason or "refused").lower(), ""
    try:
        fields = orjson.loads(body)
    except orjson.JSONDecodeError:
        message = body.decode("utf-8", "replace").strip()
    else:
        if isinstance(fields, dict):
            error = str(fields.get("error") or error)
            message = str(fields.get("message") or fields.get("reason") or "")
    raise HandshakeRefused(
        response.status,
        escape_controls(error),
        escape_controls(message),
        retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
    )


class ClosedByRelay(Refused):
    """The relay closed the connection with a code that reconnecting cannot fix (4003: the
    token expired): `code`, and what it means."""

    def __init__(self, code: int, meaning: str) -> None:
        super().__init__(f"{code} {meaning}")
        self.code = code
        self.meaning = meaning


# Close codes after which a reconnect with the same token would be refused (status_codes).
FINAL_CLOSE_CODES: Final = {4003: "token expired"}

# Full jitter from 0.5 s doubling to 20 s, as the TypeScript client does.
CLIENT_BACKOFF: Final = Backoff(base_s=0.5, cap_s=20.0, jitter="full")


@dataclass(frozen=True, slots=True)
class Disconnected:
    """Why a connection to the relay ended (`connected`) or never began, and in how many
    seconds the next try is (None: no next try, reconnect=False)."""

    url: str
    reason: str
    connected: bool
    retry_in_s: float | None


def _reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words: "Connection refused", not a repr."""
    if isinstance(exc, HandshakeRefused):
        return str(exc)
    if isinstance(exc, aiohttp.ClientConnectorError):
        error = exc.os_error  # its words, not the address again
        return os_words(error) or error.strerror or str(error)  # a DNS failure, say
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"


@dataclass(slots=True)
class _Link:
    """One connection's fate, as `_frames` learns it."""

    connected: bool = False
    reason: str = "connection lost"
    # The relay's Retry-After on a refusal: the next try waits at least this long.
    retry_after_s: float | None = None


async def received_envelopes(
    url: str = DEFAULT_RELAY_URL,
    *,
    reconnect: bool = True,
    resume: bool = True,
    backoff: Backoff | None = None,
    heartbeat_s: float | None = 20.0,
    idle_timeout_s: float | None = None,
    token: str | None = None,
    on_disconnect: Callable[[Disconnected], None] | None = None,
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Like `envelopes`, each with the text of its frame as received."""
    retries = Retries(backoff or CLIENT_BACKOFF)
    seen = Resume() if resume else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(raise_for_status=_refuse) as session:
        while True:
            link = _Link()
            target = url if seen is None else seen.url(url)
            frames = _frames(session, target, headers, heartbeat_s, idle_timeout_s, link)
            try:
                async with contextlib.aclosing(frames):  # closed here even if the caller stops
                    async for text, envelope in frames:
                        if seen is None or seen.admit(envelope):
                            yield text, envelope
            except HandshakeRefused as refused:
                if not refused.retryable:
                    raise
                link.reason = _reason(refused)
                link.retry_after_s = refused.retry_after_s
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                link.reason = _reason(exc)
            if link.connected:
                retries.reset()  # a connection was made: the next wait starts short again
            delay = retries.next_delay() if reconnect else None
            if delay is not None and link.retry_after_s is not None:
                delay = max(delay, link.retry_after_s)
            if on_disconnect is not None:
                on_disconnect(Disconnected(url, link.reason, link.connected, delay))
            if delay is None:
                return
            if on_disconnect is None:
                what = "connection to %s lost" if link.connected else "cannot connect to %s"
                log.warning(what + " (%s); retrying in %.2f s", url, link.reason, delay)
            await asyncio.sleep(delay)


async def _frames(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    heartbeat_s: float | None,
    idle_timeout_s: float | None,
    link: _Link,
) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
    """The envelopes of one connection; why it ended is left in `link`."""
    async with session.ws_connect(
        url,
        heartbeat=heartbeat_s,
        timeout=aiohttp.ClientWSTimeout(ws_receive=idle_timeout_s, ws_close=10.0),
        autoping=True,
        headers=headers,
    ) as ws:
        link.connected = True
        log.info("connected to %s", url)
        try:
            async for frame in ws:
                if frame.type == aiohttp.WSMsgType.TEXT:
                    try:
                        envelope = parse_envelope(frame.data)
                    except InvalidFrame as invalid:
                        _skipped(url, str(invalid), frame.data.encode("utf-8", "replace"))
                        continue
                    yield frame.data, envelope
                elif frame.type == aiohttp.WSMsgType.BINARY:
                    _skipped(url, "a binary frame", frame.data)
                elif frame.type == aiohttp.WSMsgType.ERROR:
                    break
        except TimeoutError:
            link.reason = f"nothing received for {idle_timeout_s:g} s"
            return
        code, failure = ws.close_code, ws.exception()
    if code in FINAL_CLOSE_CODES:
        raise ClosedByRelay(code, FINAL_CLOSE_CODES[code])
    if isinstance(failure, TimeoutError):  # aiohttp's heartbeat: a ping went unanswered
        link.reason = "no answer to a ping"
    elif failure is not None:
        link.reason = _reason(failure)
    elif code is not None and code != aiohttp.WSCloseCode.ABNORMAL_CLOSURE:
        link.reason = f"closed by relay ({code})"


async def envelopes(
    url: str = DEFAULT_RELAY_URL,
    *,
    reconnect: bool = True,
    resume: bool = True,
    backoff: Backoff | None = None,
    heartbeat_s: float | None = 20.0,
    idle_timeout_s: float | None = None,
    token: str | None = None,
    on_disconnect: Callable[[Disconnected], None] | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Yields every envelope the relay sends, parsed, in order.

    A frame that is not an envelope (not JSON, not an object, no "type") is skipped
    with a warning: whatever the other end sends, the iteration goes on.
    When the connection drops (relay restart, network, no pong within `heartbeat_s / 2`
    of a ping, nothing at all for `idle_timeout_s`), it reconnects after a delay from
    `backoff` (by default full jitter: random up to 0.5 s doubling to 20 s, short again
    once a connection is made) and carries on; with reconnect=False it returns instead.
    A handshake refused with a Retry-After (a 503 at the relay's connection limit, a 429)
    waits at least that long (at most MAX_RETRY_AFTER_S) before the next try.
    With `resume` (the default) it asks for history ids (`ids=1`) and reconnects with
    `since=`, so what was published meanwhile is replayed from the relay's history: each
    bot message arrives once and in order, and where the history does not reach back the
    relay's `bot:gap` message is yielded like any other envelope (each gap once).
    Envelopes then carry `id` and `bot` too. `token` is sent as `Authorization: Bearer
    <token>`. A handshake the relay refuses with a 4xx (a bad token, an origin, a query;
    not 408 or 429) raises HandshakeRefused, and a close for an expired token (4003)
    raises ClosedByRelay: trying again would only repeat them. `on_disconnect` hears of
    every failed or lost connection (instead of the warning logged by default).
    """
    async for _, envelope in received_envelopes(
        url,
        reconnect=reconnect,
        resume=resume,
        backoff=backoff,
        heartbeat_s=heartbeat_s,
        idle_timeout_s=idle_timeout_s,
        token=token,
        on_disconnect=on_disconnect,
    ):
        yield envelope


def _skipped(url: str, why: str, frame: bytes) -> None:
    shown = excerpt(frame)
    log.warning(
        "skipped a frame from %s: %s; frame: %s",
        url,
        why,
        shown,
        extra={"event": "frame_skipped", "reason": why, "excerpt": shown},
    )


# Valid JSON has these only inside strings (where an escape means the same) and line
# breaks only between tokens (where a space does): one line, nothing for a terminal.
_JSON_LINE_BREAKS: Final = re.compile("[\r\n]+")
_JSON_UNSAFE: Final = re.compile("[\x7f-\x9f\u2028\u2029]")


def one_line_json(text: str) -> str:
    """A frame's valid JSON text on one line and inert in a terminal, meaning the same."""
    text = _JSON_LINE_BREAKS.sub(" ", text)
    return _JSON_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


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
        """The bot's message inside the envelope (empty if the envelope has none)."""
        data = self.envelope.get("data")
        return data if isinstance(data, dict) else {}

    @property
    def bot_to_relay_ms(self) -> float | None:
        """Milliseconds from the bot's timestamp to the relay's (Redis included); None when
        either timestamp is missing."""
        bot, relay = _number(self.data.get("timestamp")), _number(self.envelope.get("timestamp"))
        return None if bot is None or relay is None else relay - bot

    @property
    def relay_to_client_ms(self) -> float | None:
        """Milliseconds from the relay's timestamp to this client's receipt; None without the
        relay's timestamp."""
        relay = _number(self.envelope.get("timestamp"))
        return None if relay is None else self.received_ms - relay

    @property
    def total_ms(self) -> float | None:
        """Milliseconds from the bot's timestamp to this client's receipt; None without the
        bot's timestamp."""
        bot = _number(self.data.get("timestamp"))
        return None if bot is None else self.received_ms - bot


async def heartbeats(
    url: str = DEFAULT_RELAY_URL,
    *,
    reconnect: bool = True,
    backoff: Backoff | None = None,
    clock_ms: Callable[[], float] = lambda: time.time_ns() / 1e6,
    token: str | None = None,
) -> AsyncIterator[Heartbeat]:
    """Like `envelopes`, but only bot:pingpong messages, each stamped on receipt; no resume,
    so that each arrives as soon as the relay has it (the split of the delay is the point)."""
    received = envelopes(url, reconnect=reconnect, resume=False, backoff=backoff, token=token)
    async for envelope in received:
        if envelope.get("type") == ENVELOPE_TYPE:
            yield Heartbeat(envelope, clock_ms())


def describe(envelope: dict[str, Any]) -> str:
    """One human line for an envelope, as the design's client examples print it.

    Never raises, whatever the envelope holds, and the line is safe for a terminal.
    """
    if envelope.get("type") != ENVELOPE_TYPE or not isinstance(envelope.get("data"), dict):
        try:
            shown = orjson.dumps(envelope).decode()
        except orjson.JSONEncodeError as exc:  # nested past what orjson writes, say
            shown = f"(not shown: {exc})"
        return f"{_text(envelope.get('type'))}: {one_line_json(shown)}"
    data = envelope["data"]
    kind = _text(data.get("type")).upper()
    latency = format_latency(_number(data.get("latency")))
    bot_time = format_bot_time(_number(data.get("timestamp")))
    relay_time = format_bot_time(_number(envelope.get("timestamp")))
    return f"{kind} latency {latency} bot time {bot_time} relay time {relay_time}"


def _text(value: object) -> str:
    # str() of a deeply nested list would recurse past the interpreter's limit.
    return escape_controls(value) if isinstance(value, str) else "?"


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
