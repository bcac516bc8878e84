"""The command line's own errors and help, from the real console script (issue 14, point 3):
a bad flag or env value is two lines naming it, and `serve --help` is grouped by topic."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from pingpong_relay.settings import Settings
from pingpong_relay.settings_flags import env_name, flag_name


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pingpong_relay", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "COLUMNS": "100", **(env or {})},
    )


@pytest.mark.parametrize(
    ("args", "env", "error"),
    [
        (
            ["serve", "--slow-client", "x"],
            {},
            "pingpong-relay serve: error: --slow-client: 'x' is not one of close, conflate",
        ),
        (
            ["serve", "--port", "abc"],
            {},
            "pingpong-relay serve: error: --port: 'abc' is not a whole number",
        ),
        (
            ["serve", "--log-level", "loud"],
            {},
            "pingpong-relay serve: error: --log-level: 'loud' is not one of DEBUG, INFO, "
            "WARNING, ERROR",
        ),
        (
            ["serve"],
            {"PINGPONG_SLOW_CLIENT": "x"},
            "pingpong-relay serve: error: PINGPONG_SLOW_CLIENT: 'x' is not one of close, conflate",
        ),
        (
            ["serve", "--slwo-client", "close"],
            {},
            "pingpong-relay serve: error: unrecognized option --slwo-client; "
            "did you mean --slow-client?",
        ),
        (
            ["publish", "pang"],
            {},
            "pingpong-relay publish: error: kind: 'pang' is not one of ping, pong",
        ),
        (
            ["serv"],
            {},
            "pingpong-relay: error: COMMAND: 'serv' is not one of serve, publish, watch, "
            "simulate, token, mute, push; did you mean serve?",
        ),
    ],
    ids=["choice", "number", "upper-case choice", "env var", "unknown flag", "positional", "cmd"],
)
def test_a_bad_value_is_two_lines_naming_the_flag_and_what_it_accepts(
    args: list[str], env: dict[str, str], error: str
) -> None:
    done = _cli(*args, env=env)
    assert done.returncode == 2
    prog = error.split(": error: ")[0]
    assert done.stderr.splitlines() == [error, f"try '{prog} --help'"]
    assert done.stdout == ""


def test_a_bad_env_value_is_named_without_repeating_a_password() -> None:
    done = _cli("serve", env={"PINGPONG_REDIS_URL": "http://:hunter2@example/0"})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "pingpong-relay serve: error: PINGPONG_REDIS_URL: 'http' is not a Redis URL scheme: "
        "use redis://, rediss://, unix://, redis+sentinel:// or redis+cluster://",
        "try 'pingpong-relay serve --help'",
    ]


def test_an_unknown_flag_far_from_any_gets_no_suggestion() -> None:
    done = _cli("watch", "--zzzzzz")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "pingpong-relay watch: error: unrecognized option --zzzzzz",
        "try 'pingpong-relay watch --help'",
    ]


TOPICS = [
    "network",
    "Redis",
    "ingestion",
    "auth",
    "limits",
    "monitoring",
    "alerts",
    "history",
    "TLS",
    "workers",
]
TOPICS += ["logging"]


def _blocks(help_text: str) -> dict[str, str]:
    """Each option's help, whitespace collapsed, by its flag."""
    blocks: dict[str, str] = {}
    current = ""
    for line in help_text.splitlines():
        match = re.match(r"\s{2}(--[a-z-]+)", line)
        if match:
            current = match.group(1)
            blocks[current] = line
        elif current and line.startswith(" "):
            blocks[current] += " " + line
        else:
            current = ""
    return {flag: " ".join(text.split()) for flag, text in blocks.items()}


def test_serve_help_is_grouped_by_topic_with_choices_defaults_and_env_vars() -> None:
    done = _cli("serve", "--help")
    assert done.returncode == 0, done.stderr
    titles = [line[:-1] for line in done.stdout.splitlines() if re.fullmatch(r"\S.*:", line)]
    assert titles == ["options", *TOPICS]
    blocks = _blocks(done.stdout)
    for spec in Settings.options():
        block = blocks[flag_name(spec.name)]
        assert block.endswith(f"env {env_name(spec.name)})"), block
        assert re.search(r"\((choices: [^;]+; )?(default: [^;]+|no default); env ", block), block
        assert "default: ;" not in block
    assert (
        "(choices: close, conflate; default: conflate; env PINGPONG_SLOW_CLIENT)"
        in (blocks["--slow-client"])
    )
    assert "(no default; env PINGPONG_JWT_SECRET)" in blocks["--jwt-secret"]
    assert "(default: 20; env PINGPONG_PING_INTERVAL)" in blocks["--ping-interval"]
    # The usage line is one line, not a list of every flag.
    assert done.stdout.splitlines()[0] == "usage: pingpong-relay serve [--FLAG VALUE ...]"
