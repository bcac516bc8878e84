"""/stats and /bots: latency statistics and bot statuses, limited to the bots a token covers."""

from __future__ import annotations

from aiohttp import web

from pingpong_relay.defaults import WINDOWS
from pingpong_relay.http.responses import error, large_json, unknown_bot
from pingpong_relay.http.state import STATE, scoped, visible

__all__ = ["bots", "stats"]


async def stats(request: web.Request) -> web.Response:
    """Statistics over ?window= (default 5m), of every bot or of ?bot=."""
    window = request.query.get("window", "5m")
    if window not in WINDOWS:
        return error(400, "bad_window", f"window must be one of {', '.join(WINDOWS)}")
    bot = request.query.get("bot") or None
    if bot is not None and not visible(request, bot):
        return unknown_bot(request, bot)
    try:
        body = request.app[STATE].monitor.stats(window, bot)
    except KeyError:
        return unknown_bot(request, bot)
    if scoped(request):
        body["bots"] = {b: s for b, s in body["bots"].items() if visible(request, b)}
        body["overall"] = None  # it would include bots the token does not cover
    return await large_json(body)


async def bots(request: web.Request) -> web.Response:
    """Every bot's current status and when it last changed."""
    statuses = request.app[STATE].monitor.statuses()
    return await large_json({"bots": {b: s for b, s in statuses.items() if visible(request, b)}})
