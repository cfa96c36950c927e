"""The worker's two steps: a stored message becomes documents; a document gets its fields extracted.

Both take a ``Session`` and ``FileStorage``, flush and leave the commit to the caller, and are idempotent:
a job that runs twice (a retry, a re-queue by the sweep) creates nothing twice. Problems a person can act
on end as a visible state with a reason (message ``ignored``/``failed``, document ``failed``); errors of
the infrastructure (database, disk) are raised, so that the job is retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core import extraction
from core.banking import transactions as bank
from core.documents import issuer_profiles, splitting
from core.documents import templates as tenant_templates
from core.documents.review import fail_document, finish_extraction
from core.einvoice import EInvoice, EInvoiceError, read_einvoice, to_fields
from core.einvoice.page import fill_from_page
from core.extraction.identifiers import Identifiers, find_identifiers
from core.files.records import store_file
from core.files.storage import FileStorage, StorageError
from core.i18n import N_
from core.inbound import forwarding, senders
from core.inbound import senderauth as sender_auth
from core.mail.parsed import ReceivedEmail, TooManyParts
from core.mail.unpack import PDF, Attachment, unpack
from core.models import Direction, Document, DocumentStatus, InboundMessage, MessageStatus, Tenant, utcnow
from core.payables import suppliers
from core.reasons import Reason, reason, set_reason
from core.receivables.clients import prefill_client
from core.tenancy import company

logger = logging.getLogger(__name__)

RAW_MISSING = N_("The stored message file is missing; restore it from a backup, then re-run the message.")
TOO_MANY_PARTS = N_(
    "This email has more than {limit} MIME parts: it was not read (a mail bomb, or a mailer gone wrong). "
    "The original is kept; ask the sender for a simpler email."
)
RAW_PURGED = N_("The original e-mail was deleted after the retention period; its files and invoices are kept, "
                "but it cannot be processed again.")
NO_TEXT_NOTE = "no text layer; fill in by hand"
NO_TEXT_REASON = N_("This file has no text layer and OCR read nothing usable in it: fill in the fields by hand.")
UNREADABLE_PDF = N_("The PDF could not be read (it may be damaged or encrypted): {detail}")
PROTECTED_PDF = N_("This PDF is password-protected: ask the sender for an unprotected copy")
IMAGE_REFUSED = N_("The image could not be read: {detail}. Ask the sender for a PDF or a smaller image.")
EINVOICE_UNREADABLE = N_("The e-invoice could not be read: {reason}")
NOT_AN_EINVOICE = N_(
    "This XML file is not an invoice in a format we read (Factur-X, ZUGFeRD, XRechnung, UBL); "
    "fill in the fields by hand from the sender's PDF."
)
TIMED_OUT = N_(
    "Reading this file took too long and was stopped (a very large or unusual file). Nothing was lost: "
    "fill in the fields by hand, or ask the sender for a simpler copy."
)
XML_TYPES = {"application/xml", "text/xml"}
MAX_STORED_LINES = 200  # e-invoice lines kept in extraction_details for the review page
FILE_MISSING = N_("The stored file is missing from storage; restore it from a backup, then re-run the extraction.")
UNSUPPORTED_TYPE = N_("Files of type {type} cannot be read; fill in the fields by hand.")
# Infrastructure errors: raised to the job, which is retried; never turned into a "failed" verdict at once.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, StorageError)


# Messages -> documents -----------------------------------------------------------------------


def ingest_message(session: Session, storage: FileStorage, message_id: int) -> list[int]:
    """Unpack a stored message into documents; the ids of those that still need extraction.

    Re-running it reuses the files and documents already created (by ``(message_id, part_index)``).
    An unexpected error leaves the message ``failed`` with a reason (the session is rolled back first,
    so that half-made documents are not kept); database and storage errors are raised for a retry.
    """
    # Locked until commit: a second run of this job (re-queued by the sweep after Redis lost the first
    # one's job while it ran) waits here, then reuses what the first one made; never both at once.
    message = session.get(InboundMessage, message_id, with_for_update=True)
    if message is None:
        logger.warning("message %s does not exist (deleted?): nothing to do", message_id)
        return []
    try:
        return _ingest(session, storage, message)
    except TRANSIENT_ERRORS:
        raise
    except Exception as exc:
        logger.exception("message %s could not be processed", message_id)
        session.rollback()
        message = session.get(InboundMessage, message_id)
        if message is not None:
            _finish_message(message, MessageStatus.FAILED, unexpected_reason(exc, "this email"))
            session.flush()
        return []


def _ingest(session: Session, storage: FileStorage, message: InboundMessage) -> list[int]:
    message.attempts = (message.attempts or 0) + 1
    if message.raw_purged_at is not None:
        _finish_message(message, MessageStatus.FAILED, RAW_PURGED)
        session.flush()
        return []
    try:
        raw = storage.read(message.raw_key)
    except FileNotFoundError:
        logger.error("message %s: raw file %s is missing", message.id, message.raw_key)
        _finish_message(message, MessageStatus.FAILED, RAW_MISSING)
        session.flush()
        return []

    # Read once for every consumer below: header block now, MIME tree at first use (core.mail.parsed).
    email = ReceivedEmail(raw)

    # Sender authentication (SPF, DKIM, DMARC), stored before what relies on it: codes, screening.
    verdicts = sender_auth.ensure_verdicts(message, email)

    # Forwarding confirmations (Gmail, Microsoft) are never invoices: keep the code for the admins, stop.
    confirmation = forwarding.capture_confirmation(session, message, email, verdicts=verdicts)
    if confirmation is not None:
        _finish_message(message, MessageStatus.IGNORED, forwarding.reason_for(confirmation))
        session.flush()
        return []

    # Sender control: a repeat of an earlier message is ignored, an unlisted sender is quarantined.
    stopped = senders.screen(session, message, email) or sender_auth.screen(session, message)
    if stopped is not None:
        _finish_message(message, *stopped)
        session.flush()
        return []

    # The MIME structure, read once for everything below, and bounded while it is read.
    try:
        email.message  # noqa: B018  (parsed here, where a message with too many parts is failed)
    except TooManyParts as exc:
        _finish_message(message, MessageStatus.FAILED, reason(TOO_MANY_PARTS, limit=exc.limit))
        session.flush()
        return []

    # Bank statements: imported for reconciliation, never made into invoice documents.
    verified = bank.statement_sender_verified(session, message, verdicts)
    statements = bank.import_mail_statements(session, message.tenant_id, email, verified=verified)
    unpacked = unpack(email)
    if not unpacked.attachments:
        status = MessageStatus.PROCESSED if statements.found else MessageStatus.IGNORED
        _finish_message(message, status, statements.reason or unpacked.reason)
        session.flush()
        return []

    documents = [doc for attachment in unpacked.attachments for doc in _documents_for(session, storage, message,
                                                                                     attachment)]
    _finish_message(message, MessageStatus.PROCESSED, unpacked.reason)
    session.flush()
    logger.info("message %s: %d document(s)", message.id, len(documents))
    return [doc.id for doc in documents if doc.status == DocumentStatus.EXTRACTING.value]


def _documents_for(
    session: Session, storage: FileStorage, message: InboundMessage, att: Attachment
) -> list[Document]:
    """One document per file, or one per invoice when a PDF holds several (``core.documents.splitting``)."""
    split = splitting.split_attachment(session, storage, message, att)
    return split if split is not None else [_document_for(session, storage, message, att)]


def _document_for(session: Session, storage: FileStorage, message: InboundMessage, att: Attachment) -> Document:
    existing = session.scalars(
        select(Document).where(Document.message_id == message.id, Document.part_index == att.part_index)
    ).first()
    if existing is not None:
        return existing
    stored = store_file(session, storage, message.tenant_id, att.data, att.content_type)
    doc = Document(
        tenant_id=message.tenant_id,
        message_id=message.id,
        part_index=att.part_index,
        file_id=stored.id,
        filename=att.filename,
        status=DocumentStatus.EXTRACTING.value,
        field_info={},
    )
    session.add(doc)
    session.flush()
    return doc


def _finish_message(message: InboundMessage, status: MessageStatus, reason: str | None) -> None:
    message.status, message.processed_at = status.value, utcnow()
    set_reason(message, reason)


def record_message_failure(session: Session, message_id: int, reason: str) -> None:
    """Mark a message failed (used by the job when its last retry failed)."""
    message = session.get(InboundMessage, message_id)
    if message is not None:
        _finish_message(message, MessageStatus.FAILED, reason)
        session.flush()


# Documents -> fields -------------------------------------------------------------------------


def extract_document(
    session: Session,
    storage: FileStorage,
    document_id: int,
    time_limit_errors: tuple[type[BaseException], ...] = (),
) -> bool:
    """Read the fields of a document waiting in ``extracting`` and send it to review (or ``failed``).

    Does nothing for a document in any other status, so a repeated job changes nothing: False then.
    ``time_limit_errors``: what the caller's time limit raises (the job runner's); such a document ends
    failed without a retry, since the same file would run out of time again.
    """
    # Locked until commit: a second run waits for the first, then finds the document no longer extracting.
    doc = session.get(Document, document_id, with_for_update=True)
    if doc is None or doc.status != DocumentStatus.EXTRACTING.value:
        return False
    try:
        _extract(session, storage, doc)
    except TRANSIENT_ERRORS:
        raise
    except time_limit_errors:
        logger.warning("document %s: extraction timed out", document_id)
        session.rollback()
        doc = session.get(Document, document_id)
        if doc is not None and doc.status == DocumentStatus.EXTRACTING.value:
            fail_document(doc, TIMED_OUT)
    except Exception as exc:
        logger.exception("document %s: extraction failed", document_id)
        fail_document(doc, unexpected_reason(exc, "this file"))
    session.flush()
    return True


def _extract(session: Session, storage: FileStorage, doc: Document) -> None:
    stored = doc.file
    try:
        data = storage.read(stored.storage_key)
    except FileNotFoundError:
        fail_document(doc, FILE_MISSING)
        return
    content_type = stored.content_type
    if is_xml(content_type, data):
        _extract_xml(session, doc, data)
    elif content_type == PDF:
        _extract_pdf(session, doc, data)
    elif content_type.startswith("image/"):
        _extract_image(session, doc, data)
    else:
        fail_document(doc, reason(UNSUPPORTED_TYPE, type=content_type))


def is_xml(content_type: str, data: bytes) -> bool:
    """A standalone XML file (a CII or UBL e-invoice, or some other XML): by type, or by its first bytes."""
    if content_type in XML_TYPES or content_type.endswith("+xml"):
        return True
    if content_type == PDF or content_type.startswith("image/"):
        return False
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<")


def _read_einvoice(doc: Document, data: bytes) -> EInvoice | None:
    """The e-invoice in ``data``; None when there is none. Raises ``EInvoiceError`` for a broken one."""
    return read_einvoice(data, doc.filename or "")


def _extract_xml(session: Session, doc: Document, data: bytes) -> None:
    try:
        einv = _read_einvoice(doc, data)
    except EInvoiceError as exc:
        fail_document(doc, reason(EINVOICE_UNREADABLE, reason=exc.reason))
        return
    if einv is None:
        fail_document(doc, NOT_AN_EINVOICE)
        return
    _finish_einvoice(session, doc, einv)


def _extract_pdf(session: Session, doc: Document, data: bytes) -> None:
    try:
        found = read_pdf_file(data, doc.filename or "", lambda: _templates(session, doc))
    except EInvoiceError as exc:
        fail_document(doc, reason(EINVOICE_UNREADABLE, reason=exc.reason))
        return
    except extraction.PdfPasswordProtected:
        fail_document(doc, PROTECTED_PDF)
        logger.info("document %s: password-protected PDF", doc.id)
        return
    except extraction.PdfUnreadable as exc:
        fail_document(doc, reason(UNREADABLE_PDF, detail=exc.detail))
        logger.info("document %s: unreadable PDF (%s)", doc.id, exc.detail)
        return
    if isinstance(found, EInvoice):
        _finish_einvoice(session, doc, found, pdf=data)
    else:
        _finish_text(session, doc, found)


def read_pdf_file(
    data: bytes, filename: str, templates: Callable[[], list[Any] | None] = lambda: None
) -> EInvoice | extraction.PdfExtraction:
    """What the worker reads from a PDF (benchmarks call it too): a Factur-X / ZUGFeRD / XRechnung PDF exactly
    from its XML (the PDF stays what people see), any other through its text or OCR. ``templates`` is only
    called when there is no e-invoice. Raises ``EInvoiceError``, ``PdfPasswordProtected``, ``PdfUnreadable``."""
    einv = read_einvoice(data, filename)
    if einv is not None:
        return einv
    return extraction.extract_pdf(data, templates=templates())


def _templates(session: Session, doc: Document) -> list[Any] | None:
    """The company's own templates first (compiled once per worker and version), then the shared ones;
    None (the shared list) when it has none."""
    return tenant_templates.templates_for_extraction(session, doc.tenant_id)


def _extract_image(session: Session, doc: Document, data: bytes) -> None:
    try:
        found = extraction.extract_image(data, templates=_templates(session, doc))
    except extraction.ImageRefused as exc:
        fail_document(doc, reason(IMAGE_REFUSED, detail=exc.detail))
        logger.info("document %s: image refused (%s)", doc.id, exc.detail)
        return
    _finish_text(session, doc, found)


def _finish_text(session: Session, doc: Document, found: extraction.PdfExtraction) -> None:
    notes = list(found.notes)
    if not found.has_text:
        _no_text(session, doc, notes)
        return
    result = found.extraction
    # The issuer's profile, learned from earlier validations, reads the fields first (issue 13, item 8).
    profile = issuer_profiles.read_with_profile(session, doc, found.text, result)
    fields, field_info, ids = text_fields(found)
    tenant = _tenant_of(session, doc)
    ours = (tenant.iban or "").upper()
    parties = company.Parties(seller_name=fields.get("issuer"), buyer_name=fields.get("client"),
                              payee_iban=ours if ours and ours in ids.ibans else None)
    decision = _prefill_counterparty(session, doc, tenant, parties, fields, field_info, ids.vat_ids)
    finish_extraction(session, doc, fields, field_info, result.source)
    _record_direction(doc, decision)
    details: dict[str, Any] = {"reader": "ocr" if found.ocr else "text", "pages": found.pages}
    if found.template:
        details["template"] = found.template
    if notes:
        details["notes"] = notes
    if ids.as_dict():
        details["identifiers"] = ids.as_dict()  # checked by their check digits (python-stdnum)
    if profile is not None:
        details["issuer_profile"] = profile
    doc.extraction_details = details
    logger.info("document %s: %s, %d field(s) found, %s", doc.id, result.source, len(result.fields), doc.status)


def _tenant_of(session: Session, doc: Document) -> Tenant:
    tenant = session.get(Tenant, doc.tenant_id)
    assert tenant is not None
    return tenant


def _prefill_counterparty(session: Session, doc: Document, tenant: Tenant, parties: company.Parties,
                          fields: dict[str, Any], field_info: dict[str, Any],
                          vat_ids: list[str]) -> company.DirectionDecision:
    """Decide sale or purchase from the company's identity (issue 18), then match the counterparty among
    the tenant's clients (a sale, or undecided) or suppliers (a purchase)."""
    decision = company.decide_direction(tenant, parties)
    doc.direction = decision.direction or Direction.RECEIVABLE.value  # undecided: the reviewer's pick replaces it
    if decision.direction == Direction.PAYABLE.value:
        suppliers.prefill_supplier(session, doc.tenant_id, fields, field_info, vat_ids)
    else:
        prefill_client(session, doc.tenant_id, fields, field_info, vat_ids)
    return decision


