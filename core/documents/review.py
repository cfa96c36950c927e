"""Documents under review, their validation into invoices, and the duplicate flow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from core.documents.duplicates import (
    WAITING_TWIN_REASON,
    DuplicateNumber,
    find_duplicate,
    invoice_with_number,
    same_file_pending,
)
from core.errors import NotFound, ServiceError, ValidationFailed
from core.fields import FIELDS, check_complete, coerce, number_key
from core.i18n import N_
from core.models import (
    REVIEW_STATUSES,
    Client,
    Direction,
    DocType,
    Document,
    DocumentStatus,
    Invoice,
    InvoiceFile,
    StoredFile,
    Tenant,
    utcnow,
)
from core.names import folded
from core.reasons import reason, set_reason
from core.tenancy import access
from core.tenancy.access import Viewer

LINKED_REASON = N_("File linked to invoice {number}.")
REPLACED_REASON = N_("File of invoice {number} replaced.")  # on documents replaced before the basis was said
# A restricted member typing the number of an invoice they cannot see: said without its id, link or
# choices, so nothing more is revealed than that the number is taken; an admin can resolve it.
NUMBER_TAKEN_HIDDEN = N_("This number is already used by an invoice you cannot see: ask an administrator.")
DIRECTION_UNDECIDED = N_("choose whether this is a sale (receivable) or a purchase (payable)")
BAD_DIRECTION = N_("must be receivable or payable")
SUPPLIER_IS_US = N_("this is your own company: a purchase's issuer is the supplier who sent the invoice")
CLIENT_IS_US = N_("this is your own company: a sale's client is the company you invoiced")
FROZEN_NUMBER = N_(
    "The number of a validated invoice cannot be changed. To change it, delete the invoice and import "
    "the file again."
)


# Queries (always scoped to a tenant) ---------------------------------------------------------


def documents_query(tenant_id: int, status: str | None = None) -> Select[Any]:
    stmt = select(Document).where(Document.tenant_id == tenant_id)
    if status:
        stmt = stmt.where(Document.status == DocumentStatus(status).value)
    return stmt.order_by(Document.created_at.desc(), Document.id.desc())


def get_document(session: Session, tenant_id: int, document_id: int) -> Document:
    doc = session.get(Document, document_id)
    if doc is None or doc.tenant_id != tenant_id:
        raise NotFound("no such document")
    return doc


def next_pending(session: Session, tenant_id: int, after_id: int | None = None) -> Document | None:
    """The next document waiting for review (oldest first), skipping ``after_id``."""
    stmt = select(Document).where(
        Document.tenant_id == tenant_id,
        Document.status.in_([DocumentStatus.PENDING.value, DocumentStatus.DUPLICATE.value]),
    )
    if after_id is not None:
        stmt = stmt.where(Document.id != after_id)
    return session.scalars(stmt.order_by(Document.created_at, Document.id)).first()


def review_queue_query(tenant_id: int) -> Select[Any]:
    """Documents waiting for a person (pending verification or a duplicate decision), newest first."""
    stmt = select(Document).where(Document.tenant_id == tenant_id, Document.status.in_(REVIEW_STATUSES))
    return stmt.order_by(Document.created_at.desc(), Document.id.desc())


def pending_after(session: Session, tenant_id: int, doc: Document) -> Document | None:
    """The waiting document that follows ``doc`` in review order (oldest first), wrapping around.

    Unlike ``next_pending`` alone, skipping documents one after the other visits each of them instead
    of bouncing between the two oldest.
    """
    later = or_(
        Document.created_at > doc.created_at,
        and_(Document.created_at == doc.created_at, Document.id > doc.id),
    )
    stmt = select(Document).where(Document.tenant_id == tenant_id, Document.status.in_(REVIEW_STATUSES), later)
    found = session.scalars(stmt.order_by(Document.created_at, Document.id)).first()
    return found or next_pending(session, tenant_id, after_id=doc.id)


def invoices_query(tenant_id: int, doc_type: str | None = None, status: str | None = None) -> Select[Any]:
    stmt = select(Invoice).where(Invoice.tenant_id == tenant_id)
    if doc_type:
        stmt = stmt.where(Invoice.doc_type == DocType(doc_type).value)
    if status:
        stmt = stmt.where(Invoice.status == status)
    return stmt.order_by(Invoice.issue_date.desc(), Invoice.id.desc())


def get_invoice(session: Session, tenant_id: int, invoice_id: int) -> Invoice:
    invoice = session.get(Invoice, invoice_id)
    if invoice is None or invoice.tenant_id != tenant_id:
        raise NotFound("no such invoice")
    return invoice


def get_file(session: Session, tenant_id: int, file_id: int) -> StoredFile:
    stored = session.get(StoredFile, file_id)
    if stored is None or stored.tenant_id != tenant_id:
        raise NotFound("no such file")
    return stored


# Duplicates: detection in core.documents.duplicates; the reviewer's choice below (resolve_duplicate).


def finish_extraction(
    session: Session,
    doc: Document,
    fields: dict[str, Any],
    field_info: dict[str, Any],
    source: str | None,
) -> Document:
    """Record what extraction found (unknown fields stay empty) and route the document to review.

    ``fields`` holds typed values; values the extractor could not type are dropped, never guessed.
    """
    values, _errors = coerce({k: v for k, v in fields.items() if k in FIELDS})
    for name, value in values.items():
        setattr(doc, name, value)
    doc.field_info = {k: v for k, v in field_info.items() if k in values}
    doc.extraction_source = source
    duplicate, reason = find_duplicate(session, doc)
    if duplicate is not None:
        doc.status, doc.duplicate_of_id = DocumentStatus.DUPLICATE.value, duplicate.id
        set_reason(doc, reason)
    elif (twin := same_file_pending(session, doc)) is not None:
        doc.status, doc.duplicate_of_id = DocumentStatus.DUPLICATE.value, None
        set_reason(doc, WAITING_TWIN_REASON, id=twin.id)
    else:
        doc.status = DocumentStatus.PENDING.value
        set_reason(doc, None)
    return doc


def fail_document(doc: Document, reason: str) -> None:
    doc.status = DocumentStatus.FAILED.value
    set_reason(doc, reason)


# Validation ----------------------------------------------------------------------------------


def find_or_create_client(session: Session, tenant_id: int, name: str) -> Client:
    key = folded(name)
    client = session.scalars(
        select(Client).where(Client.tenant_id == tenant_id, Client.role == "client", Client.normalized_name == key)
    ).first()
    if client is None:
        client = Client(tenant_id=tenant_id, name=name, normalized_name=key)
        session.add(client)
        session.flush()
    return client


def chosen_direction(data: dict[str, Any]) -> tuple[str | None, dict[str, str]]:
    """The direction a reviewer picked (``data["direction"]``), or None; an error when it is neither."""
    raw = data.get("direction")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, {}
    try:
        return Direction(str(raw).strip()).value, {}
    except ValueError:
        return None, {"direction": BAD_DIRECTION}


def direction_undecided(doc: Document) -> bool:
    """Extraction could not tell sale from purchase (core.tenancy.company): a person must pick."""
    info = (doc.field_info or {}).get("direction")
    return isinstance(info, dict) and bool(info.get("undecided"))


def _set_direction(doc: Document, direction: str) -> None:
    doc.direction = direction
    info = dict((doc.field_info or {}).get("direction") or {})
    info.pop("undecided", None)  # a person decided
    info |= {"source": "reviewer", "confidence": 1.0}
    doc.field_info = {**(doc.field_info or {}), "direction": info}


def update_fields(session: Session, tenant_id: int, document_id: int, data: dict[str, Any]) -> Document:
    """Save a reviewer's corrections without validating (a draft)."""
    doc = get_document(session, tenant_id, document_id)
    if doc.status in (DocumentStatus.VALIDATED.value, DocumentStatus.DISCARDED.value):
        raise ServiceError(N_("a {status} document cannot be edited").format(status=doc.status))
    values, errors = coerce(data)
    direction, direction_errors = chosen_direction(data)
    errors |= direction_errors
    if errors:
        raise ValidationFailed(errors)
    for name, value in values.items():
        setattr(doc, name, value)
    if direction is not None:
        _set_direction(doc, direction)
    return doc


