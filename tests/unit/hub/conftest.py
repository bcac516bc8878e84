"""Fixtures of the hub tests: real metrics, and hubs.

`hub` runs each test twice: with --slow-client close (every peer written through the
checked path) and with conflate (the fan-out lists, written with no per-peer check), so
that both paths keep the same promises. `closing` is the close policy alone, for the tests
of closing slow clients.
"""

from __future__ import annotations

import pytest

from pingpong_relay.hub import Hub
from pingpong_relay.telemetry.metrics import RelayMetrics
from tests.unit.hub.support import LIMIT_BYTES


@pytest.fixture
def metrics() -> RelayMetrics:
    return RelayMetrics()


@pytest.fixture(params=["close", "conflate"])
def hub(metrics: RelayMetrics, request: pytest.FixtureRequest) -> Hub:
    return Hub(metrics, max_client_buffer_bytes=LIMIT_BYTES, slow_client=request.param)


@pytest.fixture
def closing(metrics: RelayMetrics) -> Hub:
    return Hub(metrics, max_client_buffer_bytes=LIMIT_BYTES, slow_client="close")
