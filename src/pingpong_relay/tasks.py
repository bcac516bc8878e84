"""Stopping owned background tasks: the one way every module shuts its tasks down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

__all__ = ["cancel_and_wait", "drain_then_cancel"]

log = logging.getLogger("pingpong_relay.tasks")


# A library may swallow a cancellation (redis-py can, inside a command); the task then
# goes on to its next await, where only a fresh cancel() reaches it.
RECANCEL_AFTER_S = 0.5


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancels each task and waits until it has finished unwinding, cancelling it again
    while it keeps running (a swallowed cancellation must not hang a shutdown)."""
    owned = [task for task in tasks if task is not None]
    live = set(owned)
    while live:
        for running in live:
            running.cancel()
        _, live = await asyncio.wait(live, timeout=RECANCEL_AFTER_S)
    for done in owned:
        if not done.cancelled() and done.exception() is not None:
            log.error("task %s had failed", done.get_name(), exc_info=done.exception())


async def drain_then_cancel(
    queue: asyncio.Queue[Any], task: asyncio.Task[Any] | None, timeout_s: float
) -> None:
    """Gives a worker up to `timeout_s` to finish what is queued, then stops it."""
    if task is None:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(queue.join(), timeout_s)
    await cancel_and_wait(task)
