"""Supplier invoices to payment (issue 18): the company's identity (Settings → Company), suppliers, payables
with their approval, payment runs and their SEPA files. Every view calls ``core.payables`` /
``core.tenancy.company``; forms carry the CSRF token, queries the tenant and the viewer's access."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import Select
from werkzeug.wrappers import Response

from core import listing
from core.accounting import fiscal
from core.errors import ServiceError, ValidationFailed
from core.models import Tenant
from core.paging import Page
from core.payables import approval, payments, runs, suppliers
from core.tenancy import company
from dashboard import listing as list_web
from dashboard.api.download import attachment
from dashboard.extensions import db
from dashboard.i18n import errors_text, translate
from dashboard.viewer import admin_required, current_viewer, today
from dashboard.web import PER_PAGE, page_arg, paginated, tenant_id, tenant_required

bp = Blueprint("payables", __name__)


def _tenant() -> Tenant:
    tenant = db.session.get(Tenant, tenant_id())
    assert tenant is not None
    return tenant


# Settings → Company ---------------------------------------------------------------------------


@bp.get("/settings/company")
@tenant_required
def company_settings() -> str:
    return render_template("payables/company.html", active_nav="settings", tenant=_tenant(), errors={}, form=None,
                           modes=company.APPROVAL_MODES)


@bp.post("/settings/company")
@tenant_required
def save_company() -> str | Response:
    admin_required()
    fields = (*company.IDENTITY_FIELDS, "approval_mode", "approval_threshold", "fiscal_year_end")
    form = {name: request.form.get(name, "") for name in fields}
    errors: dict[str, str] = {}  # every field's problem is shown at once
    try:
        company.update_identity(db.session, tenant_id(), form, current_user.user, ip=request.remote_addr)
    except ValidationFailed as exc:
        errors |= exc.errors
    try:
        fiscal.set_year_end(db.session, tenant_id(), form["fiscal_year_end"], current_user.user, ip=request.remote_addr)
    except ValidationFailed as exc:
        errors |= exc.errors
    if errors:
        db.session.rollback()
        return render_template("payables/company.html", active_nav="settings", tenant=_tenant(), errors=errors,
                               form=form, modes=company.APPROVAL_MODES), 422
    db.session.commit()
    flash(_("Company identity saved."), "success")
    return redirect(url_for(".company_settings"))


# Suppliers -------------------------------------------------------------------------------------


def _suppliers_filtered() -> tuple[listing.ListFilters, str, list[str], Select[Any]]:
    """The suppliers list's filters from the URL and its statement (scoped): the page and the CSV share it."""
    viewer = current_viewer()
    currencies = suppliers.supplier_currencies(db.session, viewer.tenant_id)
    currency = request.args.get("currency", "").upper()
    currency = currency if currency in currencies else currencies[0]
    args = {k: v for k, v in request.args.items() if k != "currency"}  # the balances' currency, not a filter
    current = listing.only(listing.parse_filters(args, suppliers.SUPPLIER_SORTS, "-amount_due"),
                           suppliers.SUPPLIER_FILTERS)
    stmt = suppliers.supplier_list(viewer, currency=currency, today=today(), filters=current,
                                   dialect=listing.dialect_of(db.session))
    return current, currency, currencies, stmt


@bp.get("/suppliers")
@tenant_required
def supplier_list() -> str:
    viewer = current_viewer()
    current, currency, currencies, _stmt = _suppliers_filtered()
    number = page_arg()
    rows, total = suppliers.supplier_balances(db.session, viewer, currency=currency, today=today(),
                                              sort=current.sort, page=number, per_page=PER_PAGE,
                                              filters=current)
    page = Page(items=rows, page=number, per_page=PER_PAGE, total=total)  # for the pages' links
    return render_template("payables/suppliers.html", active_nav="suppliers", rows=rows, total=total, page=page,
                           currency=currency, currencies=currencies, sort=current.sort,
                           **list_web.bar_context(current, payment_status=False, export_endpoint=".export_suppliers",
                                                  fields=suppliers.SUPPLIER_FILTERS, keep={"currency": currency}))


@bp.get("/suppliers/export.csv")
@tenant_required
def export_suppliers() -> Response:
    """Every supplier the list shows with these filters, in its order (not only the current page)."""
    _current, currency, _currencies, stmt = _suppliers_filtered()
    return list_web.csv_download("suppliers", suppliers.SUPPLIER_CSV_HEADER,
                                 suppliers.supplier_rows(db.session, current_viewer(), stmt, currency))


@bp.get("/suppliers/<int:supplier_id>")
@tenant_required
def supplier_detail(supplier_id: int) -> str:
    viewer = current_viewer()
    supplier = suppliers.get_supplier(db.session, viewer, supplier_id)
    currencies = suppliers.supplier_currencies(db.session, viewer.tenant_id)
    currency = request.args.get("currency", "").upper()
    currency = currency if currency in currencies else currencies[0]
    balance = suppliers.supplier_balance(db.session, viewer, supplier.id, currency=currency, today=today())
    change = suppliers.pending_change(db.session, viewer.tenant_id, supplier.id)
    return render_template("payables/supplier.html", active_nav="suppliers", supplier=supplier, balance=balance,
                           currency=currency, change=change,
                           invoices=suppliers.supplier_invoices(db.session, viewer, supplier.id))


