"""The dashboard side of ``core.listing``: filters read from the URL (so a filtered list is a link to share
or bookmark), the filter bar's choices, sort links and the CSV download."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from flask import Response, request, url_for

from core import listing
from core.banking.reconcile.csvexport import to_csv
from core.listing import ListFilters
from dashboard.api.download import attachment
from dashboard.extensions import db
from dashboard.viewer import current_viewer


def filters(sorts: tuple[str, ...], default_sort: str) -> ListFilters:
    return listing.parse_filters(request.args, sorts, default_sort)


def sort_url(current: ListFilters, key: str, keep: dict[str, str] | None = None) -> str:
    """The list sorted by ``key`` (descending when it already is ascending), other filters kept, page 1."""
    args = (keep or {}) | current.args() | {"sort": f"-{key}" if current.sort == key else key}
    return url_for(request.endpoint or "review.pending", **(request.view_args or {}), **args)


ALL_FIELDS = ("date_from", "date_to", "amount_min", "amount_max", "currency", "source", "validated_by")


def bar_context(current: ListFilters, *, payment_status: bool, export_endpoint: str | None,
                fields: tuple[str, ...] = ALL_FIELDS, keep: dict[str, str] | None = None) -> dict[str, Any]:
    """What ``_filter_bar.html`` shows: the accepted filters, the refused ones' reasons and the choices
    (``fields``: the filters this list takes, besides the search and the payment status; ``keep``: the
    list's own arguments, e.g. a tab, kept by the filter form, the sort links and the export)."""
    keep = keep or {}
    viewer = current_viewer()
    return {
        "filters": current,
        "filter_fields": fields,
        "filter_statuses": listing.PAYMENT_STATUSES if payment_status else (),
        "filter_sources": listing.SOURCES,
        "filter_currencies": listing.currency_choices(db.session, viewer) if "currency" in fields else [],
        "filter_members": listing.validator_choices(db.session, viewer) if "validated_by" in fields else [],
        "filter_keep": keep,
        "export_url": url_for(export_endpoint, **keep, **current.args()) if export_endpoint else None,
        "sort_url": lambda key: sort_url(current, key, keep),
    }


def csv_download(name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    """A CSV file (UTF-8 with BOM, or the French Excel dialect with ``?style=excel-fr``), cells that a
    spreadsheet would run as formulas neutralised (``csvexport.safe_text``)."""
    data = to_csv(header, rows, french=request.args.get("style") == "excel-fr")
    return attachment(data, "text/csv; charset=utf-8", f"{name}-{date.today().isoformat()}.csv")
