"""The HTTP plane's contract as data: each operation's parameters, body and answers, and
the check of a request against it.

One source of truth, as the AsyncAPI document is for the WebSocket side: the OpenAPI
document (`http/openapi.py`) is generated from these operations, and the same parameter and
body schemas check every request at run time (`check_request`), so a request the document
says is wrong gets a 400 naming the parameter, never a 500 and never a silent default.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import fastjsonschema

__all__ = [
    "ERROR_SCHEMA",
    "JSON",
    "Answer",
    "Body",
    "ContractError",
    "Guard",
    "Operation",
    "Param",
    "check_body",
    "check_query",
    "ref",
]

# Who may call an operation (the access guard enforces it; the document describes it):
# open: anyone; operator: --metrics-token or a token with the metrics scope (when either is
# configured); data: a token with the operation's event scope (with --auth jwt); badge: as
# data, but anyone for a --public-bots bot; mute_read: any valid token (loopback only
# without auth); mute_write: the mute scope; push: the token in the path.
Guard = Literal["open", "operator", "data", "badge", "mute_read", "mute_write", "push"]

ERROR_SCHEMA: Final[dict[str, Any]] = {
    "title": "Error",
    "description": "The plane's error shape: a machine-readable code and a sentence for "
    "people; a request that broke the contract also names the parameter at fault.",
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "e.g. bad_parameter, unknown_bot"},
        "message": {"type": "string"},
        "parameter": {"type": "string", "description": "the query or path parameter at fault"},
        "reason": {"type": "string", "description": "with 401: why the token was refused"},
        "field": {"type": "string", "description": "the body field at fault"},
    },
    "required": ["error", "message"],
}


JSON: Final = "application/json"


def ref(name: str) -> dict[str, str]:
    """A reference to one of the document's schema components."""
    return {"$ref": f"#/components/schemas/{name}"}


@dataclass(frozen=True, slots=True)
class Param:
    """A query (or path) parameter: its JSON schema is checked after the text is read as
    the schema's type; `error` is the code a 400 for it carries."""

    name: str
    schema: dict[str, Any]
    description: str
    required: bool = False
    where: Literal["query", "path"] = "query"
    error: str = "bad_parameter"
    problem: str = ""  # the 400's message; by default, what the schema asked for


@dataclass(frozen=True, slots=True)
class Body:
    """A JSON request body and its schema (checked before the handler's own rules)."""

    schema: dict[str, Any]
    description: str
    error: str = "bad_body"


@dataclass(frozen=True, slots=True)
class Answer:
    """One status an operation can answer with: by media type, its schema (None: any)."""

    description: str
    content: Mapping[str, dict[str, Any] | None] = field(
        default_factory=lambda: {JSON: ref("Error")}
    )
    headers: Mapping[str, str] = field(default_factory=dict)  # name -> description
    # OpenAPI links: what a later call may take from this answer (name -> Link Object)
    links: Mapping[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Operation:
    """One method on one route of the HTTP plane."""

    method: str
    path: str  # as aiohttp's router spells it: /api/mutes/{id}
    operation_id: str
    summary: str
    tag: str
    guard: Guard
    answers: Mapping[int, Answer]
    params: Sequence[Param] = ()
    body: Body | None = None
    scope: str | None = None  # the token's event scope, for data and badge operations
    description: str = ""


class ContractError(ValueError):
    """A request the contract refuses: the code, the parameter (or field) and why."""

    def __init__(self, code: str, name: str, message: str, *, in_body: bool = False) -> None:
        super().__init__(message)
        self.code, self.name, self.message, self.in_body = code, name, message, in_body

    def body(self) -> dict[str, str]:
        """The 400's body in the plane's error shape."""
        return {
            "error": self.code,
            "message": self.message,
            ("field" if self.in_body else "parameter"): self.name,
        }


_WHOLE: Final = re.compile(r"-?[0-9]{1,20}")


def _typed(param: Param, text: str) -> Any:
    """The parameter's text read as its schema's type (an integer, or text as it is);
    ContractError when it cannot be."""
    if param.schema.get("type") == "integer":
        if _WHOLE.fullmatch(text) is None:
            raise _refusal(param, "must be a whole number")
        return int(text)
    return text


def _refusal(param: Param, why: str) -> ContractError:
    return ContractError(param.error, param.name, param.problem or f"{param.name} {why}")


# Each schema compiled once, by the parameter or body that owns it (kept, so an id is
# never taken for another object's).
_COMPILED: dict[int, tuple[object, Callable[[Any], Any]]] = {}


def _validator(owner: Param | Body) -> Callable[[Any], Any]:
    found = _COMPILED.get(id(owner))
    if found is None or found[0] is not owner:
        found = _COMPILED[id(owner)] = (owner, fastjsonschema.compile(owner.schema))
    return found[1]


def check_query(
    operation: Operation, query: Mapping[str, str], path: Mapping[str, str], repeated: set[str]
) -> dict[str, Any]:
    """The operation's parameters read from a request (schema defaults filled in); a
    ContractError names the first one the contract refuses. `repeated` names the query
    parameters given more than once (a declared one must be given once). Parameters the
    contract does not declare are left alone (?token=, a cache buster)."""
    values: dict[str, Any] = {}
    for param in operation.params:
        source = path if param.where == "path" else query
        if param.name in repeated and param.where == "query":
            raise ContractError(param.error, param.name, f"{param.name} is given more than once")
        if param.name not in source:
            if param.required:
                raise _refusal(param, "is required")
            if "default" in param.schema:
                values[param.name] = param.schema["default"]
            continue
        value = _typed(param, source[param.name])
        try:
            _validator(param)(value)
        except fastjsonschema.JsonSchemaValueException:
            raise _refusal(param, _schema_problem(param.schema)) from None
        values[param.name] = value
    return values


def check_body(operation: Operation, body: Any) -> None:
    """The operation's JSON body checked by its schema; a ContractError names the field."""
    spec = operation.body
    if spec is None:
        return
    try:
        _validator(spec)(body)
    except fastjsonschema.JsonSchemaValueException as exc:
        name, problem = _body_fault(exc, spec.schema, body)
        raise ContractError(spec.error, name, f"{name}: {problem}", in_body=True) from None


def _body_fault(
    exc: fastjsonschema.JsonSchemaValueException, schema: Mapping[str, Any], body: Any
) -> tuple[str, str]:
    """(the field at fault, what is wrong with it in words)."""
    if not isinstance(body, dict):
        return "body", "must be a JSON object"
    fields = schema.get("properties", {})
    if exc.rule == "required":
        return next(n for n in schema["required"] if n not in body), "is required"
    if exc.rule == "additionalProperties":
        unknown = sorted(set(body) - set(fields))[0]
        return unknown, f"is not a field (known: {', '.join(sorted(fields))})"
    path = list(exc.path or ())
    name = str(path[1]) if len(path) > 1 else "body"
    described = fields.get(name, {}).get("description")
    if exc.rule == "oneOf" and described:
        return name, f"must be {described}"
    return name, exc.message.removeprefix("data").strip().removeprefix(f".{name}").strip()


def _schema_problem(schema: Mapping[str, Any]) -> str:
    """What a parameter's schema asks for, in words."""
    if "enum" in schema:
        return "must be one of " + ", ".join(str(v) for v in schema["enum"])
    if schema.get("type") == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            return f"must be a whole number from {low} to {high}"
    if "maxLength" in schema and "pattern" not in schema:
        return f"must be 1 to {schema['maxLength']} characters"
    return "is not valid here" + (
        f" (it must match {schema['pattern']})" if "pattern" in schema else ""
    )