def _record_direction(doc: Document, decision: company.DirectionDecision) -> None:
    """Kept beside the fields' notes (after ``finish_extraction``, which keeps only the fields'): the
    review page shows why, and validation refuses an undecided direction until a person picks. A company
    without an identity keeps the first use case's direction (a sale) and nothing is recorded: the review
    page says the identity is missing (``company.NO_IDENTITY``)."""
    if decision.note == company.NO_IDENTITY:
        return
    doc.field_info = {**(doc.field_info or {}), "direction": decision.field_info()}


def text_fields(found: extraction.PdfExtraction) -> tuple[dict[str, Any], dict[str, Any], Identifiers]:
    """The fields a text or OCR reading gives a document before the tenant's own data is consulted (client
    matching), and the checked identifiers in its text: shared by the worker and the benchmarks."""
    result = found.extraction
    fields, field_info = dict(result.fields), {k: dict(v) for k, v in result.field_info.items()}
    return fields, field_info, find_identifiers(found.text)


def _finish_einvoice(session: Session, doc: Document, einv: EInvoice, pdf: bytes | None = None) -> None:
    fields = to_fields(einv)
    filled = fill_from_page(fields, pdf) if pdf is not None else []
    field_info = fields.pop("field_info")
    parties = company.Parties(seller_name=einv.seller_name, buyer_name=einv.buyer_name, seller_vat=einv.seller_vat_id,
                              buyer_vat=einv.buyer_vat_id, payee_iban=einv.iban)
    vat_ids = [v for v in (einv.buyer_vat_id, einv.seller_vat_id) if v]
    decision = _prefill_counterparty(session, doc, _tenant_of(session, doc), parties, fields, field_info, vat_ids)
    finish_extraction(session, doc, fields, field_info, einv.source)
    _record_direction(doc, decision)
    doc.extraction_details = einvoice_details(einv)
    if filled:
        doc.extraction_details["from_page"] = filled
    logger.info("document %s: %s, %s", doc.id, einv.source, doc.status)


