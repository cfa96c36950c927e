"""Several invoices in one PDF (issue 4): one document per invoice, and the reviewer's regrouping.

At ingest, a PDF attachment of two pages or more goes through ``core.extraction.split``; when it holds
several invoices, a ``DocumentSource`` keeps the whole file and each invoice becomes a ``Document`` whose
file is a PDF of its own pages (written with pypdf, stored content-addressed like any file), so that the
viewer, the download and the invoice's attachment show only those pages. The source stays stored.

On review, ``regroup`` takes the page groups a person arranged (move a page, merge two groups, start a
new group at a page): every page must appear exactly once, and a group already validated is locked.
Groups whose pages did not change keep their document (and the reviewer's edits); the others are made
again from their pages and go back to extraction. Like the processing services, everything here
flushes and leaves the commit (and the enqueueing of extractions) to the caller.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core.einvoice import EInvoiceError, read_einvoice
from core.errors import NotFound, ServiceError, ValidationFailed
from core.extraction.split import Split, split_pdf
from core.extraction.text import PdfUnreadable
from core.fields import FIELDS
from core.files.storage import FileStorage, StorageError
from core.mail.unpack import PDF, Attachment
from core.models import Document, DocumentSource, DocumentStatus, InboundMessage, utcnow
from core.reasons import set_reason

logger = logging.getLogger(__name__)

# Documents of a split attachment need their own (message_id, part_index): 1_000_000 + part * 1000 + group.
# Plain attachments number from 0 and a message holds far fewer than 1000 parts, so they never collide.
SPLIT_BASE = 1_000_000
SPLIT_STRIDE = 1000
MAX_GROUPS = SPLIT_STRIDE - 1

STILL_READING = "Some pages of this file are still being read: regroup them once reading has finished."
LOCKED_GROUP = "Pages {pages} are validated as {number}: that group cannot change."
PAGES_ONCE = "Every page must be in exactly one group."
NOT_A_GROUP_LIST = "Groups must be a list of lists of page numbers."


@dataclass(frozen=True)
class Group:
    """One invoice of a source as the review page and the API show it."""

    pages: list[int]  # 0-based
    document: Document

    @property
    def locked(self) -> bool:
        return self.document.status == DocumentStatus.VALIDATED.value


def part_index_for(part_index: int, group: int) -> int:
    return SPLIT_BASE + part_index * SPLIT_STRIDE + group


def group_of(doc: Document) -> int:
    return (doc.part_index - SPLIT_BASE) % SPLIT_STRIDE


def page_label(pages: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"1-3,6"`` (1-based, as people count pages)."""
    runs: list[str] = []
    start = prev = None
    for page in [*pages, None]:
        if page is not None and prev is not None and page == prev + 1:
            prev = page
            continue
        if start is not None:
            runs.append(str(start + 1) if start == prev else f"{start + 1}-{prev + 1}")
        start = prev = page
    return ",".join(runs)


def split_filename(filename: str, pages: list[int]) -> str:
    path = PurePosixPath(filename or "document.pdf")
    stem = path.stem or "document"
    return f"{stem}_p{page_label(pages)}.pdf"[-255:]


def subset_pdf(data: bytes, pages: list[int]) -> bytes:
    """A PDF of ``pages`` of ``data`` (the page objects are copied as they are: scans stay scans)."""
    from pypdf import PdfReader, PdfWriter

    reader = PdfReader(io.BytesIO(data))
    writer = PdfWriter()
    for page in pages:
        writer.add_page(reader.pages[page])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# Ingest ---------------------------------------------------------------------------------------


def _is_einvoice(data: bytes, filename: str) -> bool:
    """A Factur-X / ZUGFeRD PDF is one invoice, read from its XML: never split."""
    try:
        return read_einvoice(data, filename) is not None
    except EInvoiceError:
        return True  # a broken e-invoice is still one document (extraction says what is wrong)


def detect_attachment(att: Attachment) -> Split | None:
    """The split of a PDF attachment holding several invoices; None when it holds one."""
    try:
        found = split_pdf(att.data)
    except PdfUnreadable:
        return None  # extraction reports it on the single document
    except Exception:  # splitting is a convenience: a file it trips on is still one document
        logger.exception("splitting failed: the file stays one document")
        return None
    if len(found.groups) < 2 or _is_einvoice(att.data, att.filename):
        return None
    return found


