"""The web side's hand-offs to the worker, shared by the HTML views and the API (neither imports the other).

Uploads are stored through ``core.inbound.uploads`` and handed over by ``worker.dispatch`` on the bulk queue,
as every other transport does; the request's files are read here, within their size limits.
"""

from __future__ import annotations

from flask import request

from core.documents import assignment
from core.inbound import uploads
from core.models import InboundMessage
from core.receivables import invoices as receivables
from core.tenancy import quotas
from dashboard.context import bulk_queue, storage
from dashboard.context import settings as app_settings
from dashboard.extensions import db
from worker import dispatch


def enqueue_message(message_id: int, force: bool = False) -> bool:
    """Queue the ingest job; False when Redis is unreachable (the sweep re-queues the message later)."""
    return dispatch.try_enqueue_message(bulk_queue(), message_id, force=force)


def enqueue_rematch_invoice(invoice_id: int) -> bool:
    """After a validation: the worker matches the payments that arrived first (best effort)."""
    return dispatch.try_enqueue_rematch(bulk_queue(), invoice_id)


def enqueue_document(document_id: int) -> bool:
    return dispatch.try_enqueue_document(bulk_queue(), document_id)


def enqueue_reading(document_id: int) -> bool:
    """Queue a document's extraction after its commit; when Redis is unreachable, the document fails at
    once with the reason (committed) instead of waiting unseen. False then."""
    if enqueue_document(document_id):
        return True
    uploads.reprocess_not_queued(db.session, document_id)
    db.session.commit()
    return False


def enqueue_retried(message_ids: list[int], document_ids: list[int]) -> int:
    """Queue what a retry put back (messages forced, documents); how many could be queued now. The others
    are not lost: the sweep queues stale messages and documents."""
    return sum(enqueue_message(i, force=True) for i in message_ids) + sum(enqueue_document(i) for i in document_ids)


def accept_upload(tid: int, files: list[uploads.UploadedFile], uploader: str) -> InboundMessage:
    """Store, commit, enqueue: shared by the dashboard and the API (raises ``ValidationFailed``)."""
    message = uploads.store_upload(
        db.session, storage(), tid, files, uploader=uploader, inbound_domain=app_settings().inbound_domain,
        limits=quotas.Limits.of(app_settings()),
    )
    dispatch.hand_over(db.session, bulk_queue(), message.id)
    return message


def request_files() -> list[uploads.UploadedFile]:
    # The request size is bounded by MAX_CONTENT_LENGTH (settings.max_message_bytes): Werkzeug answers 413.
    return [
        uploads.UploadedFile(f.filename or "", f.read())
        for f in request.files.getlist("file")
        if f.filename or f.content_length
    ][: uploads.MAX_FILES + 1]


def uploaded_files() -> list[tuple[str, bytes]]:
    """The request's ``file`` parts (one more than allowed, so that too many is refused, not cut)."""
    parts = [u for u in request.files.getlist("file") if u.filename][: assignment.MAX_FILES + 1]
    return [(u.filename or "", u.stream.read(receivables.MAX_ATTACHMENT_BYTES + 1)) for u in parts]


def queue_reading(document_ids: list[int]) -> None:
    """Queue the regrouped documents' extraction (after the commit); one that cannot be queued is failed at
    once, with the reason (shared with the API's ``PUT /sources/<id>/groups``)."""
    for document_id in document_ids:
        enqueue_reading(document_id)
