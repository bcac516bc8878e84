"""Status badges of one bot (Shields-style SVG and the Shields.io endpoint JSON), as pure data."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final
from xml.sax.saxutils import escape, quoteattr

__all__ = ["BADGE_COLORS", "MAX_LABEL_CHARS", "Badge", "bot_badge"]

# Shields.io colour names (what /badge.json says) and the hex value each stands for there
# (what /badge.svg draws), by the bot's status.
BADGE_COLORS: Final = {
    "up": ("brightgreen", "#4c1"),
    "degraded": ("yellow", "#dfb317"),
    "pending": ("orange", "#fe7d37"),
    "down": ("red", "#e05d44"),
    "unknown": ("lightgrey", "#9f9f9f"),
}
# A label longer than this is cut: a badge is a line in a README, not a page.
MAX_LABEL_CHARS: Final = 64
_CHAR_PX: Final = 7  # Verdana 11px averages under 7 px a character
_PAD_PX: Final = 10


@dataclass(frozen=True, slots=True)
class Badge:
    """What a badge says: a label, a message and the status that picks its colour."""

    label: str
    message: str
    status: str  # a key of BADGE_COLORS

    def shields(self) -> dict[str, Any]:
        """The Shields.io endpoint schema (https://shields.io/badges/endpoint-badge)."""
        return {
            "schemaVersion": 1,
            "label": self.label,
            "message": self.message,
            "color": BADGE_COLORS[self.status][0],
        }

    def svg(self) -> str:
        """A flat Shields-style SVG; every text from outside (the bot id, a label) is escaped."""
        label_px = _PAD_PX + _CHAR_PX * len(self.label)
        message_px = _PAD_PX + _CHAR_PX * len(self.message)
        width = label_px + message_px
        color = BADGE_COLORS[self.status][1]
        title = escape(f"{self.label}: {self.message}")
        label, message = escape(self.label), escape(self.message)
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" '
            f'role="img" aria-label={quoteattr(f"{self.label}: {self.message}")}>'
            f"<title>{title}</title>"
            f'<rect width="{label_px}" height="20" fill="#555"/>'
            f'<rect x="{label_px}" width="{message_px}" height="20" fill="{color}"/>'
            '<g fill="#fff" text-anchor="middle" '
            'font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
            f'<text x="{label_px / 2:g}" y="14">{label}</text>'
            f'<text x="{label_px + message_px / 2:g}" y="14">{message}</text>'
            "</g></svg>"
        )

    def etag(self) -> str:
        """A strong ETag of what the badge says (the same text draws the same badge)."""
        digest = hashlib.sha256(f"{self.label}\0{self.message}\0{self.status}".encode())
        return f'"{digest.hexdigest()[:16]}"'


def bot_badge(
    bot: str, status: str | None, latency_ms: float | None, label: str | None = None
) -> Badge:
    """A bot's badge: `status` None for a bot the asker may not know of (grey "unknown");
    up and degraded show the current latency, e.g. "up · 42 ms"."""
    # Escaping covers markup; characters XML cannot hold at all (controls) become "?".
    shown = "".join(c if c.isprintable() else "?" for c in (label or bot)[:MAX_LABEL_CHARS])
    if status is None or status not in BADGE_COLORS:
        return Badge(shown, "unknown", "unknown")
    message = status
    if status in ("up", "degraded") and latency_ms is not None:
        message = f"{status} · {latency_ms:.0f} ms"
    return Badge(shown, message, status)