def split_attachment(
    session: Session, storage: FileStorage, message: InboundMessage, att: Attachment
) -> list[Document] | None:
    """The documents of ``att`` when it holds several invoices; None when it is one document.

    Idempotent: a second run finds the source (by message and part) and returns its documents; a part
    that already became one plain document (before this feature, or not split) stays as it is.
    """
    from core.files.records import store_file

    if att.content_type != PDF:  # only a PDF is ever split: no source nor anything to look up
        return None
    source = session.scalars(
        select(DocumentSource).where(
            DocumentSource.message_id == message.id, DocumentSource.part_index == att.part_index
        )
    ).first()
    if source is not None:
        return [group.document for group in groups_of(session, source)]
    plain = session.scalars(
        select(Document.id).where(Document.message_id == message.id, Document.part_index == att.part_index)
    ).first()
    if plain is not None:
        return None
    found = detect_attachment(att)
    if found is None:
        return None
    try:
        with session.begin_nested():  # all the documents or none: a failure leaves the plain document path
            stored = store_file(session, storage, message.tenant_id, att.data, att.content_type)
            source = DocumentSource(
                tenant_id=message.tenant_id, message_id=message.id, part_index=att.part_index, file_id=stored.id,
                filename=att.filename, page_count=found.pages, detection=found.as_dict(),
            )
            session.add(source)
            session.flush()
            documents = [
                _new_document(session, storage, source, att.data, pages, group)
                for group, pages in enumerate(found.groups[:MAX_GROUPS])
            ]
    except (SQLAlchemyError, StorageError):
        raise  # infrastructure: the job is retried
    except Exception:  # e.g. pypdf cannot rewrite this file's pages
        logger.exception("message %s part %s: could not cut the PDF, kept whole", message.id, att.part_index)
        return None
    logger.info("message %s part %s: %d invoices in one PDF", message.id, att.part_index, len(documents))
    return documents


def _new_document(
    session: Session, storage: FileStorage, source: DocumentSource, data: bytes, pages: list[int], group: int
) -> Document:
    doc = Document(
        tenant_id=source.tenant_id,
        message_id=source.message_id,
        part_index=part_index_for(source.part_index, group),
        source_id=source.id,
    )
    _make_from_pages(session, storage, source, doc, data, pages)
    session.add(doc)
    session.flush()
    return doc


def _make_from_pages(
    session: Session, storage: FileStorage, source: DocumentSource, doc: Document, data: bytes, pages: list[int]
) -> None:
    """Give ``doc`` the PDF of ``pages`` and send it (back) to extraction with empty fields."""
    from core.files.records import store_file

    stored = store_file(session, storage, source.tenant_id, subset_pdf(data, pages), PDF)
    doc.file_id, doc.source_pages = stored.id, list(pages)
    doc.filename = split_filename(source.filename, pages)
    for name in FIELDS:
        setattr(doc, name, None)
    doc.status = DocumentStatus.EXTRACTING.value
    set_reason(doc, None)
    doc.field_info, doc.extraction_details, doc.extraction_source = {}, None, None
    doc.duplicate_of_id = None


# Review ---------------------------------------------------------------------------------------


def get_source(session: Session, tenant_id: int, source_id: int, *, lock: bool = False) -> DocumentSource:
    stmt = select(DocumentSource).where(DocumentSource.id == source_id, DocumentSource.tenant_id == tenant_id)
    if lock:  # two reviewers regrouping the same file: the second waits, then sees the first's groups
        stmt = stmt.with_for_update()
    source = session.scalars(stmt).first()
    if source is None:
        raise NotFound("no such source")
    return source


def source_of(session: Session, doc: Document) -> DocumentSource | None:
    if doc.source_id is None:
        return None
    return session.scalars(
        select(DocumentSource).where(DocumentSource.id == doc.source_id, DocumentSource.tenant_id == doc.tenant_id)
    ).first()


