"""The HTTP plane's two outer middlewares: every error in the plane's JSON shape, and every
request checked against its operation in the contract before its handler runs."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import hdrs, web

from pingpong_relay.http.contract import ContractError, check_query
from pingpong_relay.http.operations import operation_for
from pingpong_relay.http.push import push_contract_refusal
from pingpong_relay.http.responses import error, json_response, where_from
from pingpong_relay.http.state import STATE, remember_checked
from pingpong_relay.ingest import redact_push_path

__all__ = ["check_contract", "contract_refusal", "errors_as_json"]

log = logging.getLogger("pingpong_relay.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# aiohttp's own refusals, by status: the code the plane's error shape gives them.
_CODES: Final = {
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
}


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own answers for no route, a wrong method or a missing file become the
    plane's JSON error shape; an exception no handler expected becomes a 500 in that shape,
    logged with its traceback, and counted."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error(exc.status, _CODES.get(exc.status, "http_error"), _said(request, exc))
        allow = exc.headers.get(hdrs.ALLOW)
        if allow is not None:
            response.headers[hdrs.ALLOW] = allow
        return response
    except Exception:
        log.exception("the HTTP plane failed on %s", where_from(request))
        request.app[STATE].access.refused("internal_error", where_from(request))
        return error(500, "internal_error", "the relay failed to answer; the error is logged")


def _said(request: web.Request, exc: web.HTTPException) -> str:
    if exc.status == 404:
        return f"nothing is served at {redact_push_path(request.path)[:200]}"
    if exc.status == 405:
        return f"{request.method[:20]} is not allowed here (Allow: {exc.headers.get(hdrs.ALLOW)})"
    return exc.reason


@web.middleware
async def check_contract(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The request's query and path parameters checked by its operation's schemas: a 400
    naming the parameter (counted and logged) for one the contract refuses."""
    info = request.match_info
    route = info.route.resource.canonical if info.route.resource is not None else ""
    op = operation_for(request.method, route) if info.http_exception is None else None
    if op is None:
        return await handler(request)
    query = request.query
    repeated = {name for name in query if len(query.getall(name)) > 1}
    try:
        checked = check_query(op, query, info, repeated)
    except ContractError as refused:
        if op.guard == "push":
            return push_contract_refusal(request, refused)
        return contract_refusal(request, refused)
    remember_checked(request, op, checked)
    return await handler(request)


def contract_refusal(request: web.Request, refused: ContractError) -> web.Response:
    """400 with the contract's error body, counted and logged (at most once per interval)."""
    request.app[STATE].access.refused(
        "bad_parameter", f"{where_from(request)}: {refused.name}: {refused.message}"
    )
    return json_response(refused.body(), 400)
