"""A muted alert on the dashboard: shown, with its alert and its bot's tile marked muted."""

from __future__ import annotations

import aiohttp
from playwright.async_api import expect

from tests.browser.conftest import OpenDashboard
from tests.browser.dashboard_support import FAST_MONITORING, alert_item, beat, connected, tile
from tests.support import RedisServer, RelayFactory, publish_established


async def test_a_muted_alert_and_its_tile_are_marked_muted(
    redis_server: RedisServer, start_relay: RelayFactory, open_dashboard: OpenDashboard
) -> None:
    relay = await start_relay(redis_server.url, *FAST_MONITORING)
    bot, other = "bot:pingpong/gate-3", "bot:pingpong/gate-4"
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            relay.http_url + "/api/mutes", json={"bots": [bot], "duration": "10m"}
        ) as response,
    ):
        assert response.status == 201
    dashboard = await open_dashboard(relay.http_url)
    page = dashboard.page
    await connected(dashboard, relay)

    await publish_established(redis_server, lambda _: beat("gate-3"))
    await publish_established(redis_server, lambda _: beat("gate-4"))
    muted = alert_item(page, "silence", bot, "#alerts-active")
    await expect(muted).to_have_attribute("data-state", "firing")
    await expect(muted).to_have_attribute("data-muted", "")
    await expect(muted).to_contain_text("firing · muted")
    await expect(tile(page, bot)).to_have_attribute("data-muted", "")
    loud = alert_item(page, "silence", other, "#alerts-active")
    await expect(loud).to_have_attribute("data-state", "firing")
    await expect(loud).not_to_have_attribute("data-muted", "")
    await expect(tile(page, other)).not_to_have_attribute("data-muted", "")

    # A page opened now learns it from /alerts.
    second = await open_dashboard(relay.http_url)
    await expect(alert_item(second.page, "silence", bot, "#alerts-active")).to_have_attribute(
        "data-muted", ""
    )
