"""/history: pages of recorded messages, as JSON with a cursor or as spreadsheet-safe CSV."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any, Final

import orjson
from aiohttp import web

from pingpong_relay.http.guard import csv_cell
from pingpong_relay.http.responses import built_json, error, unknown_bot
from pingpong_relay.http.state import STATE, known, params, scoped, visible
from pingpong_relay.replay import Entry
from pingpong_relay.subscriptions import parse_position

__all__ = ["CSV_COLUMNS", "csv_page", "history_page"]

CSV_COLUMNS: Final = ("id", "bot", "channel", "relay_ms", "type", "latency", "timestamp", "source")


async def history_page(request: web.Request) -> web.Response:
    """/history?bot=&since=&until=&after=&limit=&format=csv; 404 when history is off, or
    for a bot neither this relay nor the history knows."""
    history = request.app[STATE].history
    if history is None:
        return error(404, "history_off", "history is off (--history-retention 0)")
    query = params(request)  # checked by the contract: positions, limit, format
    limit: int = query["limit"]
    start = parse_position(query["since"], end=False) if "since" in query else "-"
    end = parse_position(query["until"], end=True) if "until" in query else "+"
    if "after" in query:  # the cursor of the previous page: exclusive
        start = "(" + parse_position(query["after"], end=False)
    bot = query.get("bot")
    if bot is not None and not visible(request, bot):
        return unknown_bot(request, bot)
    if bot:
        entries = await history.read(bot, start, end, limit + 1)
        # Only an empty page costs the question whether the bot exists at all.
        if not entries and not await known(request.app[STATE], bot):
            return unknown_bot(request, bot)
    else:
        # Filtered before the limit: a scoped page is full of the bots it may see,
        # and the streams of the others are not even read.
        only = (lambda b: visible(request, b)) if scoped(request) else None
        entries = await history.read_all(start, end, limit + 1, only)
    page, more = entries[:limit], len(entries) > limit
    cursor = page[-1].id if more and page else None
    if query["format"] == "csv":
        return web.Response(
            text=await asyncio.to_thread(csv_page, page),
            content_type="text/csv",
            headers={"X-Next-After": cursor} if cursor else None,
        )
    return await built_json(lambda: _page_body(bot, page, cursor))


def _page_body(bot: str | None, page: list[Entry], cursor: str | None) -> dict[str, Any]:
    return {"bot": bot, "items": [e.to_json() for e in page], "next_after": cursor}


def csv_page(entries: list[Entry]) -> str:
    """The page as CSV; any text cell a spreadsheet would take for a formula is defused
    (bot ids, channel names and sources come from whoever can publish to Redis)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        data = orjson.loads(entry.raw)
        row = (
            entry.id,
            entry.bot,
            entry.channel,
            entry.relay_ms,
            data.get("type"),
            data.get("latency", ""),
            data.get("timestamp", ""),
            data.get("source", ""),
        )
        writer.writerow([csv_cell(value) for value in row])
    return out.getvalue()
