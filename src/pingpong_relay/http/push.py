"""Push and ping URLs: `/api/push/<token>` as Uptime Kuma's push monitors take it, and
`/ping/<uuid>[/start|/fail|/<exit status>]` as Healthchecks' ping URLs. The token in the
path is the credential (the access guard lets these through); each request is limited per
address and per token, and what it reports goes to Redis through the inlet."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web
from redis.exceptions import RedisError

from pingpong_relay.http.contract import ContractError
from pingpong_relay.http.responses import json_response
from pingpong_relay.http.state import params
from pingpong_relay.ingest import (
    PING_PREFIX,
    PUSH_PREFIX,
    IngestError,
    Report,
    Via,
    healthchecks_report,
    kuma_report,
    redact_push_path,
    token_hash,
)
from pingpong_relay.ingestion.inlet import Inlet, Refused
from pingpong_relay.limits import BotRateLimiter
from pingpong_relay.origins import normalise_ip
from pingpong_relay.redis_io.push_tokens import PushTokens

__all__ = ["PUSH", "PushPlane", "add_push_routes", "push_contract_refusal"]

# A failed job's output may follow in the body; its first line is the reason.
MAX_BODY_BYTES: Final = 10_000


@dataclass(slots=True)
class PushPlane:
    """What the push and ping handlers need: the inlet, the tokens and the two limits."""

    inlet: Inlet
    tokens: PushTokens
    token_rate_per_s: float
    address_rate_per_s: float
    clock: Callable[[], float] = time.monotonic
    _by_token: BotRateLimiter = field(init=False)
    _by_address: BotRateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self._by_token = BotRateLimiter(self.token_rate_per_s)
        self._by_address = BotRateLimiter(self.address_rate_per_s)

    async def admit(self, request: web.Request, via: Via) -> tuple[str, str]:
        """(the token, the bot it pushes as) of a request that may push; Refused (with the
        status to answer) for an address or token over its rate or an unknown token."""
        token = request.match_info["token"]
        address = normalise_ip(request.remote) if request.remote else None
        now = self.clock()
        if not self._by_address.allow(address or "?", now):
            where = f"{request.method} {redact_push_path(request.path)} from {request.remote}"
            raise self.inlet.refuse(via, "address_rate", f"{where}: over --push-address-rate")
        try:
            bot = await self.tokens.bot_for(token)
        except (RedisError, OSError) as exc:
            raise self.inlet.refuse(
                via, "redis_unavailable", f"push tokens could not be read: {exc}"
            ) from None
        if bot is None:
            raise self.inlet.refuse(
                via,
                "unknown_token",
                f"no such push token (never issued, or revoked); from {request.remote}",
            )
        if not self._by_token.allow(token_hash(token), now):
            raise self.inlet.refuse(via, "token_rate", f"bot {bot}: over --push-rate")
        return token, bot


PUSH: Final = web.AppKey("push", PushPlane)


def _refusal(refused: Refused, via: Via, **extra: str) -> web.Response:
    """The shared error shape; Uptime Kuma's clients also read `ok` and `msg`."""
    body: dict[str, Any] = {"error": refused.reason, "message": str(refused), **extra}
    if via == "push":
        body = {"ok": False, "msg": str(refused), **body}
    response = json_response(body, refused.status)
    if refused.status == 429:
        response.headers["Retry-After"] = "1"
    return response


async def _report(plane: PushPlane, bot: str, report: Report, via: Via) -> web.Response | None:
    """Publishes a report; the refusal's answer when the inlet does not take it."""
    try:
        await plane.inlet.report(bot, report, via)
    except Refused as refused:
        return _refusal(refused, via)
    return None


def _via(request: web.Request) -> Via:
    return "push" if request.path.startswith(PUSH_PREFIX) else "healthchecks"


def _plane(request: web.Request) -> PushPlane:
    """The push plane; Refused (404, push_off) on a relay that serves none."""
    plane = request.app.get(PUSH)
    if plane is None:
        raise Refused("push_off", "this relay serves no push or ping URLs (no Redis to push to)")
    return plane


def push_contract_refusal(request: web.Request, refused: ContractError) -> web.Response:
    """A push or ping request the contract refuses: 400 in the push shape, counted by the
    inlet as malformed (the detail names the parameter, never the token's value)."""
    via = _via(request)
    message = refused.message
    try:
        answer = _plane(request).inlet.refuse(via, "malformed", message)
    except Refused as off:
        answer = off
    return _refusal(answer, via, parameter=refused.name)


async def kuma_push(request: web.Request) -> web.Response:
    """GET or POST /api/push/<token>?status=up|down&msg=…&ping=<ms>: `{"ok": true}`."""
    try:
        plane = _plane(request)
        _, bot = await plane.admit(request, "push")
        try:
            report = kuma_report(params(request))  # as the contract checked them
        except IngestError as exc:
            raise plane.inlet.refuse("push", "malformed", str(exc)) from None
    except Refused as refused:
        return _refusal(refused, "push")
    return await _report(plane, bot, report, "push") or json_response({"ok": True})


async def healthchecks_ping(request: web.Request) -> web.Response:
    """GET, HEAD or POST /ping/<uuid>[/start|/fail|/<exit status>]: "OK". A `start` opens a
    run (shared by every relay through Redis); the next success or failure reports its
    duration. A POST body's first line is a failure's reason."""
    signal = request.match_info.get("signal", "")
    try:
        plane = _plane(request)
        token, bot = await plane.admit(request, "healthchecks")
        body = await request.content.read(MAX_BODY_BYTES) if request.can_read_body else b""
        now_ms = plane.inlet.now_ms()
        started_ms = await _run_start(plane, token, signal, now_ms)
        try:
            report = healthchecks_report(signal, started_ms, now_ms, body)
        except IngestError as exc:
            raise plane.inlet.refuse("healthchecks", "malformed", str(exc)) from None
    except Refused as refused:
        return _refusal(refused, "healthchecks")
    return await _report(plane, bot, report, "healthchecks") or web.Response(text="OK")


async def _run_start(plane: PushPlane, token: str, signal: str, now_ms: int) -> int | None:
    """Opens a run on `start`; for any other signal, takes the open run's start (if any)."""
    try:
        if signal == "start":
            await plane.tokens.start(token, now_ms)
            return None
        return await plane.tokens.take_start(token)
    except (RedisError, OSError) as exc:
        raise plane.inlet.refuse(
            "healthchecks", "redis_unavailable", f"the run's start could not be kept: {exc}"
        ) from None


def add_push_routes(app: web.Application, plane: PushPlane | None) -> None:
    """The push and ping routes, on an app whose guard lets their paths through; without
    a plane (None) they answer 404 push_off in the push shape."""
    if plane is not None:
        app[PUSH] = plane
    for path, handler in (
        (PUSH_PREFIX + "{token}", kuma_push),
        (PING_PREFIX + "{token}", healthchecks_ping),
        (PING_PREFIX + "{token}/{signal}", healthchecks_ping),
    ):
        app.router.add_get(path, handler)  # and HEAD
        app.router.add_post(path, handler)
