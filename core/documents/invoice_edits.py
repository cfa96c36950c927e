"""Corrections to a validated invoice: every field but its number (and type) stays editable, and each
change is kept in the audit trail (who, when, old -> new); and deleting one, which undoes what it made."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from core.accounting.entries import on_invoice_deleted
from core.banking.reconciliation import refresh_transaction
from core.documents.review import FROZEN_NUMBER, find_or_create_client, get_invoice
from core.errors import NotFound, ServiceError, ValidationFailed
from core.fields import FIELDS, check_complete, coerce, number_key
from core.i18n import N_
from core.models import (
    AuditEvent,
    CashKind,
    CashMovement,
    Document,
    DocumentStatus,
    Invoice,
    InvoiceFile,
    InvoiceStatus,
    Match,
    User,
)
from core.reasons import reason as reason_of
from core.reasons import set_reason
from core.tenancy import access, audit
from core.tenancy.access import Viewer

EDIT_ACTION = "invoice.edit"
# The number (and the type, which with it identifies the invoice for duplicates) stay as validated.
FROZEN = ("number", "doc_type")
EDITABLE = tuple(name for name in FIELDS if name not in FROZEN)
FROZEN_TYPE = N_("The type of a validated invoice cannot be changed.")
CLIENT_NOT_YOURS = N_("You can only choose one of the clients assigned to you.")
DELETED_NOTE = N_("Invoice {number} deleted: {reason}")  # on its documents; the reason is the admin's words
MAX_TRAIL = 200


def _shown(value: Any) -> str | None:
    """A value as the trail keeps it (JSON): amounts and dates as text."""
    return None if value is None else str(value)


def _current(invoice: Invoice) -> dict[str, Any]:
    values = {name: getattr(invoice, name) for name in FIELDS if name != "client"}
    return values | {"client": invoice.client.name if invoice.client else None}


def _frozen_errors(invoice: Invoice, data: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    number = data.get("number")
    if "number" in data and number_key(str(number or "")) != invoice.number_key:
        errors["number"] = FROZEN_NUMBER
    if "doc_type" in data and (data["doc_type"] or None) != invoice.doc_type:
        errors["doc_type"] = FROZEN_TYPE
    return errors


def _follow_amounts(session: Session, invoice: Invoice) -> None:
    """Payment status and the expected cash follow a corrected amount, due date or currency."""
    from core.banking.reconciliation import refresh_invoice_status

    refresh_invoice_status(session, invoice)
    expected = session.scalars(
        select(CashMovement).where(
            CashMovement.invoice_id == invoice.id, CashMovement.kind == CashKind.EXPECTED.value
        )
    ).all()
    for movement in expected:
        if invoice.due_date is not None and invoice.amount is not None:
            movement.expected_date, movement.amount = invoice.due_date, invoice.amount
            movement.currency = invoice.currency or movement.currency


def edit_invoice(
    session: Session,
    viewer: Viewer,
    invoice_id: int,
    data: dict[str, Any],
    actor: User | None,
    ip: str | None = None,
) -> dict[str, list[str | None]]:
    """Apply a person's corrections to a validated invoice; returns what changed ({field: [old, new]}),
    recorded in the audit trail. Sending the same values again changes and records nothing."""
    invoice = access.check_invoice(session, viewer, get_invoice(session, viewer.tenant_id, invoice_id))
    errors = _frozen_errors(invoice, data)
    values, coerce_errors = coerce({name: data[name] for name in EDITABLE if name in data})
    errors |= coerce_errors
    before = _current(invoice)
    after = before | values
    errors |= {k: v for k, v in check_complete(after).items() if k not in errors}
    if not errors and "client" in values and values["client"] != before["client"] and viewer.restricted:
        visible = access.visible_client_ids(session, viewer) or set()
        client = find_or_create_client(session, viewer.tenant_id, values["client"])
        if client.id not in visible:
            errors["client"] = CLIENT_NOT_YOURS
    if errors:
        raise ValidationFailed(errors)
    changes = {
        name: [_shown(before[name]), _shown(value)] for name, value in values.items() if value != before[name]
    }
    if not changes:
        return {}
    for name in changes:
        if name == "client":
            invoice.client_id = find_or_create_client(session, viewer.tenant_id, values["client"]).id
            session.expire(invoice, ["client"])
        else:
            setattr(invoice, name, values[name])
    if changes.keys() & {"amount", "due_date", "currency"}:
        _follow_amounts(session, invoice)
    session.flush()
    audit.record(session, viewer.tenant_id, EDIT_ACTION, actor=actor, target=f"invoice:{invoice.id}",
                 detail={"number": invoice.number, "changes": changes}, ip=ip)
    return changes


def edit_trail(session: Session, tenant_id: int, invoice_id: int) -> list[AuditEvent]:
    """The corrections made to an invoice after its validation, newest first."""
    stmt = audit.events_query(tenant_id, EDIT_ACTION).where(AuditEvent.target == f"invoice:{invoice_id}")
    return list(session.scalars(stmt.limit(MAX_TRAIL)))


def delete_invoice(session: Session, viewer: Viewer, invoice_id: int, reason: str, *,
                   actor: User | None = None, ip: str | None = None) -> list[int]:
    """Delete a validated invoice (admin only): its cash movements and attachment links go, the
    documents that made it go back to *discarded* with the reason, and every file stays stored; the
    audit trail keeps its number and the reason. Returns the ids of those documents."""
    access.require_admin(viewer)
    invoice = session.get(Invoice, invoice_id)
    if invoice is None or invoice.tenant_id != viewer.tenant_id:
        raise NotFound("no such invoice")
    if invoice.status != InvoiceStatus.OPEN.value or (invoice.amount_paid or 0) > 0:
        # Payments matched by bank reconciliation point at it: undo those matches first, so that no
        # bank transaction is left reconciled against nothing.
        raise ServiceError(N_("a payment is recorded on this invoice: undo its payment matches before deleting it"))
    reason = " ".join((reason or "").split())[:500]
    if not reason:
        raise ServiceError(N_("say why the invoice is deleted (the reason is kept on its documents)"))
    # Issue 18: a posted entry is in the books for good (refused); a draft goes with the invoice.
    on_invoice_deleted(session, viewer.tenant_id, invoice.id)
    number = invoice.number
    note = reason_of(DELETED_NOTE, number=number, reason=reason)
    touched = list(
        session.scalars(
            select(Document).where(
                Document.tenant_id == viewer.tenant_id,
                or_(Document.invoice_id == invoice.id, Document.duplicate_of_id == invoice.id,
                    Document.id == invoice.document_id),
            )
        )
    )
    for doc in touched:
        if doc.invoice_id == invoice.id or doc.id == invoice.document_id:
            doc.status, doc.invoice_id = DocumentStatus.DISCARDED.value, None
            set_reason(doc, note)
        if doc.duplicate_of_id == invoice.id:
            doc.duplicate_of_id = None
            if doc.status == DocumentStatus.DUPLICATE.value:  # nothing to be a duplicate of any more
                doc.status = DocumentStatus.PENDING.value
                set_reason(doc, None)
    invoice.document_id = None
    # Bank matches still pointing at it can only be suggestions or undone ones (an applied one leaves a
    # payment): they go with it, and their transactions' statuses are worked out again below.
    stale = list(session.scalars(select(Match).where(Match.tenant_id == viewer.tenant_id,
                                                     Match.invoice_id == invoice.id)))
    for match in stale:
        session.delete(match)
    session.flush()
    session.execute(delete(InvoiceFile).where(InvoiceFile.invoice_id == invoice.id))
    session.expire(invoice, ["attachments", "matches"])
    session.delete(invoice)
    # The summaries listener reads the invoice's cash movements as they were before this flush: they go
    # with the invoice (ON DELETE CASCADE), not before it in a bulk statement the listener cannot see.
    session.flush()
    session.execute(delete(CashMovement).where(CashMovement.invoice_id == invoice_id))
    if stale:
        for transaction_id in sorted({m.transaction_id for m in stale}):
            refresh_transaction(session, viewer.tenant_id, transaction_id)
    audit.record(session, viewer.tenant_id, "invoice.delete", actor=actor, target=f"invoice:{invoice_id}",
                 detail={"number": number, "reason": reason}, ip=ip)
    return [doc.id for doc in touched]
