"""Queue the messages that were stored but never queued (Redis was down), or whose job got lost.

A message is acknowledged once it is stored and committed; queueing it is best effort at that moment.
The sweep makes "best effort" (``worker.dispatch``) eventually certain: the SMTP server runs it at start-up
and periodically, and ``inbox`` can run it once from the command line. It lives beside the worker's RQ
policy because it is the other half of it: what RQ lost, the sweep puts back.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from rq import Queue
from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from core.db import make_engine, make_session_factory, session_scope
from core.documents import processing
from core.inbound import intake
from worker.dispatch import queue_message
from worker.queue import enqueue_extract, enqueue_ingest, existing_jobs, extract_job_id, get_queue, ingest_job_id

log = logging.getLogger(__name__)

# A queued message whose job has not finished after this long is enqueued again; the job id is
# deterministic, so a job still waiting or running in Redis is left alone (no double processing).
# A backstop only: a message or document whose job is missing from Redis is queued again at once.
DEFAULT_STALE_AFTER = timedelta(minutes=15)
# A message received this recently is left to its receiver, which queues it right after the 250:
# a sweep racing that enqueue could make both create the job (RQ would then run it twice).
DEFAULT_RECEIVED_GRACE = timedelta(minutes=1)


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
        queued = intake.queued_message_ids(session)
        extracting = processing.extracting_documents(session)
    lost_message_ids, lost_document_ids = _jobs_lost(queue, queued, extracting)
    lost_message_ids = [i for i in lost_message_ids if i not in set(message_ids)]
    document_ids = sorted(set(document_ids) | set(lost_document_ids))
    for message_id in message_ids:
        queue_message(session_factory, queue, message_id)
    for message_id in lost_message_ids:  # already marked queued: only the job is missing
        enqueue_ingest(queue, message_id)
    for document_id in document_ids:
        enqueue_extract(queue, document_id)
    if document_ids:
        with session_scope(session_factory) as session:
            processing.mark_requeued(session, document_ids)
    if lost_message_ids or lost_document_ids:
        log.warning("sweep: the jobs of %d message(s) and %d document(s) were missing from Redis (lost "
                    "with its data?): queued again", len(lost_message_ids), len(lost_document_ids))
    if message_ids or document_ids or lost_message_ids:
        log.info("sweep queued %d message(s) and %d document(s) on %s",
                 len(message_ids) + len(lost_message_ids), len(document_ids), settings.queue_name)
    return len(message_ids) + len(lost_message_ids) + len(document_ids)


def _jobs_lost(
    queue: Queue, queued: list[int], extracting: list[tuple[int, int | None]]
) -> tuple[list[int], list[int]]:
    """The queued messages and extracting documents that no job in Redis will ever process.

    A ``queued`` message had its job created before it was marked: no job now means Redis lost it. A
    document ``extracting`` is extracted either by its own job or inline by its message's ingest job (the
    first document); only when neither exists is it lost. A job still waiting, running or kept finished
    keeps its key: those are left alone, and a job running while Redis lost its key is not run twice at
    once (the jobs lock their row). No staleness wait: this is what makes recovery take seconds.
    """
    wanted = [ingest_job_id(i) for i in queued]
    wanted += [extract_job_id(d) for d, _ in extracting]
    wanted += [ingest_job_id(m) for _, m in extracting if m is not None]
    present = existing_jobs(queue.connection, list(dict.fromkeys(wanted)))
    messages = [i for i in queued if ingest_job_id(i) not in present]
    documents = [
        d for d, m in extracting
        if extract_job_id(d) not in present and (m is None or ingest_job_id(m) not in present)
    ]
    return messages, documents


def main(settings: Settings) -> int:
    """One sweep from the command line; returns the number of messages enqueued."""
    engine = make_engine(settings.database_url)
    queue = get_queue(settings)
    try:
        return sweep_once(settings, make_session_factory(engine), queue)
    finally:
        queue.connection.close()
        engine.dispose()
