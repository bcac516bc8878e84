"""The HTTP plane (aiohttp): health, metrics, statistics, statuses and alerts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from .monitor import Monitor
from .stats import WINDOWS

HealthProbe = Callable[[], tuple[bool, dict[str, Any]]]


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _error(status: int, code: str, message: str) -> web.Response:
    return _json({"error": code, "message": message}, status)


def build_app(
    health: HealthProbe, render_metrics: Callable[[], bytes], monitor: Monitor
) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        ok, body = health()
        return _json(body, 200 if ok else 503)

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=render_metrics(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def stats(request: web.Request) -> web.Response:
        window = request.query.get("window", "5m")
        if window not in WINDOWS:
            return _error(400, "bad_window", f"window must be one of {', '.join(WINDOWS)}")
        bot = request.query.get("bot") or None
        try:
            return _json(monitor.stats(window, bot))
        except KeyError:
            return _error(404, "unknown_bot", f"no messages from bot {bot!r} yet")

    async def alerts(_request: web.Request) -> web.Response:
        return _json(monitor.alerts())

    async def bots(_request: web.Request) -> web.Response:
        return _json({"bots": monitor.statuses()})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/stats", stats)
    app.router.add_get("/alerts", alerts)
    app.router.add_get("/bots", bots)
    return app


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

    async def start(self, host: str, port: int) -> None:
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await self._site.start()

    async def stop(self) -> None:
        await self._runner.cleanup()
