"""Duplicate detection: is this document an invoice the company already has?

Three signs, checked in this order, each with the reason shown to the reviewer: the very same file is
already attached to a validated invoice; another document made of the same bytes is waiting for review;
a validated invoice of the same direction and type has the same number (numbers compared by
``core.fields.number_key``: case, spaces and separators do not count). A message received twice is
recognised earlier, by its raw bytes (``core.inbound.intake``). What the reviewer then chooses (link,
replace, discard) is ``core.documents.review.resolve_duplicate``.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.errors import ServiceError
from core.fields import number_key
from core.i18n import N_
from core.models import Document, DocumentStatus, Invoice, InvoiceFile
from core.reasons import reason

DUPLICATE_REASON = N_("It seems this invoice has already been imported")
# The reasons stored on documents, written out in full so that the dashboard can translate them.
SAME_FILE_REASON = N_("It seems this invoice has already been imported: the same file is attached to invoice {number}.")
SAME_NUMBER_REASON = N_("It seems this invoice has already been imported: invoice {number} has the same number.")
WAITING_TWIN_REASON = N_(
    "It seems this invoice has already been imported: the same file is already waiting for review (document {id})."
)


class DuplicateNumber(ServiceError):
    """The number typed at validation is an existing invoice's: the reviewer chooses link, replace or discard."""

    def __init__(self, invoice: Invoice) -> None:
        self.reason = reason(SAME_NUMBER_REASON, number=invoice.number)  # stored on the document as data
        super().__init__(self.reason.text)
        self.invoice = invoice


def invoice_with_number(
    session: Session, tenant_id: int, direction: str, doc_type: str, number: str
) -> Invoice | None:
    """The validated invoice of this tenant, direction and type whose number equals ``number``."""
    return session.scalars(
        select(Invoice).where(
            Invoice.tenant_id == tenant_id,
            Invoice.direction == direction,
            Invoice.doc_type == doc_type,
            Invoice.number_key == number_key(number),
        )
    ).first()


def find_duplicate(session: Session, doc: Document) -> tuple[Invoice | None, str | None]:
    """The validated invoice this document repeats, by identical file or by number; else (None, None)."""
    by_file = session.scalars(
        select(Invoice)
        .outerjoin(InvoiceFile, InvoiceFile.invoice_id == Invoice.id)
        .where(
            Invoice.tenant_id == doc.tenant_id,
            or_(Invoice.file_id == doc.file_id, InvoiceFile.file_id == doc.file_id),
        )
    ).first()
    if by_file is not None:
        return by_file, reason(SAME_FILE_REASON, number=by_file.number)
    if doc.number and doc.doc_type:
        by_number = invoice_with_number(session, doc.tenant_id, doc.direction, doc.doc_type, doc.number)
        if by_number is not None:
            return by_number, reason(SAME_NUMBER_REASON, number=by_number.number)
    return None, None


def same_file_pending(session: Session, doc: Document) -> Document | None:
    """Another document of the tenant, not yet validated nor discarded, made of the very same bytes."""
    return session.scalars(
        select(Document).where(
            Document.tenant_id == doc.tenant_id,
            Document.file_id == doc.file_id,
            Document.id != doc.id,
            Document.status.in_([DocumentStatus.PENDING.value, DocumentStatus.DUPLICATE.value]),
        )
    ).first()
