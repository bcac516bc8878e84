"""The dashboard's connection: reconnecting by itself, and JWT tokens from form and address bar."""

from __future__ import annotations

import re
import time

from playwright.async_api import expect

from pingpong_relay.auth import mint
from tests.browser.conftest import OpenDashboard
from tests.browser.dashboard_support import (
    RELAY_DOWN_NOISE,
    SECRET,
    assert_clean,
    beat,
    connected,
    field,
)
from tests.support import RedisServer, RelayFactory, RelayProcess


async def test_the_page_reconnects_by_itself_when_the_relay_comes_back(
    redis_server: RedisServer, open_dashboard: OpenDashboard
) -> None:
    # Both planes must come back on the same ports: the page keeps its URLs. The
    # start_relay factory cannot reuse the HTTP port, so this test runs its relays itself.
    relay = RelayProcess(redis_server.url)
    restarted: RelayProcess | None = None
    try:
        await relay.start()
        dashboard = await open_dashboard(relay.http_url)
        page = dashboard.page
        await connected(dashboard, relay)
        bot = "bot:pingpong/gate-4"
        await redis_server.publish(beat("gate-4", latency=33))
        await expect(field(page, bot, "latency")).to_have_text("33.0 ms")
        await expect(field(page, bot, "chart")).to_have_attribute("data-points", "1")
        assert_clean(dashboard)

        await relay.stop()
        connection = page.locator("#connection")
        await expect(connection).to_have_attribute("data-state", "closed")
        await expect(connection).to_have_text(
            re.compile(r"disconnected.* — reconnecting in \d+ s"), use_inner_text=True
        )
        await expect(page.locator("#announcer")).to_contain_text("Disconnected")
        await expect(page.locator("#relay [data-field=relay-status]")).to_have_text("not connected")

        restarted = RelayProcess(redis_server.url, port=relay.port, http_port=relay.http_port)
        await restarted.start()
        await expect(connection).to_have_attribute("data-state", "open", timeout=20_000)
        await restarted.wait_for("client_connected")
        await expect(page.locator("#relay [data-field=redis]")).to_have_text("subscribed")

        await redis_server.publish(beat("gate-4", latency=77))
        await expect(field(page, bot, "latency")).to_have_text("77.0 ms")
        await expect(field(page, bot, "status")).to_have_text("up")
        # The gap fill after the reconnect brought nothing twice.
        await expect(field(page, bot, "chart")).to_have_attribute("data-points", "2")
        assert_clean(dashboard, *RELAY_DOWN_NOISE)
    finally:
        for process in (relay, restarted):
            if process is not None:
                await process.stop()


async def test_jwt_token_form_address_bar_token_and_a_wrong_token(
    redis_server: RedisServer, start_relay: RelayFactory, open_dashboard: OpenDashboard
) -> None:
    relay = await start_relay(redis_server.url, "--auth", "jwt", "--jwt-secret", SECRET)
    token = mint(SECRET, "browser-test", now_s=time.time(), ttl_s=600)
    bot = "bot:pingpong/gate-5"
    await redis_server.publish(beat("gate-5", latency=42))
    await relay.wait_for("bot_status")

    # No token: the form, and nothing else asked of the relay.
    dashboard = await open_dashboard(relay.http_url)
    page = dashboard.page
    form = page.locator("#token-form")
    await expect(form).to_be_visible()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "closed")
    await expect(page.locator("[data-bot]")).to_have_count(0)
    # Typed in and sent with Enter.
    await page.locator("#token").focus()
    await page.keyboard.type(token)
    await page.keyboard.press("Enter")
    await expect(form).to_be_hidden()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "open")
    await expect(field(page, bot, "status")).to_have_text("up")
    await redis_server.publish(beat("gate-5", latency=43))
    await expect(field(page, bot, "latency")).to_have_text("43.0 ms")
    await expect(field(page, bot, "availability-24h")).to_have_text(re.compile(r"%$"))
    assert token not in await page.content()
    assert await page.locator("#token").input_value() == ""
    assert_clean(dashboard)

    # ?token= works too, and leaves the address bar at once.
    by_url = await open_dashboard(f"{relay.http_url}/?token={token}&view=wall")
    await expect(by_url.page.locator("#connection")).to_have_attribute("data-state", "open")
    await expect(field(by_url.page, bot, "status")).to_have_text("up")
    assert by_url.page.url == f"{relay.http_url}/?view=wall"
    assert token not in await by_url.page.content()
    assert_clean(by_url)

    # A token the relay refuses: the form again, saying why.
    forged = mint("another-secret-that-is-long-enough-0123456789", "x", now_s=time.time(), ttl_s=60)
    refused = await open_dashboard(f"{relay.http_url}/?token={forged}")
    await expect(refused.page.locator("#token-form")).to_be_visible()
    await expect(refused.page.locator("#token-reason")).to_have_text(
        re.compile(r"refused the token: token signature does not verify")
    )
    await expect(refused.page.locator("#connection")).to_have_attribute("data-state", "closed")
    await expect(refused.page.locator("[data-bot]")).to_have_count(0)
    assert forged not in await refused.page.content()
    assert forged not in refused.page.url
    assert_clean(refused, r"status of 401")

    # A token that runs out while the page is open: the relay closes with 4003; the form
    # comes back, saying so.
    short = mint(SECRET, "short-lived", now_s=time.time(), ttl_s=3)
    expiring = await open_dashboard(f"{relay.http_url}/?token={short}")
    await expect(expiring.page.locator("#token-form")).to_be_visible()
    await expect(expiring.page.locator("#token-reason")).to_have_text(
        "Your token expired. Enter a new one to go on."
    )
    await expect(expiring.page.locator("#announcer")).to_contain_text("Connected to the relay")
    await expect(expiring.page.locator("#connection")).to_have_attribute("data-state", "closed")
    assert await expiring.page.evaluate("sessionStorage.length") == 0
    assert_clean(expiring, r"status of 401")
