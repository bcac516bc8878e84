"""The access guard (Host check, tokens, the operator's credential) and security headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import hdrs, web

from pingpong_relay.auth import Authenticator, AuthError, Grant
from pingpong_relay.http.guard import bearer_matches, wants_detail
from pingpong_relay.http.public import PUBLIC
from pingpong_relay.http.responses import error, unauthorized, where_from
from pingpong_relay.http.state import STATE, Access, remember_grant
from pingpong_relay.ingest import is_push_path
from pingpong_relay.messages import excerpt
from pingpong_relay.origins import is_loopback, normalise_ip

__all__ = [
    "BADGE_PATHS",
    "ENDPOINT_EVENTS",
    "MUTES_PATH",
    "OPEN_PATHS",
    "PUBLIC_PATHS",
    "access_guard",
    "add_security_headers",
    "is_loopback_peer",
    "mute_refusal",
    "refuse_token",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Which event scope of a token each data endpoint belongs to.
ENDPOINT_EVENTS: Final = {
    "/stats": "stats",
    "/alerts": "alerts",
    "/bots": "status",
    "/history": "pingpong",
    "/analytics": "pingpong",
    "/badge.svg": "status",
    "/badge.json": "status",
}
MUTES_PATH: Final = "/api/mutes"
# Paths that carry no bot data, open whatever the auth mode: the page asks for a token.
OPEN_PATHS: Final = frozenset(
    {"/", "/healthz", "/dashboard/config.json", "/asyncapi.json", "/openapi.json"}
)
# The public status page: open whatever the auth mode, it shows only --public-bots' bots.
PUBLIC_PATHS: Final = frozenset({"/status", "/status.json"})
# Badges: open for a public bot; for any other, a data endpoint like /bots.
BADGE_PATHS: Final = frozenset({"/badge.svg", "/badge.json"})


def host_refusal(access: Access, request: web.Request) -> web.Response | None:
    """421 for a Host that does not name the relay: a page on a rebound DNS name must
    not read the relay with the visitor's network position (DNS rebinding)."""
    hosts = access.hosts
    if hosts is None:
        return None
    values = request.headers.getall(hdrs.HOST, [])
    if not values:
        return None  # HTTP/1.0 probes; no browser leaves it out, so no rebinding either
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    local_ip = str(sockname[0]) if sockname else ""
    if len(values) == 1 and hosts.host_allowed(values[0], local_ip):
        return None
    access.refused("host", f"Host {excerpt(', '.join(values).encode(), 100)}")
    return error(
        421,
        "unknown_host",
        "the Host header does not name this relay (an operator can add it with --allowed-host)",
    )


def operator_refusal(access: Access, request: web.Request) -> web.Response | None:
    """/metrics and /healthz?detail=1: open on an anonymous relay without
    --metrics-token; otherwise that token, or (--auth jwt) a token with the metrics scope."""
    metrics_token, authenticate = access.metrics_token, access.authenticate
    if not metrics_token and authenticate is None:
        return None
    authorization = request.headers.get(hdrs.AUTHORIZATION, "")
    if metrics_token and bearer_matches(authorization, metrics_token):
        return None
    if authenticate is not None and authorization.isascii():
        try:
            grant, _ = authenticate(request.headers, request.query_string)
        except AuthError:
            grant = None
        if grant is not None and grant.metrics:
            return None
    # Whatever was presented is neither --metrics-token nor a token with the metrics scope.
    presented = authorization or (authenticate is not None and "token" in request.query)
    return refuse_token(
        access,
        request,
        AuthError(
            "wrong_token" if presented else "missing",
            "needs the --metrics-token bearer token"
            + (" or a token with the metrics scope" if authenticate is not None else ""),
        ),
    )


def mute_refusal(access: Access, request: web.Request) -> web.Response | None:
    """/api/mutes: with auth, any valid token lists and only the `mute` scope changes;
    an anonymous relay answers it only on loopback (a mute silences every alert)."""
    authenticate = access.authenticate
    if authenticate is None:
        if is_loopback_peer(request.remote):
            return None
        access.refused("forbidden", f"not loopback: {where_from(request)}")
        return error(403, "forbidden", "without --auth the mute API answers only on loopback")
    grant, refusal = _authenticated(access, request, authenticate)
    if refusal is not None:
        return refusal
    if request.method not in ("GET", "HEAD") and (grant is None or not grant.mute):
        access.refused("forbidden", where_from(request))
        return error(403, "forbidden", "the token does not grant the 'mute' scope")
    remember_grant(request, grant)
    return None


def is_loopback_peer(address: str | None) -> bool:
    """Whether a peer address is this machine's loopback (127.0.0.0/8, ::1, IPv4-mapped)."""
    ip = normalise_ip(address) if address else None
    return ip is not None and is_loopback(ip)


def _authenticated(
    access: Access, request: web.Request, authenticate: Authenticator
) -> tuple[Grant | None, web.Response | None]:
    """The request's grant, or the 401 that refuses it (counted and logged)."""
    if not request.headers.get(hdrs.AUTHORIZATION, "").isascii():
        # A token is ASCII; anything else is refused here, not deep in a decoder.
        malformed = AuthError("malformed", "Authorization must be 'Bearer <token>'")
        return None, refuse_token(access, request, malformed)
    try:
        grant, _ = authenticate(request.headers, request.query_string)
    except AuthError as refused_token:
        return None, refuse_token(access, request, refused_token)
    return grant, None


def refuse_token(access: Access, request: web.Request, refused: AuthError) -> web.Response:
    """401, counted and logged (at most once per interval) with the path and the caller."""
    access.refused("unauthorized", f"{refused.reason}: {where_from(request)}")
    return unauthorized(refused)


@web.middleware
async def access_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Host first; then data endpoints need a token when auth is on, /metrics and the
    detailed health the operator's credential; the status page and a public bot's badge
    (--public-bots) nothing, nor the rest (no bot data)."""
    access = request.app[STATE].access
    refusal = host_refusal(access, request)
    if refusal is not None:
        return refusal
    if request.match_info.http_exception is not None:
        # No route, or not this method: the 404 or 405 tells nothing the published
        # OpenAPI document does not, and asking for a token first would misstate it.
        return await handler(request)
    path = request.path
    if path == "/metrics" or (path == "/healthz" and wants_detail(request.query)):
        return operator_refusal(access, request) or await handler(request)
    if path == MUTES_PATH or path.startswith(MUTES_PATH + "/"):
        return mute_refusal(access, request) or await handler(request)
    if path in OPEN_PATHS or path in PUBLIC_PATHS or path.startswith("/dashboard/"):
        return await handler(request)
    if is_push_path(path):  # the token in the path is the credential
        return await handler(request)
    if path in BADGE_PATHS and request.app[PUBLIC].covers(request.query.get("bot", "")):
        return await handler(request)
    authenticate = access.authenticate
    if authenticate is not None:
        grant, refusal = _authenticated(access, request, authenticate)
        if refusal is not None:
            return refusal
        event = ENDPOINT_EVENTS.get(request.path)
        if grant is not None and grant.events is not None and event not in grant.events:
            access.refused("forbidden", where_from(request))
            return error(403, "forbidden", f"the token does not grant {event!r}")
        remember_grant(request, grant)
    return await handler(request)


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every response the app prepares gets the security headers: pages, static files,
    API answers, errors."""
    response.headers.update(request.app[STATE].headers)
