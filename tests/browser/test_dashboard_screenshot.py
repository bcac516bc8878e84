"""A populated dashboard, screenshotted (`make screenshot` keeps docs/dashboard.png from it)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import redis.asyncio as aioredis
from playwright.async_api import expect

from tests.browser.conftest import OpenDashboard
from tests.browser.dashboard_support import (
    alert_item,
    assert_clean,
    beat,
    connected,
    field,
    history_count,
)
from tests.support import RedisServer, RelayFactory

SCREENSHOT_BOTS: dict[str, Callable[[int], float]] = {
    "gate-1": lambda i: 38 + 9 * math.sin(i / 4) + 4 * math.sin(i * 1.7),
    "gate-2": lambda i: 72 + 22 * math.sin(i / 6) + 6 * math.cos(i * 2.3),
    "okx-arb": lambda i: 55 + 12 * math.sin(i / 3),
    "kraken-mm": lambda i: 260 + 45 * math.sin(i / 5) + 15 * math.cos(i * 1.3),
}
SCREENSHOT_SILENT_AFTER = {"okx-arb": 25}


def save_png(png: bytes, targets: list[Path]) -> None:
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(png)


@contextlib.asynccontextmanager
async def publishing(url: str, period_s: float = 0.1) -> AsyncIterator[list[int]]:
    """Publishes a heartbeat for every SCREENSHOT_BOTS bot each period until the block ends."""
    rounds = [0]
    client = aioredis.from_url(url)

    async def run() -> None:
        for i in itertools.count():
            for name, latency in SCREENSHOT_BOTS.items():
                if i < SCREENSHOT_SILENT_AFTER.get(name, math.inf):
                    kind = "ping" if i % 2 == 0 else "pong"
                    await client.publish("bot:pingpong", beat(name, kind, round(latency(i), 1)))
            rounds[0] = i + 1
            await asyncio.sleep(period_s)  # the bots' own cadence, not a wait for anything

    task = asyncio.create_task(run())
    try:
        yield rounds
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.aclose()


async def test_screenshot_of_a_populated_dashboard(
    redis_server: RedisServer,
    start_relay: RelayFactory,
    open_dashboard: OpenDashboard,
    tmp_path: Path,
) -> None:
    relay = await start_relay(
        redis_server.url,
        "--silence-timeout",
        "2",
        "--silence-for",
        "0",
        "--evaluation-interval",
        "0.2",
        "--stats-interval",
        "1",
        "--latency-threshold",
        "150",
        "--latency-for",
        "0",
    )
    async with publishing(redis_server.url):
        await history_count(relay, "bot:pingpong/gate-1", 20)
        dashboard = await open_dashboard(relay.http_url)
        page = dashboard.page
        await connected(dashboard, relay)
        await expect(field(page, "bot:pingpong/okx-arb", "status")).to_have_text("down")
        await expect(field(page, "bot:pingpong/kraken-mm", "status")).to_have_text("degraded")
        await expect(field(page, "bot:pingpong/gate-1", "status")).to_have_text("up")
        await expect(field(page, "bot:pingpong/gate-2", "status")).to_have_text("up")
        await expect(
            alert_item(page, "silence", "bot:pingpong/okx-arb", "#alerts-active")
        ).to_have_attribute("data-state", "firing")
        await expect(
            alert_item(page, "latency", "bot:pingpong/kraken-mm", "#alerts-active")
        ).to_have_attribute("data-state", "firing")
        for name in SCREENSHOT_BOTS:
            await expect(field(page, f"bot:pingpong/{name}", "chart")).to_have_attribute(
                "data-points", re.compile(r"^([2-9]\d|\d{3,})$")
            )
            await expect(field(page, f"bot:pingpong/{name}", "rate")).to_contain_text("1 min: ")
        # Some seconds of points, so the charts show a shape.
        await page.wait_for_function(
            """(bot) => {
                const points = window.pingpongDashboard.chartPoints(bot);
                return points.length > 0 && points[points.length - 1][0] - points[0][0] >= 8000;
            }""",
            arg="bot:pingpong/gate-1",
            timeout=20_000,
        )
        await expect(page.locator("#relay [data-field=rate]")).to_have_text(re.compile(r"/s$"))
        png = await page.screenshot()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 20_000
    targets = [tmp_path / "dashboard.png"]
    if wanted := os.environ.get("PINGPONG_SCREENSHOT"):
        targets.append(Path(wanted))  # the owner's docs/dashboard.png
    await asyncio.to_thread(save_png, png, targets)
    assert (tmp_path / "dashboard.png").stat().st_size == len(png)
    assert_clean(dashboard)