def _complete_for(direction: str, current: dict[str, Any]) -> dict[str, str]:
    """``check_complete``, the counterparty being the client of a sale and the issuer of a purchase."""
    errors = check_complete(current)
    if direction == Direction.PAYABLE.value:
        errors.pop("client", None)
        if not current.get("issuer"):
            errors["issuer"] = N_("required: the supplier who issued this invoice")
    return errors


def _unswap_for_purchase(doc: Document, values: dict[str, Any]) -> None:
    """Extraction of an undecided document matched its client as for a sale and, finding our company read as
    the client, swapped the two parties (``core.receivables.ourselves``). When the reviewer then picks a
    purchase, that swap was wrong: the party read as issuer is the supplier. Undone here unless the reviewer
    typed either party."""
    if "issuer" in values or "client" in values:
        return
    info = doc.field_info or {}
    if (info.get("issuer") or {}).get("swapped") and (info.get("client") or {}).get("swapped"):
        doc.issuer, doc.client = doc.client, doc.issuer
        for name in ("issuer", "client"):
            restored = {k: v for k, v in info[name].items() if k not in ("swapped", "note")}
            info = {**info, name: restored}
        doc.field_info = info


def _counterparty_is_us(session: Session, tenant_id: int, direction: str, current: dict[str, Any]) -> dict[str, str]:
    """Our own company is never the counterparty (it would become its own supplier or client)."""
    from core.receivables.ourselves import is_ourselves

    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        return {}
    if direction == Direction.PAYABLE.value and is_ourselves(tenant, current.get("issuer")):
        return {"issuer": SUPPLIER_IS_US}
    if direction == Direction.RECEIVABLE.value and is_ourselves(tenant, current.get("client")):
        return {"client": CLIENT_IS_US}
    return {}


