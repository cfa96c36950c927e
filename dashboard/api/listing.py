"""The list routes' search, filter and sort parameters (``core.listing``): the dashboard's lists, as query
parameters, described once here for the OpenAPI document; a refused one is a 400 that says why."""

from __future__ import annotations

from flask import request

from core import listing
from core.listing import ListFilters
from dashboard.api.base import ApiError
from dashboard.api.spec import Schema, query

AMOUNT: Schema = {"type": "string", "pattern": r"^-?[0-9]{1,15}([.,][0-9]{1,2})?$"}


def filters(sorts: tuple[str, ...], default_sort: str, status_is_payment: bool = True,
            accepted: tuple[str, ...] | None = None) -> ListFilters:
    """The request's filters; 400 naming each refused parameter. ``status_is_payment=False``: the route's
    own ``status`` parameter means something else (a document's status) and is left to the route;
    ``accepted``: the only filters the route takes (besides ``q`` and ``sort``)."""
    args = request.args.to_dict()
    if not status_is_payment:
        args.pop("status", None)
    found = listing.parse_filters(args, sorts, default_sort)
    if accepted is not None:
        found = listing.only(found, accepted)
    if found.errors:
        raise ApiError(400, "invalid filter: " + "; ".join(f"{k}: {v}" for k, v in sorted(found.errors.items())),
                       dict(found.errors))
    return found


def filter_query(sorts: tuple[str, ...], payment_status: bool,
                 accepted: tuple[str, ...] | None = None) -> tuple[Schema, ...]:
    """The parameters ``filters`` reads, for ``@operation(query=...)``."""
    params: list[Schema] = [
        query("q", "Search: part of the number, the counterparty, the title or issuer, the document's text; "
                   "or an amount. Case-insensitive; % and _ are literal.",
              {"type": "string", "maxLength": listing.MAX_SEARCH_CHARS}),
        query("date_from", "Issued (documents: received) on or after this day.", {"type": "string", "format": "date"}),
        query("date_to", "Issued (documents: received) on or before this day.", {"type": "string", "format": "date"}),
        query("amount_min", "Amount (incl. tax) at least this; a dot or a comma for the cents.", AMOUNT),
        query("amount_max", "Amount (incl. tax) at most this.", AMOUNT),
        query("currency", "ISO 4217 code, e.g. EUR.", {"type": "string", "pattern": "^[A-Za-z]{3}$"}),
        query("source", "How the document arrived.", {"type": "string", "enum": ["", *listing.SOURCES]}),
        query("validated_by", "Id of the user who validated it.", {"type": "integer", "minimum": 1}),
        query("sort", "Sort key; a leading - sorts descending.",
              {"type": "string", "enum": [*sorts, *(f"-{key}" for key in sorts)]}),
    ]
    if payment_status:
        params.insert(1, query("status", "Payment status; overdue: not paid and due before today.",
                               {"type": "string", "enum": ["", *listing.PAYMENT_STATUSES]}))
    if accepted is not None:
        params = [p for p in params if p["name"] in ("q", "sort", *accepted)]
    return tuple(params)
