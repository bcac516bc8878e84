"""Fixtures of the hub tests: real metrics, and a hub that closes slow clients."""

from __future__ import annotations

import pytest

from pingpong_relay.hub import Hub
from pingpong_relay.telemetry.metrics import RelayMetrics
from tests.unit.hub.support import LIMIT_BYTES


@pytest.fixture
def metrics() -> RelayMetrics:
    return RelayMetrics()


@pytest.fixture
def hub(metrics: RelayMetrics) -> Hub:
    return Hub(metrics, max_client_buffer_bytes=LIMIT_BYTES, slow_client="close")
