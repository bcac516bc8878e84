"""Live data on the dashboard: heartbeats on tiles, a silent bot's alerts, the latency chart."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import quote

from playwright.async_api import Route, expect

from tests.browser.conftest import OpenDashboard
from tests.browser.dashboard_support import (
    FAST_MONITORING,
    alert_item,
    assert_clean,
    beat,
    connected,
    field,
    history_count,
    tile,
)
from tests.support import RedisServer, RelayFactory, publish_established


async def test_a_published_heartbeat_shows_on_its_tile(
    redis_server: RedisServer, start_relay: RelayFactory, open_dashboard: OpenDashboard
) -> None:
    relay = await start_relay(redis_server.url)
    dashboard = await open_dashboard(relay.http_url)
    page = dashboard.page
    await connected(dashboard, relay)
    bot = "bot:pingpong/gate-1"

    await redis_server.publish(beat("gate-1", "ping", 12.5))
    await expect(tile(page, bot)).to_be_visible()
    await expect(field(page, bot, "status")).to_have_text("up")
    await expect(tile(page, bot)).to_have_attribute("data-status", "up")
    await expect(field(page, bot, "latency")).to_have_text("12.5 ms")
    await expect(field(page, bot, "last-seen")).to_have_text(re.compile(r"^\d+ s ago$"))
    await expect(field(page, bot, "pings")).to_have_text("1")
    await expect(field(page, bot, "pongs")).to_have_text("0")
    await expect(field(page, bot, "availability-24h")).to_have_text(
        re.compile(r"^(\d+(\.\d+)? %|—)$")
    )

    await redis_server.publish(beat("gate-1", "pong", 20))
    await expect(field(page, bot, "pongs")).to_have_text("1")
    await expect(field(page, bot, "latency")).to_have_text("20.0 ms")
    await redis_server.publish(beat("gate-1", "ping", 140))
    await expect(field(page, bot, "pings")).to_have_text("2")
    await expect(field(page, bot, "latency")).to_have_text("140 ms")
    await expect(field(page, bot, "chart")).to_have_attribute("data-points", "3")
    await expect(field(page, bot, "chart")).to_have_attribute(
        "aria-label", re.compile(r"3 points, latest 140 ms")
    )
    # A heartbeat without latency counts, but draws no point.
    await redis_server.publish(beat("gate-1", "pong", None))
    await expect(field(page, bot, "pongs")).to_have_text("2")
    await expect(field(page, bot, "chart")).to_have_attribute("data-points", "3")
    await expect(page.locator("#bots-summary")).to_have_text("1 bot · 1 up")
    assert_clean(dashboard)


async def test_a_silent_bot_goes_down_alerts_and_recovers(
    redis_server: RedisServer, start_relay: RelayFactory, open_dashboard: OpenDashboard
) -> None:
    relay = await start_relay(redis_server.url, *FAST_MONITORING)
    dashboard = await open_dashboard(relay.http_url)
    page = dashboard.page
    await connected(dashboard, relay)
    bot = "bot:pingpong/gate-2"

    # Heard three times over a second: established, so its silence alerts.
    await publish_established(redis_server, lambda _: beat("gate-2"))
    await expect(field(page, bot, "status")).to_have_text("up")
    # Silent for a second: down, and its silence alert fires.
    await expect(field(page, bot, "status")).to_have_text("down")
    await expect(tile(page, bot)).to_have_attribute("data-status", "down")
    firing = alert_item(page, "silence", bot, "#alerts-active")
    await expect(firing).to_have_attribute("data-state", "firing")
    await expect(firing).to_contain_text("firing")
    await expect(page.locator("#announcer")).to_contain_text("Alert firing")
    await expect(page.locator("#bots-summary")).to_have_text("1 bot · 1 down")

    # It publishes again: up, and the alert moves to the resolved ones.
    await redis_server.publish(beat("gate-2", "pong"))
    await expect(field(page, bot, "status")).to_have_text("up")
    resolved = alert_item(page, "silence", bot, "#alerts-resolved")
    await expect(resolved).to_have_attribute("data-state", "resolved")
    await expect(alert_item(page, "silence", bot, "#alerts-active")).to_have_count(0)
    await expect(alert_item(page, "silence", bot)).to_have_count(1)
    await expect(page.locator("#announcer")).to_contain_text("Alert resolved")
    await expect(page.locator("#alerts-none")).to_be_visible()

    # A page opened now learns both from the relay's endpoints.
    second = await open_dashboard(relay.http_url)
    await expect(alert_item(second.page, "silence", bot, "#alerts-resolved")).to_have_attribute(
        "data-state", "resolved"
    )
    await expect(field(second.page, bot, "status")).to_have_text("up")
    assert_clean(dashboard)
    assert_clean(second)


async def test_the_chart_starts_from_history_then_appends_live_points_once(
    redis_server: RedisServer, start_relay: RelayFactory, open_dashboard: OpenDashboard
) -> None:
    relay = await start_relay(redis_server.url)
    bot = "bot:pingpong/gate-3"
    for latency in (10, 20, 30, 40, 50):
        await redis_server.publish(beat("gate-3", latency=latency))
    await history_count(relay, bot, 5)

    # The page's history request waits until live points have arrived, so its answer
    # overlaps them: the merge must take each id once.
    release = asyncio.Event()
    history_urls: list[str] = []

    async def hold(route: Route) -> None:
        history_urls.append(route.request.url)
        await release.wait()
        await route.continue_()

    dashboard = await open_dashboard("about:blank")
    page = dashboard.page
    await page.route(lambda url: "/history?" in url, hold)
    await page.goto(relay.http_url)
    await connected(dashboard, relay)
    chart = field(page, bot, "chart")
    await expect(chart).to_have_attribute("data-history", "loading")

    for latency in (60, 70, 80):
        await redis_server.publish(beat("gate-3", latency=latency))
    await expect(chart).to_have_attribute("data-points", "3")
    await expect(field(page, bot, "latency")).to_have_text("80.0 ms")
    await history_count(relay, bot, 8)
    release.set()

    await expect(chart).to_have_attribute("data-history", "loaded")
    await expect(chart).to_have_attribute("data-points", "8")
    assert len(history_urls) == 1
    assert f"bot={quote(bot, safe='')}" in history_urls[0]
    assert "since=" in history_urls[0]
    ids = await page.evaluate("(bot) => window.pingpongDashboard.chartIds(bot)", bot)
    assert len(ids) == 8
    assert len(set(ids)) == 8
    assert all(isinstance(i, str) for i in ids)
    values = await page.evaluate("(b) => window.pingpongDashboard.chartPoints(b)", bot)
    assert [v for _, v in values] == [10, 20, 30, 40, 50, 60, 70, 80]

    # Live points after that are appended, once each.
    for latency in (90, 100):
        await redis_server.publish(beat("gate-3", latency=latency))
    await expect(chart).to_have_attribute("data-points", "10")
    await expect(chart).to_have_attribute("aria-label", re.compile(r"10 points, latest 100 ms"))
    ids = await page.evaluate("(bot) => window.pingpongDashboard.chartIds(bot)", bot)
    assert len(ids) == len(set(ids)) == 10
    # The chart itself (uPlot's canvas) is there and fits its container.
    canvas = chart.locator("canvas").first
    await expect(canvas).to_be_visible()
    box = await chart.bounding_box()
    canvas_box = await canvas.bounding_box()
    assert box is not None
    assert canvas_box is not None
    assert canvas_box["width"] <= box["width"] + 1
    assert_clean(dashboard)
