"""/badge.svg, /badge.json, /status and /status.json: what the relay shows of bots publicly."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web

from pingpong_relay.badges import Badge, bot_badge
from pingpong_relay.http.responses import error, json_response, unknown_bot
from pingpong_relay.http.state import STATE, PlaneState, params, visible
from pingpong_relay.public_status import (
    STATUS_WINDOWS,
    is_public,
    public_bot_entry,
    status_body,
    status_html,
)

__all__ = [
    "BADGE_CACHE_CONTROL",
    "PUBLIC",
    "PublicStatus",
    "badge_json",
    "badge_svg",
    "status_json",
    "status_page",
]

# Badges are fetched through caches (GitHub's camo among them): short enough that a
# README shows a bot going down within a minute, long enough to spare the relay.
BADGE_CACHE_CONTROL: Final = "max-age=30"
_LATENCY_WINDOW: Final = "1m"  # "current latency" is the median of the last minute


@dataclass(slots=True)
class PublicStatus:
    """The --public-bots patterns and the last status body built for them: the page is open
    to anyone, so its Redis reads (three windows per bot) happen at most once per `max_age_s`."""

    patterns: tuple[str, ...]
    max_age_s: float = 10.0
    _body: dict[str, Any] | None = None
    _built_at_s: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def covers(self, bot: str) -> bool:
        """Whether `bot` is public."""
        return is_public(bot, self.patterns)

    async def body(self, state: PlaneState) -> dict[str, Any]:
        """The /status.json body, rebuilt when older than `max_age_s`."""
        async with self._lock:  # one rebuild for a burst of visitors
            if self._body is None or time.monotonic() - self._built_at_s > self.max_age_s:
                self._body = await self._build(state)
                self._built_at_s = time.monotonic()
            return self._body

    async def _build(self, state: PlaneState) -> dict[str, Any]:
        rollups = state.rollups
        now_ms = await rollups.now_ms() if rollups is not None else round(time.time() * 1000)
        entries = []
        for bot, status in state.monitor.statuses().items():
            if not self.covers(bot):
                continue
            analytics = {
                window: (
                    await rollups.analytics(bot, window, state.silence_ms)
                    if rollups is not None
                    else None
                )
                for window in STATUS_WINDOWS
            }
            entries.append(public_bot_entry(bot, status, _latency_ms(state, bot), analytics))
        return status_body(entries, now_ms)


PUBLIC: Final = web.AppKey("public_status", PublicStatus)


def _latency_ms(state: PlaneState, bot: str) -> float | None:
    try:
        summary = state.monitor.stats(_LATENCY_WINDOW, bot)["bots"][bot]
    except KeyError:
        return None
    p50: float | None = summary["latency_ms"].get("p50")
    return p50


def _badge(request: web.Request) -> tuple[str, Badge | None]:
    """The bot asked for and its badge; None when the asker may not know of the bot (the
    guard let a public bot through without a token, and checked the token for the rest)."""
    query = params(request)
    bot = query["bot"]
    if not visible(request, bot):
        return bot, None
    state = request.app[STATE]
    status = state.monitor.statuses().get(bot)
    if status is None:
        return bot, None
    return bot, bot_badge(bot, status["status"], _latency_ms(state, bot), query.get("label"))


def _cached(request: web.Request, badge: Badge, response: web.Response) -> web.Response:
    etag = badge.etag()
    if request.headers.get("If-None-Match") == etag:
        response = web.Response(status=304)
    response.headers["Cache-Control"] = BADGE_CACHE_CONTROL
    response.headers["ETag"] = etag
    return response


async def badge_svg(request: web.Request) -> web.Response:
    """/badge.svg?bot=ID[&label=TEXT]: a Shields-style badge. An unknown bot (or one the
    token does not cover) gets a grey "unknown" badge with 404, so a README shows a badge."""
    bot, badge = _badge(request)
    if badge is None:
        unknown_bot(request, bot)  # counted and logged as /badge.json's refusal is
        grey = bot_badge(bot, None, None, params(request).get("label"))
        response = web.Response(text=grey.svg(), status=404, content_type="image/svg+xml")
        response.headers["Cache-Control"] = "no-cache"
        return response
    svg = web.Response(text=badge.svg(), content_type="image/svg+xml")
    return _cached(request, badge, svg)


async def badge_json(request: web.Request) -> web.Response:
    """/badge.json?bot=ID[&label=TEXT]: the badge in the Shields.io endpoint schema; 404 in
    the plane's error shape for a bot unknown or not covered by the token."""
    bot, badge = _badge(request)
    if badge is None:
        return unknown_bot(request, bot)
    return _cached(request, badge, json_response(badge.shields()))


def _status_off() -> web.Response:
    return error(404, "status_off", "the public status page is off (no --public-bots)")


async def status_json(request: web.Request) -> web.Response:
    """/status.json: the public bots' state, availability and incidents; no token needed."""
    public = request.app[PUBLIC]
    if not public.patterns:
        return _status_off()
    response = json_response(await public.body(request.app[STATE]))
    response.headers["Cache-Control"] = "max-age=10"
    return response


async def status_page(request: web.Request) -> web.Response:
    """/status: the same as /status.json as a page readable without JavaScript."""
    public = request.app[PUBLIC]
    if not public.patterns:
        return _status_off()
    html = status_html(await public.body(request.app[STATE]))
    response = web.Response(text=html, content_type="text/html")
    response.headers["Cache-Control"] = "max-age=10"
    return response
