"""The HTTP plane's application (aiohttp): health, metrics, statistics, statuses and alerts."""

from __future__ import annotations

import asyncio
import csv
import fnmatch
import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import orjson
from aiohttp import hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST

from pingpong_relay.asyncapi import asyncapi
from pingpong_relay.auth import Authenticator, AuthError, Grant
from pingpong_relay.defaults import WINDOWS
from pingpong_relay.health import public_health
from pingpong_relay.http.guard import (
    bearer_matches,
    csv_cell,
    security_headers,
    wants_detail,
)
from pingpong_relay.messages import excerpt
from pingpong_relay.monitor import Monitor
from pingpong_relay.origins import HostPolicy
from pingpong_relay.redis_io.history import MAX_PAGE, History
from pingpong_relay.redis_io.rollup_store import RollupStore
from pingpong_relay.replay import Entry
from pingpong_relay.rollups import ANALYTICS_WINDOWS
from pingpong_relay.subscriptions import CommandError, parse_position

HEADERS_KEY: Final = web.AppKey("security_headers", dict[str, str])


def _encode(body: Any) -> bytes:
    return orjson.dumps(body)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encode(body), status=status, content_type="application/json")


async def _large_json(body: Any) -> web.Response:
    """A body that may be large (every bot, a page of history), encoded off the event loop."""
    data = await asyncio.to_thread(_encode, body)
    return web.Response(body=data, content_type="application/json")


def _error(status: int, code: str, message: str) -> web.Response:
    return _json({"error": code, "message": message}, status)


def _unauthorized(code: str, message: str) -> web.Response:
    response = _error(401, code, message)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


