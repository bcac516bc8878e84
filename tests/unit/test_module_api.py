"""Every module of the package says what it is and what it offers: a docstring, and (but for
packages and `__main__`) an `__all__` whose names all exist."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import pingpong_relay

# Importing `__main__` would run the command line: its source is read instead.
MAIN = "pingpong_relay.__main__"
FOUND = list(pkgutil.walk_packages(pingpong_relay.__path__, prefix="pingpong_relay."))
MODULES = ["pingpong_relay", *sorted(info.name for info in FOUND)]
APIS = sorted(info.name for info in FOUND if not info.ispkg and info.name != MAIN)


@pytest.mark.parametrize("name", MODULES)
def test_every_module_has_a_docstring(name: str) -> None:
    if name == MAIN:
        source = Path(pingpong_relay.__file__).with_name("__main__.py").read_text()
        doc = ast.get_docstring(ast.parse(source))
    else:
        doc = importlib.import_module(name).__doc__
    assert (doc or "").strip(), f"{name} needs a docstring stating its role"


@pytest.mark.parametrize("name", APIS)
def test_every_module_declares_its_api_in_all(name: str) -> None:
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} needs an __all__ listing its public API"
    missing = [entry for entry in module.__all__ if not hasattr(module, entry)]
    assert not missing, f"{name}.__all__ names what the module does not define: {missing}"