def einvoice_details(einv: EInvoice) -> dict[str, Any]:
    """What the e-invoice says beyond our fields, JSON-ready (amounts as strings, exact): kept for review."""

    def text(value: Any) -> str | None:
        return None if value is None else str(value)

    return {
        "reader": "einvoice",
        "format": einv.format,
        "profile": einv.profile,
        "type_code": einv.type_code,
        "seller_vat_id": einv.seller_vat_id,
        "buyer_vat_id": einv.buyer_vat_id,
        "amount_due": text(einv.amount_due),
        "iban": einv.iban,
        "payment_reference": einv.payment_reference,
        "vat_breakdown": [
            {"category": row.category, "rate": text(row.rate), "base": text(row.base), "tax": text(row.tax)}
            for row in einv.vat_breakdown
        ],
        "lines": [
            {"description": (line.description or "")[:300], "quantity": text(line.quantity),
             "unit_price": text(line.unit_price), "net_amount": text(line.net_amount),
             "vat_rate": text(line.vat_rate), "vat_category": (line.vat_category or "")[:8] or None}
            for line in einv.lines[:MAX_STORED_LINES]
        ],
        "lines_total": len(einv.lines),
        "allowances_charges": [
            {"charge": item.charge, "amount": text(item.amount), "reason": (item.reason or "")[:300],
             "vat_rate": text(item.vat_rate), "vat_category": (item.vat_category or "")[:8] or None}
            for item in einv.allowances_charges[:MAX_STORED_LINES]
        ],
        "warnings": list(einv.warnings),
    }


