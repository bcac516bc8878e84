"""The pipeline's log volume: the design's stage lines at DEBUG (or INFO when asked for),
and what an operator reads at INFO, one summary line per interval with the traffic's figures."""

from __future__ import annotations

import logging
import time

import orjson
import pytest

from pingpong_relay.hub import Hub
from pingpong_relay.limits import BotAllowList
from pingpong_relay.messages import BotMessage
from pingpong_relay.pipeline import SUMMARY_MAX_BOTS, Pipeline, Traffic
from pingpong_relay.telemetry.metrics import RelayMetrics
from tests.unit.hub.support import FakePeer

STAGES = ("received", "broadcasting", "broadcast_done", "sent")


def _pipeline(stage_level: int = logging.DEBUG) -> tuple[Pipeline, Hub]:
    metrics = RelayMetrics()
    hub = Hub(metrics, max_client_buffer_bytes=1 << 20)
    hub.add(FakePeer("CLIENT-1"))

    def observe(_bot: str, _message: BotMessage, _now_s: float) -> None:
        return None

    pipeline = Pipeline(
        hub,
        metrics,
        observe,
        max_message_bytes=16 * 1024,
        accept_bots=BotAllowList(["bot:pingpong/*"]),
        max_bot_rate=1.0,  # bursts of 10
        stage_level=stage_level,
    )
    return pipeline, hub


def _beat(source: str, n: int) -> bytes:
    now_ms = time.time_ns() // 1_000_000
    return orjson.dumps({"type": "ping", "latency": n, "timestamp": now_ms, "source": source})


def _events(caplog: pytest.LogCaptureFixture, *names: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) in names]


def test_at_info_no_line_per_message_and_one_summary_with_the_figures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    pipeline, hub = _pipeline()
    for n in range(12):  # two bots; beta sends 12 against a burst of 10
        pipeline.on_message("bot:pingpong", _beat("alpha", n))
        hub.flush()
        pipeline.on_message("bot:pingpong", _beat("beta", n))
        hub.flush()
    pipeline.on_message("bot:pingpong", b"not json")
    pipeline.on_message("bot:other", _beat("stranger", 0))  # not in --accept-bots
    assert _events(caplog, *STAGES) == []

    fields = pipeline.log_summary(60.0)
    [line] = _events(caplog, "summary")
    assert line.levelno == logging.INFO
    assert fields is not None
    assert {k: v for k, v in fields.items() if k != "p99_relay_latency_ms"} == {
        "event": "summary",
        "interval_s": 60.0,
        "messages": 20,  # alpha 10 (its burst) + beta 10; two over the rate each
        "bots": 2,
        "clients": 1,
        "rejected": 2,
        "dropped": 4,
    }
    assert fields["p99_relay_latency_ms"] is not None
    assert 0 <= fields["p99_relay_latency_ms"] < 1000
    assert getattr(line, "messages", None) == 20  # the JSON log's fields
    message = line.getMessage()
    assert message.startswith(
        "relayed 20 messages from 2 bots to 1 clients in the last 60 s "
        "(rejected 2, dropped 4 over --max-bot-rate, p99 relay latency "
    )
    assert message.endswith(" ms)")

    # Counting starts again; nothing happened since, so no line at all.
    assert pipeline.log_summary(60.0) is None
    assert len(_events(caplog, "summary")) == 1


def test_the_stage_lines_are_debug_or_info_when_asked_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    pipeline, hub = _pipeline()
    pipeline.on_message("bot:pingpong", _beat("alpha", 1))
    hub.flush()
    stages = _events(caplog, *STAGES)
    assert [getattr(r, "event", None) for r in stages] == [
        "received",
        "broadcasting",
        "sent",
        "broadcast_done",
    ]
    assert {r.levelno for r in stages} == {logging.DEBUG}

    caplog.clear()
    caplog.set_level(logging.INFO)
    pipeline, hub = _pipeline(stage_level=logging.INFO)  # --log-stages
    pipeline.on_message("bot:pingpong", _beat("alpha", 1))
    hub.flush()
    stages = _events(caplog, *STAGES)
    assert [getattr(r, "event", None) for r in stages] == [
        "received",
        "broadcasting",
        "broadcast_done",  # sent to client: one per client, DEBUG whatever is asked
    ]
    assert {r.levelno for r in stages} == {logging.INFO}


def test_a_flood_of_made_up_ids_is_counted_without_growing_the_summary() -> None:
    traffic = Traffic()
    for n in range(SUMMARY_MAX_BOTS + 50):
        traffic.relayed(f"bot:pingpong/junk{n}")
    assert traffic.messages == SUMMARY_MAX_BOTS + 50
    assert len(traffic.bots) == SUMMARY_MAX_BOTS
    assert traffic.summary(1.0, 0, None)["bots"] == SUMMARY_MAX_BOTS
