"""--mqtt-url and --mqtt-topic checked before the relay starts (pure): what is refused,
and that a refusal never repeats a password."""

from __future__ import annotations

import pytest

from pingpong_relay.mqtt_topics import bot_segment, check_topic_filter, mqtt_url


@pytest.mark.parametrize(
    "url", ["", "mqtt://127.0.0.1", "mqtt://h:1883", "mqtts://u:p%40ss@broker.example:8883/"]
)
def test_a_broker_url_is_taken_as_given(url: str) -> None:
    assert mqtt_url(url) == url


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://broker:1883", "mqtt://"),
        ("mqtt://", "mqtt://"),
        ("mqtt://u:secret-pw@h:99999", "port"),
        ("mqtt://u:secret-pw@h:1883/topic", "no path or query"),
        ("mqtt://h:1883?x=1", "no path or query"),
    ],
)
def test_a_bad_broker_url_says_why_without_its_password(url: str, words: str) -> None:
    with pytest.raises(ValueError, match=words) as refused:
        mqtt_url(url)
    assert "secret-pw" not in str(refused.value)


@pytest.mark.parametrize("text", ["hbot/+/hb", "pingpong/+", "a/+/+/b", "site/+/#"])
def test_a_filter_with_a_plus_is_accepted(text: str) -> None:
    assert check_topic_filter(text) == text


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "1-200 characters"),
        ("a/" * 120 + "+", "1-200 characters"),
        ("a/\0/+", "1-200 characters"),
        ("hbot/x+/hb", "whole segment"),
        ("hbot/#/+", "whole last segment"),
        ("hbot/a#", "whole last segment"),
        ("hbot/all/hb", "no \\+ segment"),
        ("$SYS/+", "broker's own"),
    ],
)
def test_a_bad_filter_says_why(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        check_topic_filter(text)


def test_the_bot_is_the_first_plus_and_a_hash_takes_the_rest() -> None:
    assert bot_segment("a/+/+/b", "a/one/two/b") == "one"
    assert bot_segment("site/+/#", "site/gate-1/x/y") == "gate-1"
    assert bot_segment("site/+/#", "site") is None
    assert bot_segment("hbot/+/hb", "hbot/x/hb/extra") is None
    assert bot_segment("hbot/+/hb", "other/x/hb") is None
