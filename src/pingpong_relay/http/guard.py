"""What the HTTP plane adds to every answer and how it refuses, as pure functions.

Browser security headers, a raw refusal outside aiohttp, a bearer comparison that cannot
fail on odd bytes, the operator's ?detail=1 and spreadsheet-safe CSV cells.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["bearer_matches", "csv_cell", "raw_response", "security_headers", "wants_detail"]

SERVER_NAME: Final = "pingpong-relay"  # no version: it only helps someone pick an exploit
# What the dashboard needs and nothing more: its own scripts, styles and images (plus the
# data: favicon), and WebSockets to the data port (another origin: ws:/wss: on any host,
# since --public-ws-url may name a proxy).
_CSP_BASE: Final = (
    "default-src 'self'",
    "script-src 'self'",
    "connect-src 'self' ws: wss:",
    "img-src 'self' data:",
    "style-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
)


def security_headers(frame_ancestors: str = "'none'") -> dict[str, str]:
    """The headers every HTTP-plane response carries."""
    policy = "; ".join((*_CSP_BASE, f"frame-ancestors {frame_ancestors}"))
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Server": SERVER_NAME,
    }


def raw_response(
    status: int, reason: str, body: bytes, headers: Mapping[str, str], extra: Mapping[str, str]
) -> bytes:
    """A whole HTTP/1.1 response that closes the connection, for answers given outside
    aiohttp (a connection past the cap)."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in {**headers, **extra}.items()]
    lines += [
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def bearer_matches(authorization: str, token: str) -> bool:
    """Whether an Authorization header is `Bearer <token>`, in constant time.

    Compared as bytes: hmac.compare_digest raises TypeError on a non-ASCII str, and a
    header is whatever bytes the client sent (aiohttp keeps undecodable ones as surrogates).
    """
    presented = authorization.encode("utf-8", "surrogateescape")
    return hmac.compare_digest(presented, f"Bearer {token}".encode())


def wants_detail(query: Mapping[str, str]) -> bool:
    """/healthz?detail=1 (or true/yes): the operator's view."""
    return query.get("detail", "").strip().lower() in ("1", "true", "yes")


# Characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection).
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A value fit for a CSV cell a spreadsheet may open: a string that would start a
    formula gets a leading ' (shown, not evaluated); numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