def validate_document(
    session: Session, tenant_id: int, document_id: int, data: dict[str, Any], user_id: int | None
) -> Invoice:
    """Confirm a reviewed document: it becomes an invoice (or credit note) with its original file.

    All in one transaction (the caller's): the client is found or created and the invoice number
    is frozen from then on.
    """
    doc = get_document(session, tenant_id, document_id)
    if doc.status == DocumentStatus.VALIDATED.value:
        if "number" in data and data["number"] != doc.number:
            raise ValidationFailed({"number": FROZEN_NUMBER})
        raise ServiceError(N_("this document is already validated"))
    if doc.status not in (DocumentStatus.PENDING.value, DocumentStatus.FAILED.value):
        raise ServiceError(N_("a {status} document cannot be validated").format(status=doc.status))
    values, errors = coerce(data)
    chosen, direction_errors = chosen_direction(data)
    errors |= direction_errors
    if chosen is None and not direction_errors and direction_undecided(doc):
        errors["direction"] = DIRECTION_UNDECIDED
    direction = chosen or doc.direction
    if direction == Direction.PAYABLE.value and not errors:
        _unswap_for_purchase(doc, values)
    current = {name: getattr(doc, name) for name in FIELDS} | values
    errors |= {k: v for k, v in _complete_for(direction, current).items() if k not in errors}
    errors |= {k: v for k, v in _counterparty_is_us(session, tenant_id, direction, current).items()
               if k not in errors}
    if not errors:
        clash = invoice_with_number(session, tenant_id, direction, current["doc_type"], current["number"])
        if clash is not None:
            raise DuplicateNumber(clash)
    if errors:
        raise ValidationFailed(errors)

    for name, value in values.items():
        setattr(doc, name, value)
    if chosen is not None:
        _set_direction(doc, chosen)
    if direction == Direction.PAYABLE.value:
        from core.payables import suppliers  # the payables area builds on validation, not the reverse

        client = suppliers.supplier_for_document(session, doc, current["issuer"])
    else:
        client = find_or_create_client(session, tenant_id, current["client"])
    invoice = Invoice(
        tenant_id=tenant_id,
        direction=direction,
        number_key=number_key(current["number"]),
        client_id=client.id,
        file_id=doc.file_id,
        document_id=doc.id,
        validated_by_id=user_id,
        **{name: current[name] for name in FIELDS if name != "client"},
    )
    session.add(invoice)
    session.flush()
    doc.status, doc.invoice_id = DocumentStatus.VALIDATED.value, invoice.id
    set_reason(doc, None)
    doc.validated_at, doc.validated_by_id = utcnow(), user_id
    # Receivables (issue 5): the expected cash at the due date, in this same transaction. Client
    # balances and analytics follow at the flush (core.receivables.summaries), so nothing more here.
    from core.receivables.invoices import record_expected_cash

    record_expected_cash(session, invoice)
    # A payment that reached the bank first is matched by the worker after the commit (the transports
    # enqueue ``worker.jobs.rematch_invoice``): the engine reads every open invoice, seconds at 100,000.
    # Issue 13: what this validation teaches about the issuer's layout serves its next document.
    from core.documents.issuer_profiles import learn_safely

    learn_safely(session, doc, invoice)
    # Issue 18: the draft journal entry (idempotent), in this same transaction.
    from core.accounting.entries import on_invoice_validated

    on_invoice_validated(session, invoice)
    return invoice


