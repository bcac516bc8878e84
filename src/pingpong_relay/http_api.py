"""The HTTP plane (aiohttp): health and Prometheus metrics for people and scrapers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

HealthProbe = Callable[[], tuple[bool, dict[str, Any]]]


def build_app(health: HealthProbe, render_metrics: Callable[[], bytes]) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        ok, body = health()
        return web.json_response(body, status=200 if ok else 503)

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=render_metrics(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
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
