"""/stats and /bots: latency statistics and bot statuses, limited to the bots a token covers."""

from __future__ import annotations

from aiohttp import web

from pingpong_relay.http.responses import large_json, unknown_bot
from pingpong_relay.http.state import STATE, params, scoped, visible

__all__ = ["bots", "stats"]


async def stats(request: web.Request) -> web.Response:
    """Statistics over ?window= (default 5m), of every bot or of ?bot= (the contract has
    checked both)."""
    query = params(request)
    window, bot = query["window"], query.get("bot")
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
