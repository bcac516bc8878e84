"""clients/js/src/protocol.ts is what scripts/gen_ts_types.py makes of the AsyncAPI document."""

from __future__ import annotations

from pathlib import Path

import pytest
from scripts import gen_ts_types

from pingpong_relay.asyncapi import asyncapi
from tests.support import ROOT


def test_committed_protocol_ts_matches_the_generator(tmp_path: Path) -> None:
    output = tmp_path / "protocol.ts"
    gen_ts_types.main(["--output", str(output)])
    committed = (ROOT / gen_ts_types.OUTPUT).read_text(encoding="utf-8")
    assert committed == output.read_text(encoding="utf-8"), (
        "clients/js/src/protocol.ts is stale: run `python -m scripts.gen_ts_types`"
    )


def test_every_message_the_relay_sends_is_a_type() -> None:
    text = gen_ts_types.render(asyncapi())
    for name in ("Envelope", "TaggedEnvelope", "BotGap", "BotStatus", "BotAlert", "ErrorReply"):
        assert f"export type {name} = {{" in text
        assert f"  | {name}\n" in text
    assert "export type Error " not in text  # would shadow JavaScript's Error


def test_schema_constructs_translate() -> None:
    document = asyncapi()
    schemas = document["components"]["schemas"]
    document["components"]["schemas"] = {
        "BotMessage": schemas["BotMessage"],
        "Sample": {
            "description": "a sample",
            "type": "object",
            "required": ["kind"],
            "properties": {
                "kind": {"const": "x"},
                "level": {"enum": ["a", "b", None]},
                "count": {"type": ["integer", "number", "null"]},
                "tags": {
                    "type": "array",
                    "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                },
                "map": {"type": "object", "additionalProperties": {"type": "boolean"}},
                "free": {},
                "data": schemas["BotMessage"],
            },
            "additionalProperties": False,
        },
    }
    text = gen_ts_types.render(document)
    sample = text[text.index("export type Sample") :].split("\n};")[0]
    assert '  kind: "x";' in sample
    assert '  level?: "a" | "b" | null;' in sample
    assert "  count?: number | null;" in sample
    assert "  tags?: (string | number)[];" in sample
    assert "  map?: { [key: string]: boolean };" in sample
    assert "  free?: unknown;" in sample
    assert "  data?: BotMessage;" in sample
    assert "[key: string]: unknown" not in sample
    assert "/** a sample */" in text


def test_a_schema_type_without_a_translation_is_an_error() -> None:
    document = asyncapi()
    document["components"]["schemas"] = {"Odd": {"type": "tuple"}}
    with pytest.raises(ValueError, match="tuple"):
        gen_ts_types.render(document)
