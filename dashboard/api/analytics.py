"""``GET /api/v1/analytics`` and the clients' balances, the JSON twins of the dashboard pages.

Both go through ``core.tenancy.access``: a restricted member's token sees only their clients.
"""

from __future__ import annotations

import re
from datetime import date

from flask import Response, jsonify, request

from core.models import DocType
from core.receivables import analytics
from core.receivables import invoices as receivables
from core.tenancy.access import Viewer
from core.textsearch import MAX_SEARCH_CHARS
from dashboard.api.auth import api_viewer
from dashboard.api.base import ApiError, bp, dbs
from dashboard.api.params import page_params
from dashboard.api.serializers import INVOICE_JSON_LOAD, invoice_json, iso, money
from dashboard.api.spec import PAGE_QUERY, operation, page_of, query, ref
from dashboard.viewer import today

ID = "int(min=1, max=2147483647)"
_CURRENCY_RE = re.compile(r"[A-Za-z]{3}")
CURRENCY_QUERY = query("currency", "ISO 4217 code; by default the company's most used currency.",
                       {"type": "string", "pattern": "^[A-Za-z]{3}$"})


def _today() -> date:
    return today()


def _currency(viewer: Viewer) -> str:
    raw = request.args.get("currency")
    if raw is not None and not _CURRENCY_RE.fullmatch(raw):
        raise ApiError(400, "currency must be a three-letter ISO 4217 code")
    if raw is None:
        return receivables.pick_currency(dbs(), viewer, None)[0]
    return raw.upper()


@bp.get("/analytics")
@operation("Analytics", "Amounts due and overdue, DSO, ageing and expected cash-in by week",
           query=(CURRENCY_QUERY,), ok={200: ref("Analytics")}, errors=(400,))
def get_analytics() -> Response:
    viewer = api_viewer()
    result = analytics.summary(dbs(), viewer, currency=_currency(viewer), today=_today())
    return jsonify(
        currency=result.currency,
        today=iso(result.today),
        amount_due=money(result.amount_due),
        overdue=money(result.overdue),
        dso_days=result.dso_days,
        dso_formula=f"amount_due / invoiced_last_{analytics.DSO_WINDOW_DAYS}_days * {analytics.DSO_WINDOW_DAYS}",
        invoiced_last_window=money(result.invoiced_window),
        ageing=[{"bucket": b.label, "amount": money(b.amount)} for b in result.ageing],
        expected_cash_in_overdue=money(result.expected_overdue),
        expected_cash_in_weeks=[{"week_start": iso(w.start), "week_end": iso(w.end), "amount": money(w.amount)}
                                for w in result.weeks],
    )


def _balance_json(row: receivables.ClientBalance, currency: str) -> dict[str, object]:
    return {
        "id": row.client_id,
        "name": row.name,
        "currency": currency,
        "amount_due": money(row.amount_due),
        "overdue": money(row.overdue),
        "open_invoices": row.open_invoices,
        "available_credit": money(row.available_credit),
        "average_payment_delay_days": row.average_delay_days,
    }


@bp.get("/clients")
@operation("Clients", "Clients with their balances",
           query=(CURRENCY_QUERY, query("sort", "Sort key; a leading - sorts descending.",
                                        {"type": "string", "enum": list(receivables.SORTS),
                                         "default": "-amount_due"}),
                  query("q", "Part of the client's name, whatever the case; % and _ are literal.",
                        {"type": "string", "maxLength": MAX_SEARCH_CHARS}), *PAGE_QUERY),
           ok={200: page_of("ClientBalance")}, errors=(400,))
def list_clients() -> Response:
    viewer = api_viewer()
    currency = _currency(viewer)
    sort = request.args.get("sort", "-amount_due")
    if sort not in receivables.SORTS:
        raise ApiError(400, f"sort must be one of {', '.join(receivables.SORTS)}")
    search = " ".join(request.args.get("q", "").split())
    if len(search) > MAX_SEARCH_CHARS:
        raise ApiError(400, f"q is limited to {MAX_SEARCH_CHARS} characters", {"q": "too long"})
    page, per_page = page_params()
    result = receivables.client_balances(dbs(), viewer, currency=currency, today=_today(), sort=sort,
                                         page=page, per_page=per_page, search=search)
    return jsonify(items=[_balance_json(r, currency) for r in result.items], page=result.page,
                   per_page=result.per_page, total=result.total, pages=result.pages)


@bp.get(f"/clients/<{ID}:client_id>")
@operation("Clients", "One client's balance and open invoices (at most 200)", query=(CURRENCY_QUERY,),
           ok={200: ref("ClientDetail")}, errors=(400,))
def get_client(client_id: int) -> Response:
    viewer = api_viewer()
    session = dbs()
    client = receivables.get_client(session, viewer, client_id)
    currency = _currency(viewer)
    balance = receivables.client_balance(session, viewer, client.id, currency=currency, today=_today())
    open_invoices = session.scalars(
        receivables.client_invoices_query(viewer, client.id, DocType.INVOICE).options(*INVOICE_JSON_LOAD).limit(200)
    ).all()
    return jsonify(_balance_json(balance, currency) | {"open_invoice_list": [invoice_json(i) for i in open_invoices]})
