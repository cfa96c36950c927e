"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 document, assembled at request time from the URL map and
the ``@operation`` descriptions beside each view (``dashboard.api.spec``). Served without a token: it
describes the API and holds no data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, jsonify
from werkzeug.routing import Rule
from werkzeug.routing.converters import AnyConverter, BaseConverter, NumberConverter

from dashboard.api.auth import READ_METHODS
from dashboard.api.base import PREFIX, bp
from dashboard.api.schemas import components
from dashboard.api.spec import ERROR_MEANINGS, Operation, Schema, operation, ref

TITLE = "invoice-inbox API"
VERSION = "1"
DESCRIPTION = (
    "Every route but this document takes `Authorization: Bearer <token>`; a token works in its own company "
    "only, and every answer is scoped to what its user may see. Amounts are decimal strings, dates ISO 8601. "
    "Errors are JSON objects `{\"error\": ...}` (with `fields` on 422)."
)
IGNORED_METHODS = frozenset({"HEAD", "OPTIONS"})  # answered by Flask for every GET / every route


@dataclass(frozen=True)
class Route:
    """One method of one ``/api/v1`` rule, with its view's description (None when it has none)."""

    rule: Rule
    method: str
    path: str
    described: Operation | None


def openapi_path(rule: Rule) -> str:
    """``/api/v1/documents/<int(...):document_id>`` -> ``/api/v1/documents/{document_id}``."""
    parts = [f"{{{text}}}" if dynamic else text for dynamic, text in rule._trace]
    return "".join(parts).partition("|")[2]


def api_routes(app: Flask) -> Iterator[Route]:
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        described = getattr(app.view_functions[rule.endpoint], "openapi", None)
        for method in sorted((rule.methods or set()) - IGNORED_METHODS):
            yield Route(rule, method, openapi_path(rule), described)


def _converter_schema(converter: BaseConverter) -> Schema:
    if isinstance(converter, NumberConverter):
        schema: Schema = {"type": "integer"}
        if converter.min is not None:
            schema["minimum"] = converter.min
        if converter.max is not None:
            schema["maximum"] = converter.max
        return schema
    if isinstance(converter, AnyConverter):
        return {"type": "string", "enum": sorted(converter.items)}
    return {"type": "string"}


def path_parameters(rule: Rule) -> list[Schema]:
    return [{"name": name, "in": "path", "required": True, "schema": _converter_schema(converter)}
            for name, converter in rule._converters.items()]


def _error(status: int) -> Schema:
    return {"description": ERROR_MEANINGS[status], "content": {"application/json": {"schema": ref("Error")}}}


def error_statuses(route: Route, described: Operation) -> list[int]:
    """The route's own errors, plus those of the blueprint's hooks and of routing."""
    statuses = set(described.errors)
    if not described.public:
        statuses.add(401)
        if route.method not in READ_METHODS:
            statuses.add(403)  # a support token is read-only
    if route.rule.arguments:
        statuses.add(404)  # an id out of range, or not the caller's
    if described.body is not None:
        statuses.add(413)  # any body beyond the app's MAX_CONTENT_LENGTH
    return sorted(statuses)


def operation_object(route: Route, described: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, schema in described.ok.items():
        answer: dict[str, Any] = {"description": "Success." if status < 300 else "Accepted."}
        if schema is not None:
            answer["content"] = {described.ok_type: {"schema": schema}}
        responses[str(status)] = answer
    special = described.error_bodies or {}
    for status in error_statuses(route, described):
        if status in special:
            responses[str(status)] = {"description": ERROR_MEANINGS[status],
                                      "content": {"application/json": {"schema": special[status]}}}
        else:
            responses[str(status)] = _error(status)
    body: dict[str, Any] = {
        "operationId": route.rule.endpoint.removeprefix("api."),
        "tags": [described.tag],
        "summary": described.summary,
        "parameters": [*path_parameters(route.rule), *described.query],
        "responses": responses,
    }
    if described.description:
        body["description"] = described.description
    if described.body is not None:
        body["requestBody"] = {"required": described.body_required,
                               "content": {described.body_type: {"schema": described.body}}}
    if described.public:
        body["security"] = []
    return body


def document(app: Flask) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in api_routes(app):
        if route.described is not None:
            paths.setdefault(route.path, {})[route.method.lower()] = operation_object(route, route.described)
    tags = sorted({op["tags"][0] for methods in paths.values() for op in methods.values()})
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": DESCRIPTION},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "tags": [{"name": tag} for tag in tags],
        "paths": paths,
        "components": components(),
    }


@bp.get("/openapi.json")
@operation("Reference", "This document: the OpenAPI 3.1 description of the API", public=True,
           ok={200: {"type": "object", "required": ["openapi", "paths"]}})
def openapi_document() -> Response:
    return jsonify(document(current_app))
