"""Every close code and HTTP status a client can meet: when it happens, what to do (pure data).

Rendered into the AsyncAPI document and the docs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pingpong_relay.codes import CloseCode

__all__ = ["CLOSE_CODES", "HTTP_STATUSES", "UPGRADE_STATUSES", "Code"]


@dataclass(frozen=True, slots=True)
class Code:
    """A close code or HTTP status the relay uses, and what a client should do about it."""

    code: int
    name: str
    when: str
    client_should: str


CLOSE_CODES: Final = (
    Code(CloseCode.NORMAL, "normal closure", "echoed when the client closes", "nothing"),
    Code(
        CloseCode.GOING_AWAY,
        "going away",
        "the relay is shutting down, a write to the socket failed, or the client did not "
        "answer the relay's ping within --ping-timeout",
        "reconnect with backoff (1 s doubling to 30 s, with jitter); add `?since=<last id>` "
        "to get what was published meanwhile",
    ),
    Code(
        CloseCode.PROTOCOL_ERROR,
        "protocol error",
        "the client broke the WebSocket protocol (e.g. an unmasked frame)",
        "fix the client; reconnecting will not help",
    ),
    Code(
        CloseCode.ABNORMAL,
        "abnormal closure",
        "never sent: a client sees it when the connection drops with no close frame (relay "
        "killed, network lost, no pong within --ping-timeout), or when the upgrade was "
        "refused (a browser hides the HTTP status)",
        "reconnect with backoff, with `?since=<last id>`; if it repeats at once, check the "
        "token and URL with an HTTP request to see the refusal",
    ),
    Code(
        CloseCode.POLICY_VIOLATION,
        "policy violation",
        "the client kept sending frames over --client-frame-rate after five rate_limited errors",
        "send fewer commands; reconnect after a pause",
    ),
    Code(
        CloseCode.MESSAGE_TOO_BIG,
        "message too big",
        "a client frame over 16 KiB",
        "send smaller commands (a command is at most 4,096 bytes)",
    ),
    Code(
        CloseCode.INTERNAL_ERROR,
        "internal error",
        "the relay failed while handling this connection (a bug; it is logged)",
        "reconnect with backoff; report it",
    ),
    Code(
        CloseCode.SLOW_CLIENT,
        "slow client",
        "with --slow-client close: the client read too slowly, and its unsent data passed "
        "--max-client-buffer",
        "read faster or subscribe to less; reconnect with `?since=<last id>` to catch up",
    ),
    Code(
        CloseCode.TOKEN_EXPIRED,
        "token expired",
        "the connection's token expired (refresh it in-band before that)",
        'get a new token and reconnect; next time send `{"action":"refresh","token":…}` '
        "before expiry",
    ),
)

UPGRADE_STATUSES: Final = (
    Code(101, "Switching Protocols", "the WebSocket is open", "read messages"),
    Code(
        302,
        "Found",
        "a plain HTTP request (a browser) on the data port",
        "follow it to the dashboard on the HTTP plane",
    ),
    Code(
        400,
        "Bad Request",
        "a query parameter is invalid (JSON body: error, message)",
        "fix the URL; do not retry unchanged",
    ),
    Code(
        401,
        "Unauthorized",
        "--auth jwt and the token is missing, malformed, expired or not valid "
        "(JSON body: error, reason, message)",
        "get a valid token; do not retry unchanged",
    ),
    Code(
        403,
        "Forbidden",
        "the browser Origin is not among --allowed-origin",
        "connect from an allowed page",
    ),
    Code(404, "Not Found", "a WebSocket path other than /", "connect to /"),
    Code(
        426,
        "Upgrade Required",
        "a plain HTTP request on the data port while the HTTP plane is off",
        "connect with ws:// or wss://",
    ),
    Code(
        429,
        "Too Many Requests",
        "this address connects more often than --connection-rate-per-ip",
        "wait for Retry-After, then reconnect",
    ),
    Code(
        503,
        "Service Unavailable",
        "the relay is at --max-connections or this address at --max-connections-per-ip",
        "wait for Retry-After (or try another instance), then reconnect",
    ),
)

HTTP_STATUSES: Final = (
    Code(200, "OK", "the answer", "use it"),
    Code(
        304,
        "Not Modified",
        "a badge whose ETag matches the request's If-None-Match",
        "show the badge already cached",
    ),
    Code(
        400,
        "Bad Request",
        "a parameter /openapi.json does not allow: an unknown window, limit out of range, a "
        "bad position, a missing bot, a parameter given twice (JSON: error, message, and "
        "parameter: the one at fault); a bad /api/mutes body (error bad_mute, and field: the "
        "field at fault); a request that is not valid HTTP (error bad_request)",
        "fix the request; /openapi.json says what each route takes",
    ),
    Code(
        401,
        "Unauthorized",
        "--auth jwt and no valid token (data endpoints); /metrics and /healthz?detail=1 "
        "without --metrics-token or (--auth jwt) a token with the metrics scope (JSON: error "
        "unauthorized, reason, message: the data port's body)",
        "send `Authorization: Bearer <token>` (or `?token=`)",
    ),
    Code(
        403,
        "Forbidden",
        "the token's `events` claim does not grant this endpoint's event; changing a mute "
        "without the `mute` scope, or the mute API from a non-loopback address without --auth",
        "use a token that grants it (or, without --auth, mute from the relay's machine)",
    ),
    Code(
        404,
        "Not Found",
        "a bot never seen (neither tracked nor in the history) or outside the token's bots "
        "(JSON: error unknown_bot; /badge.svg draws a grey unknown badge), history off, "
        "/status without --public-bots (error status_off), or no such path (error not_found)",
        "check the bot id; /history and /analytics need --history-retention > 0, /status "
        "needs --public-bots",
    ),
    Code(
        405,
        "Method Not Allowed",
        "a method the route does not take (JSON: error method_not_allowed; Allow: lists "
        "those it does)",
        "use a method from Allow",
    ),
    Code(
        421,
        "Misdirected Request",
        "the Host header names neither this relay's address nor an --allowed-host "
        "(JSON: error unknown_host)",
        "use the relay's address or a listed name; behind a proxy, add --allowed-host",
    ),
    Code(
        429,
        "Too Many Requests",
        "a push or ping URL used more often than --push-rate (per token) or "
        "--push-address-rate (per address) allow (Retry-After: 1)",
        "push less often; wait for Retry-After",
    ),
    Code(
        500,
        "Internal Server Error",
        "a bug: the relay failed to answer (JSON: error internal_error; logged with its "
        'traceback, counted in pingpong_http_refused_total{reason="internal_error"})',
        "retry; report it with the log line",
    ),
    Code(
        503,
        "Service Unavailable",
        "/healthz: the Redis subscription is not verified (?detail=1 says why); or the HTTP "
        "plane is at --max-http-connections (error capacity, Retry-After: 5); the mute "
        "store or push tokens unreadable (error redis_unavailable)",
        "take the instance out of rotation until /healthz answers 200; otherwise retry later",
    ),
)
