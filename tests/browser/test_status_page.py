"""The public status page in Chromium: readable with JavaScript off, styled by its own sheet,
listing the public bots with their availability and nothing of the others."""

from __future__ import annotations

import re
import time

from playwright.async_api import Browser, expect

from pingpong_relay.messages import build_bot_message
from tests.browser.conftest import Console
from tests.support import RedisServer, RelayFactory

PERCENT = re.compile(r"^\d{1,3}\.\d\d %$")


async def test_the_status_page_reads_without_javascript(
    browser: Browser, redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(
        redis_server.url, "--public-bots", "bot:pingpong/gate-*", "--log-stages"
    )
    for source in ("gate-1", "gate-2", "vault"):
        await redis_server.publish(
            build_bot_message("ping", 42.0, round(time.time() * 1000), source)
        )
    await relay.wait_for("bot_status", count=3)

    context = await browser.new_context(java_script_enabled=False)
    try:
        page = await context.new_page()
        console = Console()
        console.watch(page)
        await page.goto(f"{relay.http_url}/status")
        rows = page.locator("table.bots tbody tr")
        await expect(rows).to_have_count(2)
        await expect(rows.locator("th")).to_have_text(
            ["bot:pingpong/gate-1", "bot:pingpong/gate-2"]
        )
        for row in range(2):
            cells = rows.nth(row).locator("td")
            await expect(cells.nth(0)).to_have_text("up")
            await expect(cells.nth(1)).to_have_text("42 ms")
            for column in (2, 3, 4):  # 24 h, 7 d, 30 d
                await expect(cells.nth(column)).to_have_text(PERCENT)
        await expect(page.get_by_role("heading", name="Incidents")).to_be_visible()
        assert "vault" not in await page.content()
        # The linked sheet applied (the CSP allows it): an "up" state is drawn green.
        colour = await rows.first.locator(".state").evaluate(
            "element => getComputedStyle(element).backgroundColor"
        )
        assert colour == "rgb(46, 125, 50)"
        assert console.problems == []
    finally:
        await context.close()