@bp.post("/suppliers/<int:supplier_id>")
@tenant_required
def save_supplier(supplier_id: int) -> Response:
    viewer = current_viewer()
    suppliers.get_supplier(db.session, viewer, supplier_id)
    data = {name: request.form[name] for name in ("street", "postcode", "town", "country", "iban")
            if name in request.form}
    try:
        _supplier, note = suppliers.update_supplier(db.session, viewer, supplier_id, data, current_user.user,
                                                    ip=request.remote_addr)
    except ValidationFailed as exc:
        db.session.rollback()
        flash(errors_text(exc.errors), "error")
        return redirect(url_for(".supplier_detail", supplier_id=supplier_id))
    db.session.commit()
    flash(translate(note) if note else _("Supplier saved."), "warning" if note else "success")
    return redirect(url_for(".supplier_detail", supplier_id=supplier_id))


@bp.post("/suppliers/<int:supplier_id>/iban")
@tenant_required
def decide_iban(supplier_id: int) -> Response:
    viewer = current_viewer()
    suppliers.get_supplier(db.session, viewer, supplier_id)
    admin_required()
    accept = request.form.get("decision") == "confirm"
    try:
        suppliers.decide_iban_change(db.session, viewer, supplier_id, accept, current_user.user,
                                     ip=request.remote_addr)
    except ServiceError as exc:
        db.session.rollback()
        flash(translate(str(exc)), "error")
        return redirect(url_for(".supplier_detail", supplier_id=supplier_id))
    db.session.commit()
    flash(_("New IBAN confirmed.") if accept else _("New IBAN rejected."), "success")
    return redirect(url_for(".supplier_detail", supplier_id=supplier_id))


# Payables: approval, paid by hand -----------------------------------------------------------------


@bp.get("/payables")
@tenant_required
def payable_list() -> str:
    viewer = current_viewer()
    state = request.args.get("state") or "unpaid"
    state = state if state in ("unpaid", "paid") else "unpaid"
    page = paginated(approval.payables_query(viewer, state))
    tenant = _tenant()
    return render_template("payables/payables.html", active_nav="payables", page=page, state=state,
                           states=approval.states(db.session, tenant, list(page.items)), tenant=tenant,
                           methods=payments.METHODS, today=today())


@bp.post("/payables/<int:invoice_id>/approve")
@tenant_required
def approve(invoice_id: int) -> Response:
    viewer = current_viewer()
    approval.payable(db.session, viewer, invoice_id)
    try:
        state = approval.approve(db.session, viewer, invoice_id, current_user.user, ip=request.remote_addr)
    except ServiceError as exc:
        db.session.rollback()
        flash(translate(str(exc)), "error")
        return redirect(url_for(".payable_list"))
    db.session.commit()
    flash(_("Approved.") if state == approval.APPROVED else _("Approved; a second approval by another person is "
                                                                  "needed."), "success")
    return redirect(url_for(".payable_list"))


@bp.post("/payables/<int:invoice_id>/paid")
@tenant_required
def mark_paid(invoice_id: int) -> Response:
    viewer = current_viewer()
    approval.payable(db.session, viewer, invoice_id)
    data = {"paid_on": request.form.get("paid_on"), "method": request.form.get("method")}
    try:
        payments.mark_paid(db.session, viewer, invoice_id, data, current_user.user, today=today(),
                           ip=request.remote_addr)
    except ValidationFailed as exc:
        db.session.rollback()
        flash(errors_text(exc.errors), "error")
        return redirect(url_for(".payable_list"))
    except ServiceError as exc:
        db.session.rollback()
        flash(translate(str(exc)), "error")
        return redirect(url_for(".payable_list"))
    db.session.commit()
    flash(_("Marked as paid."), "success")
    return redirect(url_for(".payable_list"))


# Payment runs -------------------------------------------------------------------------------------


@bp.get("/payment-runs")
@tenant_required
def run_list() -> str:
    viewer = current_viewer()
    due_by = _date_arg("due_by") or today()
    preview = runs.plan(db.session, viewer, due_by)
    return render_template("payables/runs.html", active_nav="payables", page=paginated(runs.runs_query(viewer)),
                           due_by=due_by, preview=preview, today=today())


def _date_arg(name: str) -> date | None:
    try:
        return date.fromisoformat(request.values.get(name, ""))
    except ValueError:
        return None


@bp.post("/payment-runs")
@tenant_required
def create_run() -> Response:
    viewer = current_viewer()
    due_by, execution = _date_arg("due_by"), _date_arg("execution_date") or today()
    if due_by is None:
        flash(_("Give the date the invoices are due by (YYYY-MM-DD)."), "error")
        return redirect(url_for(".run_list"))
    chosen = [int(v) for v in request.form.getlist("invoice_id") if v.isdigit() and len(v) < 10]
    try:
        run, _plan = runs.create_run(db.session, viewer, due_by, execution, current_user.user,
                                     invoice_ids=chosen or None, ip=request.remote_addr)
    except ValidationFailed as exc:
        db.session.rollback()
        flash(errors_text(exc.errors), "error")
        return redirect(url_for(".run_list", due_by=due_by.isoformat()))
    except ServiceError as exc:
        db.session.rollback()
        flash(translate(str(exc)), "error")
        return redirect(url_for(".run_list", due_by=due_by.isoformat()))
    db.session.commit()
    flash(_("Payment run created: download its SEPA file below."), "success")
    return redirect(url_for(".run_detail", run_id=run.id))


@bp.get("/payment-runs/<int:run_id>")
@tenant_required
def run_detail(run_id: int) -> str:
    run = runs.get_run(db.session, current_viewer(), run_id)
    return render_template("payables/run.html", active_nav="payables", run=run)


@bp.get("/payment-runs/<int:run_id>/file")
@tenant_required
def run_file(run_id: int) -> Response:
    run = runs.get_run(db.session, current_viewer(), run_id)
    return attachment(run.xml.encode("utf-8"), "application/xml", runs.file_name(run))
