"""MQTT to a broker that wants TLS and a password: the certificate is verified, the
percent-encoded credentials decoded, and the password never logged or shown."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from tests.integration.ingestion.mqtt_support import WAIT_S
from tests.support import Collector, MosquittoServer, RedisServer, RelayFactory, mqtt_publish

USER, PASSWORD = "bot@fleet", "p:ss/w%rd"
URL_USER, URL_PASSWORD = "bot%40fleet", "p%3Ass%2Fw%25rd"  # percent-encoded for the URL


@dataclass
class SecureBroker:
    server: MosquittoServer
    ca_path: Path
    client_context: ssl.SSLContext

    def url(self, password: str = URL_PASSWORD) -> str:
        return f"mqtts://{URL_USER}:{password}@localhost:{self.server.port}"


@pytest.fixture
async def secure_broker(tmp_path: Path) -> AsyncIterator[SecureBroker]:
    """Mosquitto with a TLS listener (a certificate for localhost from a CA made here) that
    admits only USER with PASSWORD."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca_path, cert_path, key_path = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    server = MosquittoServer(
        extra_config=f"certfile {cert_path}\nkeyfile {key_path}\n", users={USER: PASSWORD}
    )
    await server.start()
    context = ssl.create_default_context(cafile=str(ca_path))
    try:
        yield SecureBroker(server, ca_path, context)
    finally:
        await server.stop()


async def test_mqtts_with_a_password_hears_and_never_logs_the_password(
    redis_server: RedisServer, start_relay: RelayFactory, secure_broker: SecureBroker
) -> None:
    relay = await start_relay(
        redis_server.url,
        "--mqtt-url", secure_broker.url(),
        "--mqtt-topic", "secure/+",
        env={"SSL_CERT_FILE": str(secure_broker.ca_path)},  # the system's CAs, plus ours
    )  # fmt: skip
    await relay.wait_for("mqtt_subscribed", timeout=WAIT_S)
    client = Collector()
    await client.connect(relay.ws_url)
    try:
        await relay.wait_for("client_connected")
        await mqtt_publish(
            secure_broker.server.port,
            "secure/vault-bot",
            b'{"type":"pong","latency":3}',
            host="localhost",
            username=USER,
            password=PASSWORD,
            tls_context=secure_broker.client_context,
        )
        [envelope] = await client.wait_count(1)
        assert envelope["data"]["source"] == "vault-bot"
        health = await relay.health()
        assert health["mqtt"] == "subscribed"
        assert (
            health["mqtt_broker"] == f"mqtts://{URL_USER}:***@localhost:{secure_broker.server.port}"
        )
    finally:
        await client.close()
    await relay.stop()
    log = "\n".join(relay.raw_lines)
    assert "mqtt_subscribed" in log
    assert PASSWORD not in log
    assert URL_PASSWORD not in log


async def test_a_wrong_password_is_retried_and_shown_not_logged(
    redis_server: RedisServer, start_relay: RelayFactory, secure_broker: SecureBroker
) -> None:
    relay = await start_relay(
        redis_server.url,
        "--mqtt-url", secure_broker.url("not-the-password"),
        "--mqtt-topic", "secure/+",
        env={"SSL_CERT_FILE": str(secure_broker.ca_path)},
    )  # fmt: skip
    warning = await relay.wait_for("mqtt_outage_start", timeout=WAIT_S)
    assert "not reachable" in warning["message"]
    assert "authori" in warning["error"].lower() or "password" in warning["error"].lower()
    health = await relay.health()
    assert (health["status"], health["mqtt"]) == ("ok", "disconnected")
    assert "not-the-password" not in "\n".join(relay.raw_lines)


async def test_mqtts_verifies_the_brokers_certificate(
    redis_server: RedisServer, start_relay: RelayFactory, secure_broker: SecureBroker
) -> None:
    # No SSL_CERT_FILE: the CA made here is unknown to the system, so the broker is refused.
    relay = await start_relay(
        redis_server.url, "--mqtt-url", secure_broker.url(), "--mqtt-topic", "secure/+"
    )
    warning = await relay.wait_for("mqtt_outage_start", timeout=WAIT_S)
    assert "certificate" in warning["error"].lower()
    assert (await relay.health())["mqtt"] == "disconnected"
