"""--notify, --public-url and --webhook-format in a real relay process: a silent bot's alert
reaches a json:// receiver through Apprise, grouped, filtered, sent once across relays, and
a receiver that is down leaves the relay relaying."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from tests.integration.notify.support import json_url
from tests.integration.webhooks.support import HookServer, Seen
from tests.support import (
    Collector,
    RedisServer,
    RelayFactory,
    RelayProcess,
    publish,
    publish_established,
)

PUBLIC_URL = "https://relay.example.com/"
FAST = (
    "--silence-timeout",
    "1",
    "--silence-for",
    "0",
    "--evaluation-interval",
    "0.1",
    "--notify-group-interval",
    "0.5",
)


def _beat(source: str, n: int = 0) -> bytes:
    return orjson.dumps({"type": "ping", "latency": 5, "timestamp": n + 1, "source": source})


async def _establish(redis_server: RedisServer, *sources: str) -> None:
    """Each bot established (its rules apply), all at once, so they fall silent together."""

    def beats(source: str) -> Callable[[int], bytes]:
        return lambda n: _beat(source, n)

    await asyncio.gather(*(publish_established(redis_server, beats(s)) for s in sources))


async def _beat_all(redis_server: RedisServer, *sources: str) -> None:
    await asyncio.gather(*(publish(redis_server.url, _beat(s, 9)) for s in sources))


def _titles(receiver: HookServer, path: str) -> list[str]:
    return [str(body["title"]) for body in receiver.bodies(path)]


async def _title(receiver: HookServer, path: str, prefix: str) -> dict[str, Any]:
    """The first notification at `path` whose title starts with `prefix` (waited for)."""

    def found() -> list[Seen]:
        return [s for s in receiver.at(path) if str(s.body["title"]).startswith(prefix)]

    await receiver.until(lambda: bool(found()), timeout_s=20)
    body: dict[str, Any] = found()[0].body
    return body


async def test_a_silent_bot_notifies_firing_then_resolved_with_the_dashboard_link(
    redis_server: RedisServer, start_relay: RelayFactory, receiver: HookServer
) -> None:
    relay = await start_relay(
        redis_server.url,
        *FAST,
        "--notify",
        json_url(receiver, "ok/a"),
        "--public-url",
        PUBLIC_URL,
        "--notify-group-wait",
        "0.2",
    )
    bot = "bot:pingpong/gate-1"
    await _establish(redis_server, "gate-1")
    firing = await _title(receiver, "ok/a", f"[FIRING] {bot} silent")
    assert "(rule silence)" in firing["title"]
    assert firing["type"] == "failure"
    assert f"Dashboard: {PUBLIC_URL}?bot=bot%3Apingpong%2Fgate-1" in firing["message"]

    await _beat_all(redis_server, "gate-1")
    resolved = await _title(receiver, "ok/a", f"[RESOLVED] {bot}")
    assert "(rule silence)" in resolved["title"]
    assert resolved["type"] == "success"
    # The receiver records a request before answering it: the firing one is counted by now.
    assert await relay.metric('pingpong_notifications_sent_total{channel="1",scheme="json"}') >= 1


async def test_twenty_silent_bots_are_one_message_and_a_limited_channel_gets_its_bots_only(
    redis_server: RedisServer, start_relay: RelayFactory, receiver: HookServer
) -> None:
    gates = [f"gate-{n}" for n in range(1, 21)]
    await start_relay(
        redis_server.url,
        *FAST,
        "--notify",
        json_url(receiver, "ok/all"),
        "--notify",
        json_url(receiver, "ok/desk") + "?bots=bot:pingpong/desk-*",
        "--notify-group-wait",
        "4",
    )
    await _establish(redis_server, *gates, "desk-1")
    grouped = await _title(receiver, "ok/all", "[FIRING] 21 bots: silent")
    for gate in gates:
        assert f"- bot:pingpong/{gate}: silent" in grouped["message"]
    await _title(receiver, "ok/desk", "[FIRING] bot:pingpong/desk-1 silent")

    # Back together: one resolution each, and nothing between the two.
    await _beat_all(redis_server, *gates, "desk-1")
    await _title(receiver, "ok/all", "[RESOLVED] 21 bots")
    await _title(receiver, "ok/desk", "[RESOLVED] bot:pingpong/desk-1")
    assert len(_titles(receiver, "ok/all")) == 2
    assert len(_titles(receiver, "ok/desk")) == 2
    assert not any("gate" in title for title in _titles(receiver, "ok/desk"))


async def test_a_receiver_that_is_down_is_counted_and_the_relay_keeps_relaying(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as refused:
        refused.bind(("127.0.0.1", 0))  # bound, never listening: every connection refused
        port = refused.getsockname()[1]
        relay = await start_relay(
            redis_server.url,
            *FAST,
            "--notify",
            f"json://user:s3cret-pw@127.0.0.1:{port}/token-path",
            "--notify-group-wait",
            "0.2",
        )
        await _establish(redis_server, "gate-1")
        failed = await relay.wait_for(lambda r: r.get("event") == "notification_failed", timeout=30)
        assert "channel 1 (json://…)" in failed["message"]
        assert "s3cret-pw" not in "\n".join(relay.raw_lines)
        metric = 'pingpong_notification_failures_total{channel="1",scheme="json"}'
        assert await relay.metric(metric) >= 1

        client = Collector()
        await client.connect(relay.ws_url)
        await relay.wait_for("client_connected")
        await publish(redis_server.url, _beat("gate-1", 50))
        (envelope,) = await client.wait_count(1)
        assert envelope["type"] == "bot:pingpong"
        assert envelope["data"]["source"] == "gate-1"
        await client.close()


async def _wait_alert(relays: list[RelayProcess], state: str) -> None:
    for relay in relays:
        await relay.wait_for(lambda r: r.get("event") == "alert" and r.get("state") == state)


async def test_two_relays_on_one_redis_send_each_transition_once(
    redis_server: RedisServer, start_relay: RelayFactory, receiver: HookServer
) -> None:
    notify = ("--notify", json_url(receiver, "ok/a"), "--notify-group-wait", "0.2")
    args = (*FAST, *notify, "--webhook-lease", "1")
    relays = [await start_relay(redis_server.url, *args) for _ in range(2)]
    # With --notify alone (no --webhook-url) the relays still elect one sender.
    waits = [asyncio.create_task(r.wait_for("lease_acquired")) for r in relays]
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    done.pop().result()  # a relay that never acquires it raises here
    await _establish(redis_server, "gate-1")
    await _title(receiver, "ok/a", "[FIRING] bot:pingpong/gate-1")
    await _wait_alert(relays, "firing")
    await _beat_all(redis_server, "gate-1")
    await _title(receiver, "ok/a", "[RESOLVED] bot:pingpong/gate-1")
    await _wait_alert(relays, "resolved")
    titles = _titles(receiver, "ok/a")
    assert [t.split()[0] for t in titles] == ["[FIRING]", "[RESOLVED]"], titles
    assert sum(1 for relay in relays if relay.events("lease_acquired")) == 1


async def test_alertmanager_format_sends_the_version_4_payload(
    redis_server: RedisServer, start_relay: RelayFactory, receiver: HookServer
) -> None:
    await start_relay(
        redis_server.url,
        *FAST,
        "--webhook-url",
        receiver.url("ok/am"),
        "--webhook-format",
        "alertmanager",
        "--public-url",
        PUBLIC_URL,
    )
    await _establish(redis_server, "gate-1")
    await receiver.until(lambda: len(receiver.at("ok/am")) >= 1, timeout_s=20)
    await _beat_all(redis_server, "gate-1")
    await receiver.until(lambda: len(receiver.at("ok/am")) >= 2, timeout_s=20)
    firing, resolved = receiver.bodies("ok/am")[:2]
    for payload, status in ((firing, "firing"), (resolved, "resolved")):
        assert payload["version"] == "4"
        assert payload["status"] == status
        assert payload["externalURL"] == PUBLIC_URL.rstrip("/")
        (alert,) = payload["alerts"]
        assert alert["status"] == status
        assert alert["labels"] == {
            "alertname": "silence",
            "bot": "bot:pingpong/gate-1",
            "kind": "silence",
        }
        assert len(alert["fingerprint"]) == 16
        assert alert["startsAt"].endswith("Z")
    assert firing["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    assert resolved["alerts"][0]["endsAt"] > resolved["alerts"][0]["startsAt"]
    assert firing["alerts"][0]["fingerprint"] == resolved["alerts"][0]["fingerprint"]


@pytest.mark.parametrize(
    ("args", "env", "error"),
    [
        (
            ["--notify", "json://127.0.0.1/x", "--notify", "nosuch://user:s3cret-pw@host/tok"],
            {},
            "notification channel 2 (nosuch://…): Apprise has no service nosuch://",
        ),
        (
            [],
            {"PINGPONG_NOTIFY": "json://127.0.0.1/x  tgram://s3cret-pw/1?rules="},
            "notification channel 2 (tgram://…): rules= needs a comma-separated list",
        ),
        (["--notify-group-wait", "30s"], {}, "--notify-group-wait (30) must be more than 0"),
        (["--public-url", "relay.example.com"], {}, "--public-url: 'relay.example.com' is not"),
        (["--webhook-format", "xml"], {}, "--webhook-format: 'xml' is not one of json"),
    ],
    ids=["unknown scheme", "env var, bad filter", "group wait", "public url", "format"],
)
def test_a_bad_notification_setting_is_one_error_line_without_the_url(
    args: list[str], env: dict[str, str], error: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pingpong_relay", "serve", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env},
    )
    assert done.returncode == 2
    first, second = done.stderr.splitlines()
    assert first.startswith(f"pingpong-relay serve: error: {error}"), first
    assert second == "try 'pingpong-relay serve --help'"
    assert "s3cret" not in done.stderr
