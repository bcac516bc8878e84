"""/healthz: the relay's health, its public part for anyone, all of it for the operator."""

from __future__ import annotations

from aiohttp import web

from pingpong_relay.health import public_health
from pingpong_relay.http.guard import wants_detail
from pingpong_relay.http.responses import json_response
from pingpong_relay.http.state import STATE

__all__ = ["healthz"]


async def healthz(request: web.Request) -> web.Response:
    """200 when the relay is healthy, 503 when not; ?detail=1 (the guard checks the
    operator's credential) gives the whole body."""
    ok, body = await request.app[STATE].health()
    if not wants_detail(request.query):
        body = public_health(ok, body)
    return json_response(body, 200 if ok else 503)
