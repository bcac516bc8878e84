"""Generated docs (the README's tables, docs/protocol.md) fail the tests when they drift."""

from __future__ import annotations

import importlib
import re

import pytest
from scripts.update_docs import PROTOCOL, README, readme_sections, section

from pingpong_relay.protocol_docs import markdown


@pytest.mark.parametrize("name", list(readme_sections()))
def test_readme_generated_sections_match_the_code(name: str) -> None:
    text = README.read_text()
    start, end = section(text, name)
    assert text[start:end].strip() == readme_sections()[name].strip(), (
        f"README section {name} is stale; regenerate it with `make docs`"
    )


def test_protocol_summary_matches_the_asyncapi_document() -> None:
    assert PROTOCOL.read_text() == markdown(), "docs/protocol.md is stale; run `make docs`"


def _resolve(dotted: str) -> object:
    """The object a dotted name under pingpong_relay names (module, then attributes)."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(["pingpong_relay", *parts[:split]]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            target = getattr(target, attribute)
        return target
    raise ModuleNotFoundError(dotted)


def test_the_message_path_in_the_code_map_names_real_code() -> None:
    text = README.read_text()
    start = text.index("One message's path:")
    paragraph = text[start : text.index("\n\n", start)]
    names = re.findall(r"`([a-z_]+(?:\.[A-Za-z_]+)+)`", paragraph)
    assert len(names) >= 8, names
    for name in names:
        assert _resolve(name) is not None, name
