"""Assign PDFs to invoices: many files at once, each attached to an existing invoice as is (no
extraction, no review). The invoice is proposed from a number found in the file name, else in the
file's text, and attached only once a person (or an API caller) confirms the pair."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from core.documents.review import get_file, get_invoice
from core.errors import ServiceError, ValidationFailed
from core.fields import TEXT_LIMITS
from core.i18n import N_
from core.models import Document, Invoice, InvoiceFile, StoredFile, User
from core.receivables.invoices import MAX_ATTACHMENT_BYTES, attach_stored, sniff_content_type
from core.tenancy import access, audit, quotas
from core.tenancy.access import Viewer

MAX_FILES = 50  # per upload
MAX_TEXT_PAGES = 3  # an invoice's number is on its first pages
MAX_CANDIDATES = 2000
MAX_PROPOSED = 5  # invoices offered per file
BY_FILENAME = "filename"
BY_CONTENT = "content"
TOO_MANY_FILES = N_("At most {limit} files at once.")
NO_FILES = N_("Choose the files to assign.")
EMPTY_FILE = N_("the file is empty")
TOO_LARGE = N_("the file is larger than {limit} MB")
NOT_YOURS = N_("This file was not uploaded here: upload it again.")

_BOUNDARY = re.compile(r"[^0-9A-Za-z]")


@dataclass
class Proposal:
    """One uploaded file and the invoices it may belong to, the likeliest first."""

    filename: str
    file_id: int | None = None
    invoices: list[Invoice] = field(default_factory=list)
    found_in: str | None = None  # BY_FILENAME or BY_CONTENT
    error: str | None = None  # why this file was not stored (empty, too large)


def _candidates(text: str, max_tokens: int = 4) -> set[str]:
    """Every run of 1..max_tokens consecutive words of ``text`` with a digit, written as ``number_key``
    writes numbers (no white space, upper case), both as typed and with separators dropped."""
    words = [w for w in re.split(r"[\s_]+", text) if w]
    found: set[str] = set()
    for start in range(len(words)):
        for end in range(start + 1, min(len(words), start + max_tokens) + 1):
            run = "".join(words[start:end]).strip(".,;:()[]#")
            if any(c.isdigit() for c in run) and 3 <= len(run) <= TEXT_LIMITS["number"]:
                found.add(run.upper())
                found.add(_BOUNDARY.sub("", run).upper())
            if len(found) >= MAX_CANDIDATES:
                return found
    return found


def _stem(filename: str) -> str:
    return filename.rsplit(".", 1)[0] if "." in filename else filename


def _matching(session: Session, viewer: Viewer, candidates: Iterable[str]) -> list[Invoice]:
    keys = list(candidates)[:MAX_CANDIDATES]
    if not keys:
        return []
    found: list[Invoice] = []
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        stmt = select(Invoice).where(Invoice.tenant_id == viewer.tenant_id, Invoice.number_key.in_(chunk))
        found.extend(session.scalars(access.scope_invoices(stmt, viewer)))
    # The longest number is the most specific: "FA-2026-0042" before "2026".
    return sorted(found, key=lambda inv: (-len(inv.number_key), inv.id))[:MAX_PROPOSED]


def _text_of(data: bytes, content_type: str) -> str:
    if content_type != "application/pdf":
        return ""
    from core.extraction.text import pdftotext_layout

    return pdftotext_layout(data, max_pages=MAX_TEXT_PAGES) or ""


def propose(
    session: Session, storage: Any, viewer: Viewer, files: list[tuple[str, bytes]], limits: quotas.Limits
) -> list[Proposal]:
    """Store each file (content-addressed, so sending it twice stores it once) and propose invoices.

    ``quotas.QuotaExceeded`` (nothing stored) when the files would take the company over a quota of ``limits``.
    """
    from core.files.records import store_file

    if not files:
        raise ServiceError(NO_FILES)
    if len(files) > MAX_FILES:
        raise ServiceError(TOO_MANY_FILES.format(limit=MAX_FILES))
    incoming = sum(len(data) for _, data in files if len(data) <= MAX_ATTACHMENT_BYTES)
    quotas.check(session, viewer.tenant_id, limits, incoming)
    proposals: list[Proposal] = []
    for filename, data in files:
        proposal = Proposal(filename=(filename or "")[:255])
        proposals.append(proposal)
        if not data:
            proposal.error = EMPTY_FILE
            continue
        if len(data) > MAX_ATTACHMENT_BYTES:
            proposal.error = TOO_LARGE.format(limit=MAX_ATTACHMENT_BYTES // (1024 * 1024))
            continue
        content_type = sniff_content_type(data)
        proposal.file_id = store_file(session, storage, viewer.tenant_id, data, content_type).id
        proposal.invoices = _matching(session, viewer, _candidates(_stem(proposal.filename)))
        if proposal.invoices:
            proposal.found_in = BY_FILENAME
            continue
        proposal.invoices = _matching(session, viewer, _candidates(_text_of(data, content_type)))
        proposal.found_in = BY_CONTENT if proposal.invoices else None
    return proposals


def _assignable(session: Session, viewer: Viewer, stored: StoredFile) -> bool:
    """A file the viewer may attach: one they can already see, or one held by nothing yet (just uploaded).
    Never another file of the tenant that their access hides from them."""
    if access.can_see_file(session, viewer, stored.id):
        return True
    held = or_(
        exists().where(Document.file_id == stored.id),
        exists().where(Invoice.file_id == stored.id),
        exists().where(InvoiceFile.file_id == stored.id),
    )
    return not session.scalar(select(held))


def confirm(
    session: Session, viewer: Viewer, pairs: list[tuple[int, int]], *, actor: User | None, ip: str | None, via: str
) -> list[tuple[int, int]]:
    """Attach each confirmed (file id, invoice id) and audit it (``via`` names the transport); all or
    nothing. Safe to run twice: a file already attached to its invoice stays attached once."""
    if len(pairs) > MAX_FILES:
        raise ServiceError(TOO_MANY_FILES.format(limit=MAX_FILES))
    errors: dict[str, str] = {}
    checked: list[tuple[StoredFile, Invoice]] = []
    for file_id, invoice_id in pairs:
        stored = get_file(session, viewer.tenant_id, file_id)
        invoice = access.check_invoice(session, viewer, get_invoice(session, viewer.tenant_id, invoice_id))
        if not _assignable(session, viewer, stored):
            errors[str(file_id)] = NOT_YOURS
        checked.append((stored, invoice))
    if errors:
        raise ValidationFailed(errors)
    for stored, invoice in checked:
        attach_stored(session, invoice, stored)
        audit.record(session, viewer.tenant_id, "invoice.attach_file", actor=actor, target=f"invoice:{invoice.id}",
                     detail={"file_id": stored.id, "via": via}, ip=ip)
    return [(stored.id, invoice.id) for stored, invoice in checked]
