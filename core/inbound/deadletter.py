"""Dead letters: what ended ``failed`` after its retries, with the reason, and one way to try it again.

Failed messages and documents are rows (paperless-ngx's lesson: what was processed is data), so the list
is a query, and a retry is the same re-processing the Imports page offers, for one item or for all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.inbound import uploads
from core.models import Document, DocumentStatus, InboundMessage, MessageStatus

MAX_LISTED = 200  # the page shows the newest; "retry all" takes at most this many at once


@dataclass(frozen=True)
class DeadLetter:
    kind: str  # "message" or "document"
    id: int
    message_id: int | None
    label: str  # the email's subject or the file's name
    reason: str | None
    failed_at: datetime  # a message's processed_at (else received_at), a document's updated_at
    attempts: int | None
    reason_code: str | None = None  # the reason as data (core/reasons.py), NULL on older rows
    reason_params: dict[str, Any] | None = None


def dead_letters(session: Session, tenant_id: int, limit: int = MAX_LISTED) -> list[DeadLetter]:
    """The tenant's failed messages and documents, newest first."""
    messages = session.execute(
        select(InboundMessage.id, InboundMessage.subject, InboundMessage.reason, InboundMessage.processed_at,
               InboundMessage.received_at, InboundMessage.attempts, InboundMessage.reason_code,
               InboundMessage.reason_params)
        .where(InboundMessage.tenant_id == tenant_id, InboundMessage.status == MessageStatus.FAILED.value)
        .order_by(InboundMessage.id.desc()).limit(limit)
    ).all()
    documents = session.execute(
        select(Document.id, Document.message_id, Document.filename, Document.reason, Document.updated_at,
               Document.reason_code, Document.reason_params)
        .where(Document.tenant_id == tenant_id, Document.status == DocumentStatus.FAILED.value)
        .order_by(Document.id.desc()).limit(limit)
    ).all()
    items = [DeadLetter("message", m.id, m.id, m.subject or "", m.reason, m.processed_at or m.received_at, m.attempts,
                        m.reason_code, m.reason_params)
             for m in messages]
    items += [DeadLetter("document", d.id, d.message_id, d.filename, d.reason, d.updated_at, None,
                         d.reason_code, d.reason_params) for d in documents]
    items.sort(key=lambda item: item.failed_at, reverse=True)
    return items[:limit]


def retry_all(session: Session, tenant_id: int) -> tuple[list[int], list[int]]:
    """Put every dead letter back on its way (the caller commits, then enqueues with force).

    Returns the message ids and document ids to enqueue. A document whose message is retried too is left
    to the message: re-ingesting it extracts its documents again.
    """
    items = dead_letters(session, tenant_id)
    message_ids = [item.id for item in items if item.kind == "message"]
    retried = set(message_ids)
    document_ids = [item.id for item in items if item.kind == "document" and item.message_id not in retried]
    for message_id in message_ids:
        uploads.reprocess_message(session, tenant_id, message_id)
    for document_id in document_ids:
        uploads.reprocess_document(session, tenant_id, document_id)
    return message_ids, document_ids