def confirm_document(session: Session, viewer: Viewer, document_id: int, data: dict[str, Any]) -> Invoice | Document:
    """Validate the document into an invoice (returned); when the typed number is an existing invoice's,
    keep what the reviewer typed and put the document in the duplicate choice instead (the document is
    returned, status ``duplicate``), as extraction does when it reads that number itself. When the viewer
    may not see that invoice, a plain field error instead: no id, no link, no choice to write to it."""
    tenant_id = viewer.tenant_id
    try:
        return validate_document(session, tenant_id, document_id, data, viewer.user_id)
    except DuplicateNumber as exc:
        if not access.can_see_invoice(session, viewer, exc.invoice):
            raise ValidationFailed({"number": NUMBER_TAKEN_HIDDEN}) from None
        doc = get_document(session, tenant_id, document_id)
        values, _errors = coerce(data)  # validate_document found no error before the clash
        for name, value in values.items():
            setattr(doc, name, value)
        doc.status, doc.duplicate_of_id = DocumentStatus.DUPLICATE.value, exc.invoice.id
        set_reason(doc, exc.reason)
        session.flush()
        return doc


DUPLICATE_ACTIONS = ("link", "replace", "discard")
# Replace (the seed product's rule): only when the new file is the same document as the existing record.
SAME_NUMBER_BASIS = N_("Same document: the number is the same ({number}).")
SAME_FILENAME_BASIS = N_("Same document: the file name is the same ({filename}).")
REPLACED_SAME_NUMBER = N_("File of invoice {number} replaced: same number.")
REPLACED_SAME_FILENAME = N_("File of invoice {number} replaced: same file name ({filename}).")
NOT_SAME_DOCUMENT = N_(
    "Replace is only for the same document (same file name or same number): link or discard this file instead."
)


@dataclass(frozen=True)
class ReplaceBasis:
    """Why a duplicate may replace the original's file: ``kind`` is "number" or "filename"."""

    kind: str
    invoice: Invoice
    filename: str

    @property
    def reason(self) -> str:
        if self.kind == "number":
            return SAME_NUMBER_BASIS.format(number=self.invoice.number)
        return SAME_FILENAME_BASIS.format(filename=self.filename)

    @property
    def replaced(self) -> str:
        if self.kind == "number":
            return reason(REPLACED_SAME_NUMBER, number=self.invoice.number)
        return reason(REPLACED_SAME_FILENAME, number=self.invoice.number, filename=self.filename)


