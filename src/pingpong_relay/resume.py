"""A client's resume across reconnects: where to start again, and what is a repeat (pure).

The relay gives a client that asks (`?ids=1`, `?since=`, `?last=`) each bot message with its
history `id` (a Redis stream id, "ms-seq") and its `bot`. Each bot has its own stream, so ids
order the messages of one bot and only roughly those of different bots: two bots may both
have `1700000000000-0`. Hence a bot's message is a repeat when its id is at most the last id
seen *for that bot*, and a reconnect asks for `since=<ms>-0`, the start of the millisecond
of the newest id seen: the relay's `since` is inclusive and per bot, so that replays
everything not yet seen (and a few repeats, dropped here) whatever the ids of other bots.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pingpong_relay.subscriptions import position_key
from pingpong_relay.wire_types import GAP_TYPE

__all__ = ["MAX_REMEMBERED_GAPS", "Resume"]

# Gap messages already passed on, so the same gap, replayed again on the next reconnect,
# is not reported twice; bounded because a client may run for months.
MAX_REMEMBERED_GAPS: Final = 1000


class Resume:
    """What a client has seen, enough to reconnect without a hole or a duplicate."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, int]] = {}
        self._newest: tuple[int, int] | None = None
        self._gaps: set[tuple[str, ...]] = set()

    @property
    def newest_id(self) -> str | None:
        """The newest history id seen, of any bot ("ms-seq"); None before the first."""
        return None if self._newest is None else f"{self._newest[0]}-{self._newest[1]}"

    def url(self, base: str) -> str:
        """`base` with `ids=1`, and once an id was seen `since=<ms>-0` instead of any `since`
        or `last` of its own (the client's other parameters, such as filters, kept)."""
        parts = urlsplit(base)
        kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "ids"]
        if self._newest is not None:
            kept = [(k, v) for k, v in kept if k not in ("since", "last")]
            kept.append(("since", f"{self._newest[0]}-0"))
        return urlunsplit(parts._replace(query=urlencode([*kept, ("ids", "1")])))

    def admit(self, envelope: dict[str, Any]) -> bool:
        """Whether to pass `envelope` on: False for a bot message already seen (by its bot and
        id) and for a gap already reported; True for anything else, which it remembers."""
        if envelope.get("type") == GAP_TYPE:
            return self._admit_gap(envelope)
        bot, entry_id = envelope.get("bot"), envelope.get("id")
        if not isinstance(bot, str) or not isinstance(entry_id, str):
            return True  # no history id (history off, or not a bot message): nothing to compare
        try:
            key = position_key(entry_id)
        except ValueError:
            return True
        last = self._last.get(bot)
        if last is not None and key <= last:
            return False
        self._last[bot] = key
        if self._newest is None or key > self._newest:
            self._newest = key
        return True

    def _admit_gap(self, gap: dict[str, Any]) -> bool:
        key = tuple(str(gap.get(k)) for k in ("bot", "reason", "relay", "from", "to"))
        if key in self._gaps:
            return False
        if len(self._gaps) >= MAX_REMEMBERED_GAPS:
            self._gaps.clear()
        self._gaps.add(key)
        return True
