"""WebSocket close codes the relay uses and the reasons it sends with them, defined once (pure).

One home for both, imported by the hub, the data plane, the wiring and status_codes'
guide.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

__all__ = [
    "REASON_SEND_FAILED",
    "REASON_SHUTDOWN",
    "REASON_SLOW",
    "REASON_TOKEN_EXPIRED",
    "REASON_TOO_MANY_FRAMES",
    "CloseCode",
]


class CloseCode(IntEnum):
    """Every close code a client of the relay can see (RFC 6455 and the relay's own)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    ABNORMAL = 1006  # never sent: what a client reports when no close frame came
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SLOW_CLIENT = 4001
    TOKEN_EXPIRED = 4003


REASON_SHUTDOWN: Final = b"relay shutting down"
REASON_SEND_FAILED: Final = b"send failed"
REASON_SLOW: Final = b"slow client: unsent data over the limit"
REASON_TOKEN_EXPIRED: Final = b"token expired"
REASON_TOO_MANY_FRAMES: Final = b"too many frames"
