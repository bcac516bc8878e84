"""The dashboard page in a real headless Chromium, against real relay and Redis processes.

Every wait is on an event (a log line, a DOM state) with a timeout as its upper bound;
nothing sleeps for a fixed time and nothing asserts on the wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import redis.asyncio as aioredis
from playwright.async_api import Locator, Page, Route, WebSocket, expect

from pingpong_relay.auth import mint
from tests.browser.conftest import PHONE, Dashboard, OpenDashboard
from tests.support import RedisServer, RelayFactory, RelayProcess, publish_established

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


async def test_page_loads_cleanly_and_the_data_port_redirects_to_it(
    redis_server: RedisServer, start_relay: RelayFactory, open_dashboard: OpenDashboard
) -> None:
    relay = await start_relay(redis_server.url)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{relay.port}/", allow_redirects=False) as response,
    ):
        assert response.status == 302
        assert response.headers["Location"] == f"{relay.http_url}/"

    requested: list[str] = []
    sockets: list[WebSocket] = []

    dashboard = await open_dashboard(f"http://127.0.0.1:{relay.port}/")
    page = dashboard.page
    page.on("request", lambda request: requested.append(request.url))
    page.on("websocket", lambda socket: sockets.append(socket))
    assert page.url == f"{relay.http_url}/"
    await connected(dashboard, relay)
    await expect(page.locator("#connection")).to_have_text("connected")
    await expect(page.get_by_role("heading", name="Bots", exact=True)).to_be_visible()
    await expect(page.get_by_role("heading", name="Alerts")).to_be_visible()
    await expect(page.locator("#relay [data-field=redis]")).to_have_text("subscribed")
    await expect(page.locator("#relay [data-field=clients]")).to_have_text("1")
    await expect(page.locator("#relay [data-field=version]")).to_have_text(re.compile(r"\d+\.\d"))
    # The vendored chart library and the stylesheet loaded from the relay itself.
    assert await page.evaluate("typeof uPlot") == "function"
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(13, 17, 23)"
    await expect(page.locator("#bots-empty")).to_be_visible()

    # A reload: every request goes to the relay, and the WebSocket asks for what it needs.
    await page.reload()
    await connected(dashboard, relay, clients=2)
    assert requested, "the reload made no request"
    assert all(url.startswith(f"{relay.http_url}/") for url in requested), requested
    assert sockets, "the reload opened no WebSocket"
    expected = f"{relay.ws_url}?events=pingpong%2Cstatus%2Calerts%2Cstats%2Crelay&ids=1"
    assert {s.url for s in sockets} == {expected}
    assert_clean(dashboard)


async def test_the_page_runs_under_its_content_security_policy(
    redis_server: RedisServer, start_relay: RelayFactory, open_dashboard: OpenDashboard
) -> None:
    relay = await start_relay(redis_server.url)
    await redis_server.publish(beat("gate-csp", latency=7))
    dashboard = await open_dashboard(relay.http_url)
    page = dashboard.page
    await connected(dashboard, relay)
    await expect(field(page, "bot:pingpong/gate-csp", "latency")).to_have_text("7.0 ms")
    # Everything the page did so far (scripts, styles, chart, WebSocket) the policy allows.
    assert_clean(dashboard)
    # And the policy is in force: an injected inline script does not run.
    violated = await page.evaluate(
        """() => new Promise((resolve) => {
            document.addEventListener('securitypolicyviolation',
                (event) => resolve(event.effectiveDirective), { once: true });
            const script = document.createElement('script');
            script.textContent = 'window.injectedScriptRan = true';
            document.head.append(script);
            setTimeout(() => resolve('no violation'), 5000);
        })"""
    )
    assert violated == "script-src-elem"
    assert await page.evaluate("window.injectedScriptRan") is None


async def test_the_pure_functions_in_the_page(
    redis_server: RedisServer, start_relay: RelayFactory, open_dashboard: OpenDashboard
) -> None:
    relay = await start_relay(redis_server.url)
    dashboard = await open_dashboard(relay.http_url)
    results = await dashboard.page.evaluate(
        """() => {
        const L = window.pingpongDashboard.logic;
        const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
        const points = [{ t: 0, v: 10 }, { t: 1000, v: 20 }, { t: 61000, v: 30 }];
        return {
          p95: L.p95(hundred),
          p95None: L.p95([]),
          series: L.p95Series(points, 0, 62000, 30000, 60000),
          relative: [L.relativeTime(3400), L.relativeTime(125000), L.relativeTime(-5),
                     L.relativeTime(3 * 3600 * 1000 + 60000)],
          backoff: [L.backoffDelay(0, () => 0), L.backoffDelay(0, () => 1),
                    L.backoffDelay(1, () => 0), L.backoffDelay(3, () => 1),
                    L.backoffDelay(50, () => 0), L.backoffDelay(50, () => 1)],
          merged: L.mergeById(
            [{ id: '5-0', t: 5, v: 1 }, { id: '7-0', t: 7, v: 1 }],
            [{ id: '7-0', t: 7, v: 1 }, { id: '6-0', t: 6, v: 1 }, { id: '5-0', t: 5, v: 1 }],
          ).map((p) => p.id),
          counts: L.countBeats({ ping: 10, pong: 9, toMs: 100 },
                               [{ ms: 100, type: 'ping' }, { ms: 101, type: 'pong' }]),
          url6: L.websocketUrl({ ws_url: null, ws_port: 2808, ws_scheme: 'ws' },
                               { hostname: '::1', href: 'http://[::1]:2809/' }),
          url6b: L.websocketUrl({ ws_url: null, ws_port: 2808, ws_scheme: 'wss' },
                                { hostname: '[::1]', href: 'https://[::1]:2809/' }),
          urlSet: L.websocketUrl({ ws_url: 'wss://relay.example/ws', ws_port: 1, ws_scheme: 'ws' },
                                 { hostname: 'x', href: 'http://x/' }),
        };
    }"""
    )
    assert results["p95"] == 95
    assert results["p95None"] is None
    assert results["series"] == [{"t": 0, "v": 10}, {"t": 30000, "v": 20}, {"t": 60000, "v": 20}]
    assert results["relative"] == ["3 s ago", "2 min ago", "0 s ago", "3 h 1 min ago"]
    assert results["backoff"] == [1000, 1000, 2000, 6000, 30000, 22500]
    assert results["merged"] == ["5-0", "6-0", "7-0"]
    assert results["counts"] == {"ping": 10, "pong": 10}
    query = "?events=pingpong%2Cstatus%2Calerts%2Cstats%2Crelay&ids=1"
    assert results["url6"] == f"ws://[::1]:2808/{query}"
    assert results["url6b"] == f"wss://[::1]:2808/{query}"
    assert results["urlSet"] == f"wss://relay.example/ws{query}"
    assert_clean(dashboard)


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


async def focus_by_tab(page: Page, element_id: str, presses: int = 8) -> list[str]:
    """Presses Tab until `element_id` has focus; each focused element must show it."""
    visited: list[str] = []
    for _ in range(presses):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(
            """() => {
            const el = document.activeElement;
            const style = getComputedStyle(el);
            return { id: el.id || el.className, visible: el.matches(':focus-visible')
                     && style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2 };
        }"""
        )
        visited.append(focused["id"])
        assert focused["visible"], f"no visible focus on {focused['id']}"
        if focused["id"] == element_id:
            return visited
    raise AssertionError(f"Tab never reached #{element_id}: {visited}")


async def test_phone_width_and_keyboard(
    redis_server: RedisServer, start_relay: RelayFactory, open_dashboard: OpenDashboard
) -> None:
    relay = await start_relay(redis_server.url, "--auth", "jwt", "--jwt-secret", SECRET)
    token = mint(SECRET, "phone", now_s=time.time(), ttl_s=600)
    for source in ("gate-6", "a-bot-with-a-rather-long-name-that-must-wrap-somewhere"):
        await redis_server.publish(beat(source, latency=25))
    await relay.wait_for("bot_status", count=2)

    dashboard = await open_dashboard(relay.http_url, size=PHONE)
    page = dashboard.page
    await expect(page.locator("#token-form")).to_be_visible()
    visited = await focus_by_tab(page, "token")
    assert visited[0] == "skip-link"
    await page.keyboard.type(token)
    await page.keyboard.press("Enter")
    tiles = page.locator("[data-bot]")
    await expect(tiles).to_have_count(2)
    for index in range(2):
        await tiles.nth(index).scroll_into_view_if_needed()
        await expect(tiles.nth(index)).to_be_visible()
        await expect(tiles.nth(index).locator("[data-field=chart] canvas")).to_be_visible()
        box = await tiles.nth(index).bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= PHONE[0]
    # Tiles stack: one column.
    first, second = await tiles.nth(0).bounding_box(), await tiles.nth(1).bounding_box()
    assert first is not None
    assert second is not None
    assert second["y"] >= first["y"] + first["height"]
    scroll_width = await page.evaluate("document.scrollingElement.scrollWidth")
    assert scroll_width <= PHONE[0]

    # Reloaded, the token comes from this tab's storage; the header's control works by keys.
    await page.reload()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "open")
    visited = await focus_by_tab(page, "change-token")
    assert visited == ["skip-link", "change-token"]
    await page.keyboard.press("Enter")
    await expect(page.locator("#token-form")).to_be_visible()
    await expect(page.locator("#token")).to_be_focused()
    assert_clean(dashboard)


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
