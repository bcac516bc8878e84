"""What every subcommand shares: exit codes and running a coroutine on the fastest loop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "run_async"]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_FAILURE = 1


def run_async(coro: Coroutine[Any, Any, int]) -> int:
    """Runs a command's coroutine on uvloop where it is installed, else on asyncio's loop."""
    try:
        import uvloop  # optional: absent on Windows, where asyncio's loop serves
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        return asyncio.run(coro)
    return uvloop.run(coro)
