"""Badges and the public status page as pure data: SVG that parses, Shields JSON, escaping."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from html.parser import HTMLParser

from pingpong_relay.badges import BADGE_COLORS, bot_badge
from pingpong_relay.public_status import (
    is_public,
    public_bot_entry,
    status_body,
    status_html,
)

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = 'bot:pingpong/<script>alert("x")</script>&amp;\x01]]>'


def _texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    assert root.tag == SVG + "svg"
    return [t.text or "" for t in root.iter(SVG + "text")]


def test_an_up_badge_says_the_latency_and_parses_as_svg() -> None:
    badge = bot_badge("bot:pingpong/gate-1", "up", 42.4, None)
    assert _texts(badge.svg()) == ["bot:pingpong/gate-1", "up · 42 ms"]
    assert BADGE_COLORS["up"][1] in badge.svg()
    assert badge.shields() == {
        "schemaVersion": 1,
        "label": "bot:pingpong/gate-1",
        "message": "up · 42 ms",
        "color": "brightgreen",
    }


def test_each_status_has_its_colour_and_an_unknown_bot_is_grey() -> None:
    assert bot_badge("b", "down", 12.0).shields()["message"] == "down"
    assert bot_badge("b", "down", 12.0).shields()["color"] == "red"
    assert bot_badge("b", "degraded", 900.0).shields()["color"] == "yellow"
    assert bot_badge("b", "pending", None).shields()["color"] == "orange"
    grey = bot_badge("b", None, None, "gate")
    assert grey.shields() == {
        "schemaVersion": 1,
        "label": "gate",
        "message": "unknown",
        "color": "lightgrey",
    }


def test_a_hostile_bot_id_is_escaped_and_the_svg_still_parses() -> None:
    badge = bot_badge(HOSTILE, "up", 1.0)
    svg = badge.svg()
    assert "<script" not in svg
    label, _message = _texts(svg)  # ElementTree refuses anything that is not well-formed
    assert label == HOSTILE[:64].replace("\x01", "?")
    root = ET.fromstring(svg)
    assert [e.tag for e in root.iter()].count(SVG + "script") == 0
    assert badge.etag() == bot_badge(HOSTILE, "up", 1.2).etag()
    assert badge.etag() != bot_badge(HOSTILE, "down", 1.0).etag()


def test_public_patterns_match_shell_style() -> None:
    assert is_public("bot:pingpong/gate-1", ["bot:pingpong/gate-*"])
    assert not is_public("bot:pingpong/private", ["bot:pingpong/gate-*"])
    assert not is_public("bot:pingpong/gate-1", [])


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.styles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.styles += [v or "" for k, v in attrs if k == "style"]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_page_lists_availability_and_incidents_and_escapes_ids() -> None:
    outage = {"start_ms": 1_700_000_000_000, "end_ms": 1_700_000_090_000, "duration_s": 90.0}
    analytics = {
        "24h": {"availability_pct": 99.5, "outages": []},
        "7d": {"availability_pct": 99.9, "outages": []},
        "30d": {"availability_pct": 99.99, "outages": [{**outage, "ongoing": False}]},
    }
    entry = public_bot_entry(HOSTILE, {"status": "up", "since_ms": 1}, 41.6, analytics)
    assert entry["availability_pct"] == {"24h": 99.5, "7d": 99.9, "30d": 99.99}
    assert entry["incidents"] == [{**outage, "ongoing": False}]
    html = status_html(status_body([entry], 1_700_000_100_000))
    page = _Page()
    page.feed(html)
    text = "".join(page.text)
    assert "<script" not in html
    assert "script" not in page.tags
    assert "style" not in page.tags
    assert page.styles == []
    assert HOSTILE in text  # shown as text, not markup
    for shown in ("99.50 %", "99.90 %", "99.99 %", "42 ms", "1 min 30 s", "2023-11-14 22:13:20"):
        assert shown in text
