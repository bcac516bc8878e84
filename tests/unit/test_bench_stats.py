"""The benchmark's delivery analysis reads a pushed message's tag like a published one's fields."""

from __future__ import annotations

import orjson
import pytest
from bench.stats import ClientLog, analyse_round, message_tags, push_tag


def _envelope(data: dict[str, object]) -> bytes:
    return orjson.dumps({"type": "bot:pingpong", "source": "bot", "data": data})


def test_a_push_tag_names_its_round_seq_and_send_time() -> None:
    data = {"type": "pong", "source": "push-1", "via": "push", "msg": push_tag(7, 3, 1_000)}
    assert message_tags(data) == (3, 7, 1_000)
    assert message_tags({"seq": 1, "round": 2, "sent_ns": 5}) == (1, 2, 5)


@pytest.mark.parametrize("msg", ["hello", "other:1:2:3", "bench:1:2"])
def test_a_message_without_a_benchmark_tag_is_refused(msg: str) -> None:
    with pytest.raises(ValueError, match="not a benchmark push"):
        message_tags({"msg": msg})


def test_pushes_are_timed_from_their_send_and_checked_against_those_accepted() -> None:
    # Push 1 of 3 was refused (the mask says so): the client gets 0 and 2, 2 ms each.
    payloads = [_envelope({"msg": push_tag(5, seq, seq * 10_000_000)}) for seq in (0, 2)]
    times = [2_000_000, 22_000_000]
    log = ClientLog(times, payloads, 2)
    result = analyse_round([log], 5, 3, [bytes([1, 0, 1])])
    assert (result.delivered, result.lost, result.malformed) == (2, 0, 0)
    assert result.latency_ms["p50"] == pytest.approx(2.0)
