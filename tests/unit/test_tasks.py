"""Stopping owned tasks, including one whose library swallows the first cancellation."""

from __future__ import annotations

import asyncio

import pytest

from pingpong_relay.tasks import cancel_and_wait


async def test_a_swallowed_cancellation_does_not_hang_the_stop() -> None:
    swallowed = asyncio.Event()

    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed.is_set():
                    raise
                swallowed.set()  # as a library that catches it and carries on would

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(task), 10)
    assert swallowed.is_set()
    assert task.cancelled()


async def test_a_task_that_had_failed_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(broken(), name="broken-task")
    await asyncio.sleep(0)
    await cancel_and_wait(task, None)
    assert "broken-task had failed" in caplog.text
