"""Validated invoices and credit notes: the two lists and the invoice page with its files."""

from __future__ import annotations

from flask import Blueprint, render_template, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from core.models import DocType, Document, Invoice
from core.services import documents as docs
from dashboard.extensions import db
from dashboard.web import not_found_for, paginated, send_stored_file, tenant_id, tenant_required

bp = Blueprint("invoices", __name__)
not_found_for(bp)


def _list(doc_type: DocType) -> str:
    stmt = docs.invoices_query(tenant_id(), doc_type.value).options(selectinload(Invoice.client))
    return render_template("invoices.html", page=paginated(stmt), doc_type=doc_type.value)


@bp.get("/invoices")
@tenant_required
def index() -> str:
    return _list(DocType.INVOICE)


@bp.get("/credit-notes")
@tenant_required
def credit_notes() -> str:
    return _list(DocType.CREDIT_NOTE)


@bp.get("/invoices/<int:invoice_id>")
@tenant_required
def detail(invoice_id: int) -> str:
    invoice = docs.get_invoice(db.session, tenant_id(), invoice_id)
    attachments = [a for a in invoice.attachments if a.file.tenant_id == invoice.tenant_id]
    return render_template(
        "invoice.html",
        invoice=invoice,
        attachments=attachments,
        file_url=url_for(".file", file_id=invoice.file_id),
        frozen_number=docs.FROZEN_NUMBER,
    )


@bp.get("/files/<int:file_id>")
@tenant_required
def file(file_id: int) -> Response:
    """Any stored file of the tenant (an invoice's original or an attached copy)."""
    stored = docs.get_file(db.session, tenant_id(), file_id)
    # Downloads get the name the file first arrived with.
    first_name = (
        select(Document.filename)
        .where(Document.tenant_id == tenant_id(), Document.file_id == stored.id)
        .order_by(Document.id)
        .limit(1)
    )
    return send_stored_file(stored, db.session.scalar(first_name) or f"file-{stored.id}")
