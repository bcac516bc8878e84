"""The protocol for people: docs/protocol.md and the code tables of docs/api.md, as text (pure).

Both are rendered from the AsyncAPI document and the status codes; `make docs` writes
them, and tests catch drift.
"""

from __future__ import annotations

from typing import Any

import orjson

from pingpong_relay.asyncapi import SENT, asyncapi
from pingpong_relay.status_codes import CLOSE_CODES, HTTP_STATUSES, UPGRADE_STATUSES, Code

__all__ = ["codes_table", "markdown"]


def markdown() -> str:
    """A human summary of the AsyncAPI document (docs/protocol.md is this, generated)."""
    document = asyncapi()
    return "\n".join(
        [
            *_preamble(document),
            *_incoming(document),
            *_sent(document),
            *_status_codes(),
        ]
    )


def codes_table(codes: tuple[Code, ...], heading: str) -> str:
    """A markdown table of close codes or HTTP statuses: when each happens, what to do."""
    rows = [f"| {heading} | when | what a client should do |", "|---|---|---|"]
    rows += [f"| {c.code} {c.name} | {_cell(c.when)} | {_cell(c.client_should)} |" for c in codes]
    return "\n".join(rows)


# --- the sections of docs/protocol.md, each a list of lines ---------------------------------
def _preamble(document: dict[str, Any]) -> list[str]:
    return [
        "# pingpong-relay protocol",
        "",
        "<!-- generated from pingpong_relay/asyncapi.py by `make docs`; do not edit -->",
        "",
        f"The machine-readable form is the AsyncAPI {document['asyncapi']} document the relay "
        "serves at `GET /asyncapi.json` on its HTTP plane (`python -m pingpong_relay.asyncapi` "
        "prints it). Its JSON Schemas for bot messages, commands and connect queries are the "
        "ones the relay validates with.",
        "",
    ]


def _incoming(document: dict[str, Any]) -> list[str]:
    """What bots publish, how a client connects, and the commands it sends."""
    schemas = document["components"]["schemas"]
    command_example = document["components"]["messages"]["Command"]["examples"][0]["payload"]
    return [
        "## Redis: what bots publish",
        "",
        document["channels"]["heartbeats"]["description"],
        "",
        schemas["BotMessage"]["description"],
        "",
        _fields_table(schemas["BotMessage"]),
        "",
        "## WebSocket: connecting",
        "",
        document["channels"]["clients"]["description"],
        "",
        schemas["ConnectQuery"]["description"],
        "",
        _fields_table(schemas["ConnectQuery"]),
        "",
        "## WebSocket: commands a client sends",
        "",
        schemas["Command"]["description"],
        "",
        _fields_table(schemas["Command"]),
        "",
        "Example: `" + orjson.dumps(command_example).decode() + "`",
        "",
    ]


def _sent(document: dict[str, Any]) -> list[str]:
    """Every message the relay sends: its type, what it is, its fields, maybe an example."""
    parts = ["## WebSocket: messages the relay sends", ""]
    for name in SENT:
        schema = document["components"]["schemas"][name]
        kind = schema["properties"]["type"]["const"]
        parts += [f"### `{kind}` ({name})", "", schema["description"], ""]
        parts += [_fields_table(schema), ""]
        example = _example(document, name)
        if example is not None:
            parts += ["```json", orjson.dumps(example).decode(), "```", ""]
    return parts


def _status_codes() -> list[str]:
    return [
        "## Close codes",
        "",
        codes_table(CLOSE_CODES, "code"),
        "",
        "## HTTP statuses",
        "",
        "At the WebSocket upgrade (data port):",
        "",
        codes_table(UPGRADE_STATUSES, "status"),
        "",
        "On the HTTP plane:",
        "",
        codes_table(HTTP_STATUSES, "status"),
        "",
    ]


# --- cells and tables ------------------------------------------------------------------------
def _example(document: dict[str, Any], name: str) -> Any:
    """The example payload the document gives for a message, or None."""
    examples = document["components"]["messages"][name].get("examples")
    return examples[0]["payload"] if examples else None


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _fields_table(schema: dict[str, Any]) -> str:
    required = set(schema.get("required", ()))
    rows = ["| field | required | what |", "|---|---|---|"]
    for name, field in schema["properties"].items():
        what = (
            f"the {field['title']} object (see above)"
            if "title" in field
            else field.get("description") or _shape(field)
        )
        rows.append(f"| `{name}` | {'yes' if name in required else ''} | {_cell(what)} |")
    return "\n".join(rows)


def _shape(schema: dict[str, Any]) -> str:
    if "const" in schema:
        return f"`{orjson.dumps(schema['const']).decode()}`"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{orjson.dumps(v).decode()}`" for v in schema["enum"])
    kind = schema.get("type", "")
    return kind if isinstance(kind, str) else " or ".join(kind)