def replace_basis(session: Session, doc: Document) -> ReplaceBasis | None:
    """Whether ``doc`` is the same document as the invoice it duplicates: the same number (and type),
    else the same file name as the original's; None otherwise (then only link or discard)."""
    invoice = session.get(Invoice, doc.duplicate_of_id) if doc.duplicate_of_id else None
    if invoice is None or invoice.tenant_id != doc.tenant_id:
        return None
    same_type = (doc.doc_type or invoice.doc_type) == invoice.doc_type
    if doc.number and same_type and number_key(doc.number) == invoice.number_key:
        return ReplaceBasis("number", invoice, doc.filename)
    original = session.get(Document, invoice.document_id) if invoice.document_id else None
    if original is not None and folded(original.filename or "") == folded(doc.filename or ""):
        return ReplaceBasis("filename", invoice, original.filename)
    return None


def duplicate_choices(session: Session, doc: Document) -> list[str]:
    """The actions open to a duplicate: discard always; link once the original is validated; replace
    only when it is the same document."""
    if doc.duplicate_of_id is None:
        return ["discard"]
    return ["link", "replace", "discard"] if replace_basis(session, doc) else ["link", "discard"]


def resolve_duplicate(session: Session, viewer: Viewer, document_id: int, action: str) -> Document:
    """The reviewer's decision on a duplicate: link the file to the existing invoice, replace the
    existing invoice's file with it, or discard the new document. Files are never deleted. Link and
    replace write to the invoice: NotFound when the viewer may not see it (discard stays open)."""
    tenant_id, user_id = viewer.tenant_id, viewer.user_id
    doc = get_document(session, tenant_id, document_id)
    if doc.status != DocumentStatus.DUPLICATE.value:
        raise ServiceError(N_("this document is not waiting for a duplicate decision"))
    if action not in DUPLICATE_ACTIONS:
        raise ServiceError(f"action must be one of {', '.join(DUPLICATE_ACTIONS)}")
    if action == "discard":
        doc.status = DocumentStatus.DISCARDED.value
        set_reason(doc, N_("Discarded as a duplicate."))
        return doc
    if doc.duplicate_of_id is None:
        raise ServiceError(N_("the original is not validated yet: only discard is possible"))
    invoice = access.check_invoice(session, viewer, get_invoice(session, tenant_id, doc.duplicate_of_id))
    if action == "link":
        already = invoice.file_id == doc.file_id or any(a.file_id == doc.file_id for a in invoice.attachments)
        if not already:
            session.add(InvoiceFile(invoice_id=invoice.id, file_id=doc.file_id, document_id=doc.id))
        set_reason(doc, LINKED_REASON, number=invoice.number)
    else:
        basis = replace_basis(session, doc)
        if basis is None:
            raise ServiceError(NOT_SAME_DOCUMENT)
        previous = invoice.file_id
        invoice.file_id, invoice.document_id = doc.file_id, doc.id
        # The replaced file stays stored and attached, so nothing a person sent is lost.
        if previous != doc.file_id and not any(a.file_id == previous for a in invoice.attachments):
            session.add(InvoiceFile(invoice_id=invoice.id, file_id=previous))
        set_reason(doc, basis.replaced)
    doc.status, doc.invoice_id = DocumentStatus.VALIDATED.value, invoice.id
    doc.validated_at, doc.validated_by_id = utcnow(), user_id
    session.flush()
    return doc


def discard_document(session: Session, tenant_id: int, document_id: int) -> Document:
    doc = get_document(session, tenant_id, document_id)
    if doc.status == DocumentStatus.VALIDATED.value:
        raise ServiceError(N_("a validated document cannot be discarded; delete the invoice instead"))
    doc.status = DocumentStatus.DISCARDED.value
    set_reason(doc, N_("Deleted by a reviewer."))
    return doc
