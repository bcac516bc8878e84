"""The package's shape, as pyproject's import-linter contracts declare it (`lint-imports`
checks the imports themselves in `make test`; this checks the contracts cover the package)."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import pingpong_relay

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = {
    contract["id"]: contract
    for contract in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"
    ]
}


def _layered() -> set[str]:
    names: set[str] = set()
    for layer in CONTRACTS["layers"]["layers"]:
        names.update(part.strip() for part in layer.split("|"))
    return names


def test_every_top_level_module_is_either_core_or_a_layer() -> None:
    core = set(CONTRACTS["pure-core"]["source_modules"])
    layered = _layered()
    top = {f"pingpong_relay.{info.name}" for info in pkgutil.iter_modules(pingpong_relay.__path__)}
    assert not core & layered, "a module is both core and an edge"
    unplaced = top - core - layered
    assert not unplaced, f"add these to pyproject's import-linter contracts: {sorted(unplaced)}"
    assert not (core | layered) - top, "the contracts name modules that no longer exist"


def test_every_edge_is_forbidden_to_the_core() -> None:
    forbidden = set(CONTRACTS["pure-core"]["forbidden_modules"])
    assert _layered() <= forbidden
    assert {"aiohttp", "picows", "redis", "prometheus_client"} <= forbidden
