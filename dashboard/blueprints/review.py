"""Pending verification: the queue, the review page (original beside the fields) and its actions."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from core import listing
from core.documents import bulk, duplicates, splitting
from core.documents import review as docs
from core.errors import ServiceError, ValidationFailed
from core.extraction.result import needs_check
from core.fields import FIELDS
from core.models import DocType, Document, DocumentStatus, Tenant
from core.receivables import invoices as receivables
from core.tenancy import access, company
from dashboard import listing as list_web
from dashboard.extensions import db
from dashboard.handoff import enqueue_rematch_invoice
from dashboard.i18n import reason_text, translate
from dashboard.viewer import current_viewer
from dashboard.web import (
    input_value,
    local_redirect,
    paginated,
    refused,
    send_stored_file,
    tenant_id,
    tenant_required,
)

bp = Blueprint("review", __name__)

EDITABLE = (DocumentStatus.PENDING.value, DocumentStatus.FAILED.value)


@bp.get("/")
@tenant_required
def home() -> Response:
    return redirect(url_for(".pending"))


def _filtered() -> tuple[bool, listing.ListFilters, Select[Any]]:
    """The queue (or the documents that could not be read) with the URL's filters: page and CSV share it."""
    failed = request.args.get("show") == "failed"
    current = listing.for_documents(list_web.filters(listing.DOCUMENT_SORTS, listing.DOCUMENT_DEFAULT_SORT))
    statuses = (DocumentStatus.FAILED.value,) if failed else docs.REVIEW_STATUSES
    stmt = listing.document_list(current_viewer(), statuses, current, listing.dialect_of(db.session))
    return failed, current, stmt


@bp.get("/pending")
@tenant_required
def pending() -> str:
    failed, current, stmt = _filtered()
    page = paginated(stmt.options(selectinload(Document.message)))
    context = list_web.bar_context(current, payment_status=False, export_endpoint=".export",
                                   fields=("date_from", "date_to", "amount_min", "amount_max", "currency", "source"),
                                   keep={"show": "failed"} if failed else {})
    names = receivables.client_names(db.session, current_viewer())
    return render_template("pending.html", page=page, failed=failed,
                           bulk_max=bulk.MAX_SELECTED, client_names=names, **context)


@bp.get("/pending/export.csv")
@tenant_required
def export() -> Response:
    """Every document the list shows with these filters, in its order (not only the current page)."""
    failed, _current, stmt = _filtered()
    return list_web.csv_download("failed" if failed else "pending", listing.DOCUMENT_CSV_HEADER,
                                 listing.document_rows(db.session, stmt))


@bp.post("/pending/bulk")
@tenant_required
def bulk_action() -> Response:
    """Validate, assign to a client or discard the selected documents; each one's outcome is said."""
    raw_ids = request.form.getlist("doc_id")[: bulk.MAX_SELECTED + 1]  # one more: too many is refused, not cut
    ids = [int(raw) for raw in raw_ids if raw.isdigit() and len(raw) < 10]
    try:
        results = bulk.apply(db.session, current_viewer(), request.form.get("action", ""), ids,
                             request.form.get("client", ""))
    except ServiceError as exc:
        db.session.rollback()
        flash(translate(str(exc)), "error")
        return local_redirect(request.form.get("next"), url_for(".pending"))
    db.session.commit()
    for result in results:
        if result.invoice_id is not None:
            enqueue_rematch_invoice(result.invoice_id)
    done = sum(result.ok for result in results)
    flash(ngettext("%(num)d document done.", "%(num)d documents done.", done), "success" if done else "info")
    for result in results:
        if not result.ok:
            flash(_("Document %(id)s: %(reason)s", id=result.document_id, reason=translate(result.message)), "error")
    return local_redirect(request.form.get("next"), url_for(".pending"))


# The review page -----------------------------------------------------------------------------


def _visible_document(doc_id: int) -> Document:
    """The tenant's document; 404 when it was validated into an invoice the viewer may not see."""
    return access.check_document(db.session, current_viewer(), docs.get_document(db.session, tenant_id(), doc_id))


def unsure_fields(doc: Document) -> dict[str, float]:
    """Fields the extractor was unsure of, with its confidence."""
    unsure: dict[str, float] = {}
    for name, info in (doc.field_info or {}).items():
        confidence = info.get("confidence") if isinstance(info, dict) else None
        if isinstance(confidence, int | float) and needs_check(confidence):
            unsure[name] = float(confidence)
    return unsure


def _render(doc: Document, form: dict[str, str] | None = None, errors: dict[str, str] | None = None) -> str:
    values = {name: input_value(getattr(doc, name)) for name in FIELDS}
    values["direction"] = "" if docs.direction_undecided(doc) else doc.direction  # undecided: nothing preselected
    values |= form or {}
    viewer = current_viewer()
    # Documents are open to every member; the invoices they became follow the access policy.
    invoice = doc.invoice if doc.invoice and access.can_see_invoice(db.session, viewer, doc.invoice) else None
    original = doc.duplicate_of if doc.duplicate_of and doc.duplicate_of.tenant_id == doc.tenant_id else None
    original_visible = original is not None and access.can_see_invoice(db.session, viewer, original)
    # An original the viewer may not see is neither linked nor written to (link/replace are refused):
    # only discard, and an admin for the rest.
    original_hidden = original is not None and not original_visible
    original = original if original_visible else None
    return render_template(
        "review.html",
        doc=doc,
        values=values,
        errors=errors or {},
        editable=doc.status in EDITABLE,
        unsure=unsure_fields(doc),
        invoice=invoice,
        original=original,
        original_visible=original_visible,
        original_hidden=original_hidden,
        replace_basis=docs.replace_basis(db.session, doc) if original is not None else None,
        docs_not_same=docs.NOT_SAME_DOCUMENT,
        frozen_number=docs.FROZEN_NUMBER,
        file_url=url_for(".document_file", doc_id=doc.id),
        client_names=receivables.client_names(db.session, viewer) if doc.status in EDITABLE else [],
        split=_split_context(doc),
        direction_info=_direction_info(doc),
    )


