"""/analytics: one bot's availability, outages and latency over a window, from the rollups."""

from __future__ import annotations

from aiohttp import web

from pingpong_relay.http.responses import error, json_response, unknown_bot
from pingpong_relay.http.state import STATE, known, visible
from pingpong_relay.rollups import ANALYTICS_WINDOWS

__all__ = ["analytics"]


async def analytics(request: web.Request) -> web.Response:
    """/analytics?bot=ID&window=24h; 404 when history is off, or for a bot neither this
    relay nor the history knows."""
    state = request.app[STATE]
    if state.rollups is None:
        return error(404, "history_off", "history is off (--history-retention 0)")
    window = request.query.get("window", "24h")
    if window not in ANALYTICS_WINDOWS:
        return error(400, "bad_window", f"window must be one of {', '.join(ANALYTICS_WINDOWS)}")
    bot = request.query.get("bot")
    if not bot:
        return error(400, "bot_required", "name the bot: /analytics?bot=ID&window=…")
    if not visible(request, bot) or not await known(state, bot):
        return unknown_bot(request, bot)
    return json_response(await state.rollups.analytics(bot, window, state.silence_ms))