def _no_text(session: Session, doc: Document, notes: list[str] | None = None) -> None:
    """No text to read: straight to review with empty fields, saying why (duplicates are still caught)."""
    finish_extraction(session, doc, {}, {}, "none")
    # Not a field (no confidence): a note on the whole document, kept apart from the field names.
    doc.field_info = {"_document": {"source": "none", "note": NO_TEXT_NOTE}}
    tenant = session.get(Tenant, doc.tenant_id)
    if tenant is not None:  # nothing read: a company with an identity picks the direction by hand
        _record_direction(doc, company.decide_direction(tenant, company.Parties()))
    if notes:
        doc.extraction_details = {"reader": "none", "notes": notes}
    if doc.status == DocumentStatus.PENDING.value:
        set_reason(doc, NO_TEXT_REASON)


def record_document_failure(session: Session, document_id: int, reason: str) -> None:
    """Mark a document still in extraction failed (used by the job when its last retry failed)."""
    doc = session.get(Document, document_id)
    if doc is not None and doc.status == DocumentStatus.EXTRACTING.value:
        fail_document(doc, reason)
        session.flush()


# One template per subject ("this email", "this file"), so that each is translated whole; the exception's
# type name stays a parameter.
UNEXPECTED_REASONS = {
    "this email": N_("Processing this email failed unexpectedly ({error}). Nothing was lost: the original is "
                     "kept. Re-run it, and if it fails again, report it to support."),
    "this file": N_("Processing this file failed unexpectedly ({error}). Nothing was lost: the original is "
                    "kept. Re-run it, and if it fails again, report it to support."),
}
TRANSIENT_REASONS = {
    "this email": N_("A temporary problem stopped the processing of this email after several attempts ({error}). "
                     "Nothing was lost: re-run it once the service is healthy."),
    "this file": N_("A temporary problem stopped the processing of this file after several attempts ({error}). "
                    "Nothing was lost: re-run it once the service is healthy."),
}


