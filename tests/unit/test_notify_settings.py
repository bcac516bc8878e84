"""The notification settings refused at start (never quoting a URL's secrets), and the
Alertmanager body of a webhook."""

from __future__ import annotations

from typing import Any

import pytest

from pingpong_relay.alert_events import AlertEvent, AlertState
from pingpong_relay.app.alerting import AlertmanagerWebhooks, check_channels
from pingpong_relay.settings import Settings

SECRET = "s3cret-token-123"


@pytest.mark.parametrize("wait_s", [0.0, -1.0, 10.5, 60.0])
def test_a_group_wait_outside_0_to_10_s_is_refused(wait_s: float) -> None:
    with pytest.raises(ValueError, match="--notify-group-wait"):
        Settings(notify_group_wait=wait_s)


def test_a_group_wait_of_10_s_is_accepted() -> None:
    assert Settings(notify_group_wait=10.0).notify_group_wait == 10.0


@pytest.mark.parametrize(
    ("urls", "named"),
    [
        ([f"json://127.0.0.1/{SECRET}", f"no-scheme-{SECRET}"], "channel 2"),
        ([f"tgram://{SECRET}/1?bots=", "json://h/x"], "channel 1 (tgram://…)"),
    ],
)
def test_a_malformed_notify_url_is_named_by_position_never_quoted(
    urls: list[str], named: str
) -> None:
    with pytest.raises(ValueError, match=named.replace("(", r"\(").replace(")", r"\)")) as info:
        Settings(notify=urls)
    assert SECRET not in str(info.value)


def test_a_scheme_apprise_does_not_know_is_refused_before_starting() -> None:
    settings = Settings(notify=["json://127.0.0.1/x", f"nosuchservice://{SECRET}@host/"])
    with pytest.raises(ValueError, match=r"channel 2 \(nosuchservice://…\)") as info:
        check_channels(settings)
    assert SECRET not in str(info.value)
    check_channels(Settings(notify=["json://127.0.0.1/x", "tgram://123456789:abcdef/987"]))


def _alert(state: AlertState, at_s: float, fired: bool = True) -> dict[str, Any]:
    return AlertEvent(
        rule="silence",
        kind="silence",
        bot="bot:pingpong/gate-1",
        state=state,
        since_s=at_s,
        at_s=at_s,
        value=40.0,
        threshold=30.0,
        repeat=False,
        fired=fired,
        summary="bot:pingpong/gate-1 silent for 40 s (timeout 30 s)",
    ).to_json()


def test_alertmanager_webhooks_send_firing_and_resolved_and_skip_pending() -> None:
    sent: list[dict[str, Any]] = []
    webhooks = AlertmanagerWebhooks(sent.append, "https://relay.example.com")
    webhooks.submit(_alert("pending", 1000.0, fired=False))
    webhooks.submit(_alert("firing", 1010.0))
    webhooks.submit(_alert("resolved", 1100.0))
    assert [payload["status"] for payload in sent] == ["firing", "resolved"]
    firing, resolved = (payload["alerts"][0] for payload in sent)
    # The resolution starts when the trouble began (its last message, 40 s before firing).
    assert firing["startsAt"] == resolved["startsAt"] == "1970-01-01T00:16:10.000Z"
    assert resolved["endsAt"] == "1970-01-01T00:18:20.000Z"
    assert sent[0]["externalURL"] == "https://relay.example.com"
