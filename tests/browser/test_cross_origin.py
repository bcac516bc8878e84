"""A page on another origin, in real Chromium, cannot read the relay (cross-site WebSocket
hijacking), unless the operator listed that origin."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from playwright.async_api import Browser

from tests.support import DESIGN_PING, RedisServer, RelayFactory, free_port

# What a hostile page does: open the relay's WebSocket with the visitor's network position
# and count what it can read. It reports when the socket ends, or after the first frames.
HOSTILE_PAGE = """<!doctype html><meta charset="utf-8"><title>elsewhere</title><script>
window.result = new Promise((resolve) => {
  const frames = [];
  const ws = new WebSocket(new URLSearchParams(location.search).get("relay"));
  ws.onmessage = (event) => {
    frames.push(event.data);
    if (frames.length >= 2) resolve({frames, ended: false});
  };
  ws.onclose = (event) => resolve({frames, ended: true, code: event.code});
});
</script>"""


async def _visit(
    browser: Browser, relay_ws: str, port: int, then: Callable[[], Awaitable[None]]
) -> dict[str, Any]:
    """Serves the hostile page on 127.0.0.1:`port`, opens it, runs `then`, and returns what
    the page could read."""

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text=HOSTILE_PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    context = await browser.new_context()
    try:
        tab = await context.new_page()
        await tab.goto(f"http://127.0.0.1:{port}/?relay={relay_ws}?events=pingpong,status")
        await then()
        result: dict[str, Any] = await tab.evaluate("window.result")
        return result
    finally:
        await context.close()
        await runner.cleanup()


async def test_a_page_on_another_origin_reads_nothing(
    browser: Browser, redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url)
    await redis_server.publish(DESIGN_PING)  # a bot whose status the page would get
    await relay.wait_for("bot_status")

    async def then() -> None:
        await relay.wait_for("origin_refused")
        await redis_server.publish(DESIGN_PING)

    result = await _visit(browser, relay.ws_url, free_port(), then)
    assert result["frames"] == []
    assert result["ended"]
    assert result["code"] == 1006  # what a browser reports for a refused upgrade
    assert relay.events("origin_refused")[0]["origin"].startswith("http://127.0.0.1:")
    assert not relay.events("client_connected")


async def test_the_same_page_reads_the_relay_once_its_origin_is_listed(
    browser: Browser, redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    # The control: the same page does read frames where the relay lets it, so the empty
    # result above is the relay's refusal, not a page that cannot work.
    page_port = free_port()
    relay = await start_relay(redis_server.url, "--allowed-origin", f"http://127.0.0.1:{page_port}")
    await redis_server.publish(DESIGN_PING)
    await relay.wait_for("bot_status")

    async def then() -> None:
        await relay.wait_for("client_connected")
        await redis_server.publish(DESIGN_PING)

    result = await _visit(browser, relay.ws_url, page_port, then)
    assert len(result["frames"]) == 2, result
    assert not result["ended"]
    assert not relay.events("origin_refused")
