"""Generated docs (the README's tables, docs/protocol.md) fail the tests when they drift."""

from __future__ import annotations

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
