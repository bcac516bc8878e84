"""Outages and time on the dashboard: a silent bot's chart breaks and its availability drops;
the charts' time axes read in the viewer's own time at every span."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import redis.asyncio as aioredis
from playwright.async_api import Page, expect

from pingpong_relay.redis_io.history import FIRST_KEY, stream_key
from pingpong_relay.rollups import GAP_FLOOR_MS
from tests.browser.conftest import DESKTOP, PHONE, OpenDashboard
from tests.browser.dashboard_support import (
    FAST_MONITORING,
    assert_clean,
    beat,
    connected,
    field,
)
from tests.support import RedisServer, RelayFactory, RelayProcess

# What the tile shows for less than full availability: "99.12 %", never "100 %" or "—".
BELOW_100 = re.compile(r"^\d{1,2}\.\d\d %$")
CLOCK = re.compile(r"^(\d\d):(\d\d)(?::(\d\d))?$")
# A time zone 5 h 45 min from UTC: ticks on round local minutes are not round in UTC.
KATHMANDU = ("Asia/Kathmandu", timezone(timedelta(hours=5, minutes=45)))


async def publish_run(redis_server: RedisServer, source: str, latencies: Sequence[float]) -> None:
    """One heartbeat per latency, every 0.2 s: a bot at its usual cadence."""
    for n, latency in enumerate(latencies):
        if n:
            await asyncio.sleep(0.2)  # the bot's own cadence, not a wait for anything
        await redis_server.publish(beat(source, "ping" if n % 2 == 0 else "pong", latency))


async def relay_availability(relay: RelayProcess, bot: str) -> float:
    status, body = await relay.get(f"/analytics?bot={bot}&window=24h")
    assert status == 200
    value = orjson.loads(body)["availability_pct"]
    assert isinstance(value, float)
    return value


async def shown_availability(page: Page, bot: str) -> float:
    text = await field(page, bot, "availability-24h").text_content()
    assert text is not None
    assert BELOW_100.match(text), text
    return float(text.removesuffix(" %"))


async def test_an_outage_breaks_the_chart_and_counts_against_availability(
    redis_server: RedisServer, start_relay: RelayFactory, open_dashboard: OpenDashboard
) -> None:
    relay = await start_relay(redis_server.url, *FAST_MONITORING)
    dashboard = await open_dashboard(relay.http_url)
    page = dashboard.page
    await connected(dashboard, relay)
    bot = "bot:pingpong/gate-7"
    chart = field(page, bot, "chart")
    availability = field(page, bot, "availability-24h")

    # Each run lasts 1.4 s, so a p95 step (one on every whole second) falls inside it.
    first_run = [20.0 + n for n in range(8)]
    await publish_run(redis_server, "gate-7", first_run)
    await expect(chart).to_have_attribute("data-points", "8")
    # Silent past its timeout (1 s): down, and the time down counts against it at once...
    await expect(field(page, bot, "status")).to_have_text("down")
    await expect(availability).to_have_text(BELOW_100)
    # ... and more with every second it stays down.
    while_down = await shown_availability(page, bot)
    await page.wait_for_function(
        """([bot, before]) => {
            const tile = [...document.querySelectorAll('[data-bot]')]
                .find((t) => t.dataset.bot === bot);
            const text = tile.querySelector('[data-field="availability-24h"]').textContent;
            return parseFloat(text) < before;
        }""",
        arg=[bot, while_down],
    )
    # The relay's rollups keep silences of GAP_FLOOR_MS or more: stay silent that long.
    quiet_s = GAP_FLOOR_MS // 1000 + 1
    assert quiet_s < 9
    await expect(field(page, bot, "last-seen")).to_have_text(
        re.compile(rf"^([{quiet_s}-9]|[1-9]\d+) s ago$"), timeout=quiet_s * 1000 + 5000
    )

    second_run = [60.0 + n for n in range(8)]
    await publish_run(redis_server, "gate-7", second_run)
    await expect(field(page, bot, "status")).to_have_text("up")
    await expect(chart).to_have_attribute("data-points", "16")

    # The line breaks once, between the runs; so does the p95 line.
    line = await page.evaluate("(b) => window.pingpongDashboard.chartLine(b)", bot)
    assert [v for _, v in line] == [*first_run, None, *second_run]
    end_of_first, start_of_second = line[7][0], line[9][0]
    assert end_of_first < line[8][0] < start_of_second
    p95 = await page.evaluate("(b) => window.pingpongDashboard.chartLine(b, 'p95')", bot)
    assert any(v is None and end_of_first < t < start_of_second for t, v in p95), p95
    assert all(v is not None for t, v in p95 if t <= end_of_first or t >= start_of_second)

    # Up again, the outage still counts, as the relay's own analytics say.
    async def agrees() -> None:
        while True:
            shown = await shown_availability(page, bot)
            if abs(shown - await relay_availability(relay, bot)) <= 1:
                return
            await asyncio.sleep(0.1)

    await asyncio.wait_for(agrees(), 10)
    assert await shown_availability(page, bot) < while_down

    labels = await page.evaluate("(b) => window.pingpongDashboard.chartTimeLabels(b)", bot)
    assert len(set(labels)) >= 3, labels
    assert_clean(dashboard)


async def seed_history(redis_url: str, source: str, age_s: int, every_s: int) -> None:
    """`source`'s history as if the relay had recorded a heartbeat every `every_s` over the
    last `age_s` seconds (by Redis's clock, the one history ids are made of)."""
    client = aioredis.from_url(redis_url)
    seconds, _ = await client.time()
    now_ms = int(seconds) * 1000
    bot = f"bot:pingpong/{source}"
    pipe = client.pipeline(transaction=False)
    for n, at in enumerate(range(now_ms - age_s * 1000, now_ms - 1000, every_s * 1000)):
        body = {"type": "ping", "latency": 30 + n % 7, "timestamp": at, "source": source}
        raw = orjson.dumps(body)
        fields: dict[Any, Any] = {"channel": "bot:pingpong", "relay_ms": at, "seq": n, "raw": raw}
        pipe.xadd(stream_key(bot), fields, id=f"{at}-0")
        if n == 0:
            pipe.hsetnx(FIRST_KEY, bot, f"{at}-0")
    await pipe.execute()
    await client.aclose()


def clock_seconds(labels: list[str]) -> list[int]:
    """Each "HH:MM[:SS]" as seconds since its midnight, counting on past one midnight."""
    found: list[int] = []
    for label in labels:
        match = CLOCK.match(label)
        assert match, label
        hours, minutes, seconds = (int(g or 0) for g in match.groups())
        value = hours * 3600 + minutes * 60 + seconds
        if found and value < found[-1]:
            value += 86_400
        found.append(value)
    return found


async def test_the_time_axis_reads_in_local_time_at_every_span(
    redis_server: RedisServer, start_relay: RelayFactory, open_dashboard: OpenDashboard
) -> None:
    relay = await start_relay(redis_server.url)
    ages = {"span-40s": (40, 1), "span-6min": (360, 5), "span-14min": (840, 10)}
    for source, (age_s, every_s) in ages.items():
        await seed_history(redis_server.url, source, age_s, every_s)
        await redis_server.publish(beat(source, latency=33))
    zone_name, zone = KATHMANDU
    for clients, size in enumerate((DESKTOP, PHONE), start=1):
        dashboard = await open_dashboard(relay.http_url, size=size, timezone_id=zone_name)
        page = dashboard.page
        await connected(dashboard, relay, clients)
        for source, (age_s, every_s) in ages.items():
            bot = f"bot:pingpong/{source}"
            await expect(field(page, bot, "chart")).to_have_attribute("data-history", "loaded")
            points = len(range(0, age_s * 1000 - 1000, every_s * 1000)) + 1
            await expect(field(page, bot, "chart")).to_have_attribute("data-points", str(points))
            await field(page, bot, "chart").scroll_into_view_if_needed()
            await page.wait_for_function(
                "(b) => window.pingpongDashboard.chartTimeLabels(b).length > 0", arg=bot
            )
            labels = await page.evaluate("(b) => window.pingpongDashboard.chartTimeLabels(b)", bot)
            where = f"{source} at {size}: {labels}"
            assert len(set(labels)) >= 3, where
            # Seconds on a short chart, none on a long one.
            assert all(CLOCK.match(label) for label in labels), where
            if age_s <= 60:
                assert all(label.count(":") == 2 for label in labels), where
            if age_s >= 600:
                assert all(label.count(":") == 1 for label in labels), where
            # Evenly spaced, on round local times, within the chart's span.
            ticks = clock_seconds(labels)
            steps = {b - a for a, b in itertools.pairwise(ticks)}
            assert len(steps) == 1, where
            step = steps.pop()
            assert all(t % step == 0 for t in ticks), where
            now = datetime.now(zone)
            midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
            now_s = int((now - midnight).total_seconds())
            shifted = [t - 86_400 if t > now_s + 120 else t for t in ticks]
            assert all(now_s - age_s * 1.2 - 60 <= t <= now_s + 60 for t in shifted), where
        assert_clean(dashboard)
