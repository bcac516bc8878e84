"""What the MQTT tests share: a topic of their own on the shared broker, a relay that
hears MQTT."""

from __future__ import annotations

import uuid

from tests.support import RelayFactory, RelayProcess

SHARED_BROKER_PORT = 1883  # the machine's Mosquitto: only for tests that never restart it
WAIT_S = 20.0


def unique(prefix: str) -> str:
    """A topic prefix (or share group) no other test or run uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def mqtt_relay(
    start_relay: RelayFactory, redis_url: str, broker_url: str, *flags: str
) -> RelayProcess:
    """A relay hearing `broker_url` (flags add --mqtt-topic and the rest), once subscribed."""
    relay = await start_relay(redis_url, "--mqtt-url", broker_url, *flags)
    await relay.wait_for("mqtt_subscribed", timeout=WAIT_S)
    return relay


def rejected(reason: str) -> str:
    """The sample counting MQTT messages refused for `reason`."""
    return f'pingpong_ingest_rejected_total{{reason="{reason}",via="mqtt"}}'


ACCEPTED = 'pingpong_ingest_accepted_total{via="mqtt"}'
