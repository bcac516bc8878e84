"""/api/mutes: create, list and expire mutes (the guard has checked who may)."""

from __future__ import annotations

import secrets
import time

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from pingpong_relay.http.contract import ContractError, check_body
from pingpong_relay.http.responses import error, json_response, where_from
from pingpong_relay.http.state import STATE, granted, operation
from pingpong_relay.mutes import MuteError, mute_from_body, split_mutes
from pingpong_relay.redis_io.mutes import MuteStore

__all__ = ["add_mute", "expire_mute", "list_mutes"]

_MAX_BODY_BYTES = 64 * 1024


def _store(request: web.Request) -> MuteStore | web.Response:
    store = request.app[STATE].mutes
    if store is None:
        return error(404, "no_mutes", "this plane has no mute store")
    return store


def _unavailable(request: web.Request, exc: Exception) -> web.Response:
    request.app[STATE].access.refused("redis", f"{where_from(request)}: {exc}")
    return error(503, "redis_unavailable", f"the mute store is unavailable: {exc}")


async def add_mute(request: web.Request) -> web.Response:
    """POST: a mute from the JSON body; 201 with its id, 400 naming a field at fault."""
    store = _store(request)
    if isinstance(store, web.Response):
        return store
    access = request.app[STATE].access
    raw = await request.content.read(_MAX_BODY_BYTES + 1)
    try:
        if len(raw) > _MAX_BODY_BYTES:
            raise MuteError("body", f"is larger than {_MAX_BODY_BYTES} bytes")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise MuteError("body", "is not JSON") from None
        try:
            check_body(operation(request), body)
        except ContractError as exc:
            raise MuteError(exc.name, exc.message.removeprefix(f"{exc.name}: ")) from None
        grant = granted(request)
        mute = mute_from_body(
            body,
            mute_id=secrets.token_hex(8),
            now_s=time.time(),
            created_by=grant.subject if grant is not None else "loopback",
        )
    except MuteError as exc:
        access.refused("bad_mute", f"{where_from(request)}: {exc}")
        body = {"error": "bad_mute", "message": str(exc), "field": exc.field}
        return json_response(body, 400)
    try:
        await store.add(mute)
    except (RedisError, OSError) as exc:
        return _unavailable(request, exc)
    return json_response({"id": mute.id, "mute": mute.to_json()}, 201)


async def list_mutes(request: web.Request) -> web.Response:
    """GET: the mutes in force and those scheduled, read from Redis now."""
    store = _store(request)
    if isinstance(store, web.Response):
        return store
    try:
        mutes = await store.load()
    except (RedisError, OSError) as exc:
        return _unavailable(request, exc)
    active, scheduled = split_mutes(mutes, time.time())
    return json_response(
        {"active": [m.to_json() for m in active], "scheduled": [m.to_json() for m in scheduled]}
    )


async def expire_mute(request: web.Request) -> web.Response:
    """DELETE /api/mutes/<id>: ends a mute now; 404 for one that is not stored."""
    store = _store(request)
    if isinstance(store, web.Response):
        return store
    mute_id = request.match_info["id"]
    try:
        removed = await store.expire(mute_id)
    except (RedisError, OSError) as exc:
        return _unavailable(request, exc)
    if not removed:
        return error(404, "unknown_mute", f"no mute {mute_id[:100]!r} is in force or scheduled")
    return json_response({"id": mute_id, "expired": True})
