"""One settings object for the relay, built once from command-line flags and PINGPONG_* env vars."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Final

from pingpong_relay.defaults import (
    DEFAULT_CHANNEL,
    DEFAULT_REDIS_URL,
    MAX_CLOCK_SKEW_S,
)
from pingpong_relay.messages import MAX_PAYLOAD_BYTES
from pingpong_relay.notification_groups import DEFAULT_GROUP_INTERVAL_S, DEFAULT_GROUP_WAIT_S
from pingpong_relay.notifications import parse_channel
from pingpong_relay.origins import is_loopback
from pingpong_relay.parsing import (
    bot_pattern,
    choice,
    duration,
    duration_or_zero,
    http_url,
    percentile,
    positive_float,
    positive_int,
    redis_url_or_embedded,
    window,
)
from pingpong_relay.setting_topics import topic_option
from pingpong_relay.settings_ingest import IngestSettings

__all__ = ["MAX_GROUP_WAIT_S", "WEBHOOK_FORMATS", "Settings"]

WEBHOOK_FORMATS: Final = ("json", "alertmanager")
# The promise: a group's first notification leaves within 10 s of its first transition.
MAX_GROUP_WAIT_S: Final = 10.0

_redis = topic_option("Redis")
_monitoring = topic_option("monitoring")
_alerts = topic_option("alerts")
_history = topic_option("history")


@dataclass(frozen=True)
class Settings(IngestSettings):
    """Everything `pingpong-relay serve` can be told. Field names are the flag names."""

    redis_url: str = _redis(
        DEFAULT_REDIS_URL,
        "Redis to subscribe to: redis:// or rediss:// (with password and db number), or a "
        "Sentinel-managed master, redis+sentinel://host:26379[,host2:26379]/mymaster[/db]. "
        "When not given and nothing answers on 127.0.0.1:6379, an embedded Redis is started; "
        "'embedded' starts one even when something answers there",
        redis_url_or_embedded,
    )
    channel: list[str] = _redis(  # noqa: RUF009 - returns a dataclasses.field
        [DEFAULT_CHANNEL],
        "Redis Pub/Sub channel to relay; repeat the flag (or comma-separate the env var) "
        "for several",
        repeat=True,
    )
    channel_pattern: list[str] = _redis(  # noqa: RUF009 - returns a dataclasses.field
        [],
        "Redis channel pattern to relay as well (PSUBSCRIBE, e.g. 'bot:*:pingpong'); repeatable",
        repeat=True,
    )
    max_message_bytes: int = _redis(
        MAX_PAYLOAD_BYTES, "largest bot payload accepted from Redis, in bytes", positive_int
    )
    redis_health_interval: float = _redis(
        5.0,
        "seconds between PINGs on the Redis subscription that prove it is alive",
        positive_float,
    )
    reconnect_max_delay: float = _redis(
        5.0, "cap, in seconds, on the backoff between Redis reconnect attempts", positive_float
    )
    stats_interval: float = _monitoring(
        5.0, "seconds between bot:stats messages to clients subscribed to stats", duration
    )
    max_clock_skew: float = _monitoring(
        MAX_CLOCK_SKEW_S,
        "how far a bot's timestamp may be from the relay's clock, either way, to count as a "
        "transit time (e.g. 5m; > 0); one further off is relayed but counted as clock_skew",
        duration,
    )
    silence_timeout: float = _alerts(
        30.0,
        "a bot is silent after this long without a message (or 3x its usual interval, "
        "if larger); e.g. 30s",
        duration,
    )
    silence_for: float = _alerts(
        30.0,
        "a silent bot is pending this long before it is down and its alert fires (0: at once)",
        duration_or_zero,
    )
    latency_threshold: float = _alerts(
        500.0,
        "latency (ms) above which a bot is degraded and its latency alert pends",
        positive_float,
    )
    latency_window: str = _alerts("1m", "window of the latency alert: 1m, 5m, 15m or 1h", window)
    latency_percentile: float = _alerts(
        0.95, "percentile the latency alert watches (p95 or 0.95)", percentile
    )
    latency_for: float = _alerts(
        30.0,
        "latency must stay above the threshold this long before the alert fires (0: at once)",
        duration_or_zero,
    )
    alert_rules: str = _alerts(
        "", "TOML file of alert rules; replaces the latency and silence flags' rules"
    )
    webhook_url: list[str] = _alerts(  # noqa: RUF009 - returns a dataclasses.field
        [], "URL each alert transition is POSTed to as JSON; repeatable", http_url, repeat=True
    )
    webhook_format: str = _alerts(
        "json",
        "body of each webhook: json (the bot:alert transition) or alertmanager "
        "(Alertmanager's version 4 payload, for receivers made for Alertmanager)",
        choice(WEBHOOK_FORMATS, str.lower),
    )
    notify: list[str] = _alerts(  # noqa: RUF009 - returns a dataclasses.field
        [],
        "Apprise URL each alert is sent to (tgram://TOKEN/CHAT_ID, discord://ID/TOKEN, "
        "mailtos://…, json://…; see docs/notifications.md); ?bots=PATTERN,…&rules=NAME,… "
        "limits the channel; repeatable (the env var separates URLs by whitespace)",
        repeat=True,
        separator=None,
    )
    public_url: str = _alerts(
        "", "the relay's dashboard as people reach it, linked from notifications", http_url
    )
    notify_group_wait: float = _alerts(
        DEFAULT_GROUP_WAIT_S,
        "a group's first notification waits this long for more transitions to list (> 0, "
        "at most 10 s)",
        duration,
    )
    notify_group_interval: float = _alerts(
        DEFAULT_GROUP_INTERVAL_S,
        "after a group's first notification, its later transitions go out together this often",
        duration,
    )
    alert_repeat: float = _alerts(
        3600.0, "repeat notifications of a still-firing alert at most this often", duration
    )
    webhook_lease: float = _alerts(
        10.0,
        "with --webhook-url or --notify: relays on one Redis elect one sender of alert "
        "webhooks and notifications with a lease of this many seconds; a survivor takes over "
        "within it when the sender dies",
        duration,
    )
    max_bots: int = _monitoring(
        256,
        "bots tracked for statistics and alerts (each costs up to ~400 KB). When full, a new "
        "bot takes the slot of the least recently heard bot on probation (heard fewer than 3 "
        "times, or over less than 1 s); established bots are never evicted",
        positive_int,
    )
    forget_after: float = _monitoring(
        86400.0,
        "a bot silent this long is forgotten (status, alerts and metric series dropped "
        "without a notification) and not brought back from the history on a restart; "
        "0: never",
        duration_or_zero,
    )
    accept_bots: list[str] = _monitoring(  # noqa: RUF009 - returns a dataclasses.field
        [],
        "shell-style pattern of bot ids (<channel>/<source>, e.g. bot:pingpong/gate-*) "
        "whose messages are accepted; repeatable; default: every bot. Other bots' messages "
        "are not relayed, recorded or tracked: counted as rejected (bot_not_accepted) and "
        "logged at most once per 10 s",
        bot_pattern,
        repeat=True,
    )
    public_bots: list[str] = _monitoring(  # noqa: RUF009 - returns a dataclasses.field
        [],
        "shell-style pattern of bot ids shown on the public status page (/status, "
        "/status.json) and by badges (/badge.svg, /badge.json) to anyone, without a token "
        "even with --auth jwt; repeatable; default: none, and /status answers 404",
        bot_pattern,
        repeat=True,
    )
    evaluation_interval: float = _alerts(
        1.0, "seconds between evaluations of silence and alert rules", duration
    )
    history_retention: float = _history(
        7 * 86400.0,
        "how long accepted messages are kept in Redis Streams (e.g. 7d, 12h); 0 turns history off",
        duration_or_zero,
    )
    history_max_entries: int = _history(
        2_000_000, "most messages kept per bot, whatever their age", positive_int
    )
    redis_url_explicit: bool = field(default=False, metadata={"internal": True})

    def __post_init__(self) -> None:
        _check(self)

    @classmethod
    def options(cls) -> list[dataclasses.Field[Any]]:
        """The fields that are settings (each a flag and an env var), in declaration order."""
        return [f for f in dataclasses.fields(cls) if not f.metadata.get("internal")]

    def with_changes(self, **changes: Any) -> Settings:
        """A copy with these fields changed, checked again as any new Settings is."""
        return dataclasses.replace(self, **changes)


def _check(settings: Settings) -> None:
    """Refuses a combination of settings that cannot work, naming the flags."""
    # picows refuses (by dropping every connection) a pong wait longer than the
    # ping interval, so catch it here with a message that names the flags.
    if settings.ping_timeout > settings.ping_interval:
        raise ValueError(
            f"--ping-timeout ({settings.ping_timeout:g}) must not exceed "
            f"--ping-interval ({settings.ping_interval:g})"
        )
    if not settings.channel and not settings.channel_pattern:
        raise ValueError("at least one --channel or --channel-pattern is required")
    if settings.auth == "none" and not settings.allow_anonymous and not is_loopback(settings.host):
        # Redis's protected mode is the precedent: open to the network only when asked.
        raise ValueError(
            f"refusing to serve {settings.host} with --auth none: anyone who can reach it "
            "would read every bot's data. Use --auth jwt, or --allow-anonymous "
            "(PINGPONG_ALLOW_ANONYMOUS=1) to serve it open anyway"
        )
    if not 0 < settings.notify_group_wait <= MAX_GROUP_WAIT_S:
        raise ValueError(
            f"--notify-group-wait ({settings.notify_group_wait:g}) must be more than 0 and "
            f"at most {MAX_GROUP_WAIT_S:g} s, so a group's first notification stays prompt"
        )
    for position, text in enumerate(settings.notify, 1):
        parse_channel(text, position)  # names the channel by position, never its URL
