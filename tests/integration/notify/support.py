"""What the notification-channel tests share: a real SMTP server (aiosmtpd) on loopback, a
log handler that wakes waiters, the sender's metrics, and alert transitions."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from pingpong_relay.alert_events import AlertEvent, AlertState
from pingpong_relay.backoff import Backoff
from pingpong_relay.notify.channels import NotificationSender
from pingpong_relay.telemetry.metrics import RelayMetrics
from tests.integration.webhooks.support import HookServer

FAST_BACKOFF = Backoff(base_s=0.01, cap_s=0.02)
WAIT_S = 15.0  # the bound on every wait; a healthy run needs a fraction of it
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
SMTP_USER, SMTP_PASSWORD = "relay", "s3cret-smtp-pw"

SenderFactory = Callable[..., NotificationSender]


def json_url(receiver: HookServer, path: str) -> str:
    """The json:// URL with which Apprise POSTs to the receiver's `path`."""
    return receiver.url(path).replace("http://", "json://", 1)


def transition(
    bot: str = "bot:pingpong/gate-1", state: AlertState = "firing", *, value: float = 125.0
) -> dict[str, Any]:
    """The `bot:alert` JSON of a silence alert's transition, as the monitor hands it on."""
    return AlertEvent(
        rule="silence",
        kind="silence",
        bot=bot,
        state=state,
        since_s=T0,
        at_s=T0,
        value=value,
        threshold=30.0,
        repeat=False,
        fired=state != "pending",
        summary=f"{bot} silent for {value:.0f} s (timeout 30 s)",
    ).to_json()


class SmtpServer:
    """A real SMTP server (aiosmtpd) on a free loopback port of the test's own loop; it
    accepts AUTH over plain text, for SMTP_USER and SMTP_PASSWORD only."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str | None, list[str]]] = []
        self.logins: list[tuple[bytes, bytes]] = []
        self.arrived = asyncio.Condition()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(
                self,
                hostname="smtp.test",
                authenticator=self._authenticate,
                auth_require_tls=False,
                loop=loop,
            ),
            "127.0.0.1",
            0,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    def url(self, **query: str) -> str:
        """A mailto:// URL of this server: plain SMTP, no TLS, with a login."""
        params = {"mode": "insecure", "from": "relay@example.com", "to": "ops@example.com"}
        params.update(query)
        tail = "&".join(f"{key}={value}" for key, value in params.items())
        return f"mailto://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{self.port}?{tail}"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            self.logins.append((data.login, data.password))
            ok = (data.login, data.password) == (SMTP_USER.encode(), SMTP_PASSWORD.encode())
            return AuthResult(success=ok)
        return AuthResult(success=False)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """aiosmtpd's hook: one message received."""
        raw = envelope.content if isinstance(envelope.content, bytes) else b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        async with self.arrived:
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.arrived.notify_all()
        return "250 OK"

    async def until(self, count: int, timeout_s: float = WAIT_S) -> list[EmailMessage]:
        async def wait() -> None:
            async with self.arrived:
                await self.arrived.wait_for(lambda: len(self.messages) >= count)

        await asyncio.wait_for(wait(), timeout_s)
        return self.messages


class EventLog(logging.Handler):
    """Records the sender's log lines by their `event` field and wakes whoever waits."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self._changed.set()

    def of(self, event: str) -> list[logging.LogRecord]:
        return [r for r in self.records if getattr(r, "event", None) == event]

    def text(self) -> str:
        return "\n".join(record.getMessage() for record in self.records)

    async def until(self, event: str, count: int = 1, timeout_s: float = WAIT_S) -> None:
        async def wait() -> None:
            while len(self.of(event)) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), timeout_s)


def sample(metrics: RelayMetrics, name: str, channel: int | None = None, scheme: str = "") -> float:
    labels = {} if channel is None else {"channel": str(channel), "scheme": scheme}
    value = metrics.registry.get_sample_value(name, labels)
    assert value is not None, (name, labels)
    return value


def sent(metrics: RelayMetrics, channel: int, scheme: str = "json") -> float:
    return sample(metrics, "pingpong_notifications_sent_total", channel, scheme)


def failed(metrics: RelayMetrics, channel: int, scheme: str = "json") -> float:
    return sample(metrics, "pingpong_notification_failures_total", channel, scheme)


def dropped(metrics: RelayMetrics, channel: int, scheme: str = "json") -> float:
    return sample(metrics, "pingpong_notifications_dropped_total", channel, scheme)
