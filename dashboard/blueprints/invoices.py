"""Validated invoices and credit notes: the two lists and the invoice page with its files.

What a person sees here goes through ``core.tenancy.access`` (a restricted member sees only the
invoices of the clients assigned to them). Admins may delete an invoice; anyone who sees it may attach
a file to it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from core import listing
from core.accounting import entries as journal
from core.documents import assignment, invoice_edits
from core.documents import review as docs
from core.errors import NotFound, ServiceError, ValidationFailed
from core.fields import FIELDS
from core.models import DocType, Document, Invoice
from core.receivables import invoices as receivables
from core.tenancy import access, quotas
from dashboard import listing as list_web
from dashboard.context import settings as app_settings
from dashboard.context import storage
from dashboard.extensions import db
from dashboard.handoff import uploaded_files
from dashboard.i18n import translate
from dashboard.viewer import current_viewer, today
from dashboard.web import input_value, paginated, refused, send_stored_file, tenant_id, tenant_required

bp = Blueprint("invoices", __name__)


def _filtered(doc_type: DocType) -> tuple[listing.ListFilters, Select[Any]]:
    """The list's filters from the URL and its statement (scoped to the viewer): page and CSV share it."""
    current = list_web.filters(listing.INVOICE_SORTS, listing.INVOICE_DEFAULT_SORT)
    stmt = listing.invoice_list(current_viewer(), doc_type.value, current, today(), listing.dialect_of(db.session))
    return current, stmt


def _list(doc_type: DocType) -> str:
    current, stmt = _filtered(doc_type)
    export = ".export_credit_notes" if doc_type == DocType.CREDIT_NOTE else ".export"
    return render_template("invoices.html", page=paginated(stmt.options(selectinload(Invoice.client))),
                           doc_type=doc_type.value,
                           **list_web.bar_context(current, payment_status=True, export_endpoint=export))


def _export(doc_type: DocType, name: str) -> Response:
    """Every invoice (or credit note) the list shows with these filters, in its order (not only the page)."""
    _current, stmt = _filtered(doc_type)
    rows = listing.invoice_rows(db.session, current_viewer(), stmt)
    return list_web.csv_download(name, listing.INVOICE_CSV_HEADER, rows)


@bp.get("/invoices/export.csv")
@tenant_required
def export() -> Response:
    return _export(DocType.INVOICE, "invoices")


@bp.get("/credit-notes/export.csv")
@tenant_required
def export_credit_notes() -> Response:
    return _export(DocType.CREDIT_NOTE, "credit-notes")


@bp.get("/invoices")
@tenant_required
def index() -> str:
    return _list(DocType.INVOICE)


@bp.get("/credit-notes")
@tenant_required
def credit_notes() -> str:
    return _list(DocType.CREDIT_NOTE)


def _visible_invoice(invoice_id: int) -> Invoice:
    invoice = docs.get_invoice(db.session, tenant_id(), invoice_id)
    return access.check_invoice(db.session, current_viewer(), invoice)


def _render_detail(invoice: Invoice, form: dict[str, str] | None = None, errors: dict[str, str] | None = None) -> str:
    attachments = [a for a in invoice.attachments if a.file.tenant_id == invoice.tenant_id]
    values = {name: input_value(getattr(invoice, name)) for name in invoice_edits.EDITABLE if name != "client"}
    values["client"] = invoice.client.name if invoice.client else ""
    viewer = current_viewer()
    return render_template(
        "invoice.html",
        invoice=invoice,
        attachments=attachments,
        file_url=url_for(".file", file_id=invoice.file_id),
        frozen_number=docs.FROZEN_NUMBER,
        movements=receivables.cash_movements(db.session, tenant_id(), invoice.id),
        is_admin=viewer.is_admin,
        max_mb=receivables.MAX_ATTACHMENT_BYTES // (1024 * 1024),
        editable_fields=invoice_edits.EDITABLE,
        values=values | (form or {}),
        errors=errors or {},
        client_names=receivables.client_names(db.session, viewer),
        trail=invoice_edits.edit_trail(db.session, tenant_id(), invoice.id),
        entries=journal.entries_of_invoice(db.session, tenant_id(), invoice.id),
    )


@bp.get("/invoices/<int:invoice_id>")
@tenant_required
def detail(invoice_id: int) -> str:
    return _render_detail(_visible_invoice(invoice_id))


@bp.post("/invoices/<int:invoice_id>/edit")
@tenant_required
def edit(invoice_id: int) -> Response | tuple[str, int]:
    """Corrections after validation: every field but the number and type, each change in the trail."""
    invoice = _visible_invoice(invoice_id)
    form = {name: request.form[name] for name in FIELDS if name in request.form}
    try:
        changes = invoice_edits.edit_invoice(db.session, current_viewer(), invoice_id, form, current_user.user,
                                             ip=request.remote_addr)
    except ValidationFailed as exc:
        db.session.rollback()
        return _render_detail(_visible_invoice(invoice_id), form, exc.errors), 422
    db.session.commit()
    flash(_("Changes saved.") if changes else _("Nothing changed."), "success" if changes else "info")
    return redirect(url_for(".detail", invoice_id=invoice.id))


