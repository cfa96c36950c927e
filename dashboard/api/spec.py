"""OpenAPI descriptions written next to each API view, and the query parameters they share.

A view says what it does with ``@operation(...)`` (below its ``@bp.get`` line); ``dashboard.api.openapi``
assembles the document from the URL map and these. Path parameters come from the rule itself (its
converters), so they are never written twice. The errors every route can give because of the blueprint's
own hooks (401 without a valid token, 403 for a read-only role's write) are added by the assembler.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from core.paging import MAX_PER_PAGE
from dashboard.api.params import DEFAULT_PER_PAGE

View = TypeVar("View", bound=Callable[..., Any])
Schema = dict[str, Any]

# What each error status means on this API (the body is always an ``Error``).
ERROR_MEANINGS: dict[int, str] = {
    400: "A malformed query parameter or body; the message says what to send.",
    401: "No bearer token, or a token that is invalid, expired or revoked.",
    403: "The token's role may not do this.",
    404: "No such object in the token's company, or one the token's user may not see.",
    409: "The request conflicts with the object's state or with a concurrent change.",
    413: "The upload is larger than the limit.",
    415: "The body is not JSON.",
    422: "A field is invalid; ``fields`` maps each one to its problem.",
    429: "The company is over a quota (storage or messages per hour); the message says which.",
    503: "The job queue cannot be reached; nothing was lost, retry later.",
}


@dataclass(frozen=True)
class Operation:
    """What a view documents about itself. ``ok`` maps the success status to its schema (None: no body)."""

    tag: str
    summary: str
    ok: Mapping[int, Schema | None]
    description: str = ""
    query: Sequence[Schema] = ()
    body: Schema | None = None
    body_type: str = "application/json"
    body_required: bool = False
    ok_type: str = "application/json"
    errors: Sequence[int] = ()
    error_bodies: Mapping[int, Schema] | None = None  # an error status whose body is not the usual ``Error``
    public: bool = False  # served without a token


def operation(tag: str, summary: str, **details: Any) -> Callable[[View], View]:
    """Attach the view's description; the function itself is returned unchanged."""
    described = Operation(tag, summary, **details)

    def attach(view: View) -> View:
        view.openapi = described  # type: ignore[attr-defined]
        return view

    return attach


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def page_of(item: str) -> Schema:
    """A paginated listing of ``item`` (``dashboard.api.views.paginated``)."""
    return {"allOf": [ref("Page"), {"type": "object", "properties": {"items": {"type": "array", "items": ref(item)}}}]}


def items_of(item: Schema) -> Schema:
    """An unpaginated listing ``{"items": [...]}``."""
    return {"type": "object", "required": ["items"], "additionalProperties": False,
            "properties": {"items": {"type": "array", "items": item}}}


def query(name: str, description: str, schema: Schema) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def enum_query(name: str, choices: type[enum.StrEnum], description: str) -> Schema:
    """A filter read by ``params.enum_param`` (empty means no filter)."""
    return query(name, description, {"type": "string", "enum": ["", *(member.value for member in choices)]})


PAGE_QUERY: tuple[Schema, ...] = (
    query("page", "1-based page number.", {"type": "integer", "minimum": 1, "maximum": 10**9 - 1, "default": 1}),
    query("per_page", "Items per page.",
          {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": DEFAULT_PER_PAGE}),
)
