"""NotificationSender through real Apprise: json:// to an HTTP receiver, mailto:// to an SMTP
server (aiosmtpd), both on loopback; grouping a mass silence; URLs Apprise cannot use."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from pingpong_relay.notify.channels import NotificationSender, redact_secrets
from pingpong_relay.telemetry.metrics import RelayMetrics
from tests.integration.notify.support import (
    SMTP_PASSWORD,
    SMTP_USER,
    WAIT_S,
    SenderFactory,
    SmtpServer,
    json_url,
    sample,
    sent,
    transition,
)
from tests.integration.webhooks.support import HookServer

GATE = "bot:pingpong/gate-1"
TITLE = f"[FIRING] {GATE} silent for 2m 5s (rule silence)"


async def test_json_delivers_title_body_and_type(
    receiver: HookServer, make_sender: SenderFactory, metrics: RelayMetrics
) -> None:
    sender = make_sender(
        [json_url(receiver, "ok/a")], public_url="https://relay.example.com", group_wait_s=0.3
    )
    loop = asyncio.get_running_loop()
    submitted_at = loop.time()
    sender.submit(transition(GATE))
    await receiver.until(lambda: len(receiver.seen) == 1)
    waited_s = loop.time() - submitted_at
    (seen,) = receiver.seen
    assert seen.content_type == "application/json"
    assert seen.body["title"] == TITLE
    assert seen.body["type"] == "failure"
    assert seen.body["message"].splitlines() == [
        f"{GATE} silent for 125 s (timeout 30 s)",
        "",
        f"Bot: {GATE}",
        "Rule: silence",
        "Value: silent for 125 s, threshold 30 s",
        "Since: 2025-12-31T23:57:55Z (2m 5s)",
        "Dashboard: https://relay.example.com/?bot=bot%3Apingpong%2Fgate-1",
    ]
    # It waited for its group (group_wait), and no longer than a healthy run needs.
    assert 0.3 <= waited_s < WAIT_S
    await sender.stop()
    assert sent(metrics, 1) == 1


async def test_a_resolution_is_sent_as_success_and_pending_is_not_sent(
    receiver: HookServer, make_sender: SenderFactory
) -> None:
    sender = make_sender([json_url(receiver, "ok/a")], group_wait_s=0.0, group_interval_s=0.1)
    sender.submit(transition(GATE, "pending", value=31.0))
    sender.submit(transition(GATE))
    await receiver.until(lambda: len(receiver.seen) == 1)
    sender.submit(transition(GATE, "resolved", value=0.5))
    await receiver.until(lambda: len(receiver.seen) == 2)
    await sender.stop()
    assert [seen.body["type"] for seen in receiver.seen] == ["failure", "success"]
    assert receiver.seen[1].body["title"] == f"[RESOLVED] {GATE} sending again (rule silence)"


async def test_mailto_delivers_to_an_smtp_server_with_a_login(
    smtp: SmtpServer, make_sender: SenderFactory, metrics: RelayMetrics
) -> None:
    sender = make_sender([smtp.url()])
    sender.submit(transition(GATE))
    (message,) = await smtp.until(1)
    assert message["Subject"] == TITLE
    assert message["From"] == "relay@example.com"
    assert message["To"] == "ops@example.com"
    assert message.get_content_type() == "text/plain"  # sent as text, lines kept
    body = message.get_content()
    assert "Value: silent for 125 s, threshold 30 s\n" in body.replace("\r\n", "\n")
    assert smtp.envelopes == [("relay@example.com", ["ops@example.com"])]
    assert smtp.logins == [(SMTP_USER.encode(), SMTP_PASSWORD.encode())]
    await sender.stop()
    assert sent(metrics, 1, "mailto") == 1


async def test_twenty_silent_bots_are_one_message_per_channel(
    receiver: HookServer, smtp: SmtpServer, make_sender: SenderFactory, metrics: RelayMetrics
) -> None:
    sender = make_sender(
        [
            json_url(receiver, "ok/all"),
            smtp.url(),
            json_url(receiver, "ok/gates") + "?bots=*/gate-1*",
        ],
        group_wait_s=0.3,
        group_interval_s=60.0,
    )
    bots = [f"bot:pingpong/gate-{n}" for n in range(1, 21)]
    for bot in bots:
        sender.submit(transition(bot))
    await receiver.until(lambda: len(receiver.seen) == 2)
    (mail,) = await smtp.until(1)
    await sender.stop()  # sends anything still waiting: nothing more may come
    assert len(receiver.seen) == 2
    assert len(smtp.messages) == 1
    (everyone,) = receiver.bodies("ok/all")
    assert everyone["title"] == "[FIRING] 20 bots: silent (rule silence)"
    assert everyone["message"].splitlines()[0] == "FIRING, rule silence (20):"
    listed = [line for line in everyone["message"].splitlines() if line.startswith("- ")]
    assert [line.split(":", 2)[0] + ":" + line.split(":", 2)[1] for line in listed] == [
        f"- {bot}" for bot in bots
    ]
    assert mail["Subject"] == everyone["title"]
    assert all(bot in mail.get_content() for bot in bots)
    # The channel limited to gate-1 and gate-10 … gate-19 got those 11 only.
    (gates,) = receiver.bodies("ok/gates")
    assert gates["title"] == "[FIRING] 11 bots: silent (rule silence)"
    assert "gate-2:" not in gates["message"]
    assert [sent(metrics, 1), sent(metrics, 2, "mailto"), sent(metrics, 3)] == [1, 1, 1]


async def test_an_alert_that_is_not_a_transition_is_logged_and_counted(
    receiver: HookServer, make_sender: SenderFactory, metrics: RelayMetrics
) -> None:
    sender = make_sender([json_url(receiver, "ok/a")])
    sender.submit({"type": "bot:alert", "rule": "silence"})
    assert sample(metrics, "pingpong_notification_errors_total") == 1
    sender.submit(transition(GATE))  # and the sender goes on
    await receiver.until(lambda: len(receiver.seen) == 1)


def test_submit_is_a_plain_function() -> None:
    # The monitor calls it on the hot path: it must hand off without awaiting anything.
    assert not inspect.iscoroutinefunction(NotificationSender.submit)


# --- URLs Apprise cannot use -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("urls", "says"),
    [
        (["nosuch://secret-token/x"], "channel 1 (nosuch://…): Apprise has no service nosuch://"),
        (
            ["json://127.0.0.1/ok", "discord://secret-webhook-id"],
            "channel 2 (discord://…): Apprise cannot read this discord:// URL",
        ),
        (["not a url"], "channel 1: not an Apprise URL"),
    ],
)
def test_a_url_apprise_cannot_use_is_refused_by_position_and_scheme(
    urls: list[str], says: str
) -> None:
    with pytest.raises(ValueError, match="notification ") as caught:
        NotificationSender(urls, RelayMetrics())
    assert says in str(caught.value)
    assert "secret" not in str(caught.value)


async def test_without_channels_nothing_starts_and_submit_does_nothing() -> None:
    metrics = RelayMetrics()
    sender = NotificationSender([], metrics)
    before = asyncio.all_tasks()
    sender.start()
    assert asyncio.all_tasks() == before
    sender.submit({"not": "an alert"})  # not even read
    assert sample(metrics, "pingpong_notification_errors_total") == 0
    await asyncio.wait_for(sender.stop(), WAIT_S)


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        (
            "tgram://123456789:AAH-bot-token/-100200300",
            ["123456789", "AAH-bot-token", "-100200300"],
        ),
        (
            "mailtos://ops:pass%40word@smtp.example.com?to=x@example.com",
            ["pass@word", "pass%40word"],
        ),
        ("discord://webhook-id/webhook-token", ["webhook-id", "webhook-token"]),
        ("json://host.example.com/path?-apikey=k3y-value", ["k3y-value"]),
    ],
)
def test_an_error_quoting_any_part_of_the_url_is_redacted(url: str, secrets: list[str]) -> None:
    error = f"HTTPError for {url} ({' '.join(secrets)}) after 3 tries"
    redacted = redact_secrets(error, url)
    assert not [secret for secret in secrets if secret in redacted], redacted
    assert redacted.startswith("HTTPError for ")
    assert redacted.endswith(" after 3 tries")
