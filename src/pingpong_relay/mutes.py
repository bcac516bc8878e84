"""Mutes and maintenance windows: which alerts notify no one, when, and the API's body.

A mute names bot patterns (and optionally rules) and a time span; an alert it covers is
still tracked and shown, marked muted, but sent to no channel and no webhook. Pure: the
store lives in `redis_io.mutes`, the gate in `notify.mutes`.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pingpong_relay.messages import MAX_TIMESTAMP_MS
from pingpong_relay.parsing import parse_duration

__all__ = [
    "MAX_COMMENT_CHARS",
    "MAX_MUTE_S",
    "MAX_PATTERNS",
    "Mute",
    "MuteError",
    "covering",
    "mute_from_body",
    "split_mutes",
]

MAX_MUTE_S: Final = 366 * 86400.0  # a year: a longer mute is a forgotten one
MAX_PATTERNS: Final = 100
MAX_COMMENT_CHARS: Final = 1000
_FIELDS: Final = frozenset({"bots", "rules", "duration", "starts_at", "ends_at", "comment"})


class MuteError(ValueError):
    """A mute body the API refuses; `field` names the field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Mute:
    """One mute: the bots (fnmatch patterns) and rules (empty: every rule) it covers,
    from `starts_at_s` until `ends_at_s` (seconds since the epoch)."""

    id: str
    bots: tuple[str, ...]
    rules: tuple[str, ...]
    starts_at_s: float
    ends_at_s: float
    comment: str = ""
    created_by: str = ""
    created_at_s: float = 0.0

    def covers(self, bot: str, rule: str) -> bool:
        """Whether the mute names this bot and rule (whatever the time)."""
        if self.rules and rule not in self.rules:
            return False
        return any(fnmatch.fnmatchcase(bot, pattern) for pattern in self.bots)

    def active(self, now_s: float) -> bool:
        """Whether the mute is in force now."""
        return self.starts_at_s <= now_s < self.ends_at_s

    def to_json(self) -> dict[str, Any]:
        """What the API lists and the store keeps; times in ms since the epoch."""
        return {
            "id": self.id,
            "bots": list(self.bots),
            "rules": list(self.rules),
            "starts_at_ms": round(self.starts_at_s * 1000),
            "ends_at_ms": round(self.ends_at_s * 1000),
            "comment": self.comment,
            "created_by": self.created_by,
            "created_at_ms": round(self.created_at_s * 1000),
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Mute:
        """The mute `to_json` wrote; KeyError/TypeError/ValueError on anything else."""
        return cls(
            id=str(body["id"]),
            bots=tuple(str(b) for b in body["bots"]),
            rules=tuple(str(r) for r in body["rules"]),
            starts_at_s=float(body["starts_at_ms"]) / 1000,
            ends_at_s=float(body["ends_at_ms"]) / 1000,
            comment=str(body.get("comment", "")),
            created_by=str(body.get("created_by", "")),
            created_at_s=float(body.get("created_at_ms", 0)) / 1000,
        )


def covering(mutes: Iterable[Mute], bot: str, rule: str, now_s: float) -> Mute | None:
    """The first mute in force now that covers this bot and rule, or None."""
    for mute in mutes:
        if mute.active(now_s) and mute.covers(bot, rule):
            return mute
    return None


def split_mutes(mutes: Iterable[Mute], now_s: float) -> tuple[list[Mute], list[Mute]]:
    """(active, scheduled) mutes, each by start time; ended ones are left out."""
    ordered = sorted(mutes, key=lambda m: (m.starts_at_s, m.id))
    active = [m for m in ordered if m.active(now_s)]
    scheduled = [m for m in ordered if m.starts_at_s > now_s]
    return active, scheduled


def _patterns(body: Mapping[str, Any], field: str, required: bool) -> tuple[str, ...]:
    value = body.get(field)
    if value is None and not required:
        return ()
    if isinstance(value, str):
        value = [value]
    if not (isinstance(value, list) and all(isinstance(p, str) and p.strip() for p in value)):
        raise MuteError(field, "must be a list of non-empty strings")
    if required and not value:
        raise MuteError(field, "must name at least one bot pattern")
    if len(value) > MAX_PATTERNS:
        raise MuteError(field, f"at most {MAX_PATTERNS} entries")
    return tuple(p.strip() for p in value)


def _instant(body: Mapping[str, Any], field: str) -> float | None:
    """Seconds since the epoch from an ISO 8601 time with its offset, or epoch ms."""
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not (math.isfinite(value) and 0 <= value <= MAX_TIMESTAMP_MS):
            raise MuteError(
                field, f"must be a time: ms since the epoch (0 to {MAX_TIMESTAMP_MS:,}) or ISO 8601"
            )
        return float(value) / 1000
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            when = None
        if when is not None and when.tzinfo is not None:
            if when.timestamp() * 1000 > MAX_TIMESTAMP_MS:
                raise MuteError(field, "must be a time before the year 2286")
            return when.timestamp()
    raise MuteError(field, "must be an ISO 8601 time with its offset (e.g. 2026-12-06T02:00Z)")


def _span(body: Mapping[str, Any], now_s: float) -> tuple[float, float]:
    starts = _instant(body, "starts_at")
    ends = _instant(body, "ends_at")
    duration = body.get("duration")
    if duration is not None:
        if ends is not None:
            raise MuteError("duration", "give either duration or ends_at, not both")
        try:
            if not isinstance(duration, str | int | float) or isinstance(duration, bool):
                raise ValueError("must be a duration such as 2h or 30m")
            length = parse_duration(str(duration))
        except ValueError as exc:
            raise MuteError("duration", str(exc)) from None
        if not 0 < length <= MAX_MUTE_S:
            raise MuteError("duration", "must be longer than 0 s and at most a year")
        starts = now_s if starts is None else starts
        return starts, starts + length
    if ends is None:
        raise MuteError("duration", 'give a "duration" (e.g. "2h") or an "ends_at"')
    starts = now_s if starts is None else starts
    if ends <= starts:
        raise MuteError("ends_at", "must come after starts_at")
    if ends <= now_s:
        raise MuteError("ends_at", "is already past")
    if ends - starts > MAX_MUTE_S:
        raise MuteError("ends_at", "a mute lasts at most a year")
    return starts, ends


def mute_from_body(body: Any, *, mute_id: str, now_s: float, created_by: str = "") -> Mute:
    """The mute a POST /api/mutes body asks for; MuteError names the field at fault."""
    if not isinstance(body, dict):
        raise MuteError("body", "must be a JSON object")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise MuteError(unknown[0], f"is not a field (known: {', '.join(sorted(_FIELDS))})")
    bots = _patterns(body, "bots", required=True)
    rules = _patterns(body, "rules", required=False)
    starts, ends = _span(body, now_s)
    comment = body.get("comment", "")
    if not isinstance(comment, str):
        raise MuteError("comment", "must be a string")
    if len(comment) > MAX_COMMENT_CHARS:
        raise MuteError("comment", f"at most {MAX_COMMENT_CHARS} characters")
    return Mute(mute_id, bots, rules, starts, ends, comment, created_by, now_s)