# Which event scope of a token each data endpoint belongs to.
ENDPOINT_EVENTS = {
    "/stats": "stats",
    "/alerts": "alerts",
    "/bots": "status",
    "/history": "pingpong",
    "/analytics": "pingpong",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# The dashboard: static files, no build step, nothing fetched from outside the relay.
DASHBOARD_DIR = Path(__file__).parent / "dashboard"
# Paths that carry no bot data, open whatever the auth mode: the page asks for a token.
OPEN_PATHS = frozenset({"/", "/healthz", "/dashboard/config.json", "/asyncapi.json"})


def _scoped(request: web.Request) -> bool:
    grant: Grant | None = request.get("grant")
    return grant is not None and grant.bots is not None


def _visible(request: web.Request, bot: str) -> bool:
    """Whether the request's token (if any) covers this bot."""
    grant: Grant | None = request.get("grant")
    if grant is None or grant.bots is None:
        return True
    return any(fnmatch.fnmatchcase(bot, pattern) for pattern in grant.bots)


def _unknown_bot(bot: str | None) -> web.Response:
    # The same answer for a bot that does not exist and one the token does not cover.
    return _error(404, "unknown_bot", f"no messages from bot {bot!r} yet")


def build_app(
    health: Callable[[], Awaitable[tuple[bool, dict[str, Any]]]],
    render_metrics: Callable[[], Awaitable[bytes]],
    monitor: Monitor,
    history: History | None = None,
    rollups: RollupStore | None = None,
    *,
    silence_ms: int = 30_000,
    authenticate: Authenticator | None = None,
    metrics_token: str = "",
    dashboard_config: Callable[[], dict[str, Any]] = dict,
    hosts: HostPolicy | None = None,
    frame_ancestors: str = "'none'",
    refused: Callable[[str, str], None] = lambda _reason, _detail: None,
) -> web.Application:
    """The HTTP plane's routes. `health` gives the detailed body (the operator's view);
    anyone gets only its public part. `hosts` (None: no check) says which Host headers
    name the relay; `refused(reason, detail)` is told of every request refused for one."""

    def host_refusal(request: web.Request) -> web.Response | None:
        """421 for a Host that does not name the relay: a page on a rebound DNS name must
        not read the relay with the visitor's network position (DNS rebinding)."""
        if hosts is None:
            return None
        values = request.headers.getall(hdrs.HOST, [])
        if not values:
            return None  # HTTP/1.0 probes; no browser leaves it out, so no rebinding either
        transport = request.transport
        sockname = transport.get_extra_info("sockname") if transport is not None else None
        local_ip = str(sockname[0]) if sockname else ""
        if len(values) == 1 and hosts.host_allowed(values[0], local_ip):
            return None
        refused("host", f"Host {excerpt(', '.join(values).encode(), 100)}")
        return _error(
            421,
            "unknown_host",
            "the Host header does not name this relay (an operator can add it with --allowed-host)",
        )

    def operator_refusal(request: web.Request) -> web.Response | None:
        """/metrics and /healthz?detail=1: open on an anonymous relay without
        --metrics-token; otherwise that token, or (--auth jwt) a token with the metrics scope."""
        if not metrics_token and authenticate is None:
            return None
        authorization = request.headers.get(hdrs.AUTHORIZATION, "")
        if metrics_token and bearer_matches(authorization, metrics_token):
            return None
        if authenticate is not None and authorization.isascii():
            try:
                grant, _ = authenticate(request.headers, request.query_string)
            except AuthError:
                grant = None
            if grant is not None and grant.metrics:
                return None
        return _unauthorized(
            "unauthorized",
            "needs the --metrics-token bearer token"
            + (" or a token with the metrics scope" if authenticate is not None else ""),
        )

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Host first; then data endpoints need a token when auth is on, /metrics and the
        detailed health the operator's credential, the rest (no bot data) nothing."""
        refusal = host_refusal(request)
        if refusal is not None:
            return refusal
        path = request.path
        if path == "/metrics" or (path == "/healthz" and wants_detail(request.query)):
            return operator_refusal(request) or await handler(request)
        if path in OPEN_PATHS or path.startswith("/dashboard/"):
            return await handler(request)
        if authenticate is not None:
            if not request.headers.get(hdrs.AUTHORIZATION, "").isascii():
                # A token is ASCII; anything else is refused here, not deep in a decoder.
                return _unauthorized("malformed", "Authorization must be 'Bearer <token>'")
            try:
                grant, _ = authenticate(request.headers, request.query_string)
            except AuthError as refused_token:
                return _unauthorized(refused_token.reason, refused_token.message)
            event = ENDPOINT_EVENTS.get(request.path)
            if grant is not None and grant.events is not None and event not in grant.events:
                return _error(403, "forbidden", f"the token does not grant {event!r}")
            request["grant"] = grant
        return await handler(request)

    async def healthz(request: web.Request) -> web.Response:
        ok, body = await health()
        if not wants_detail(request.query):
            body = public_health(ok, body)
        return _json(body, 200 if ok else 503)

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(
            body=await render_metrics(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def stats(request: web.Request) -> web.Response:
        window = request.query.get("window", "5m")
        if window not in WINDOWS:
            return _error(400, "bad_window", f"window must be one of {', '.join(WINDOWS)}")
        bot = request.query.get("bot") or None
        if bot is not None and not _visible(request, bot):
            return _unknown_bot(bot)
        try:
            body = monitor.stats(window, bot)
        except KeyError:
            return _unknown_bot(bot)
        if _scoped(request):
            body["bots"] = {b: s for b, s in body["bots"].items() if _visible(request, b)}
            body["overall"] = None  # it would include bots the token does not cover
        return await _large_json(body)

    async def alerts(request: web.Request) -> web.Response:
        body = monitor.alerts()
        return await _large_json(
            {k: [a for a in v if _visible(request, a["bot"])] for k, v in body.items()}
        )

    async def bots(request: web.Request) -> web.Response:
        statuses = monitor.statuses()
        return await _large_json(
            {"bots": {b: s for b, s in statuses.items() if _visible(request, b)}}
        )

    async def history_page(request: web.Request) -> web.Response:
        if history is None:
            return _error(404, "history_off", "history is off (--history-retention 0)")
        query = request.query
        try:
            limit = int(query.get("limit", "1000"))
            if not 1 <= limit <= MAX_PAGE:
                raise ValueError
        except ValueError:
            return _error(400, "bad_limit", f"limit must be a whole number from 1 to {MAX_PAGE}")
        try:
            start = parse_position(query["since"], end=False) if "since" in query else "-"
            end = parse_position(query["until"], end=True) if "until" in query else "+"
            if "after" in query:  # the cursor of the previous page: exclusive
                start = "(" + parse_position(query["after"], end=False)
        except CommandError as exc:
            return _error(400, "bad_position", exc.message)
        bot = query.get("bot") or None
        if bot is not None and not _visible(request, bot):
            return _unknown_bot(bot)
        if bot:
            entries = await history.read(bot, start, end, limit + 1)
        else:
            # Filtered before the limit: a scoped page is full of the bots it may see,
            # and the streams of the others are not even read.
            visible = (lambda b: _visible(request, b)) if _scoped(request) else None
            entries = await history.read_all(start, end, limit + 1, visible)
        page, more = entries[:limit], len(entries) > limit
        cursor = page[-1].id if more and page else None
        if query.get("format") == "csv":
            return web.Response(
                text=await asyncio.to_thread(_csv, page),
                content_type="text/csv",
                headers={"X-Next-After": cursor} if cursor else None,
            )
        body = await asyncio.to_thread(_history_json, bot, page, cursor)
        return web.Response(body=body, content_type="application/json")

    async def analytics(request: web.Request) -> web.Response:
        if rollups is None:
            return _error(404, "history_off", "history is off (--history-retention 0)")
        window = request.query.get("window", "24h")
        if window not in ANALYTICS_WINDOWS:
            return _error(
                400, "bad_window", f"window must be one of {', '.join(ANALYTICS_WINDOWS)}"
            )
        bot = request.query.get("bot")
        if not bot:
            return _error(400, "bot_required", "name the bot: /analytics?bot=ID&window=…")
        if not _visible(request, bot):
            return _unknown_bot(bot)
        return _json(await rollups.analytics(bot, window, silence_ms))

    async def dashboard(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(DASHBOARD_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    async def dashboard_settings(_request: web.Request) -> web.Response:
        return _json(dashboard_config())

    document = orjson.dumps(asyncapi())  # built once: it only changes with the code

    async def asyncapi_document(_request: web.Request) -> web.Response:
        return web.Response(body=document, content_type="application/json")

    headers = security_headers(frame_ancestors)

    async def add_headers(_request: web.Request, response: web.StreamResponse) -> None:
        # Every response the app prepares: pages, static files, API answers, errors.
        response.headers.update(headers)

    app = web.Application(middlewares=[guard])
    app[HEADERS_KEY] = headers
    app.on_response_prepare.append(add_headers)
    app.router.add_get("/asyncapi.json", asyncapi_document)
    app.router.add_get("/", dashboard)
    app.router.add_get("/dashboard/config.json", dashboard_settings)
    app.router.add_static("/dashboard/", DASHBOARD_DIR, append_version=False)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/stats", stats)
    app.router.add_get("/alerts", alerts)
    app.router.add_get("/bots", bots)
    app.router.add_get("/history", history_page)
    app.router.add_get("/analytics", analytics)
    return app


CSV_COLUMNS = ("id", "bot", "channel", "relay_ms", "type", "latency", "timestamp", "source")


def _history_json(bot: str | None, page: list[Entry], cursor: str | None) -> bytes:
    return _encode({"bot": bot, "items": [e.to_json() for e in page], "next_after": cursor})


def _csv(entries: list[Entry]) -> str:
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
