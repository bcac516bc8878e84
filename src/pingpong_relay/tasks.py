"""Stopping owned background tasks: the one way every module shuts its tasks down."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancels each task and waits until it has finished unwinding."""
    live = [task for task in tasks if task is not None]
    for task in live:
        task.cancel()
    for task in live:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def drain_then_cancel(
    queue: asyncio.Queue[Any], task: asyncio.Task[Any] | None, timeout_s: float
) -> None:
    """Gives a worker up to `timeout_s` to finish what is queued, then stops it."""
    if task is None:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(queue.join(), timeout_s)
    await cancel_and_wait(task)
