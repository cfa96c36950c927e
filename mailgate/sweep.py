"""Queue the messages that were stored but never queued (Redis was down), or whose job got lost.

A message is acknowledged once it is stored and committed; queueing it is best effort at that moment.
The sweep makes "best effort" eventually certain: the SMTP server runs it at start-up and periodically,
and ``inbox`` can run it once from the command line.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from rq import Queue
from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from core.db import make_engine, make_session_factory, session_scope
from core.queue import enqueue_extract, enqueue_ingest, get_queue
from core.services import intake, processing

log = logging.getLogger(__name__)

# A queued message whose job has not finished after this long is enqueued again; the job id is
# deterministic, so a job still waiting or running in Redis is left alone (no double processing).
DEFAULT_STALE_AFTER = timedelta(minutes=15)
# A message received this recently is left to its receiver, which queues it right after the 250:
# a sweep racing that enqueue could make both create the job (RQ would then run it twice).
DEFAULT_RECEIVED_GRACE = timedelta(minutes=1)


def queue_message(session_factory: sessionmaker[Session], queue: Queue, message_id: int) -> None:
    """Enqueue the ingest job, then mark the message queued (committed).

    Enqueue first: if the mark fails, the message stays ``received`` and a later sweep finds the job
    already there; the other order could mark a message queued that has no job.
    """
    enqueue_ingest(queue, message_id)
    with session_scope(session_factory) as session:
        intake.mark_queued(session, message_id)


def sweep_once(
    settings: Settings,
    session_factory: sessionmaker[Session],
    queue: Queue,
    *,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    received_grace: timedelta = DEFAULT_RECEIVED_GRACE,
) -> int:
    """Enqueue every message and document that needs it; returns how many were enqueued.

    Stops at the first error (typically Redis unreachable) and raises it: what was done stays done,
    the rest waits for the next sweep.
    """
    with session_scope(session_factory) as session:
        message_ids = intake.messages_to_requeue(session, stale_after, received_grace=received_grace)
        document_ids = processing.documents_to_requeue(session, stale_after)
    for message_id in message_ids:
        queue_message(session_factory, queue, message_id)
    for document_id in document_ids:
        enqueue_extract(queue, document_id)
    if document_ids:
        with session_scope(session_factory) as session:
            processing.mark_requeued(session, document_ids)
    if message_ids or document_ids:
        log.info("sweep queued %d message(s) and %d document(s) on %s", len(message_ids), len(document_ids),
                 settings.queue_name)
    return len(message_ids) + len(document_ids)


def main(settings: Settings) -> int:
    """One sweep from the command line; returns the number of messages enqueued."""
    engine = make_engine(settings.database_url)
    queue = get_queue(settings)
    try:
        return sweep_once(settings, make_session_factory(engine), queue)
    finally:
        queue.connection.close()
        engine.dispose()