@bp.post("/invoices/<int:invoice_id>/files")
@tenant_required
def attach(invoice_id: int) -> Response:
    """Attach a file as is (a signed copy, a purchase order...): no extraction, no review."""
    _visible_invoice(invoice_id)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash(_("Choose a file to attach."), "error")
        return redirect(url_for(".detail", invoice_id=invoice_id))
    data = upload.stream.read(receivables.MAX_ATTACHMENT_BYTES + 1)
    try:
        receivables.attach_file(db.session, storage(), current_viewer(), invoice_id, data, actor=current_user.user,
                                ip=request.remote_addr)
    except ServiceError as exc:
        return refused(exc, url_for(".detail", invoice_id=invoice_id))
    db.session.commit()
    flash(_("File attached."), "success")
    return redirect(url_for(".detail", invoice_id=invoice_id))


@bp.get("/invoices/assign")
@tenant_required
def assign_form() -> str:
    return render_template("assign.html", proposals=None, max_files=assignment.MAX_FILES,
                           max_mb=receivables.MAX_ATTACHMENT_BYTES // (1024 * 1024))


@bp.post("/invoices/assign")
@tenant_required
def assign_upload() -> Response | str:
    """Many files at once: each is stored and an invoice proposed; nothing is attached before confirmation."""
    try:
        limits = quotas.Limits.of(app_settings())
        proposals = assignment.propose(db.session, storage(), current_viewer(), uploaded_files(), limits)
    except ServiceError as exc:  # also a quota: its reason says which and how to free space
        return refused(exc, url_for(".assign_form"))
    db.session.commit()
    return render_template("assign.html", proposals=proposals, max_files=assignment.MAX_FILES,
                           max_mb=receivables.MAX_ATTACHMENT_BYTES // (1024 * 1024))


@bp.post("/invoices/assign/confirm")
@tenant_required
def assign_confirm() -> Response:
    pairs: list[tuple[int, int]] = []
    for file_id in request.form.getlist("file_id")[: assignment.MAX_FILES]:
        chosen = request.form.get(f"invoice_{file_id}", "")
        if file_id.isdigit() and chosen.isdigit():
            pairs.append((int(file_id), int(chosen)))
    if not pairs:
        flash(_("Nothing attached: no invoice was chosen."), "info")
        return redirect(url_for(".assign_form"))
    try:
        done = assignment.confirm(db.session, current_viewer(), pairs, actor=current_user.user,
                                  ip=request.remote_addr, via="assign")
    except ValidationFailed:
        db.session.rollback()
        flash(translate(assignment.NOT_YOURS), "error")
        return redirect(url_for(".assign_form"))
    db.session.commit()
    flash(ngettext("%(num)d file attached to its invoice.", "%(num)d files attached to their invoices.", len(done)),
          "success")
    return redirect(url_for(".index"))


@bp.post("/invoices/<int:invoice_id>/delete")
@tenant_required
def delete(invoice_id: int) -> Response:
    """Admins only: the invoice and its cash movements go, its documents become discarded, files stay."""
    viewer = current_viewer()
    invoice = _visible_invoice(invoice_id)
    if not viewer.is_admin:
        abort(403, _("Only an admin can delete an invoice."))
    number, kind = invoice.number, invoice.doc_type
    try:
        invoice_edits.delete_invoice(db.session, viewer, invoice_id, request.form.get("reason", ""),
                                     actor=current_user.user, ip=request.remote_addr)
    except ServiceError as exc:
        return refused(exc, url_for(".detail", invoice_id=invoice_id))
    db.session.commit()
    flash(_("Invoice %(number)s deleted. Its file is kept; import it again to re-enter it.", number=number), "success")
    return redirect(url_for(".credit_notes" if kind == DocType.CREDIT_NOTE.value else ".index"))


@bp.get("/files/<int:file_id>")
@tenant_required
def file(file_id: int) -> Response:
    """Any stored file of the tenant (an invoice's original or an attached copy) the viewer may see."""
    stored = docs.get_file(db.session, tenant_id(), file_id)
    if not access.can_see_file(db.session, current_viewer(), stored.id):
        raise NotFound("no such file")
    # Downloads get the name the file first arrived with.
    first_name = (
        select(Document.filename)
        .where(Document.tenant_id == tenant_id(), Document.file_id == stored.id)
        .order_by(Document.id)
        .limit(1)
    )
    return send_stored_file(stored, db.session.scalar(first_name) or f"file-{stored.id}")
