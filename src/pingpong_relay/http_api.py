"""The HTTP plane (aiohttp): health, metrics, statistics, statuses and alerts."""

from __future__ import annotations

import csv
import fnmatch
import hmac
import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from ssl import SSLContext
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from .auth import AuthError, Grant
from .dataplane import Authenticator
from .filters import CommandError, parse_position
from .history import MAX_PAGE, Entry, History
from .monitor import Monitor
from .protocol import asyncapi
from .rollup_store import RollupStore
from .rollups import ANALYTICS_WINDOWS
from .stats import WINDOWS


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _error(status: int, code: str, message: str) -> web.Response:
    return _json({"error": code, "message": message}, status)


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
) -> web.Application:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Data endpoints need a token when auth is on; /healthz never; /metrics its own."""
        if request.path in OPEN_PATHS or request.path.startswith("/dashboard/"):
            return await handler(request)
        if request.path == "/metrics":
            if metrics_token and not hmac.compare_digest(
                request.headers.get("Authorization", ""), f"Bearer {metrics_token}"
            ):
                return _error(401, "unauthorized", "/metrics needs its bearer token")
            return await handler(request)
        if authenticate is not None:
            try:
                grant, _ = authenticate(request.headers, request.query_string)
            except AuthError as refused:
                response = _error(401, refused.reason, refused.message)
                response.headers["WWW-Authenticate"] = "Bearer"
                return response
            event = ENDPOINT_EVENTS.get(request.path)
            if grant is not None and grant.events is not None and event not in grant.events:
                return _error(403, "forbidden", f"the token does not grant {event!r}")
            request["grant"] = grant
        return await handler(request)

    async def healthz(_request: web.Request) -> web.Response:
        ok, body = await health()
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
        return _json(body)

    async def alerts(request: web.Request) -> web.Response:
        body = monitor.alerts()
        return _json({k: [a for a in v if _visible(request, a["bot"])] for k, v in body.items()})

    async def bots(request: web.Request) -> web.Response:
        statuses = monitor.statuses()
        return _json({"bots": {b: s for b, s in statuses.items() if _visible(request, b)}})

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
        entries = await (
            history.read(bot, start, end, limit + 1)
            if bot
            else history.read_all(start, end, limit + 1)
        )
        entries = [e for e in entries if _visible(request, e.bot)]
        page, more = entries[:limit], len(entries) > limit
        cursor = page[-1].id if more and page else None
        if query.get("format") == "csv":
            return web.Response(
                text=_csv(page),
                content_type="text/csv",
                headers={"X-Next-After": cursor} if cursor else None,
            )
        return _json({"bot": bot, "items": [e.to_json() for e in page], "next_after": cursor})

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

    app = web.Application(middlewares=[guard])
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


def _csv(entries: list[Entry]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        data = orjson.loads(entry.raw)
        writer.writerow(
            (
                entry.id,
                entry.bot,
                entry.channel,
                entry.relay_ms,
                data.get("type"),
                data.get("latency", ""),
                data.get("timestamp", ""),
                data.get("source", ""),
            )
        )
    return out.getvalue()


class HttpPlane:
    def __init__(self, app: web.Application) -> None:
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        self._site: web.TCPSite | None = None

    @property
    def port(self) -> int:
        assert self._site is not None
        # uvloop's server is not an asyncio.Server, but both expose the bound sockets.
        sockets = getattr(self._site._server, "sockets", None)
        assert sockets
        return int(sockets[0].getsockname()[1])

    async def start(
        self, host: str, port: int, ssl: SSLContext | None = None, *, reuse_port: bool = False
    ) -> None:
        await self._runner.setup()
        self._site = web.TCPSite(
            self._runner,
            host,
            port,
            reuse_address=True,
            reuse_port=reuse_port or None,
            ssl_context=ssl,
        )
        await self._site.start()

    async def stop(self) -> None:
        await self._runner.cleanup()
