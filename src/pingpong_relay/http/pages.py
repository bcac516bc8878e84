"""The dashboard (page, settings, static assets) and the two API documents: no bot data."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aiohttp import web

from pingpong_relay.http.responses import error, json_response
from pingpong_relay.http.state import STATE

__all__ = [
    "DASHBOARD_DIR",
    "asyncapi_document",
    "dashboard",
    "dashboard_file",
    "dashboard_settings",
    "openapi_json",
]

# The dashboard: static files, no build step, nothing fetched from outside the relay.
DASHBOARD_DIR: Final = Path(__file__).parent / "dashboard"
_ROOT: Final = DASHBOARD_DIR.resolve()


async def dashboard(_request: web.Request) -> web.FileResponse:
    """/: the dashboard page, revalidated on every load so an upgrade shows at once."""
    return web.FileResponse(DASHBOARD_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def dashboard_file(request: web.Request) -> web.StreamResponse:
    """/dashboard/<file>: the page's scripts, styles and vendored client; a 404 in the
    plane's error shape for anything else (nothing outside the dashboard's folder)."""
    name = request.match_info["file"]
    try:
        path = (DASHBOARD_DIR / name).resolve()
        found = path.is_relative_to(_ROOT) and path.is_file()
    except (OSError, ValueError):  # a NUL byte, a name too long
        found = False
    if not found:
        return error(404, "not_found", "no such dashboard file")
    return web.FileResponse(path)


async def dashboard_settings(request: web.Request) -> web.Response:
    """/dashboard/config.json: where the data plane is and what the page may ask."""
    return json_response(request.app[STATE].dashboard_config())


async def asyncapi_document(request: web.Request) -> web.Response:
    """/asyncapi.json: the data plane's protocol as an AsyncAPI document."""
    return web.Response(body=request.app[STATE].asyncapi_document, content_type="application/json")


async def openapi_json(request: web.Request) -> web.Response:
    """/openapi.json: the HTTP plane's contract, as this relay is configured (auth, tokens)."""
    return web.Response(body=request.app[STATE].openapi_document, content_type="application/json")
