"""How the relay serves: the settings of its ports, clients, auth, limits, TLS, workers and
logs (the Redis, monitoring, alert and history settings are in settings.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pingpong_relay.defaults import (
    SLOW_CLIENT_POLICIES,
)
from pingpong_relay.parsing import (
    boolean,
    choice,
    duration,
    duration_or_zero,
    frame_ancestors,
    non_negative_float,
    non_negative_int,
    port_number,
    positive_float,
    positive_int,
    worker_count,
    ws_url_or_empty,
)
from pingpong_relay.setting_topics import topic_option

__all__ = ["AUTH_MODES", "LOG_FORMATS", "LOG_LEVELS", "ServingSettings"]

LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS: Final = ("text", "json")
AUTH_MODES: Final = ("none", "jwt")

_network = topic_option("network")
_auth = topic_option("auth")
_limits = topic_option("limits")
_tls = topic_option("TLS")
_workers = topic_option("workers")
_logging = topic_option("logging")


@dataclass(frozen=True)
class ServingSettings:
    """The serving half of Settings (see there); a base class so that each stays readable."""

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
    ping_interval: float = _network(
        20.0, "seconds of client silence before the relay sends a WebSocket ping", positive_float
    )
    ping_timeout: float = _network(
        20.0, "seconds to wait for the pong before dropping the client as dead", positive_float
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
