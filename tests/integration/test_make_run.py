"""`make run` sets up only what the relay needs; `make test` the whole dev toolchain."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _dry_run(target: str, tmp_path: Path) -> str:
    """The commands `make TARGET` would run from a clone with no virtualenv yet."""
    result = subprocess.run(
        ["make", "-n", "-C", str(ROOT), target, f"VENV={tmp_path / 'venv'}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_make_run_installs_the_relay_without_the_dev_toolchain(tmp_path: Path) -> None:
    commands = _dry_run("run", tmp_path)
    assert "pip install --quiet -e .\n" in commands
    assert "[dev]" not in commands
    assert "pingpong-relay serve" in commands


def test_make_test_installs_the_dev_toolchain(tmp_path: Path) -> None:
    assert "pip install --quiet -e '.[dev]'" in _dry_run("test", tmp_path)
