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
# Rounds (0.1 s each) in which a bot is silent: okx-arb goes down for good, gate-2 for 6 s
# (long enough for the relay's rollups to keep it, see rollups.GAP_FLOOR_MS) and comes back.
SCREENSHOT_SILENT = {"okx-arb": range(25, 1_000_000), "gate-2": range(30, 90)}


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
                if i not in SCREENSHOT_SILENT.get(name, ()):
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
        await expect(
            alert_item(page, "silence", "bot:pingpong/okx-arb", "#alerts-active")
        ).to_have_attribute("data-state", "firing")
        await expect(
            alert_item(page, "latency", "bot:pingpong/kraken-mm", "#alerts-active")
        ).to_have_attribute("data-state", "firing")
        # gate-2 was down for a while and is back: its silence resolved, its line broken.
        await expect(
            alert_item(page, "silence", "bot:pingpong/gate-2", "#alerts-resolved")
        ).to_have_attribute("data-state", "resolved")
        await page.wait_for_function(
            """(bot) => {
                const line = window.pingpongDashboard.chartLine(bot);
                const gap = line.findIndex(([, v]) => v === null);
                return gap > 0 && line.length - gap > 20;
            }""",
            arg="bot:pingpong/gate-2",
            timeout=20_000,
        )
        await expect(field(page, "bot:pingpong/gate-2", "status")).to_have_text("up")
        # Time down counts against availability, for the bot still down and the one back.
        for name in ("okx-arb", "gate-2"):
            for window in ("24h", "7d"):
                await expect(
                    field(page, f"bot:pingpong/{name}", f"availability-{window}")
                ).to_have_text(re.compile(r"^\d{1,2}\.\d\d %$"))
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
        png = await page.screenshot(full_page=True)  # the relay panel too, below the alerts
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 20_000
    targets = [tmp_path / "dashboard.png"]
    if wanted := os.environ.get("PINGPONG_SCREENSHOT"):
        targets.append(Path(wanted))  # the owner's docs/dashboard.png
    await asyncio.to_thread(save_png, png, targets)
    assert (tmp_path / "dashboard.png").stat().st_size == len(png)
    assert_clean(dashboard)
