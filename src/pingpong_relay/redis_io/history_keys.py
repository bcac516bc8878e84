"""The Redis keys the relay keeps (pure): every one under one hash tag, and the streams'."""

from __future__ import annotations

from typing import Final

__all__ = [
    "BOTS_KEY",
    "DEAF_KEY",
    "ESTABLISHED_KEY",
    "FIRST_KEY",
    "KEY_PREFIX",
    "SEEN_PREFIX",
    "SEEN_TTL_MS",
    "SEQ_KEY",
    "STREAM_PREFIX",
    "stream_key",
]

# One hash tag for every key the relay keeps: all of them land in one Redis Cluster slot,
# so the multi-key Lua scripts (exactly-once appends) work on a cluster as on one server.
KEY_PREFIX: Final = "{pingpong}:"
STREAM_PREFIX: Final = KEY_PREFIX + "history:"
SEEN_PREFIX: Final = KEY_PREFIX + "seen:"
# Every bot with a stream, scored by the time of its last append (Redis's clock, ms); a
# member not appended to for the retention is pruned with its FIRST_KEY entry (its stream
# has expired by then). It replaces the `{pingpong}:bots` set of earlier versions, which is
# not migrated (there was no release); delete that key by hand if it is there.
BOTS_KEY: Final = KEY_PREFIX + "bots:last"
# The established bots among them (stats.ESTABLISHED_MESSAGES entries over at least
# stats.ESTABLISHED_SPAN_S), scored the same way: what a restarted relay seeds from, and what
# rollups are built for.
ESTABLISHED_KEY: Final = KEY_PREFIX + "bots:established"
SEQ_KEY: Final = KEY_PREFIX + "seq"
FIRST_KEY: Final = KEY_PREFIX + "first"  # bot -> id of the first entry ever recorded
DEAF_KEY: Final = KEY_PREFIX + "deaf"  # when some relay could not hear Redis
# Every relay receives every Pub/Sub message within moments of the others; a minute of
# memory is ample to recognise the copies, and costs one small key per message.
SEEN_TTL_MS: Final = 60_000


def stream_key(bot: str) -> str:
    """The key of the Redis Stream that holds one bot's recorded messages."""
    return STREAM_PREFIX + bot