def _direction_info(doc: Document) -> dict[str, Any]:
    """Why the document is a sale or a purchase (issue 18), or that the company's identity is missing."""
    info = (doc.field_info or {}).get("direction")
    if isinstance(info, dict):
        return info
    tenant = db.session.get(Tenant, doc.tenant_id)
    return {} if tenant is not None and company.has_identity(tenant) else {"note": company.NO_IDENTITY}


def _split_context(doc: Document) -> dict[str, Any] | None:
    """The groups of the file this document was cut from (issue 4), for ``_split_groups.html``."""
    source = splitting.source_of(db.session, doc)
    if source is None:
        return None
    return {"source": source, "groups": splitting.groups_of(db.session, source)}


def _form_fields() -> dict[str, str]:
    # "direction" (issue 18): sale or purchase, the reviewer's pick when extraction could not tell.
    return {name: request.form[name] for name in (*FIELDS, "direction") if name in request.form}


def _confirmed(doc_type: str | None, number: str) -> str:
    if doc_type == DocType.CREDIT_NOTE.value:
        return _("Credit note %(number)s confirmed.", number=number)
    return _("Invoice %(number)s confirmed.", number=number)


@bp.get("/documents/<int:doc_id>")
@tenant_required
def document(doc_id: int) -> str:
    return _render(_visible_document(doc_id))


@bp.post("/documents/<int:doc_id>")
@tenant_required
def save_document(doc_id: int) -> Any:
    """Confirm (validate into an invoice) or save a draft; field errors come back next to each field."""
    doc = _visible_document(doc_id)
    action, form = request.form.get("action"), _form_fields()
    if action not in ("confirm", "save"):
        abort(400)
    try:
        if action == "confirm":
            result = docs.confirm_document(db.session, current_viewer(), doc.id, form)
            db.session.commit()
            if isinstance(result, Document):  # the typed number is an existing invoice's: the page offers the choice
                flash(_("This number is already used: link, replace or discard below."), "warning")
            else:
                enqueue_rematch_invoice(result.id)
                flash(_confirmed(result.doc_type, result.number), "success")
        else:
            docs.update_fields(db.session, tenant_id(), doc.id, form)
            db.session.commit()
            flash(_("Draft saved."), "success")
    except ValidationFailed as exc:
        db.session.rollback()
        return _render(doc, form, exc.errors), 422
    except IntegrityError:  # another reviewer confirmed the same number a moment ago
        db.session.rollback()
        return _render(doc, form, {"number": duplicates.DUPLICATE_REASON}), 422
    except ServiceError as exc:
        db.session.rollback()
        flash(translate(str(exc)), "error")
    return redirect(url_for(".document", doc_id=doc.id))


def _to_next(doc: Document) -> Response:
    following = docs.pending_after(db.session, tenant_id(), doc)
    if following is None:
        flash(_("Nothing else is waiting for verification."), "info")
        return redirect(url_for(".pending"))
    return redirect(url_for(".document", doc_id=following.id))


@bp.get("/documents/<int:doc_id>/next")
@tenant_required
def next_document(doc_id: int) -> Response:
    return _to_next(_visible_document(doc_id))


@bp.post("/documents/<int:doc_id>/discard")
@tenant_required
def discard(doc_id: int) -> Response:
    _visible_document(doc_id)
    try:
        doc = docs.discard_document(db.session, tenant_id(), doc_id)
    except ServiceError as exc:  # e.g. a document already validated: say why, stay on it
        return refused(exc, url_for(".document", doc_id=doc_id))
    db.session.commit()
    flash(_("%(name)s deleted.", name=doc.filename), "success")
    return _to_next(doc)


@bp.post("/documents/<int:doc_id>/duplicate")
@tenant_required
def duplicate(doc_id: int) -> Response:
    """The reviewer's decision on a duplicate: link, replace or discard."""
    _visible_document(doc_id)
    action = request.form.get("action", "")
    try:
        doc = docs.resolve_duplicate(db.session, current_viewer(), doc_id, action)
    except ServiceError as exc:  # e.g. a document already validated: say why, stay on it
        return refused(exc, url_for(".document", doc_id=doc_id))
    db.session.commit()
    flash(reason_text(doc) if doc.reason else _("Done."), "success")
    if action == "discard" or doc.invoice_id is None:
        return _to_next(doc)
    return redirect(url_for("invoices.detail", invoice_id=doc.invoice_id))


@bp.get("/documents/<int:doc_id>/file")
@tenant_required
def document_file(doc_id: int) -> Response:
    doc = _visible_document(doc_id)
    return send_stored_file(docs.get_file(db.session, tenant_id(), doc.file_id), doc.filename)
