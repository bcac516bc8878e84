"""Fixtures of the monitor tests: real metrics, a hub that writes at once, a clock, monitors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pingpong_relay.hub import Hub
from pingpong_relay.monitor import Monitor
from pingpong_relay.rules import Rule
from pingpong_relay.telemetry.metrics import RelayMetrics
from tests.unit.monitor.support import LATENCY_NOW, SILENCE_NOW, WAIT_S, Clock, MonitorFactory


@pytest.fixture
def metrics() -> RelayMetrics:
    return RelayMetrics()


class WritingHub(Hub):
    """The hub, writing each message at once: its batching per loop turn is test_hub_batching's."""

    def deliver(self, *args: Any, **kwargs: Any) -> int:
        peers = super().deliver(*args, **kwargs)
        self.flush()
        return peers


@pytest.fixture
def hub(metrics: RelayMetrics) -> Hub:
    return WritingHub(metrics, max_client_buffer_bytes=1 << 20)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def make_monitor(
    hub: Hub, metrics: RelayMetrics, clock: Clock
) -> AsyncIterator[MonitorFactory]:
    """make_monitor(rules=…, **options) -> a Monitor on the test's hub and clock, stopped after."""
    made: list[Monitor] = []

    def make(rules: list[Rule] | None = None, **options: Any) -> Monitor:
        chosen: list[Rule] = [LATENCY_NOW, SILENCE_NOW] if rules is None else rules
        monitor = Monitor(hub, metrics, chosen, clock=clock, **options)
        made.append(monitor)
        return monitor

    try:
        yield make
    finally:
        for monitor in made:
            await asyncio.wait_for(monitor.stop(), WAIT_S)
