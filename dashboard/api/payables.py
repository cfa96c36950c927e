"""``/api/v1/suppliers``, ``/payables`` and ``/payment-runs`` (issue 18): suppliers with what is due to them,
approval of supplier invoices, payment runs (SEPA pain.001.001.09 files) and payments marked by hand.
Thin: each view parses, calls ``core.payables`` and serializes."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from flask import Response, jsonify, request
from sqlalchemy.orm import selectinload

from core.models import Client, Invoice, Tenant, User
from core.paging import paginate
from core.payables import approval, payments, runs, suppliers
from core.payables.models import PaymentRun
from dashboard.api.analytics import CURRENCY_QUERY
from dashboard.api.auth import api_viewer, caller
from dashboard.api.base import ApiError, bp, dbs
from dashboard.api.download import attachment
from dashboard.api.listing import filter_query
from dashboard.api.listing import filters as api_filters
from dashboard.api.params import json_object, page_params
from dashboard.api.serializers import INVOICE_JSON_LOAD, invoice_json, iso, money
from dashboard.api.spec import PAGE_QUERY, operation, page_of, query, ref
from dashboard.viewer import today

ID = "int(min=1, max=2147483647)"
_CURRENCY_RE = re.compile(r"[A-Za-z]{3}")
STATE_QUERY = query("state", "Only the payables in this state.",
                    {"type": "string", "enum": ["", *approval.STATES, "paid", "unpaid"]})


def _currency() -> str:
    raw = request.args.get("currency")
    if raw is None:
        return suppliers.supplier_currencies(dbs(), caller().tenant_id)[0]
    if not _CURRENCY_RE.fullmatch(raw):
        raise ApiError(400, "currency must be a three-letter ISO 4217 code")
    return raw.upper()


def _date(body: dict[str, Any], name: str, default: date | None = None) -> date:
    raw = body.get(name)
    if raw is None and default is not None:
        return default
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        raise ApiError(422, "validation failed", {name: "not a date (YYYY-MM-DD)"}) from None


def supplier_json(balance: suppliers.SupplierBalance) -> dict[str, Any]:
    return {"id": balance.supplier_id, "name": balance.name, "iban": balance.iban, "currency": balance.currency,
            "amount_due": money(balance.amount_due), "overdue": money(balance.overdue),
            "open_invoices": balance.open_invoices, "average_payment_delay_days": balance.average_delay_days,
            "iban_change_pending": balance.iban_change_pending}


def _supplier_detail(supplier: Client) -> Response:
    session, viewer = dbs(), api_viewer()
    balance = suppliers.supplier_balance(session, viewer, supplier.id, currency=_currency(), today=today())
    change = suppliers.pending_change(session, viewer.tenant_id, supplier.id)
    return jsonify(supplier_json(balance) | {
        "vat_id": supplier.vat_id, "street": supplier.street, "postcode": supplier.postcode, "town": supplier.town,
        "country": supplier.country,
        "pending_iban": None if change is None else {"new_iban": change.new_iban, "old_iban": change.old_iban,
                                                     "requested_by": change.requested_by,
                                                     "requested_at": iso(change.requested_at)},
        "invoices": [invoice_json(i) for i in suppliers.supplier_invoices(session, viewer, supplier.id)],
    })


@bp.get("/suppliers")
@operation("Suppliers", "Suppliers with what is due to them and their average payment delay",
           description="Search (`q`): the supplier's name, IBAN or VAT id, the number or title of one of its "
                       "invoices, or an amount (due to it, or one invoice's). `date_from` / `date_to`: suppliers "
                       "with an invoice issued in the range; `amount_min` / `amount_max`: what is due to them. "
                       "Default order: -amount_due.",
           query=(*PAGE_QUERY, CURRENCY_QUERY,
                  *filter_query(suppliers.SUPPLIER_SORTS, payment_status=False, accepted=suppliers.SUPPLIER_FILTERS)),
           ok={200: page_of("Supplier")}, errors=(400,))
def list_suppliers() -> Response:
    page, per_page = page_params()
    # ``currency`` is the balances' currency (read by _currency), accepted here so it is not refused.
    current = api_filters(suppliers.SUPPLIER_SORTS, "-amount_due",
                          accepted=(*suppliers.SUPPLIER_FILTERS, "currency"))
    currency = _currency()
    rows, total = suppliers.supplier_balances(dbs(), api_viewer(), currency=currency, today=today(),
                                              sort=current.sort, page=page, per_page=per_page, filters=current)
    return jsonify(items=[supplier_json(r) for r in rows], page=page, per_page=per_page, total=total,
                   pages=max(1, -(-total // per_page)))


@bp.get(f"/suppliers/<{ID}:supplier_id>")
@operation("Suppliers", "One supplier: balance, address, IBAN (and a change waiting for an admin), invoices",
           query=(CURRENCY_QUERY,), ok={200: ref("SupplierDetail")}, errors=(400,))
def get_supplier(supplier_id: int) -> Response:
    return _supplier_detail(suppliers.get_supplier(dbs(), api_viewer(), supplier_id))


@bp.put(f"/suppliers/<{ID}:supplier_id>")
@operation("Suppliers", "Change a supplier's postal address or IBAN",
           description="The IBAN is checked with schwifty. A supplier that already has an IBAN keeps it until an "
                       "admin confirms the new one (POST /suppliers/{id}/iban); the change is audited.",
           body={"type": "object", "additionalProperties": False, "properties": {
               name: {"type": ["string", "null"]} for name in ("street", "postcode", "town", "country", "iban")}},
           body_required=True, ok={200: ref("SupplierDetail")}, errors=(400, 415, 422))
def put_supplier(supplier_id: int) -> Response:
    session, who = dbs(), caller()
    suppliers.get_supplier(session, api_viewer(), supplier_id)  # 404 before any 422
    body = json_object()
    unknown = {k: "unknown field" for k in body if k not in ("street", "postcode", "town", "country", "iban")}
    if unknown:
        raise ApiError(422, "validation failed", unknown)
    supplier, _note = suppliers.update_supplier(session, api_viewer(), supplier_id, body,
                                                session.get(User, who.user_id), ip=request.remote_addr)
    session.commit()
    return _supplier_detail(supplier)


@bp.post(f"/suppliers/<{ID}:supplier_id>/iban")
@operation("Suppliers", "Confirm (or reject) a supplier's new IBAN (admins only)",
           body={"type": "object", "required": ["accept"], "additionalProperties": False,
                 "properties": {"accept": {"type": "boolean"}}},
           body_required=True, ok={200: ref("SupplierDetail")}, errors=(400, 403, 409, 415))
def decide_supplier_iban(supplier_id: int) -> Response:
    session, who = dbs(), caller()
    suppliers.get_supplier(session, api_viewer(), supplier_id)
    accept = json_object().get("accept")
    if not isinstance(accept, bool):
        raise ApiError(400, "accept must be true or false")
    if not api_viewer().is_admin:
        raise ApiError(403, "only the company's admins can confirm a supplier's new IBAN")
    supplier = suppliers.decide_iban_change(session, api_viewer(), supplier_id, accept,
                                            session.get(User, who.user_id), ip=request.remote_addr)
    session.commit()
    return _supplier_detail(supplier)


def payable_json(invoice: Invoice, state: str) -> dict[str, Any]:
    return invoice_json(invoice) | {"approval": state}


@bp.get("/payables")
@operation("Payables", "Supplier invoices with their approval state, oldest due first",
           query=(*PAGE_QUERY, STATE_QUERY), ok={200: page_of("Payable")}, errors=(400,))
def list_payables() -> Response:
    state = request.args.get("state") or None
    if state is not None and state not in (*approval.STATES, "paid", "unpaid"):
        raise ApiError(400, f"state must be one of {', '.join((*approval.STATES, 'paid', 'unpaid'))}")
    session, viewer = dbs(), api_viewer()
    tenant = session.get(Tenant, viewer.tenant_id)
    assert tenant is not None
    stmt = approval.payables_query(viewer, state).options(*INVOICE_JSON_LOAD)
    page, per_page = page_params()
    result = paginate(session, stmt, page, per_page)
    states = approval.states(session, tenant, list(result.items))
    return jsonify(items=[payable_json(i, states[i.id]) for i in result.items], page=result.page,
                   per_page=result.per_page, total=result.total, pages=result.pages)


@bp.post(f"/payables/<{ID}:invoice_id>/approve")
@operation("Payables", "Approve a supplier invoice for payment",
           description="Under the two_above policy an invoice above the threshold needs a second approval by "
                       "another person; the answer's `approval` says where it stands.",
           ok={200: ref("Payable")}, errors=(409,))
def approve_payable(invoice_id: int) -> Response:
    session, who = dbs(), caller()
    state = approval.approve(session, api_viewer(), invoice_id, session.get(User, who.user_id),
                             ip=request.remote_addr)
    session.commit()
    return jsonify(payable_json(approval.payable(session, api_viewer(), invoice_id), state))


@bp.post(f"/payables/<{ID}:invoice_id>/paid")
@operation("Payables", "Mark a supplier invoice paid by hand (paid another way than a payment run)",
           body={"type": "object", "required": ["paid_on", "method"], "additionalProperties": False,
                 "properties": {"paid_on": {"type": "string", "format": "date"},
                                "method": {"type": "string", "enum": list(payments.METHODS)}}},
           body_required=True, ok={200: ref("Payable")}, errors=(400, 409, 415, 422))
def mark_payable_paid(invoice_id: int) -> Response:
    session, who = dbs(), caller()
    approval.payable(session, api_viewer(), invoice_id)
    payments.mark_paid(session, api_viewer(), invoice_id, json_object(), session.get(User, who.user_id),
                       today=today(), ip=request.remote_addr)
    session.commit()
    invoice = approval.payable(session, api_viewer(), invoice_id)
    tenant = session.get(Tenant, who.tenant_id)
    assert tenant is not None
    return jsonify(payable_json(invoice, approval.states(session, tenant, [invoice])[invoice.id]))


def run_json(run: PaymentRun, skipped: dict[int, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": run.id, "due_by": iso(run.due_by), "execution_date": iso(run.execution_date),
        "currency": run.currency, "debtor_iban": run.debtor_iban, "total": money(_euros(run.total_cents)),
        "count": run.count, "created_by": run.created_by, "created_at": iso(run.created_at),
        "items": [{"invoice_id": item.invoice_id, "supplier": item.supplier_name, "iban": item.iban,
                   "amount": money(_euros(item.amount_cents)), "end_to_end_id": item.end_to_end_id}
                  for item in run.items],
    }
    if skipped is not None:
        body["skipped"] = [{"invoice_id": k, "reason": v} for k, v in sorted(skipped.items())]
    return body


def _euros(cents: int) -> Any:
    from decimal import Decimal

    return Decimal(cents) / 100


@bp.get("/payment-runs")
@operation("Payment runs", "Payment runs, newest first", query=PAGE_QUERY, ok={200: page_of("PaymentRun")},
           errors=(400,))
def list_payment_runs() -> Response:
    session, viewer = dbs(), api_viewer()
    page, per_page = page_params()
    result = paginate(session, runs.runs_query(viewer).options(selectinload(PaymentRun.items)),
                                page, per_page)
    return jsonify(items=[run_json(r) for r in result.items], page=result.page, per_page=result.per_page,
                   total=result.total, pages=result.pages)


@bp.post("/payment-runs")
@operation("Payment runs", "Create a SEPA credit-transfer file for approved supplier invoices due by a date",
           description="`invoice_ids` chooses the invoices (each must be approved, due by `due_by`, in euros, "
                       "unpaid, in no other run, with a confirmed supplier IBAN: 422 names each one that is "
                       "not); without it every qualifying invoice is taken and the others are listed in "
                       "`skipped`. A supplier's open credit notes are deducted: that supplier gets one transfer "
                       "of its invoices less its credit notes (their items have negative amounts; the run "
                       "settles them), or, when they cover its invoices, is left out with the reason. The file "
                       "is pain.001.001.09, validated against its XSD.",
           body={"type": "object", "required": ["due_by"], "additionalProperties": False, "properties": {
               "due_by": {"type": "string", "format": "date"},
               "execution_date": {"type": "string", "format": "date", "description": "Default: today."},
               "invoice_ids": {"type": "array", "items": {"type": "integer", "minimum": 1}, "maxItems": 1000}}},
           body_required=True, ok={201: ref("PaymentRun")}, errors=(400, 404, 409, 415, 422))
def create_payment_run() -> Response:
    session, who = dbs(), caller()
    body = json_object()
    unknown = {k: "unknown field" for k in body if k not in ("due_by", "execution_date", "invoice_ids")}
    if unknown:
        raise ApiError(422, "validation failed", unknown)
    ids = body.get("invoice_ids")
    if ids is not None and (not isinstance(ids, list) or len(ids) > runs.MAX_INVOICES or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**31 for i in ids)):
        raise ApiError(422, "validation failed", {"invoice_ids": "a list of invoice ids (at most 1000)"})
    due_by = _date(body, "due_by")
    execution = _date(body, "execution_date", today())
    run, chosen = runs.create_run(session, api_viewer(), due_by, execution, session.get(User, who.user_id),
                                  invoice_ids=ids, ip=request.remote_addr)
    session.commit()
    response = jsonify(run_json(runs.get_run(session, api_viewer(), run.id), chosen.skipped))
    response.status_code = 201
    return response


@bp.get(f"/payment-runs/<{ID}:run_id>")
@operation("Payment runs", "One payment run with its transfers", ok={200: ref("PaymentRun")})
def get_payment_run(run_id: int) -> Response:
    return jsonify(run_json(runs.get_run(dbs(), api_viewer(), run_id)))


@bp.get(f"/payment-runs/<{ID}:run_id>/file")
@operation("Payment runs", "The run's SEPA file (pain.001.001.09 XML), as a download",
           ok={200: {"type": "string"}}, ok_type="application/xml")
def get_payment_run_file(run_id: int) -> Response:
    run = runs.get_run(dbs(), api_viewer(), run_id)
    return attachment(run.xml.encode("utf-8"), "application/xml", runs.file_name(run))
