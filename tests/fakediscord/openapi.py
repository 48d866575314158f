"""Discord's own OpenAPI description, used to refuse every request body Discord would refuse.

The description (``/work/shared/discord-api-spec/openapi.json``, or ``DISCORD_OPENAPI_SPEC``) is JSON Schema
2020-12 inside OpenAPI 3.1. It is read once per process; a validator per operation is built on first use and
kept. ``#/components/schemas/…`` references resolve through a ``referencing`` registry holding the whole
document, so nothing is copied or rewritten.

Two things Discord accepts though the description says otherwise (seen with discord.py 2.7.1):

- a new attachment's ``id`` is sent as a JSON number (its index into the uploads), where the description
  asks for a snowflake string: such ids are turned into strings before validation;
- a multipart request carries its JSON in ``payload_json``: that is what is validated, against the
  ``multipart/form-data`` schema (whose ``files[n]`` properties it does not repeat).
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = ["SPEC_PATH", "Operation", "RequestRejected", "validate_request"]

SPEC_PATH = Path(os.environ.get("DISCORD_OPENAPI_SPEC", "/work/shared/discord-api-spec/openapi.json"))
_URI = "urn:discord-openapi"
_METHODS = ("get", "put", "post", "patch", "delete")


class RequestRejected(Exception):
    """The body does not match the request schema. ``path`` is the offending field, dotted as Discord does."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path or '<body>'}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class Operation:
    """One path template and method of the description."""

    template: str
    method: str
    pattern: re.Pattern[str]
    literals: int

    def schema_pointer(self, content_type: str) -> str:
        escaped = self.template.replace("~", "~0").replace("/", "~1")
        kind = content_type.replace("~", "~0").replace("/", "~1")
        return f"{_URI}#/paths/{escaped}/{self.method.lower()}/requestBody/content/{kind}/schema"


@functools.cache
def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    return document


@functools.cache
def _registry() -> Registry[Any]:
    return Registry().with_resource(_URI, Resource.from_contents(_document(), default_specification=DRAFT202012))


@functools.cache
def _operations() -> tuple[Operation, ...]:
    operations: list[Operation] = []
    for template, item in _document()["paths"].items():
        segments = template.strip("/").split("/")
        regex = "/".join("[^/]+" if s.startswith("{") else re.escape(s) for s in segments)
        literals = sum(not s.startswith("{") for s in segments)
        for method in _METHODS:
            if method in item:
                operations.append(Operation(template, method.upper(), re.compile(f"/{regex}"), literals))
    # The most literal segments first: `messages/@original` wins over `messages/{message_id}`.
    operations.sort(key=lambda op: -op.literals)
    return tuple(operations)


def find_operation(method: str, path: str) -> Operation | None:
    """The operation of the description that ``method path`` (relative to ``/api/v10``) calls."""
    for operation in _operations():
        if operation.method == method and operation.pattern.fullmatch(path):
            return operation
    return None


@functools.cache
def _validator(operation: Operation, content_type: str) -> jsonschema.protocols.Validator | None:
    body = _document()["paths"][operation.template][operation.method.lower()].get("requestBody")
    if body is None or content_type not in body.get("content", {}):
        return None
    schema = {"$ref": operation.schema_pointer(content_type)}
    validator: jsonschema.protocols.Validator = jsonschema.Draft202012Validator(schema, registry=_registry())
    return validator


def _stringify_attachment_ids(body: Any) -> Any:
    """A copy of ``body`` with every ``attachments[].id`` given as a number turned into a string."""
    if isinstance(body, list):
        return [_stringify_attachment_ids(item) for item in body]
    if not isinstance(body, Mapping):
        return body
    out = {key: _stringify_attachment_ids(value) for key, value in body.items()}
    if isinstance(out.get("attachments"), list):
        out["attachments"] = [
            {**item, "id": str(item["id"])} if isinstance(item, Mapping) and isinstance(item.get("id"), int) else item
            for item in out["attachments"]
        ]
    return out


def _discriminated_out(errors: list[jsonschema.ValidationError]) -> bool:
    """A branch of a union that fails on its ``type`` tag: it was not the branch meant."""
    return any(e.validator in ("enum", "const") and list(e.path)[-1:] == ["type"] for e in errors)


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """The most specific reason: for a ``oneOf``/``anyOf`` failure, the error of the branch the body meant
    (whose ``type`` tag matches), else of the branch that got furthest."""
    while error.context:
        branches: dict[Any, list[jsonschema.ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.schema_path[0], []).append(sub)
        meant = [errors for errors in branches.values() if not _discriminated_out(errors)] or list(branches.values())
        candidates = [sub for errors in meant for sub in errors]
        error = max(candidates, key=lambda e: len(e.absolute_path))
    return error


def validate_request(method: str, path: str, body: Any, *, multipart: bool) -> None:
    """Raise :class:`RequestRejected` when ``body`` is not what Discord's description allows.

    Requests with no body, and operations the description gives no request schema for, pass.
    """
    if body is None:
        return
    operation = find_operation(method, path)
    if operation is None:
        return
    validator = _validator(operation, "multipart/form-data" if multipart else "application/json")
    if validator is None:
        return
    error = jsonschema.exceptions.best_match(validator.iter_errors(_stringify_attachment_ids(body)))
    if error is None:
        return
    error = _deepest(error)
    raise RequestRejected(".".join(str(p) for p in error.absolute_path), error.message[:500])
