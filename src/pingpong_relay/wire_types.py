"""The `type` of every message the relay sends to clients, named once.

The modules that build each message, the AsyncAPI document and the client import them
from here.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ALERT_EVENT_TYPE",
    "CONFLATED_TYPE",
    "ENVELOPE_TYPE",
    "GAP_TYPE",
    "RELAY_DEAF_TYPE",
    "RELAY_STATE_TYPE",
    "STATS_TYPE",
    "STATUS_EVENT_TYPE",
]

ENVELOPE_TYPE: Final = "bot:pingpong"  # the design's envelope around a bot's message
STATUS_EVENT_TYPE: Final = "bot:status"
ALERT_EVENT_TYPE: Final = "bot:alert"
STATS_TYPE: Final = "bot:stats"
GAP_TYPE: Final = "bot:gap"  # a replay could not reach back as far as asked
RELAY_STATE_TYPE: Final = "relay:state"
RELAY_DEAF_TYPE: Final = "relay:deaf"  # the relay's Redis subscription is down
CONFLATED_TYPE: Final = "relay:conflated"  # messages skipped for a backed-up client
