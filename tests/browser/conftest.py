"""Browser fixtures: Debian's Chromium driven by Playwright, pages that record console trouble.

No browser is downloaded: Playwright drives the Chromium that `make test` installs from
Debian (PINGPONG_CHROMIUM names another one). Every page records console errors and
warnings and uncaught page errors, so a test can assert the dashboard ran cleanly.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright

from tests.browser import chromium

DESKTOP = (1280, 800)
PHONE = (375, 740)


@dataclass
class Console:
    """Console errors/warnings and page errors of one page, as text."""

    problems: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text}")

    def _on_page_error(self, error: Exception) -> None:
        self.problems.append(f"page error: {error}")

    def unexpected(self, *allowed: str) -> list[str]:
        """The problems that match none of the `allowed` regular expressions."""
        return [p for p in self.problems if not any(re.search(a, p) for a in allowed)]


@dataclass
class Dashboard:
    page: Page
    console: Console


OpenDashboard = Callable[..., Awaitable[Dashboard]]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    problem = chromium.missing()
    if problem:
        pytest.fail(problem)
    async with async_playwright() as playwright:
        launched = await chromium.launch(playwright)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def open_dashboard(browser: Browser) -> AsyncIterator[OpenDashboard]:
    """open_dashboard(url, size=(w, h), timezone_id=None) -> a Dashboard: a page in a fresh
    context (in the viewer's time zone `timezone_id`, e.g. "Asia/Kathmandu"), loaded."""
    contexts: list[BrowserContext] = []

    async def open_page(
        url: str, size: tuple[int, int] = DESKTOP, timezone_id: str | None = None
    ) -> Dashboard:
        width, height = size
        context = await browser.new_context(
            viewport={"width": width, "height": height},
            reduced_motion="reduce",
            timezone_id=timezone_id,
        )
        contexts.append(context)
        page = await context.new_page()
        console = Console()
        console.watch(page)
        await page.goto(url)
        return Dashboard(page, console)

    try:
        yield open_page
    finally:
        for context in contexts:
            await context.close()
