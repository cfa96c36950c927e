"""Clients: the list with each one's balance, and a page per client with what is open and received."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Response, render_template, request
from sqlalchemy.orm import selectinload

from core import listing
from core.listing import TOO_LONG
from core.models import DocType, Document, Invoice
from core.paging import paginate as _paginate
from core.receivables import invoices as receivables
from core.textsearch import MAX_SEARCH_CHARS
from dashboard import listing as list_web
from dashboard.extensions import db
from dashboard.viewer import current_viewer, today
from dashboard.web import PER_PAGE, page_arg, tenant_id, tenant_required

bp = Blueprint("clients", __name__)


def _int_arg(name: str) -> int:
    raw = request.args.get(name, "1")
    return max(1, int(raw)) if raw.isdigit() and len(raw) < 10 else 1


def _search() -> tuple[str, str]:
    """The search typed (too long: ignored, and the reason said) and the reason."""
    search = " ".join(request.args.get("q", "").split())
    if len(search) > MAX_SEARCH_CHARS:  # said on the page and ignored, never a crash
        return "", TOO_LONG.format(max=MAX_SEARCH_CHARS)
    return search, ""


@dataclass(frozen=True)
class _ListArgs:
    """What the list and its CSV export read from the query string, the same way."""

    currency: str
    currencies: list[str]
    sort: str
    search: str
    too_long: str


def _list_args() -> _ListArgs:
    currency, currencies = receivables.pick_currency(db.session, current_viewer(), request.args.get("currency"))
    sort = request.args.get("sort", "-amount_due")
    search, too_long = _search()
    return _ListArgs(currency, currencies, sort if sort in receivables.SORTS else "-amount_due", search, too_long)


@bp.get("/clients")
@tenant_required
def index() -> str:
    args = _list_args()
    page = receivables.client_balances(
        db.session, current_viewer(), currency=args.currency, today=today(), sort=args.sort, page=page_arg(),
        per_page=PER_PAGE, search=args.search,
    )
    return render_template("clients.html", active_nav="clients", page=page, currency=args.currency,
                           currencies=args.currencies, sort=args.sort, q=args.search, max_search=MAX_SEARCH_CHARS,
                           too_long=args.too_long)


@bp.get("/clients/export.csv")
@tenant_required
def export() -> Response:
    """Every client the list shows (same currency, search and order), not only the current page."""
    args = _list_args()
    return list_web.csv_download("clients", listing.CLIENT_CSV_HEADER, listing.client_rows(
        db.session, current_viewer(), currency=args.currency, today=today(), sort=args.sort, search=args.search))


@bp.get("/clients/<int:client_id>")
@tenant_required
def detail(client_id: int) -> str:
    viewer = current_viewer()
    client = receivables.get_client(db.session, viewer, client_id)
    currency, currencies = receivables.pick_currency(db.session, viewer, request.args.get("currency"))
    balance = receivables.client_balance(db.session, viewer, client.id, currency=currency, today=today())
    invoices = _paginate(
        db.session,
        receivables.client_invoices_query(viewer, client.id, DocType.INVOICE).options(selectinload(Invoice.client)),
        _int_arg("page"), PER_PAGE,
    )
    credit_notes = _paginate(
        db.session, receivables.client_invoices_query(viewer, client.id, DocType.CREDIT_NOTE),
        _int_arg("credit_page"), PER_PAGE,
    )
    documents = _paginate(
        db.session,
        receivables.client_documents_query(tenant_id(), client).options(selectinload(Document.message)),
        _int_arg("docs_page"), PER_PAGE,
    )
    return render_template("client.html", active_nav="clients", client=client, balance=balance,
                           currency=currency, currencies=currencies, invoices=invoices,
                           credit_notes=credit_notes, documents=documents, today=today())
