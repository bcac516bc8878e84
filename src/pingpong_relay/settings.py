"""One settings object for the relay, built once from command-line flags and PINGPONG_* env vars."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from pingpong_relay.defaults import (
    DEFAULT_CHANNEL,
    DEFAULT_REDIS_URL,
    MAX_CLOCK_SKEW_S,
    SLOW_CLIENT_POLICIES,
)
from pingpong_relay.messages import MAX_PAYLOAD_BYTES
from pingpong_relay.origins import is_loopback
from pingpong_relay.parsing import (
    boolean,
    bot_pattern,
    choice,
    duration,
    duration_or_zero,
    frame_ancestors,
    http_url,
    non_negative_float,
    non_negative_int,
    percentile,
    port_number,
    positive_float,
    positive_int,
    redis_url_or_embedded,
    window,
    worker_count,
    ws_url_or_empty,
)

__all__ = ["LOG_LEVELS", "SETTING_GROUPS", "Settings"]

LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS: Final = ("text", "json")
AUTH_MODES: Final = ("none", "jwt")

# The topics `serve --help` and docs/configuration.md list the settings under, in order.
SETTING_GROUPS: Final = (
    ("network", "where the relay listens, and its clients' connections"),
    ("Redis", "where the heartbeats come from"),
    ("auth", "who may connect: tokens, origins, host names, framing"),
    ("limits", "what one client, address or bot may cost the relay"),
    ("monitoring", "which bots are tracked, and their statistics"),
    ("alerts", "when a bot is silent or slow, and who is told"),
    ("history", "heartbeats kept in Redis Streams, for replay and analytics"),
    ("TLS", "serving wss:// and https:// directly"),
    ("workers", "several relay processes on the same ports"),
    ("logging", "what the relay logs, and in which format"),
)


def _topic(group: str) -> Callable[..., Any]:
    """The maker of one topic's settings: each field's metadata (flag, env var, --help text
    and topic) derives from what it is given."""
    if group not in {name for name, _ in SETTING_GROUPS}:
        raise ValueError(f"{group!r} is not a topic of SETTING_GROUPS")

    def option(default: Any, help: str, parse: Callable[[str], Any] = str, **extra: Any) -> Any:
        metadata = {"help": help, "parse": parse, "group": group, **extra}
        if isinstance(default, list):
            return field(default_factory=lambda: list(default), metadata=metadata)
        return field(default=default, metadata=metadata)

    return option


_network = _topic("network")
_redis = _topic("Redis")
_auth = _topic("auth")
_limits = _topic("limits")
_monitoring = _topic("monitoring")
_alerts = _topic("alerts")
_history = _topic("history")
_tls = _topic("TLS")
_workers = _topic("workers")
_logging = _topic("logging")


@dataclass(frozen=True)
class Settings:
    """Everything `pingpong-relay serve` can be told. Field names are the flag names."""

    host: str = _network(
        "127.0.0.1",
        "address the WebSocket and HTTP planes listen on; any other than loopback needs "
        "--auth jwt or --allow-anonymous (e.g. 0.0.0.0 for every interface)",
    )
    allow_anonymous: bool = _auth(
        False,
        "serve a non-loopback --host with --auth none: anyone who can reach the ports reads "
        "every bot's data (without it such a relay refuses to start)",
        boolean,
    )
    port: int = _network(
        2808, "WebSocket data-plane port (clients connect to ws://HOST:PORT/)", port_number
    )
    http_port: int = _network(
        2809, "HTTP plane port (/healthz, /metrics); 0 turns the HTTP plane off", port_number
    )
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
    log_level: str = _logging(
        "INFO", "log level: DEBUG, INFO, WARNING or ERROR", choice(LOG_LEVELS, str.upper)
    )
    log_format: str = _logging(
        "text",
        "log line format: text, or json (one object per line)",
        choice(LOG_FORMATS, str.lower),
    )
    log_stages: bool = _logging(
        False,
        "log each message's stages (received, broadcasting, broadcast done) at INFO, not "
        "DEBUG: three lines per message (sent to client stays DEBUG: one per client)",
        boolean,
    )
    log_summary_interval: float = _logging(
        60.0,
        "seconds between INFO lines summing up the traffic (messages, bots, clients, "
        "rejected, p99 relay latency), when there was some; 0: none",
        duration_or_zero,
    )
    slow_client: str = _limits(
        "conflate",
        "what happens to a client whose socket is backed up: conflate (it gets only the "
        "newest message per bot and type once it drains, and is told how many it skipped) "
        "or close (closed with 4001 past --max-client-buffer)",
        choice(SLOW_CLIENT_POLICIES, str.lower),
    )
    max_client_buffer: int = _limits(
        1024 * 1024,
        "with --slow-client close: bytes of unsent data a client may have queued before it "
        "is closed",
        positive_int,
    )
    max_message_bytes: int = _redis(
        MAX_PAYLOAD_BYTES, "largest bot payload accepted from Redis, in bytes", positive_int
    )
    ping_interval: float = _network(
        20.0, "seconds of client silence before the relay sends a WebSocket ping", positive_float
    )
    ping_timeout: float = _network(
        20.0, "seconds to wait for the pong before dropping the client as dead", positive_float
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
    alert_repeat: float = _alerts(
        3600.0, "repeat notifications of a still-firing alert at most this often", duration
    )
    webhook_lease: float = _alerts(
        10.0,
        "with --webhook-url: relays on one Redis elect one sender of alert webhooks with a "
        "lease of this many seconds; a survivor takes over within it when the sender dies",
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
    auth: str = _auth(
        "none",
        "client authentication: none, or jwt (every WebSocket client and data endpoint "
        "needs a valid token)",
        choice(AUTH_MODES, str.lower),
    )
    jwt_secret: str = _auth(
        "",
        "HMAC secret (HS256/384/512) for --auth jwt, at least 32 characters; prefer the "
        "env var, which ps cannot show",
    )
    jwt_public_key: str = _auth(
        "", "PEM file with the public key (RS256 or ES256) for --auth jwt, instead of a secret"
    )
    jwks_url: str = _auth(
        "", "JWKS URL to take public keys (RS256/ES256) from for --auth jwt, instead of a key"
    )
    jwks_refresh: float = _auth(
        300.0, "seconds between JWKS refreshes (an unknown key id also triggers one)", duration
    )
    jwt_audience: str = _auth("", "required `aud` claim, if set")
    jwt_issuer: str = _auth("", "required `iss` claim, if set")
    metrics_token: str = _auth(
        "",
        "bearer token for /metrics and /healthz?detail=1 (with --auth jwt a token with the "
        "metrics scope also does); without it and --auth none both are open",
    )
    frame_ancestors: str = _auth(
        "'none'",
        "CSP frame-ancestors of the HTTP plane: which pages may frame the dashboard, e.g. "
        "'self' or https://ops.example ('none': no page may)",
        frame_ancestors,
    )
    http_request_timeout: float = _limits(
        5.0,
        "seconds an HTTP-plane connection gets to send a whole request's headers (from "
        "connecting, or from the first byte of the next request); then it is closed",
        duration,
    )
    max_http_connections: int = _limits(
        100,
        "most HTTP-plane connections at once (per worker), besides the WebSocket clients; "
        "past it a connection is answered 503. Adds to the open-file headroom",
        positive_int,
    )
    public_ws_url: str = _network(
        "",
        "WebSocket URL the dashboard connects to, when clients reach the data plane some other "
        "way than the page's host and --port (e.g. wss://relay.example.com/ws behind a proxy)",
        ws_url_or_empty,
    )
    allowed_origin: list[str] = _auth(  # noqa: RUF009 - returns a dataclasses.field
        [],
        "browser page Origin that may also use the WebSocket (e.g. https://ops.example); "
        "repeatable. Clients sending no Origin (bots, SDKs, wscat) and the relay's own "
        "dashboard always may; pages on other origins are refused with 403",
        repeat=True,
    )
    allowed_host: list[str] = _auth(  # noqa: RUF009 - returns a dataclasses.field
        [],
        "host name the relay answers to besides its own addresses (and the host of "
        "--public-ws-url), e.g. relay.example.com behind a proxy; repeatable; * for any. "
        "Requests naming another Host are refused (DNS rebinding)",
        repeat=True,
    )
    max_connections: int = _limits(
        0,
        "most WebSocket clients at once (per worker with --workers); more are refused with "
        "HTTP 503. 0: as many as the open-file limit leaves room for (the limit minus 200, "
        "and minus --max-http-connections + 16 with the HTTP plane on); "
        "a larger number is capped there, past which the relay could not even answer",
        non_negative_int,
    )
    max_connections_per_ip: int = _limits(
        0,
        "most WebSocket clients from one address (503 past it); 0: no limit. Behind a "
        "proxy or load balancer every client shares its address",
        non_negative_int,
    )
    connection_rate_per_ip: float = _limits(
        0.0,
        "new connections per second from one address (bursts of 2x; 429 past it); 0: no limit",
        non_negative_float,
    )
    client_frame_rate: float = _limits(
        5.0,
        "frames per second a client may send (bursts of 4x); past it each frame gets an "
        "error, and after 5 such errors the client is closed with 1008",
        positive_float,
    )
    max_bot_rate: float = _limits(
        100.0,
        "messages per second accepted from one bot (bursts of 10 s worth); the excess is "
        "dropped, counted and logged once per 10 s",
        positive_float,
    )
    tls_cert: str = _tls(
        "", "PEM certificate (chain) to serve wss:// and https:// with; needs --tls-key"
    )
    tls_key: str = _tls("", "PEM private key of --tls-cert")
    shutdown_timeout: float = _network(
        3.0,
        "seconds clients get to finish the closing handshake on shutdown",
        positive_float,
    )
    workers: int = _workers(
        1,
        "relay processes sharing the data and HTTP ports (SO_REUSEPORT), each with its own "
        "Redis subscription, under a supervisor that restarts a crashed one; auto: one per "
        "core",
        worker_count,
    )

    # Not a flag: whether --redis-url / PINGPONG_REDIS_URL was given. The embedded
    # Redis may only be started when the operator did not name one.
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
