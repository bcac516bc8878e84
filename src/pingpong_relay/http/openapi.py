"""The HTTP plane's OpenAPI 3.1 document, generated from its operations (`operations.py`).

A relay serves the document of its own configuration at /openapi.json: which routes ask
for a token depends on --auth and --metrics-token. `docs/openapi.json` is the document of a
relay with both (`make docs` writes it; a test fails when it is stale).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pingpong_relay import __version__
from pingpong_relay.http.api_schemas import response_schemas
from pingpong_relay.http.contract import ERROR_SCHEMA, Answer, Operation, Param
from pingpong_relay.http.operations import OPERATIONS, answers

__all__ = ["main", "openapi_document", "openapi_json"]

_DESCRIPTION = (
    "The relay's HTTP plane (port 2809 by default): health, metrics, statistics, history, "
    "analytics, mutes, badges, the public status page, and push and ping URLs for bots "
    "that do not speak Redis. The live stream is the WebSocket data plane, described by "
    "/asyncapi.json.\n\nEvery error is JSON: `error` (a code), `message`, and for a request "
    "that breaks this document the `parameter` (or body `field`) at fault. Parameters this "
    "document does not name are ignored; a named one given twice is refused."
)
_TAGS = (
    ("bots", "what the relay knows of each bot now"),
    ("history", "what was recorded (needs --history-retention > 0)"),
    ("public", "what anyone may see of --public-bots bots"),
    ("mutes", "maintenance windows for alerts"),
    ("ingestion", "bots that report over HTTP: the token in the path is the credential"),
    ("operations", "for the operator and the orchestrator"),
    ("dashboard", "the page and its files"),
    ("documents", "the two machine-readable contracts"),
)


def openapi_document(*, auth: bool = True, operator_credential: bool = True) -> dict[str, Any]:
    """The document of a relay with (or without) --auth jwt and --metrics-token."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(
            op, auth=auth, operator_credential=operator_credential
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pingpong-relay HTTP API",
            "version": __version__,
            "description": _DESCRIPTION,
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": [{"url": "/", "description": "this relay"}],
        "tags": [{"name": name, "description": text} for name, text in _TAGS],
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR_SCHEMA, **response_schemas()},
            "securitySchemes": _security_schemes(auth, operator_credential),
        },
    }


def _security_schemes(auth: bool, operator_credential: bool) -> dict[str, Any]:
    schemes: dict[str, Any] = {}
    if auth:
        schemes["bearerJwt"] = {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "a token from `pingpong-relay token` (or your issuer); a "
            "requirement's roles are the event scopes the token's events claim must grant "
            "(no claim: every one), plus metrics and mute",
        }
        schemes["queryJwt"] = {
            "type": "apiKey",
            "in": "query",
            "name": "token",
            "description": "the same token as ?token= (for what cannot send a header)",
        }
    if operator_credential:
        schemes["metricsToken"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "--metrics-token",
        }
    return schemes


def _security(op: Operation, auth: bool, operator_credential: bool) -> list[dict[str, Any]]:
    """Alternatives of which one must hold; [] for none; {} in the list: anonymous too."""
    jwt = (lambda role: [{"bearerJwt": [role]}, {"queryJwt": [role]}]) if auth else None
    if op.guard == "operator":
        found: list[dict[str, Any]] = [{"metricsToken": []}] if operator_credential else []
        return [*found, *(jwt("metrics") if jwt else [])]
    if op.guard in ("data", "badge") and jwt:
        return [*jwt(op.scope or ""), *([{}] if op.guard == "badge" else [])]
    if op.guard in ("mute_read", "mute_write") and jwt:
        return jwt("mute") if op.guard == "mute_write" else [{"bearerJwt": []}, {"queryJwt": []}]
    return []


def _operation(op: Operation, *, auth: bool, operator_credential: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "security": _security(op, auth, operator_credential),
        "responses": {
            str(status): _answer(answer)
            for status, answer in answers(
                op, auth=auth, operator_credential=operator_credential
            ).items()
        },
    }
    description = _access_note(op, auth)
    if op.description or description:
        body["description"] = " ".join(filter(None, (op.description, description)))
    if op.params:
        body["parameters"] = [_parameter(p) for p in op.params]
    if op.body is not None:
        body["requestBody"] = {
            "required": True,
            "description": op.body.description,
            "content": {"application/json": {"schema": op.body.schema}},
        }
    return body


def _access_note(op: Operation, auth: bool) -> str:
    if op.guard.startswith("mute") and not auth:
        return "Without --auth, answered only to loopback addresses."
    if op.guard == "push":
        return "The token in the path is the credential; limited per token and per address."
    return ""


def _parameter(param: Param) -> dict[str, Any]:
    return {
        "name": param.name,
        "in": param.where,
        "required": param.required,
        "description": param.description,
        "schema": param.schema,
    }


def _answer(answer: Answer) -> dict[str, Any]:
    body: dict[str, Any] = {"description": answer.description}
    if answer.content:
        body["content"] = {
            media: ({"schema": schema} if schema is not None else {})
            for media, schema in answer.content.items()
        }
    if answer.links:
        body["links"] = dict(answer.links)
    if answer.headers:
        body["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in answer.headers.items()
        }
    return body


def openapi_json() -> str:
    """The published document (docs/openapi.json) as text."""
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    """Prints the published document (`python -m pingpong_relay.http.openapi`)."""
    sys.stdout.write(openapi_json())


if __name__ == "__main__":
    main()
