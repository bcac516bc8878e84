"""/metrics: the Prometheus exposition, for the operator's credential (checked by the guard)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from pingpong_relay.http.state import STATE

__all__ = ["metrics"]


async def metrics(request: web.Request) -> web.Response:
    """The relay's metrics (every worker's, when there are several) in the text format."""
    body = await request.app[STATE].render_metrics()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
