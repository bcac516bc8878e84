"""The runnable snippets of the docs (docs/bots/, README.md): found by their
`<!-- test: NAME -->` mark, made to point at a test's own relay, Redis and fake bots, and run.

A mark is an HTML comment on the line right before a fenced block. What a test changes in a
snippet is a fixed list of example values (the pages say so under "How these pages are
tested"): the relay's public address, the Redis URL, and whatever addresses and names the
test stands in for (a fake freqtrade, a Hummingbot instance id, a job's command).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Final

from tests.support import ROOT

__all__ = [
    "BOT_DOCS",
    "EXAMPLE_RELAY",
    "EXAMPLE_TOKEN",
    "README",
    "VENV_BIN",
    "for_test",
    "marked_snippets",
    "readme_snippet",
    "running",
    "snippet",
]

BOT_DOCS: Final = ROOT / "docs" / "bots"
README: Final = ROOT / "README.md"
# The venv's node, npm and python come first on a snippet's PATH.
VENV_BIN: Final = Path(sys.executable).parent
# The example values the pages use.
EXAMPLE_RELAY: Final = "https://relay.example.com:2809"
EXAMPLE_REDIS: Final = "redis://127.0.0.1:6379"
EXAMPLE_TOKEN: Final = "0f8e3c1a-6b1d-4c2e-9a57-2d4e6f8a9b10"

_MARK: Final = re.compile(r"^<!-- test: ([a-z0-9-]+) -->\s*$")
_FENCE: Final = re.compile(r"^(```|~~~)")


def marked_snippets(page: Path) -> dict[str, str]:
    """NAME → the text of the fenced block right after `<!-- test: NAME -->` in `page`."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: dict[str, str] = {}
    for index, line in enumerate(lines):
        mark = _MARK.match(line)
        if mark is None:
            continue
        name = mark[1]
        assert name not in found, f"{page.name}: two snippets are marked {name!r}"
        fence = lines[index + 1] if index + 1 < len(lines) else ""
        assert _FENCE.match(fence), f"{page.name}: the mark {name!r} is not right before a fence"
        end = next(
            (at for at in range(index + 2, len(lines)) if lines[at].startswith(fence[:3])), None
        )
        assert end is not None, f"{page.name}: the block marked {name!r} is never closed"
        found[name] = "\n".join(lines[index + 2 : end]) + "\n"
    return found


def snippet(page_name: str, name: str) -> str:
    """The snippet marked `name` in docs/bots/<page_name>."""
    snippets = marked_snippets(BOT_DOCS / page_name)
    assert name in snippets, f"docs/bots/{page_name} has no snippet marked {name!r}"
    return snippets[name]


def readme_snippet(name: str) -> str:
    """The snippet marked `name` in README.md."""
    snippets = marked_snippets(README)
    assert name in snippets, f"README.md has no snippet marked {name!r}"
    return snippets[name]


def for_test(
    text: str, *, relay: str = "", redis: str = "", replace: Mapping[str, str] | None = None
) -> str:
    """`text` with the example relay and Redis replaced by a test's (when given), and each
    other example value in `replace` by its replacement (each must be in the text)."""
    if relay:
        text = text.replace(EXAMPLE_RELAY, relay)
    if redis:
        # A test's Redis is never on 6379, so the second replacement cannot hit the first's.
        text = text.replace(f"{EXAMPLE_REDIS}/0", redis).replace(EXAMPLE_REDIS, redis)
    for example, replacement in (replace or {}).items():
        assert example in text, f"the snippet no longer has {example!r} to replace"
        text = text.replace(example, replacement)
    return text


@contextlib.asynccontextmanager
async def running(
    argv: list[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
    output: bool = False,
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A snippet that runs until stopped (a bot's loop), stopped on the way out with all it
    started (a shell's children; the venv's `node` is a wrapper that starts the real one).
    With `output`, its stdout is a pipe for the test to read (its stderr still goes to the
    test's, where pytest shows it on a failure)."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", **(env or {})},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE if output else asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