def unexpected_reason(exc: BaseException, what: str) -> Reason:
    return reason(UNEXPECTED_REASONS[what], error=type(exc).__name__)


def transient_reason(exc: BaseException, what: str) -> Reason:
    return reason(TRANSIENT_REASONS[what], error=type(exc).__name__)


def documents_to_requeue(session: Session, stale_after: timedelta) -> list[int]:
    """Documents still ``extracting`` long after any job for them could have run (their job was lost with
    a Redis restart, or the worker died between unpacking and extracting). The sweep queues them again;
    a job still waiting or running keeps its deterministic id and is left alone."""
    stmt = select(Document.id).where(
        Document.status == DocumentStatus.EXTRACTING.value, Document.updated_at < utcnow() - stale_after
    )
    return list(session.scalars(stmt.order_by(Document.id)))


def extracting_documents(session: Session) -> list[tuple[int, int | None]]:
    """``(document id, message id)`` of every document ``extracting``: the sweep asks Redis whether a job
    (its own, or its message's ingest job, which extracts the first document inline) still exists."""
    stmt = select(Document.id, Document.message_id).where(Document.status == DocumentStatus.EXTRACTING.value)
    return [(row.id, row.message_id) for row in session.execute(stmt.order_by(Document.id))]


def mark_requeued(session: Session, document_ids: list[int]) -> None:
    """The sweep queued them: the next sweep waits ``stale_after`` again before looking at them."""
    session.execute(
        update(Document)
        .where(Document.id.in_(document_ids), Document.status == DocumentStatus.EXTRACTING.value)
        .values(updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
