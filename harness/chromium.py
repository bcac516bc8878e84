"""Which Chromium the browser tests and the dashboard benchmark drive, and how it starts.

Debian's package (what `make test` installs), never a browser download; the flags keep it
off this machine's closed network (background fetches are refused many at a time).
"""

from __future__ import annotations

import os
from typing import Final

from playwright.async_api import Browser, Playwright

CHROMIUM: Final = os.environ.get("PINGPONG_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def missing() -> str | None:
    """Why Chromium cannot start, or None."""
    if os.access(CHROMIUM, os.X_OK):
        return None
    return (
        f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium package "
        "(or point PINGPONG_CHROMIUM at a Chromium binary)"
    )


async def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless, with the flags above."""
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
