"""Handing stored work to the worker: the one way every transport does "commit, enqueue, mark queued".

The rule, for SMTP, IMAP, uploads and the sweep alike: the row is committed first (the job must find it),
then the job is enqueued, then the message is marked ``queued``. Enqueueing is best effort: when Redis is
unreachable the message stays ``received`` (a document stays ``extracting``) and the sweep
(``worker.sweep``) queues it later, so nothing is lost, only delayed. Job ids are derived from what the job
works on (``worker.queue``), so a second enqueue of the same work while it waits or runs does nothing.
"""

from __future__ import annotations

import logging

from rq import Queue
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.inbound import intake
from worker.queue import enqueue_extract, enqueue_ingest, enqueue_ingest_many, enqueue_rematch

log = logging.getLogger(__name__)


def queue_message(session_factory: sessionmaker[Session], queue: Queue, message_id: int) -> None:
    """Enqueue the ingest job, then mark the message queued (committed); raises if Redis is unreachable.

    Enqueue first: if the mark fails, the message stays ``received`` and a later sweep finds the job
    already there; the other order could mark a message queued that has no job.
    """
    enqueue_ingest(queue, message_id)
    with session_scope(session_factory) as session:
        intake.mark_queued(session, message_id)


def hand_over(session: Session, queue: Queue, message_id: int, *, force: bool = False) -> bool:
    """A message stored in ``session``: commit, enqueue, mark queued (committed). False when Redis was
    unreachable: the message is committed and stays ``received`` for the sweep."""
    session.commit()  # durable before the job can look for it
    if not try_enqueue_message(queue, message_id, force=force):
        return False
    intake.mark_queued(session, message_id)
    session.commit()
    return True


def enqueue_messages(queue: Queue, message_ids: list[int]) -> None:
    """Several messages' ingest jobs in one round trip (the SMTP gateway's batches); the caller marks them
    queued once this returned, in its next commit. Raises if Redis is unreachable."""
    enqueue_ingest_many(queue, message_ids)


def try_enqueue_message(queue: Queue, message_id: int, *, force: bool = False) -> bool:
    """Queue a committed message's ingest job; False when Redis is unreachable (the sweep re-queues it)."""
    try:
        enqueue_ingest(queue, message_id, force=force)
    except Exception as exc:  # the message is stored and committed: nothing is lost, only delayed
        log.warning("message %s: enqueue failed (%s)", message_id, type(exc).__name__)
        return False
    return True


def try_enqueue_document(queue: Queue, document_id: int) -> bool:
    """Queue a committed document's extraction again; False when Redis is unreachable."""
    try:
        enqueue_extract(queue, document_id, force=True)
    except Exception as exc:
        log.warning("document %s: enqueue failed (%s)", document_id, type(exc).__name__)
        return False
    return True


def try_enqueue_rematch(queue: Queue, invoice_id: int) -> bool:
    """After a validation the worker matches the payments that arrived first; False when Redis is
    unreachable (the payment is then matched at the next matching run: a statement import or "Run matching")."""
    try:
        enqueue_rematch(queue, invoice_id)
    except Exception as exc:
        log.warning("invoice %s: enqueue of the matching failed (%s)", invoice_id, type(exc).__name__)
        return False
    return True
