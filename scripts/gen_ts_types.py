"""Writes clients/js/src/protocol.ts, the TypeScript client's types, from the AsyncAPI document.

`python -m scripts.gen_ts_types` (or `npm run gen-types` in clients/js) rewrites it;
tests/unit/test_ts_types.py fails when the committed file differs from what this makes.
Only the JSON Schema the relay's document uses is translated: type (one or a list), const,
enum, anyOf/oneOf, object properties with required and additionalProperties, array items.
Conditions (allOf, if/then, not) have no TypeScript form and are checked by the relay.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from pingpong_relay.asyncapi import SENT, asyncapi

__all__ = ["OUTPUT", "main", "render"]

OUTPUT: Final = Path("clients/js/src/protocol.ts")

# Names that would shadow a global of JavaScript's in the generated module.
_RENAMED: Final = {"Error": "ErrorReply"}
_INDENT: Final = "  "


def _name(schema_name: str) -> str:
    return _RENAMED.get(schema_name, schema_name)


def _literal(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _doc(text: str | None, indent: str) -> list[str]:
    if not text:
        return []
    safe = text.replace("*/", "* /")
    return [f"{indent}/** {safe} */"]


class _Translator:
    """JSON Schema → TypeScript type expressions; named schemas are referred to by name."""

    def __init__(self, named: Mapping[str, Any]) -> None:
        self.named = named

    def type_of(self, schema: Mapping[str, Any], depth: int, top: str | None = None) -> str:
        title = schema.get("title")
        if isinstance(title, str) and title in self.named and title != top:
            return _name(title)
        if "const" in schema:
            return _literal(schema["const"])
        if "enum" in schema:
            return " | ".join(_literal(v) for v in schema["enum"])
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return " | ".join(_paren(self.type_of(s, depth)) for s in schema[key])
        kinds = schema.get("type")
        if kinds is None:
            return "unknown"
        if isinstance(kinds, list):
            return " | ".join(dict.fromkeys(self._one(schema, k, depth) for k in kinds))
        return self._one(schema, kinds, depth)

    def _one(self, schema: Mapping[str, Any], kind: str, depth: int) -> str:
        if kind in ("number", "integer"):
            return "number"
        if kind in ("string", "boolean", "null"):
            return kind
        if kind == "array":
            items = schema.get("items")
            return f"{_paren(self.type_of(items, depth))}[]" if items else "unknown[]"
        if kind == "object":
            return self.object_body(schema, depth)
        raise ValueError(f"no TypeScript for JSON Schema type {kind!r}")

    def object_body(self, schema: Mapping[str, Any], depth: int) -> str:
        properties: Mapping[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        if not properties:
            if isinstance(extra, Mapping):
                return f"{{ [key: string]: {self.type_of(extra, depth + 1)} }}"
            return "{ [key: string]: unknown }"
        required: Sequence[str] = schema.get("required", ())
        inner = _INDENT * (depth + 1)
        lines = ["{"]
        for key, sub in properties.items():
            if sub.get("title") not in self.named:  # a named type has its own doc
                lines += _doc(sub.get("description"), inner)
            mark = "" if key in required else "?"
            lines.append(f"{inner}{_key(key)}{mark}: {self.type_of(sub, depth + 1)};")
        if extra is True:
            lines += _doc("fields other than these are kept and forwarded as sent", inner)
            lines.append(f"{inner}[key: string]: unknown;")
        lines.append(f"{_INDENT * depth}}}")
        return "\n".join(lines)


def _paren(expression: str) -> str:
    return f"({expression})" if " | " in expression and "\n" not in expression else expression


def _key(key: str) -> str:
    return key if key.isidentifier() else _literal(key)


def render(document: Mapping[str, Any]) -> str:
    """The text of protocol.ts for this AsyncAPI document."""
    schemas: Mapping[str, Any] = document["components"]["schemas"]
    translate = _Translator(schemas)
    out = [
        "// Generated from the relay's AsyncAPI document by `python -m scripts.gen_ts_types`",
        "// (`npm run gen-types`); do not edit: tests/unit/test_ts_types.py fails on drift.",
        f"// AsyncAPI {document['asyncapi']}, {document['info']['title']} "
        f"{document['info']['version']}.",
        "",
    ]
    for name, schema in schemas.items():
        if name == "ConnectQuery":
            continue  # the client builds the query from its options
        out += _doc(schema.get("description"), "")
        out.append(f"export type {_name(name)} = {translate.type_of(schema, 0, top=name)};")
        out.append("")
    out += _doc("Every message the relay sends on the WebSocket.", "")
    out.append("export type RelayMessage =")
    out += [f"{_INDENT}| {_name(name)}" for name in SENT]
    out[-1] += ";"
    out += ["", *_bot_message_rules(schemas["BotMessage"]), "", *_close_codes(document)]
    return "\n".join(out) + "\n"


def _bot_message_rules(bot_message: Mapping[str, Any]) -> list[str]:
    """The BotMessage schema's rules as data, for the bot side's validator."""
    fields = bot_message["properties"]
    rules = {
        "types": fields["type"]["enum"],
        "latency": {"min": fields["latency"]["minimum"], "max": fields["latency"]["maximum"]},
        "timestamp": {
            "min": fields["timestamp"]["minimum"],
            "max": fields["timestamp"]["maximum"],
        },
    }
    return [
        *_doc("BotMessage's rules from the same schema: what publishHeartbeat checks.", ""),
        f"export const BOT_MESSAGE_RULES = {json.dumps(rules)} as const;",
        "",
        *_doc("The pattern a BotMessage source must match.", ""),
        f"export const SOURCE_PATTERN = new RegExp({_literal(fields['source']['pattern'])});",
    ]


def _close_codes(document: Mapping[str, Any]) -> list[str]:
    codes = document["channels"]["clients"]["x-close-codes"]
    lines = [*_doc("The relay's close codes: code → name.", ""), "export const CLOSE_CODES = {"]
    lines += [f"{_INDENT}{c['code']}: {_literal(c['name'])}," for c in codes]
    statuses = document["channels"]["clients"]["x-http-statuses"]
    lines += ["} as const;", ""]
    lines += _doc("HTTP statuses the upgrade may answer: status → name.", "")
    lines.append("export const UPGRADE_STATUSES = {")
    lines += [f"{_INDENT}{s['code']}: {_literal(s['name'])}," for s in statuses]
    lines.append("} as const;")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """Writes protocol.ts (or to --output)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    args.output.write_text(render(asyncapi()), encoding="utf-8")


if __name__ == "__main__":
    main()
