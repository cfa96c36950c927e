"""The worker's two steps: a stored message becomes documents; a document gets its fields extracted.

Both take a ``Session`` and ``FileStorage``, flush and leave the commit to the caller, and are idempotent:
a job that runs twice (a retry, a re-queue by the sweep) creates nothing twice. Problems a person can act
on end as a visible state with a reason (message ``ignored``/``failed``, document ``failed``); errors of
the infrastructure (database, disk) are raised, so that the job is retried.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core import extraction
from core.mail.unpack import PDF, Attachment, unpack
from core.models import Document, DocumentStatus, InboundMessage, MessageStatus, StoredFile, utcnow
from core.services.documents import fail_document, finish_extraction
from core.storage import FileStorage, StorageError, sha256_hex

logger = logging.getLogger(__name__)

RAW_MISSING = "The stored message file is missing; restore it from a backup, then re-run the message."
NO_TEXT_NOTE = "no text layer; fill in by hand"
NO_TEXT_REASON = "This file has no text layer (a scan or a photo): fill in the fields by hand."
UNREADABLE_PDF = "The PDF could not be read (it may be damaged or encrypted): {detail}"
FILE_MISSING = "The stored file is missing from storage; restore it from a backup, then re-run the extraction."
# Infrastructure errors: raised to the job, which is retried; never turned into a "failed" verdict at once.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, StorageError)


# Messages -> documents -----------------------------------------------------------------------


def ingest_message(session: Session, storage: FileStorage, message_id: int) -> list[int]:
    """Unpack a stored message into documents; the ids of those that still need extraction.

    Re-running it reuses the files and documents already created (by ``(message_id, part_index)``).
    An unexpected error leaves the message ``failed`` with a reason (the session is rolled back first,
    so that half-made documents are not kept); database and storage errors are raised for a retry.
    """
    message = session.get(InboundMessage, message_id)
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
    try:
        raw = storage.read(message.raw_key)
    except FileNotFoundError:
        logger.error("message %s: raw file %s is missing", message.id, message.raw_key)
        _finish_message(message, MessageStatus.FAILED, RAW_MISSING)
        session.flush()
        return []

    unpacked = unpack(raw)
    if not unpacked.attachments:
        _finish_message(message, MessageStatus.IGNORED, unpacked.reason)
        session.flush()
        return []

    documents = [_document_for(session, storage, message, attachment) for attachment in unpacked.attachments]
    _finish_message(message, MessageStatus.PROCESSED, unpacked.reason)
    session.flush()
    logger.info("message %s: %d document(s)", message.id, len(documents))
    return [doc.id for doc in documents if doc.status == DocumentStatus.EXTRACTING.value]


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


def store_file(session: Session, storage: FileStorage, tenant_id: int, data: bytes, content_type: str) -> StoredFile:
    """The tenant's stored copy of ``data`` (written once per content; the row is reused).

    Two jobs storing the same new file at the same moment: one insert fails on the unique constraint,
    that job is retried and then finds the row.
    """
    digest = sha256_hex(data)
    stored = session.scalars(
        select(StoredFile).where(StoredFile.tenant_id == tenant_id, StoredFile.sha256 == digest)
    ).first()
    key = FileStorage.file_key(tenant_id, digest)
    if stored is not None:
        if not storage.exists(stored.storage_key):  # the row survived a lost file: write it back
            storage.write(stored.storage_key, data)
        return stored
    if not storage.exists(key):
        storage.write(key, data)  # file first: a row never points to nothing
    stored = StoredFile(tenant_id=tenant_id, sha256=digest, size=len(data), content_type=content_type,
                        storage_key=key)
    session.add(stored)
    session.flush()
    return stored


def _finish_message(message: InboundMessage, status: MessageStatus, reason: str | None) -> None:
    message.status, message.reason, message.processed_at = status.value, reason, utcnow()


def record_message_failure(session: Session, message_id: int, reason: str) -> None:
    """Mark a message failed (used by the job when its last retry failed)."""
    message = session.get(InboundMessage, message_id)
    if message is not None:
        _finish_message(message, MessageStatus.FAILED, reason)
        session.flush()


# Documents -> fields -------------------------------------------------------------------------


def extract_document(session: Session, storage: FileStorage, document_id: int) -> None:
    """Read the fields of a document waiting in ``extracting`` and send it to review (or ``failed``).

    Does nothing for a document in any other status, so a repeated job changes nothing.
    """
    doc = session.get(Document, document_id)
    if doc is None or doc.status != DocumentStatus.EXTRACTING.value:
        return
    try:
        _extract(session, storage, doc)
    except TRANSIENT_ERRORS:
        raise
    except Exception as exc:
        logger.exception("document %s: extraction failed", document_id)
        fail_document(doc, unexpected_reason(exc, "this file"))
    session.flush()


def _extract(session: Session, storage: FileStorage, doc: Document) -> None:
    stored = doc.file
    try:
        data = storage.read(stored.storage_key)
    except FileNotFoundError:
        fail_document(doc, FILE_MISSING)
        return
    if stored.content_type.startswith("image/"):
        _no_text(session, doc)  # no OCR yet (a later issue adds Tesseract)
        return
    if stored.content_type != PDF:
        fail_document(doc, f"Files of type {stored.content_type} cannot be read; fill in the fields by hand.")
        return
    try:
        found = extraction.extract_pdf(data)
    except extraction.PdfUnreadable as exc:
        fail_document(doc, UNREADABLE_PDF.format(detail=exc.detail))
        logger.info("document %s: unreadable PDF (%s)", doc.id, exc.detail)
        return
    if not found.has_text:
        _no_text(session, doc)
        return
    result = found.extraction
    finish_extraction(session, doc, result.fields, result.field_info, result.source)
    logger.info("document %s: %s, %d field(s) found, %s", doc.id, result.source, len(result.fields), doc.status)


def _no_text(session: Session, doc: Document) -> None:
    """No text to read: straight to review with empty fields, saying why (duplicates are still caught)."""
    finish_extraction(session, doc, {}, {}, "none")
    # Not a field (no confidence): a note on the whole document, kept apart from the field names.
    doc.field_info = {"_document": {"source": "none", "note": NO_TEXT_NOTE}}
    if doc.status == DocumentStatus.PENDING.value:
        doc.reason = NO_TEXT_REASON


def record_document_failure(session: Session, document_id: int, reason: str) -> None:
    """Mark a document still in extraction failed (used by the job when its last retry failed)."""
    doc = session.get(Document, document_id)
    if doc is not None and doc.status == DocumentStatus.EXTRACTING.value:
        fail_document(doc, reason)
        session.flush()


def unexpected_reason(exc: BaseException, what: str) -> str:
    return (
        f"Processing {what} failed unexpectedly ({type(exc).__name__}). Nothing was lost: the original is "
        "kept. Re-run it, and if it fails again, report it to support."
    )


def transient_reason(exc: BaseException, what: str) -> str:
    return (
        f"A temporary problem stopped the processing of {what} after several attempts ({type(exc).__name__}). "
        "Nothing was lost: re-run it once the service is healthy."
    )
