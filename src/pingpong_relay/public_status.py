"""The public status page (/status, /status.json): which bots are public, and its body and HTML."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any, Final

__all__ = [
    "MAX_INCIDENTS",
    "STATUS_WINDOWS",
    "is_public",
    "public_bot_entry",
    "status_body",
    "status_html",
]

# The availability windows the page shows (keys of rollups.ANALYTICS_WINDOWS).
STATUS_WINDOWS: Final = ("24h", "7d", "30d")
# The most recent outages listed per bot: a flapping bot must not make the page endless.
MAX_INCIDENTS: Final = 20


def is_public(bot: str, patterns: Iterable[str]) -> bool:
    """Whether `bot` matches one of the --public-bots patterns (shell-style)."""
    return any(fnmatch.fnmatchcase(bot, pattern) for pattern in patterns)


def public_bot_entry(
    bot: str,
    status: Mapping[str, Any],
    latency_ms: float | None,
    analytics: Mapping[str, Mapping[str, Any] | None],
) -> dict[str, Any]:
    """One bot's part of the page: its `bot:status` message, the current latency, and
    `analytics` by window (None where history is off); incidents come from the longest."""
    availability = {
        window: (found or {}).get("availability_pct") for window, found in analytics.items()
    }
    longest = analytics.get(STATUS_WINDOWS[-1]) or {}
    outages = sorted(longest.get("outages", []), key=lambda o: o["start_ms"], reverse=True)
    return {
        "bot": bot,
        "status": status.get("status"),
        "since_ms": status.get("since_ms"),
        "last_seen_ms": status.get("last_seen_ms"),
        "latency_ms": None if latency_ms is None else round(latency_ms, 3),
        "availability_pct": availability,
        "incidents": outages[:MAX_INCIDENTS],
    }


def status_body(entries: Sequence[dict[str, Any]], now_ms: int) -> dict[str, Any]:
    """/status.json: the public bots, ordered by id."""
    return {
        "generated_at_ms": now_ms,
        "windows": list(STATUS_WINDOWS),
        "bots": sorted(entries, key=lambda e: str(e["bot"])),
    }


def _when(ms: int | None) -> str:
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} %"


def _bot_rows(entry: Mapping[str, Any]) -> str:
    status = str(entry["status"] or "unknown")
    latency = entry["latency_ms"]
    cells = "".join(
        f'<td class="num">{_pct(entry["availability_pct"].get(w))}</td>' for w in STATUS_WINDOWS
    )
    return (
        f'<tr><th scope="row">{escape(str(entry["bot"]))}</th>'
        f'<td><span class="state state-{escape(status)}">{escape(status)}</span></td>'
        f'<td class="num">{"—" if latency is None else f"{latency:.0f} ms"}</td>{cells}</tr>'
    )


def _incident_rows(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = []
    for entry in entries:
        for outage in entry["incidents"]:
            end = "ongoing" if outage["ongoing"] else _when(outage["end_ms"])
            rows.append(
                f"<tr><td>{escape(str(entry['bot']))}</td><td>{_when(outage['start_ms'])}</td>"
                f'<td>{end}</td><td class="num">{_duration(outage["duration_s"])}</td></tr>'
            )
    return rows


def status_html(body: Mapping[str, Any], stylesheet: str = "dashboard/status.css") -> str:
    """/status: the page, readable without JavaScript, styled by a linked stylesheet only
    (the CSP forbids inline styles and scripts); every bot id is escaped."""
    entries = body["bots"]
    heads = "".join(f'<th scope="col" class="num">{w}</th>' for w in STATUS_WINDOWS)
    bots = "".join(_bot_rows(e) for e in entries) or '<tr><td colspan="6">No bots yet.</td></tr>'
    incidents = _incident_rows(entries)
    incident_part = (
        '<table><thead><tr><th scope="col">Bot</th><th scope="col">Start</th>'
        '<th scope="col">End</th><th scope="col" class="num">Duration</th></tr></thead>'
        f"<tbody>{''.join(incidents)}</tbody></table>"
        if incidents
        else "<p>No incidents in the last 30 days.</p>"
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer"><link rel="icon" href="data:,">'
        f'<title>Bot status</title><link rel="stylesheet" href="{escape(stylesheet)}">'
        "</head><body><main><h1>Bot status</h1>"
        f'<p class="generated">As of {_when(body["generated_at_ms"])}.</p>'
        '<table class="bots"><caption>Current state and availability</caption><thead><tr>'
        '<th scope="col">Bot</th><th scope="col">State</th>'
        f'<th scope="col" class="num">Latency</th>{heads}</tr></thead>'
        f"<tbody>{bots}</tbody></table>"
        f'<h2 id="incidents">Incidents</h2>{incident_part}</main></body></html>\n'
    )
