"""The dashboard page itself: loads cleanly under its CSP, its pure functions, phone and keys."""

from __future__ import annotations

import re
import time

import aiohttp
from playwright.async_api import Page, WebSocket, expect

from pingpong_relay.auth import mint
from tests.browser.conftest import PHONE, OpenDashboard
from tests.browser.dashboard_support import SECRET, assert_clean, beat, connected, field
from tests.support import RedisServer, RelayFactory


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
          // The client library's full jitter, from 1 s doubling to 30 s.
          backoff: [L.backoffDelay(0, () => 0), L.backoffDelay(0, () => 0.5),
                    L.backoffDelay(1, () => 0.5), L.backoffDelay(3, () => 0.5),
                    L.backoffDelay(4, () => 0.5), L.backoffDelay(50, () => 0.5)],
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
    assert results["backoff"] == [0, 500, 1000, 4000, 8000, 15000]
    assert results["merged"] == ["5-0", "6-0", "7-0"]
    assert results["counts"] == {"ping": 10, "pong": 10}
    query = "?events=pingpong%2Cstatus%2Calerts%2Cstats%2Crelay&ids=1"
    assert results["url6"] == f"ws://[::1]:2808/{query}"
    assert results["url6b"] == f"wss://[::1]:2808/{query}"
    assert results["urlSet"] == f"wss://relay.example/ws{query}"
    assert_clean(dashboard)


async def test_the_pure_functions_behind_outages(
    redis_server: RedisServer, start_relay: RelayFactory, open_dashboard: OpenDashboard
) -> None:
    relay = await start_relay(redis_server.url)
    dashboard = await open_dashboard(relay.http_url)
    results = await dashboard.page.evaluate(
        """() => {
        const L = window.pingpongDashboard.logic;
        return {
          // 10 s silent of the 20 s observed by to_ms; then 10 s more.
          availability: [true, false].map((ongoing) => L.availabilityFrom({
            availability_pct: 50, from_ms: 0, to_ms: 100000, observed_from_ms: 80000,
            outages: [{ ongoing }] })).flatMap((a) => [
              L.availabilityNow(a, 100000), L.availabilityNow(a, 110000),
              L.availabilityNow(a, 110000, 105000)]),
          availabilityFullWindow: L.availabilityNow(L.availabilityFrom({
            availability_pct: 50, from_ms: 0, to_ms: 100000, observed_from_ms: 0,
            outages: [{ ongoing: true }] }), 110000),
          availabilityNone: [L.availabilityFrom({ availability_pct: null }),
                             L.availabilityNow(null, 1)],
          gapMs: [L.gapThresholdMs([0, 200, 400, 600].map((t) => ({ t })), 30000),
                  L.gapThresholdMs([0, 1000, 2000, 9000].map((t) => ({ t })), 30000),
                  L.gapThresholdMs([0, 200].map((t) => ({ t })), 30000)],
          gaps: [5300, 7000].map((now) =>
            L.findGaps([0, 200, 400, 5000, 5200].map((t) => ({ t })), 1000, now)),
          // uPlot steps over undefined (shown as 'skip') and breaks the line at null.
          data: [
            L.chartData([{ t: 0, v: 1 }, { t: 1000, v: 2 }, { t: 9000, v: 3 }],
                        [{ t: 0, v: 1 }, { t: 5000, v: 2 }, { t: 10000, v: 3 }],
                        [{ from: 1000, to: 9000 }, { from: 9000, to: null }]),
            L.chartData([{ t: 0, v: 1 }, { t: 4000, v: 2 }], [], [{ from: 0, to: 4000 }]),
          ].map((d) => d.map((col) => col.map((v) => (v === undefined ? 'skip' : v)))),
        };
    }"""
    )
    # Down still (20 of 30 s silent), back at 105 s (15 of 30), or back before to_ms (10 of 30).
    assert [round(a, 2) for a in results["availability"]] == [50, 33.33, 50, 50, 66.67, 66.67]
    # A full window slides: 60 s silent of its 100 s.
    assert round(results["availabilityFullWindow"], 6) == 40
    assert results["availabilityNone"] == [None, None]
    # Lines break at 3x the usual interval (at least 1 s), at the silence timeout until known.
    assert results["gapMs"] == [1000, 3000, 30000]
    assert results["gaps"] == [
        [{"from": 400, "to": 5000}],
        [{"from": 400, "to": 5000}, {"from": 5200, "to": None}],
    ]
    assert results["data"] == [
        [[0, 1, 5, 9, 10], [1, 2, None, 3, None], [1, "skip", None, "skip", None]],
        [[0, 2, 4], [1, None, 2], ["skip", None, "skip"]],
    ]
    assert_clean(dashboard)


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
