"""The OpenAPI document as a reader sees it: operations grouped by tag, schemas as short type labels and
property rows. Used by the dashboard's API reference page (``dashboard.blueprints.api_docs``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

Schema = dict[str, Any]
REF_PREFIX = "#/components/schemas/"
INLINE_PROPERTIES = 3  # a small inline object is shown whole in its label, e.g. {items: array of Invoice}


@dataclass(frozen=True)
class Piece:
    """A part of a type label: plain text, or the name of a component schema (rendered as a link)."""

    text: str
    schema: str | None = None


@dataclass(frozen=True)
class Field:
    name: str
    label: list[Piece]
    required: bool
    description: str


def label(schema: Schema | None) -> list[Piece]:
    """``Invoice``, ``array of Document``, ``string (date) | null``, ``one of: link, replace``..."""
    if not schema:
        return [Piece("any")]
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(REF_PREFIX)
        return [Piece(name, name)]
    for key, joiner in (("allOf", " + "), ("oneOf", " | "), ("anyOf", " | ")):
        if key in schema:
            return _joined([label(part) for part in schema[key]], joiner)
    if "enum" in schema:
        return [Piece("one of: " + ", ".join("null" if v is None else repr(v) if v == "" else str(v)
                                             for v in schema["enum"]))]
    kinds = schema.get("type", "any")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    parts = []
    for kind in kinds:
        if kind == "object" and 0 < len(schema.get("properties", {})) <= INLINE_PROPERTIES:
            parts.append(_inline_object(schema["properties"]))
        elif kind == "array":
            parts.append([Piece("array of "), *label(schema.get("items"))])
        elif kind in ("string", "integer", "number") and ("format" in schema or "minimum" in schema):
            detail = schema.get("format") or _bounds(schema)
            parts.append([Piece(f"{kind} ({detail})")])
        else:
            parts.append([Piece(str(kind))])
    return _joined(parts, " | ")


def _inline_object(properties: dict[str, Schema]) -> list[Piece]:
    pieces = [Piece("{")]
    for index, (name, prop) in enumerate(properties.items()):
        pieces += [Piece(("" if index == 0 else ", ") + name + ": "), *label(prop)]
    return [*pieces, Piece("}")]


def _bounds(schema: Schema) -> str:
    low, high = schema.get("minimum"), schema.get("maximum")
    return f"{low} to {high}" if high is not None else f"from {low}"


def _joined(labels: list[list[Piece]], joiner: str) -> list[Piece]:
    out: list[Piece] = []
    for index, part in enumerate(labels):
        if index:
            out.append(Piece(joiner))
        out.extend(part)
    return out


def fields(schema: Schema | None) -> list[Field]:
    """The properties of an object schema (those of its inline ``allOf`` parts included)."""
    if not schema:
        return []
    parts = schema.get("allOf", [schema])
    rows = []
    for part in parts:
        required = set(part.get("required", ()))
        for name, prop in part.get("properties", {}).items():
            rows.append(Field(name, label(prop), name in required, prop.get("description", "")))
    return rows


@dataclass(frozen=True)
class OperationView:
    anchor: str
    method: str
    path: str
    spec: Schema

    def body(self) -> tuple[str, Schema] | None:
        content = self.spec.get("requestBody", {}).get("content", {})
        return next(iter(content.items()), None)


def grouped(document: Schema) -> Iterator[tuple[str, list[OperationView]]]:
    """(tag, its operations in path order), tags in the document's order."""
    by_tag: dict[str, list[OperationView]] = {tag["name"]: [] for tag in document.get("tags", [])}
    for path, methods in document["paths"].items():
        for method, spec in methods.items():
            view = OperationView(spec["operationId"], method.upper(), path, spec)
            by_tag.setdefault(spec["tags"][0], []).append(view)
    yield from by_tag.items()


def response_schema(response: Schema) -> tuple[str, Schema] | None:
    return next(iter(response.get("content", {}).items()), None)
