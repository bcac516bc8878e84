"""/analytics: one bot's availability, outages and latency over a window, from the rollups."""

from __future__ import annotations

from aiohttp import web

from pingpong_relay.http.responses import error, json_response, unknown_bot
from pingpong_relay.http.state import STATE, known, params, visible

__all__ = ["analytics"]


async def analytics(request: web.Request) -> web.Response:
    """/analytics?bot=ID&window=24h; 404 when history is off, or for a bot neither this
    relay nor the history knows."""
    state = request.app[STATE]
    if state.rollups is None:
        return error(404, "history_off", "history is off (--history-retention 0)")
    query = params(request)  # checked by the contract: a known window, a bot named
    window, bot = query["window"], query["bot"]
    if not visible(request, bot) or not await known(state, bot):
        return unknown_bot(request, bot)
    return json_response(await state.rollups.analytics(bot, window, state.silence_ms))