def groups_of(session: Session, source: DocumentSource) -> list[Group]:
    """The source's documents as groups of pages, in page order."""
    docs = session.scalars(
        select(Document).where(Document.tenant_id == source.tenant_id, Document.source_id == source.id)
    ).all()
    groups = [Group(list(doc.source_pages or []), doc) for doc in docs]
    return sorted(groups, key=lambda g: (min(g.pages) if g.pages else source.page_count, g.document.id))


def normalize_groups(raw: Any, page_count: int) -> list[list[int]]:
    """``raw`` checked: a list of non-empty lists of page indexes covering every page exactly once.

    Pages are sorted within a group and groups by their first page (invoices read top to bottom).
    """
    if not isinstance(raw, list) or not all(isinstance(g, list) for g in raw):
        raise ValidationFailed({"groups": NOT_A_GROUP_LIST})
    groups: list[list[int]] = []
    for group in raw:
        if not group:
            continue  # an emptied group (its pages all moved away) is simply gone
        if not all(isinstance(p, int) and not isinstance(p, bool) for p in group):
            raise ValidationFailed({"groups": NOT_A_GROUP_LIST})
        groups.append(sorted(group))
    pages = [p for g in groups for p in g]
    if sorted(pages) != list(range(page_count)):
        raise ValidationFailed({"groups": PAGES_ONCE})
    if len(groups) > MAX_GROUPS:
        raise ValidationFailed({"groups": f"At most {MAX_GROUPS} groups."})
    return sorted(groups, key=lambda g: g[0])


def regroup(
    session: Session,
    storage: FileStorage,
    tenant_id: int,
    source_id: int,
    raw_groups: Any,
    user_id: int | None = None,
) -> list[int]:
    """Apply the reviewer's page groups to a source; the ids of the documents to extract again.

    Raises ``NotFound`` (another tenant's source), ``ValidationFailed`` (pages missing or repeated, a
    validated group changed) or ``ServiceError`` (pages still being read).
    """
    source = get_source(session, tenant_id, source_id, lock=True)
    groups = normalize_groups(raw_groups, source.page_count)
    current = groups_of(session, source)
    if any(g.document.status == DocumentStatus.EXTRACTING.value for g in current):
        raise ServiceError(STILL_READING)
    wanted = {tuple(g) for g in groups}
    for group in current:
        if group.locked and tuple(group.pages) not in wanted:
            number = group.document.number or f"document {group.document.id}"
            raise ValidationFailed({"groups": LOCKED_GROUP.format(pages=page_label(group.pages), number=number)})
    kept = {tuple(g.pages) for g in current if tuple(g.pages) in wanted}
    spare = [g.document for g in current if tuple(g.pages) not in wanted]  # none of them is validated
    next_group = max((group_of(g.document) for g in current), default=-1) + 1
    data: bytes | None = None
    changed: list[Document] = []
    for pages in groups:
        if tuple(pages) in kept:
            continue
        if data is None:
            data = storage.read(source.file.storage_key)
        if spare:
            doc = spare.pop(0)
            _make_from_pages(session, storage, source, doc, data, pages)
        else:
            doc = _new_document(session, storage, source, data, pages, next_group)
            next_group += 1
        changed.append(doc)
    for doc in spare:  # merged into another group: nothing refers to an unvalidated document
        session.delete(doc)
    if changed or spare:
        source.regrouped_at, source.regrouped_by_id = utcnow(), user_id
    session.flush()
    logger.info("source %s regrouped: %d group(s), %d to read again", source.id, len(groups), len(changed))
    return [doc.id for doc in changed]


def groups_json(source: DocumentSource, groups: list[Group]) -> dict[str, Any]:
    """The API's view of a source (pages 0-based, as ``PUT`` takes them)."""
    return {
        "id": source.id,
        "filename": source.filename,
        "page_count": source.page_count,
        "message_id": source.message_id,
        "groups": [
            {"pages": g.pages, "document_id": g.document.id, "status": g.document.status,
             "number": g.document.number, "locked": g.locked}
            for g in groups
        ],
        "boundaries": (source.detection or {}).get("boundaries", []),
    }
