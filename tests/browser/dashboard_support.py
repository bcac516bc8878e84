"""What the dashboard test modules share: heartbeats, locators, waits, a JWT secret."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

import orjson
from playwright.async_api import Locator, Page, expect

from tests.browser.conftest import Dashboard
from tests.support import RelayProcess

# Playwright's expect options are process-wide; every dashboard test module imports this one,
# so each runs with this bound whichever of them is collected.
expect.set_options(timeout=10_000)

SECRET = "browser-tests-secret-0123456789abcdefghij"
# Quick monitoring, so silence and alerts happen within a test's time.
FAST_MONITORING = (
    "--silence-timeout",
    "1",
    "--silence-for",
    "0",
    "--evaluation-interval",
    "0.2",
    "--stats-interval",
    "1",
)
# What Chromium itself logs while the relay is down: failed connections, not page bugs.
RELAY_DOWN_NOISE = (
    r"ERR_CONNECTION_REFUSED",
    r"WebSocket connection to 'ws://127\.0\.0\.1:\d+/\?[^']*' failed",
)
_last_timestamp = [0]


def beat(source: str, kind: str = "ping", latency: float | None = 12.5) -> bytes:
    """One heartbeat; no two alike (the history takes a repeat within a minute as one).

    Its bot time is a little in the past, as a real bot's is by the time the relay has it.
    """
    stamp = max(int(time.time() * 1000) - 50, _last_timestamp[0] + 1)
    _last_timestamp[0] = stamp
    body: dict[str, Any] = {"type": kind, "timestamp": stamp, "source": source}
    if latency is not None:
        body["latency"] = latency
    return orjson.dumps(body)


def tile(page: Page, bot: str) -> Locator:
    return page.locator(f'[data-bot="{bot}"]')


def field(page: Page, bot: str, name: str) -> Locator:
    return tile(page, bot).locator(f'[data-field="{name}"]')


def alert_item(page: Page, rule: str, bot: str, within: str = "#alerts") -> Locator:
    return page.locator(f'{within} [data-alert="{rule}|{bot}"]')


def assert_clean(dashboard: Dashboard, *allowed: str) -> None:
    problems = dashboard.console.unexpected(*allowed)
    assert problems == [], "\n".join(problems)


async def history_count(relay: RelayProcess, bot: str, count: int, timeout: float = 10) -> None:
    """Waits until the relay's history holds `count` messages of `bot`."""

    async def poll() -> None:
        while True:
            status, body = await relay.get(f"/history?bot={quote(bot)}&limit=10000")
            if status == 200 and len(orjson.loads(body)["items"]) >= count:
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def connected(dashboard: Dashboard, relay: RelayProcess, clients: int = 1) -> None:
    """The page's WebSocket is open and the relay has it as a client."""
    await expect(dashboard.page.locator("#connection")).to_have_attribute("data-state", "open")
    await relay.wait_for("client_connected", count=clients)
