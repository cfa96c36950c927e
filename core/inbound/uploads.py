"""Files uploaded on the dashboard or the API, and re-processing what failed.

An upload is modelled as an ``InboundMessage`` with ``source=upload``: the files are wrapped in a small
MIME message (built with the standard ``email`` package) and stored through ``intake.store_message``.
That way the raw artefact, the worker's ``ingest_message`` (unpacking, duplicate documents, e-invoice
XML, OCR) and the Imports page are reused unchanged: an upload cannot behave differently from an email
carrying the same files. Sender control lets uploads through (a signed-in person sent them).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import PurePosixPath

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import NotFound, ValidationFailed
from core.files.storage import FileStorage
from core.i18n import N_
from core.inbound.intake import store_message
from core.models import Document, DocumentStatus, InboundMessage, MessageSource, MessageStatus, utcnow
from core.reasons import set_reason
from core.tenancy import accounts, quotas

MAX_FILES = 50  # per upload; the request size limit (settings.max_message_bytes) bounds the bytes
MAX_FILENAME_CHARS = 150
PDF = "application/pdf"
XML = "application/xml"
# Re-processing: a message that failed or was ignored runs through ingest again.
REPROCESSABLE_MESSAGES = frozenset({MessageStatus.FAILED.value, MessageStatus.IGNORED.value})
NOT_REPROCESSABLE = N_("Only a message that failed or was ignored can be re-processed (this one is {status}).")
DOC_NOT_REPROCESSABLE = N_("Only a document whose extraction failed can be re-processed (this one is {status}).")
QUEUE_UNREACHABLE = N_("The file could not be queued for reading (the worker queue was unreachable): try again.")
REFUSED_TYPE = "{name}: only PDF, image (PNG, JPEG, GIF, WebP, TIFF) and XML e-invoice files are accepted."


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    data: bytes


def sniff_type(data: bytes) -> str | None:
    """The content type told by the file's first bytes (never by its name or the browser's claim)."""
    head = data[:1024]
    if head.lstrip(b"\x00\t\r\n ").startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"<?xml") or re.match(rb"<[A-Za-z_][\w.:-]*[\s>/]", text):
        return XML
    return None


def clean_filename(name: str, index: int) -> str:
    """The base name, printable and bounded; a stand-in when nothing is left."""
    base = PurePosixPath((name or "").replace("\\", "/")).name
    base = "".join(c for c in unicodedata.normalize("NFC", base) if c.isprintable())
    return base.strip()[:MAX_FILENAME_CHARS] or f"upload-{index + 1}"


def check_files(files: list[UploadedFile]) -> dict[str, str]:
    """Field errors for a set of uploaded files (empty when they can all be accepted)."""
    if not files:
        return {"file": "Choose at least one file."}
    if len(files) > MAX_FILES:
        return {"file": f"At most {MAX_FILES} files at once."}
    refused = [clean_filename(f.filename, i) for i, f in enumerate(files) if not f.data or sniff_type(f.data) is None]
    if refused:
        return {"file": " ".join(REFUSED_TYPE.format(name=name) for name in refused)}
    return {}


def build_message(files: list[UploadedFile], uploader: str, recipient: str) -> bytes:
    """A MIME message carrying ``files`` as attachments, from the uploader (the raw artefact we keep)."""
    msg = EmailMessage()
    msg["From"] = uploader
    msg["To"] = recipient
    names = [clean_filename(f.filename, i) for i, f in enumerate(files)]
    subject = "Upload: " + ", ".join(names)
    msg["Subject"] = subject if len(subject) <= 200 else subject[:197] + "..."
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="upload.invoice-inbox.invalid")
    msg.set_content(f"Uploaded on the dashboard or the API by {uploader}.\n")
    for name, uploaded in zip(names, files, strict=True):
        maintype, _, subtype = (sniff_type(uploaded.data) or "application/octet-stream").partition("/")
        msg.add_attachment(uploaded.data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


def store_upload(
    session: Session,
    storage: FileStorage,
    tenant_id: int,
    files: list[UploadedFile],
    *,
    uploader: str,
    inbound_domain: str,
    limits: quotas.Limits | None = None,
) -> InboundMessage:
    """Store the uploaded files as one message of ``tenant_id`` (the caller commits, then enqueues).

    Raises ``ValidationFailed`` for no file, too many, or a file that is not PDF/image/XML, and
    ``quotas.QuotaExceeded`` when the company is over a quota of ``limits``.
    """
    errors = check_files(files)
    if errors:
        raise ValidationFailed(errors)
    try:
        recipient = accounts.address_of(accounts.primary_address(session, tenant_id), inbound_domain)
    except NotFound:
        recipient = f"upload@{inbound_domain}"
    raw = build_message(files, uploader, recipient)
    if limits is not None:
        quotas.check(session, tenant_id, limits, len(raw))
    return store_message(
        session, storage, tenant_id, raw, recipient=recipient, envelope_sender=uploader, source=MessageSource.UPLOAD
    )


# Progress and re-processing ---------------------------------------------------------------------


def get_message(session: Session, tenant_id: int, message_id: int) -> InboundMessage:
    message = session.get(InboundMessage, message_id)
    if message is None or message.tenant_id != tenant_id:
        raise NotFound("no such message")
    return message


def messages_by_ids(session: Session, tenant_id: int, ids: list[int]) -> list[InboundMessage]:
    """The tenant's messages among ``ids`` (others' ids are silently left out), with their documents."""
    from sqlalchemy.orm import selectinload

    if not ids:
        return []
    stmt = (
        select(InboundMessage)
        .where(InboundMessage.tenant_id == tenant_id, InboundMessage.id.in_(ids[:200]))
        .options(selectinload(InboundMessage.documents))
        .order_by(InboundMessage.id)
    )
    return list(session.scalars(stmt))


def stage(message: InboundMessage) -> str:
    """Where the message stands on received → extracting → pending verification (or stopped)."""
    if message.status in (MessageStatus.RECEIVED.value, MessageStatus.QUEUED.value):
        return "received"
    if message.status != MessageStatus.PROCESSED.value:
        return message.status  # ignored, failed, quarantined: a final state with a reason
    if any(doc.status == DocumentStatus.EXTRACTING.value for doc in message.documents):
        return "extracting"
    return MessageStatus.PROCESSED.value


def in_progress(message: InboundMessage) -> bool:
    return stage(message) in ("received", "extracting")


def reprocess_message(session: Session, tenant_id: int, message_id: int) -> InboundMessage:
    """Put a failed or ignored message back in the queue (the caller commits, then enqueues with force).

    Asking again while it waits changes nothing: a queued message is accepted as is.
    """
    message = get_message(session, tenant_id, message_id)
    if message.status in (MessageStatus.RECEIVED.value, MessageStatus.QUEUED.value):
        return message
    if message.status not in REPROCESSABLE_MESSAGES:
        raise ValidationFailed({"message": NOT_REPROCESSABLE.format(status=message.status)})
    message.status = MessageStatus.QUEUED.value
    set_reason(message, None)
    message.queued_at = utcnow()
    session.flush()
    return message


def reprocess_document(session: Session, tenant_id: int, document_id: int) -> Document:
    """Send a document whose extraction failed back to ``extracting`` (the caller then enqueues it)."""
    doc = session.get(Document, document_id)
    if doc is None or doc.tenant_id != tenant_id:
        raise NotFound("no such document")
    if doc.status == DocumentStatus.EXTRACTING.value:
        return doc
    if doc.status != DocumentStatus.FAILED.value:
        raise ValidationFailed({"document": DOC_NOT_REPROCESSABLE.format(status=doc.status)})
    doc.status = DocumentStatus.EXTRACTING.value
    set_reason(doc, None)
    session.flush()
    return doc


def reprocess_not_queued(session: Session, document_id: int) -> None:
    """Back to ``failed`` when its job could not be queued: the person who asked sees it now, rather than
    after the sweep's delay."""
    doc = session.get(Document, document_id)
    if doc is not None and doc.status == DocumentStatus.EXTRACTING.value:
        doc.status = DocumentStatus.FAILED.value
        set_reason(doc, QUEUE_UNREACHABLE)
        session.flush()
