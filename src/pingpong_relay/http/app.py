"""The HTTP plane's application: its state, its access guard and its routes, put together."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from pingpong_relay.asyncapi import asyncapi
from pingpong_relay.auth import Authenticator
from pingpong_relay.http.alerts import alerts
from pingpong_relay.http.analytics import analytics
from pingpong_relay.http.checks import check_contract, errors_as_json
from pingpong_relay.http.guard import security_headers
from pingpong_relay.http.health import healthz
from pingpong_relay.http.history import history_page
from pingpong_relay.http.metrics import metrics
from pingpong_relay.http.middleware import MUTES_PATH, access_guard, add_security_headers
from pingpong_relay.http.mutes import add_mute, expire_mute, list_mutes
from pingpong_relay.http.openapi import openapi_document
from pingpong_relay.http.pages import (
    asyncapi_document,
    dashboard,
    dashboard_file,
    dashboard_settings,
    openapi_json,
)
from pingpong_relay.http.public import (
    PUBLIC,
    PublicStatus,
    badge_json,
    badge_svg,
    status_json,
    status_page,
)
from pingpong_relay.http.push import PushPlane, add_push_routes
from pingpong_relay.http.state import STATE, Access, PlaneState
from pingpong_relay.http.stats import bots, stats
from pingpong_relay.monitor import Monitor
from pingpong_relay.origins import HostPolicy
from pingpong_relay.redis_io.history import History
from pingpong_relay.redis_io.mutes import MuteStore
from pingpong_relay.redis_io.rollup_store import RollupStore

__all__ = ["build_app"]


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
    public_bots: tuple[str, ...] = (),
    mutes: MuteStore | None = None,
    push: PushPlane | None = None,
) -> web.Application:
    """The HTTP plane's routes. `health` gives the detailed body (the operator's view);
    anyone gets only its public part. `hosts` (None: no check) says which Host headers
    name the relay; `refused(reason, detail)` is told of every request refused for one;
    `public_bots` (patterns) are shown on /status and by badges without a token; `push`
    (None: none) serves the push and ping URLs."""
    app = web.Application(middlewares=[errors_as_json, access_guard, check_contract])
    app[STATE] = PlaneState(
        health=health,
        render_metrics=render_metrics,
        monitor=monitor,
        history=history,
        rollups=rollups,
        silence_ms=silence_ms,
        dashboard_config=dashboard_config,
        asyncapi_document=orjson.dumps(asyncapi()),
        openapi_document=orjson.dumps(
            openapi_document(auth=authenticate is not None, operator_credential=bool(metrics_token))
        ),
        headers=security_headers(frame_ancestors),
        access=Access(hosts, authenticate, metrics_token, refused),
        mutes=mutes,
    )
    app[PUBLIC] = PublicStatus(public_bots)
    app.on_response_prepare.append(add_security_headers)
    app.router.add_get("/asyncapi.json", asyncapi_document)
    app.router.add_get("/openapi.json", openapi_json)
    app.router.add_get("/", dashboard)
    app.router.add_get("/dashboard/config.json", dashboard_settings)
    app.router.add_get("/dashboard/{file:.+}", dashboard_file)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/stats", stats)
    app.router.add_get("/alerts", alerts)
    app.router.add_get("/bots", bots)
    app.router.add_get("/history", history_page)
    app.router.add_get("/analytics", analytics)
    app.router.add_get("/badge.svg", badge_svg)
    app.router.add_get("/badge.json", badge_json)
    app.router.add_get("/status", status_page)
    app.router.add_get("/status.json", status_json)
    app.router.add_get(MUTES_PATH, list_mutes)
    app.router.add_post(MUTES_PATH, add_mute)
    app.router.add_delete(MUTES_PATH + "/{id}", expire_mute)
    add_push_routes(app, push)
    return app
