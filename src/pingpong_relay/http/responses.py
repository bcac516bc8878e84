"""The HTTP plane's JSON answers and error bodies; large bodies are encoded off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from pingpong_relay.auth import AuthError
from pingpong_relay.http.state import STATE
from pingpong_relay.ingest import redact_push_path
from pingpong_relay.messages import excerpt

__all__ = [
    "built_json",
    "encode",
    "error",
    "json_response",
    "large_json",
    "unauthorized",
    "unknown_bot",
    "where_from",
]


def encode(body: Any) -> bytes:
    """The JSON bytes of a body; every JSON answer of the plane is encoded here."""
    return orjson.dumps(body)


def json_response(body: Any, status: int = 200) -> web.Response:
    """A small JSON body, encoded on the event loop."""
    return web.Response(body=encode(body), status=status, content_type="application/json")


async def large_json(body: Any) -> web.Response:
    """A body that may be large (every bot, a page of history), encoded off the event loop."""
    data = await asyncio.to_thread(encode, body)
    return web.Response(body=data, content_type="application/json")


async def built_json(build: Callable[[], Any]) -> web.Response:
    """A body that is costly to build as well as to encode (a page of history entries):
    `build` runs off the event loop, and its result is encoded there too."""
    data = await asyncio.to_thread(lambda: encode(build()))
    return web.Response(body=data, content_type="application/json")


def error(status: int, code: str, message: str) -> web.Response:
    """The plane's error body: `{"error": code, "message": message}`."""
    return json_response({"error": code, "message": message}, status)


def unauthorized(refused: AuthError) -> web.Response:
    """401 with the challenge that says a bearer token is wanted; the body is the one the
    WebSocket upgrade answers with (`AuthError.body`)."""
    response = json_response(refused.body(), 401)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def where_from(request: web.Request) -> str:
    """What a refusal's log line says of the request: its method and path (never the query,
    which may hold a token) and the caller's address."""
    return f"{request.method} {redact_push_path(request.path)} from {request.remote or '?'}"


def unknown_bot(request: web.Request, bot: str | None) -> web.Response:
    """404 for a bot (counted and logged as a refusal): the same answer for one that does
    not exist and one the token does not cover."""
    shown = excerpt(str(bot).encode(), 100)
    request.app[STATE].access.refused("unknown_bot", f"{where_from(request)} for bot {shown}")
    return error(404, "unknown_bot", f"no messages from bot {bot!r} yet")
