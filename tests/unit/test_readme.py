"""The README's configuration table is generated from Settings; this fails when they drift."""

from __future__ import annotations

from pingpong_relay.config import markdown_reference
from tests.support import ROOT


def test_readme_configuration_table_matches_the_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- config-reference:start")
    start = readme.index("\n", start) + 1
    end = readme.index("<!-- config-reference:end -->")
    assert readme[start:end].strip() == markdown_reference(), (
        "README config table is stale; regenerate it with "
        "python -c 'from pingpong_relay.config import markdown_reference as m; print(m())'"
    )
