"""What the HTTP plane's handlers read: the app's typed state and the request's token grant."""

from __future__ import annotations

import fnmatch
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from pingpong_relay.auth import Authenticator, Grant
from pingpong_relay.http.contract import Operation
from pingpong_relay.monitor import Monitor
from pingpong_relay.origins import HostPolicy
from pingpong_relay.redis_io.history import History
from pingpong_relay.redis_io.mutes import MuteStore
from pingpong_relay.redis_io.rollup_store import RollupStore

__all__ = [
    "STATE",
    "Access",
    "PlaneState",
    "granted",
    "known",
    "remember_grant",
    "scoped",
    "visible",
]


@dataclass(frozen=True, slots=True)
class Access:
    """Who may ask what: the Host check, the token check and the operator's credential."""

    hosts: HostPolicy | None  # None: no Host check
    authenticate: Authenticator | None  # None: anonymous relay
    metrics_token: str
    refused: Callable[[str, str], None]  # told (reason, detail) of every refusal


@dataclass(frozen=True, slots=True)
class PlaneState:
    """Everything the HTTP plane's handlers, guard and response hook need, set once by
    `build_app`."""

    health: Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]  # the detailed body
    render_metrics: Callable[[], Awaitable[bytes]]
    monitor: Monitor
    history: History | None  # None: history is off
    rollups: RollupStore | None
    silence_ms: int
    dashboard_config: Callable[[], dict[str, Any]]
    asyncapi_document: bytes  # built once: it only changes with the code
    openapi_document: bytes  # built once: it changes with the code and the auth settings
    headers: dict[str, str]  # the security headers every response carries
    access: Access
    mutes: MuteStore | None = None  # None: no mute API (a plane without the relay's Redis)


STATE: Final = web.AppKey("plane_state", PlaneState)

# Where the guard leaves the request's token grant, and the contract checker the request's
# operation and parameters, for the handlers (plain keys: aiohttp's typed RequestKey needs
# aiohttp 3.14, and only this module reads or writes them).
_GRANT: Final = "grant"
_OPERATION: Final = "operation"
_PARAMS: Final = "params"


def remember_grant(request: web.Request, grant: Grant | None) -> None:
    """Keeps the grant of the request's token for the handlers that filter by it."""
    request[_GRANT] = grant


def remember_checked(request: web.Request, op: Operation, checked: dict[str, Any]) -> None:
    """Keeps the operation a request was checked against, and its parameters as read."""
    request[_OPERATION] = op
    request[_PARAMS] = checked


def params(request: web.Request) -> dict[str, Any]:
    """The request's parameters as the contract read them (schema defaults filled in)."""
    found: dict[str, Any] = request[_PARAMS]
    return found


def operation(request: web.Request) -> Operation:
    """The operation the request was checked against."""
    found: Operation = request[_OPERATION]
    return found


def granted(request: web.Request) -> Grant | None:
    """The grant of the request's token (None: auth is off)."""
    grant: Grant | None = request.get(_GRANT)
    return grant


def scoped(request: web.Request) -> bool:
    """Whether the request's token limits which bots it may see."""
    grant: Grant | None = request.get(_GRANT)
    return grant is not None and grant.bots is not None


def visible(request: web.Request, bot: str) -> bool:
    """Whether the request's token (if any) covers this bot."""
    grant: Grant | None = request.get(_GRANT)
    if grant is None or grant.bots is None:
        return True
    return any(fnmatch.fnmatchcase(bot, pattern) for pattern in grant.bots)


async def known(state: PlaneState, bot: str) -> bool:
    """Whether a bot was ever seen: tracked by this relay, or in the history (its stream or
    its first entry, which outlive the relay's memory of it)."""
    if state.monitor.knows(bot):
        return True
    return state.history is not None and await state.history.knows(bot)
