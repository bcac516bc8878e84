"""Replay planning: which recorded entries, and which gaps, answer a client's history request.

Pure: it reads through the `HistoryReader` shape, which `redis_io.history` fills.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from pingpong_relay.subscriptions import MAX_REPLAY, ReplayRequest, Subscription, position_key
from pingpong_relay.wire_types import GAP_TYPE

__all__ = ["Entry", "HistoryReader", "plan_replay"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One recorded bot message: its stream id, bot, channel, when the relay got it, and the
    exact bytes the bot published."""

    id: str
    bot: str
    channel: str
    relay_ms: int
    seq: int
    raw: bytes

    def to_json(self) -> dict[str, Any]:
        """For orjson.dumps: the stored bytes go out as they are, never parsed again, so an
        entry any depth deep (recorded before the nesting limit) cannot fail the page."""
        return {
            "id": self.id,
            "bot": self.bot,
            "channel": self.channel,
            "relay_ms": self.relay_ms,
            "data": orjson.Fragment(self.raw),
        }


class HistoryReader(Protocol):
    """What replay planning reads from the history (`redis_io.history.History`)."""

    async def bots(self) -> list[str]:
        """Every bot with recorded entries."""

    async def read(self, bot: str, start: str, end: str, limit: int) -> list[Entry]:
        """One bot's entries with start ≤ id ≤ end, oldest first."""

    async def read_last(self, bot: str, count: int) -> list[Entry]:
        """One bot's last `count` entries, oldest first."""

    async def deaf_periods(self, since_ms: int) -> list[tuple[int, int, str]]:
        """(from, to, relay) of every recorded deafness that ended at or after `since_ms`."""

    async def retained_from(self, bot: str) -> tuple[str | None, str | None]:
        """(id of the first entry ever recorded, id of the oldest entry still kept)."""


async def plan_replay(
    history: HistoryReader, subscription: Subscription, request: ReplayRequest
) -> tuple[list[Entry], list[dict[str, Any]]]:
    """The entries (at most MAX_REPLAY, in recording order) and the `bot:gap` messages that
    answer `request` for the bots `subscription` wants."""
    entries: list[Entry] = []
    gaps: list[dict[str, Any]] = []
    for bot in await history.bots():
        if not subscription.wants_bot(bot):
            continue
        if request.last is not None:
            entries += await history.read_last(bot, request.last)
            continue
        assert request.since is not None
        entries += await history.read(bot, request.since, "+", MAX_REPLAY)
        gaps += await _deaf_gaps(history, bot, request.since)
        trimmed = await _trimmed_gap(history, bot, request.since)
        if trimmed is not None:
            gaps.append(trimmed)
    entries.sort(key=lambda e: e.seq)
    if request.last is not None:
        entries = entries[-request.last :]
    return entries[:MAX_REPLAY], gaps


async def _deaf_gaps(history: HistoryReader, bot: str, since: str) -> list[dict[str, Any]]:
    # With several relays another may have heard it; each gap says who did not.
    return [
        {
            "type": GAP_TYPE,
            "bot": bot,
            "reason": "relay_deaf",
            "relay": relay,
            "from": f"{from_ms}-0",
            "to": f"{to_ms}-0",
        }
        for from_ms, to_ms, relay in await history.deaf_periods(position_key(since)[0])
    ]


async def _trimmed_gap(history: HistoryReader, bot: str, since: str) -> dict[str, Any] | None:
    # Asked for more than is kept: say which part is missing, not nothing.
    first_ever, oldest = await history.retained_from(bot)
    if (
        first_ever is None
        or oldest is None
        or position_key(first_ever) >= position_key(oldest)
        or position_key(since) >= position_key(oldest)
    ):
        return None
    return {
        "type": GAP_TYPE,
        "bot": bot,
        "reason": "trimmed",
        "from": max(since, first_ever, key=position_key),
        "to": oldest,
    }
