"""Settings from flags, PINGPONG_* env vars and defaults; URL redaction; the CLI parser."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

import pytest

from pingpong_relay.app.cli import build_parser
from pingpong_relay.defaults import DEFAULT_CHANNEL, DEFAULT_REDIS_URL
from pingpong_relay.messages import MAX_PAYLOAD_BYTES
from pingpong_relay.poll_targets import parse_poll_target
from pingpong_relay.settings import Settings
from pingpong_relay.settings_flags import env_name, flag_name, settings_from_args
from pingpong_relay.urls import redact_url


def serve_settings(*flags: str, env: Mapping[str, str] | None = None) -> Settings:
    namespace = build_parser().parse_args(["serve", *flags])
    return settings_from_args(namespace, env or {})


# One row per Settings option: (name, flag text, flag value, env text, env value).
# The flag and env values differ from each other and from the default.
PRECEDENCE: list[tuple[str, str, Any, str, Any]] = [
    ("host", "::1", "::1", "localhost", "localhost"),
    # A boolean has one value besides its default: both rows set it, in two spellings.
    ("allow_anonymous", "on", True, "1", True),
    ("port", "1111", 1111, "2222", 2222),
    ("http_port", "0", 0, "3333", 3333),
    (
        "redis_url",
        "redis://flag:6379/1",
        "redis://flag:6379/1",
        "rediss://env:6380/2",
        "rediss://env:6380/2",
    ),
    ("channel", "flag-channel", ["flag-channel"], "env-channel", ["env-channel"]),
    ("channel_pattern", "bot:*:pingpong", ["bot:*:pingpong"], "a:*,b:*", ["a:*", "b:*"]),
    ("log_level", "debug", "DEBUG", "warning", "WARNING"),
    ("log_format", "JSON", "json", "Json", "json"),
    ("max_client_buffer", "4096", 4096, "8192", 8192),
    ("max_message_bytes", "1024", 1024, "2048", 2048),
    ("ping_interval", "30", 30.0, "40.5", 40.5),
    ("ping_timeout", "3", 3.0, "4", 4.0),
    ("redis_health_interval", "0.5", 0.5, "0.25", 0.25),
    ("reconnect_max_delay", "10", 10.0, "30", 30.0),
    ("shutdown_timeout", "0.1", 0.1, "7", 7.0),
    ("stats_interval", "2s", 2.0, "500ms", 0.5),
    ("silence_timeout", "1m", 60.0, "45", 45.0),
    ("silence_for", "10s", 10.0, "1m30s", 90.0),
    ("latency_threshold", "250", 250.0, "1000.5", 1000.5),
    ("latency_window", "5m", "5m", "1h", "1h"),
    ("latency_percentile", "p99", 0.99, "0.5", 0.5),
    ("latency_for", "0.5", 0.5, "2m", 120.0),
    ("alert_rules", "/etc/rules.toml", "/etc/rules.toml", "rules.toml", "rules.toml"),
    (
        "webhook_url",
        "http://a/x",
        ["http://a/x"],
        "http://b/1,https://c/2",
        ["http://b/1", "https://c/2"],
    ),
    ("webhook_format", "alertmanager", "alertmanager", "ALERTMANAGER", "alertmanager"),
    (
        "notify",
        "tgram://123:abc/456",
        ["tgram://123:abc/456"],
        # Whitespace separates URLs in the env var: an Apprise URL holds commas.
        " json://h/x?bots=a,b&rules=silence\n\tdiscord://1/t ",
        ["json://h/x?bots=a,b&rules=silence", "discord://1/t"],
    ),
    (
        "public_url",
        "https://relay.example.com",
        "https://relay.example.com",
        "http://r",
        "http://r",
    ),
    ("notify_group_wait", "10s", 10.0, "0.5", 0.5),
    ("notify_group_interval", "5m", 300.0, "30", 30.0),
    ("alert_repeat", "30m", 1800.0, "2h", 7200.0),
    ("max_bots", "10", 10, "20", 20),
    ("forget_after", "1h", 3600.0, "0", 0.0),
    (
        "accept_bots",
        "bot:pingpong/gate-*",
        ["bot:pingpong/gate-*"],
        "a/*,b/x",
        ["a/*", "b/x"],
    ),
    (
        "public_bots",
        "bot:pingpong/gate-*",
        ["bot:pingpong/gate-*"],
        "a/*,b/x",
        ["a/*", "b/x"],
    ),
    ("evaluation_interval", "0.25", 0.25, "2s", 2.0),
    ("history_retention", "0", 0.0, "12h", 43200.0),
    ("history_max_entries", "500", 500, "1000", 1000),
    ("auth", "JWT", "jwt", "Jwt", "jwt"),
    ("jwt_secret", "x" * 32, "x" * 32, "y" * 40, "y" * 40),
    ("jwt_public_key", "/etc/key.pem", "/etc/key.pem", "k.pem", "k.pem"),
    ("jwt_audience", "relay", "relay", "aud", "aud"),
    ("jwks_url", "http://idp/jwks", "http://idp/jwks", "https://j", "https://j"),
    ("jwks_refresh", "1m", 60.0, "10", 10.0),
    ("jwt_issuer", "ops", "ops", "iss", "iss"),
    ("metrics_token", "t1", "t1", "t2", "t2"),
    ("frame_ancestors", "'self'", "'self'", "https://a.example", "https://a.example"),
    ("http_request_timeout", "2", 2.0, "10s", 10.0),
    ("max_http_connections", "5", 5, "50", 50),
    ("slow_client", "close", "close", "Close", "close"),
    ("workers", "3", 3, "2", 2),
    ("webhook_lease", "2s", 2.0, "30", 30.0),
    ("poll_lease", "2s", 2.0, "30", 30.0),
    (
        "public_ws_url",
        "wss://a.example/ws",
        "wss://a.example/ws",
        "ws://b.example:2808/",
        "ws://b.example:2808/",
    ),
    (
        "allowed_origin",
        "https://a.example",
        ["https://a.example"],
        "https://b,https://c",
        ["https://b", "https://c"],
    ),
    (
        "allowed_host",
        "relay.example",
        ["relay.example"],
        "a.example,b.example",
        ["a.example", "b.example"],
    ),
    ("max_connections", "10", 10, "20", 20),
    ("client_frame_rate", "1", 1.0, "2.5", 2.5),
    ("max_connections_per_ip", "3", 3, "4", 4),
    ("connection_rate_per_ip", "1.5", 1.5, "2", 2.0),
    ("max_bot_rate", "5", 5.0, "7.5", 7.5),
    ("max_clock_skew", "90s", 90.0, "1h", 3600.0),
    ("log_stages", "yes", True, "true", True),
    ("log_summary_interval", "30s", 30.0, "0", 0.0),
    ("tls_cert", "c.pem", "c.pem", "d.pem", "d.pem"),
    ("tls_key", "k.pem", "k.pem", "l.pem", "l.pem"),
    (
        "push_token",
        "a" * 16 + "=cron-1",
        [("a" * 16, "cron-1")],
        "b" * 20 + "=x, " + "c" * 36 + "=y",
        [("b" * 20, "x"), ("c" * 36, "y")],
    ),
    ("push_rate", "2", 2.0, "0.5", 0.5),
    ("push_address_rate", "5", 5.0, "50", 50.0),
    (
        "mqtt_url",
        "mqtt://127.0.0.1:1883",
        "mqtt://127.0.0.1:1883",
        "mqtts://u:p@b",
        "mqtts://u:p@b",
    ),
    ("mqtt_topic", "hbot/+/hb", ["hbot/+/hb"], "a/+,b/+/c", ["a/+", "b/+/c"]),
    ("mqtt_share_group", "g1", "g1", "", ""),
    (
        "poll",
        "ft=http://127.0.0.1:8080 mode=freqtrade",
        [parse_poll_target("ft=http://127.0.0.1:8080 mode=freqtrade")],
        "a=http://h/x interval=10s; b=https://h:9/y",
        [parse_poll_target("a=http://h/x interval=10s"), parse_poll_target("b=https://h:9/y")],
    ),
]
PRECEDENCE_IDS = [row[0] for row in PRECEDENCE]


def test_precedence_table_covers_every_option() -> None:
    assert sorted(PRECEDENCE_IDS) == sorted(spec.name for spec in Settings.options())


@pytest.mark.parametrize(
    ("name", "flag_text", "flag_value", "env_text", "env_value"), PRECEDENCE, ids=PRECEDENCE_IDS
)
def test_flag_beats_env_beats_default(
    name: str, flag_text: str, flag_value: Any, env_text: str, env_value: Any
) -> None:
    default = getattr(Settings(), name)
    assert flag_value != default
    assert env_value != default
    env = {env_name(name): env_text}
    assert getattr(serve_settings(), name) == default
    assert getattr(serve_settings(env=env), name) == env_value
    assert getattr(serve_settings(flag_name(name), flag_text), name) == flag_value
    assert getattr(serve_settings(flag_name(name), flag_text, env=env), name) == flag_value


def test_defaults() -> None:
    settings = serve_settings()
    assert settings == Settings()
    assert settings.host == "127.0.0.1"  # loopback: nothing is exposed by default
    assert settings.allow_anonymous is False
    assert settings.port == 2808
    assert settings.http_port == 2809
    assert settings.redis_url == DEFAULT_REDIS_URL
    assert settings.channel == [DEFAULT_CHANNEL]
    assert settings.log_level == "INFO"
    assert settings.log_format == "text"
    assert settings.max_message_bytes == MAX_PAYLOAD_BYTES
    assert settings.redis_url_explicit is False


def test_allow_anonymous_is_a_bare_flag_and_a_false_flag_beats_the_env() -> None:
    assert serve_settings("--allow-anonymous").allow_anonymous is True
    env = {"PINGPONG_ALLOW_ANONYMOUS": "1"}
    assert serve_settings("--allow-anonymous", "false", env=env).allow_anonymous is False
    with pytest.raises(SystemExit):
        serve_settings("--allow-anonymous", "maybe")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.11", "relay.example"])
def test_an_open_relay_on_the_network_needs_allow_anonymous(host: str) -> None:
    with pytest.raises(ValueError, match="--allow-anonymous") as refused:
        serve_settings("--host", host)
    assert "\n" not in str(refused.value)  # one line
    assert serve_settings("--host", host, "--allow-anonymous").host == host
    assert serve_settings("--host", host, env={"PINGPONG_AUTH": "jwt"}).auth == "jwt"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost", "LOCALHOST"])
def test_loopback_hosts_need_no_flag(host: str) -> None:
    assert serve_settings("--host", host).host == host


def test_unrelated_env_vars_are_ignored() -> None:
    env = {"PORT": "1", "PINGPONG": "x", "pingpong_port": "1", "PINGPONG_UNKNOWN": "x"}
    assert serve_settings(env=env) == Settings()


def test_repeated_channel_flag() -> None:
    settings = serve_settings("--channel", "a", "--channel", "b", "--channel", "c")
    assert settings.channel == ["a", "b", "c"]


def test_comma_separated_channel_env() -> None:
    settings = serve_settings(env={"PINGPONG_CHANNEL": " a, b ,,c ,"})
    assert settings.channel == ["a", "b", "c"]


def test_channel_flags_replace_the_env_list() -> None:
    settings = serve_settings("--channel", "x", env={"PINGPONG_CHANNEL": "a,b"})
    assert settings.channel == ["x"]


def test_duplicate_channels_are_removed_in_order() -> None:
    flags = serve_settings("--channel", "b", "--channel", "a", "--channel", "b", "--channel", "a")
    assert flags.channel == ["b", "a"]
    env = serve_settings(env={"PINGPONG_CHANNEL": "c,a,c,b,a"})
    assert env.channel == ["c", "a", "b"]


def test_default_channel_list_is_not_shared() -> None:
    first, second = Settings(), Settings()
    assert first.channel == second.channel == [DEFAULT_CHANNEL]
    assert first.channel is not second.channel


BAD_ENV = [
    ("PINGPONG_PORT", "abc"),
    ("PINGPONG_PORT", "70000"),
    ("PINGPONG_PORT", "-1"),
    ("PINGPONG_PORT", ""),
    ("PINGPONG_HTTP_PORT", "80.5"),
    ("PINGPONG_LOG_LEVEL", "verbose"),
    ("PINGPONG_LOG_FORMAT", "xml"),
    ("PINGPONG_MAX_CLIENT_BUFFER", "0"),
    ("PINGPONG_MAX_CLIENT_BUFFER", "1e6"),
    ("PINGPONG_MAX_MESSAGE_BYTES", "-5"),
    ("PINGPONG_PING_INTERVAL", "0"),
    ("PINGPONG_PING_TIMEOUT", "-1"),
    ("PINGPONG_PING_TIMEOUT", "nan"),
    ("PINGPONG_REDIS_HEALTH_INTERVAL", "soon"),
    ("PINGPONG_RECONNECT_MAX_DELAY", ""),
    ("PINGPONG_SHUTDOWN_TIMEOUT", "0.0"),
    ("PINGPONG_CHANNEL", ""),
    ("PINGPONG_CHANNEL", " , ,"),
]


@pytest.mark.parametrize(("var", "value"), BAD_ENV)
def test_bad_env_value_names_the_variable(var: str, value: str) -> None:
    with pytest.raises(ValueError, match=var) as info:
        serve_settings(env={var: value})
    assert not isinstance(info.value, argparse.ArgumentTypeError)


def test_bad_env_value_is_ignored_when_the_flag_is_given() -> None:
    settings = serve_settings("--port", "1234", env={"PINGPONG_PORT": "abc"})
    assert settings.port == 1234


@pytest.mark.parametrize(
    "flags", [["--port", "70000"], ["--log-level", "loud"], ["--max-client-buffer", "0"]]
)
def test_bad_flag_value_is_a_usage_error(
    flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["serve", *flags])
    assert info.value.code == 2
    assert flags[0] in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "env", "explicit"),
    [
        ([], {}, False),
        ([], {"PINGPONG_PORT": "1"}, False),
        (["--redis-url", "redis://other:6379/0"], {}, True),
        (["--redis-url", DEFAULT_REDIS_URL], {}, True),
        ([], {"PINGPONG_REDIS_URL": "redis://other:6379/0"}, True),
        ([], {"PINGPONG_REDIS_URL": DEFAULT_REDIS_URL}, True),
    ],
)
def test_redis_url_explicit_only_when_given(
    flags: list[str], env: dict[str, str], explicit: bool
) -> None:
    assert serve_settings(*flags, env=env).redis_url_explicit is explicit


def test_redis_url_explicit_is_not_a_flag() -> None:
    assert "redis_url_explicit" not in {spec.name for spec in Settings.options()}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--redis-url-explicit", "1"])


@pytest.mark.parametrize(
    ("flags", "env"),
    [
        (["--ping-timeout", "30"], {}),
        (["--ping-interval", "5"], {}),
        ([], {"PINGPONG_PING_TIMEOUT": "10", "PINGPONG_PING_INTERVAL": "9.5"}),
    ],
)
def test_ping_timeout_may_not_exceed_ping_interval(flags: list[str], env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"--ping-timeout .* must not exceed --ping-interval"):
        serve_settings(*flags, env=env)


def test_ping_timeout_equal_to_ping_interval_is_allowed() -> None:
    settings = serve_settings("--ping-interval", "7", env={"PINGPONG_PING_TIMEOUT": "7"})
    assert settings.ping_interval == settings.ping_timeout == 7.0


def test_with_changes_returns_a_new_settings() -> None:
    settings = Settings()
    changed = settings.with_changes(port=1)
    assert changed.port == 1
    assert settings.port == 2808


# --- redact_url ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("redis://:secret@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://user:secret@host:6379/0", "redis://user:***@host:6379/0"),
        ("rediss://user:p%40ss:w0rd@host/2", "rediss://user:***@host/2"),
        ("redis://user:secret@host", "redis://user:***@host"),
        ("redis://default:@host:6379", "redis://default:***@host:6379"),
        ("redis://:secret@[::1]:6379/0", "redis://:***@[::1]:6379/0"),
        ("redis://host:6379/0?password=secret", "redis://host:6379/0?password=***"),
    ],
)
def test_redact_url_hides_the_password(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted
    assert "secret" not in redact_url(url)


@pytest.mark.parametrize(
    "url",
    [
        DEFAULT_REDIS_URL,
        "redis://localhost",
        "redis://user@host:6379/0",
        "rediss://host:6380/1?ssl_cert_reqs=none",
        "redis://[::1]:6379/0",
        "unix:///run/redis.sock?db=1",
        "not a url",
        "",
    ],
)
def test_redact_url_leaves_other_urls_alone(url: str) -> None:
    assert redact_url(url) == url


# --- the command-line parser -----------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["serve"], "serve"),
        (["publish", "ping", "--latency", "5"], "publish"),
        (["watch"], "watch"),
        (["simulate"], "simulate"),
    ],
)
def test_parser_has_each_command(argv: list[str], command: str) -> None:
    args = build_parser().parse_args(argv)
    assert args.command == command
    assert args.handler.__name__ == f"cmd_{command}"


def test_parser_requires_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([])
    assert info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_top_level_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("serve", "publish", "watch", "simulate"):
        assert command in out


def test_serve_help_mentions_every_flag_and_env_var(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["serve", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    options = Settings.options()
    assert len(options) == len(PRECEDENCE)
    for spec in options:
        assert flag_name(spec.name) in out
        assert env_name(spec.name) in out
