"""Enqueueing work for the worker on RQ.

Job ids are derived from what the job works on, so enqueueing the same work twice while it waits or
runs does not run it twice; jobs are referenced by dotted path so that callers need not import them.
"""

from __future__ import annotations

import contextlib

from redis import Redis
from rq import Queue
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

from core.config import Settings
from worker.policy import MAIL, JobPolicy, job_policy, queue_name

INGEST_JOB = "worker.jobs.ingest_message"
EXTRACT_JOB = "worker.jobs.extract_document"
REMATCH_JOB = "worker.jobs.rematch_invoice"

_ACTIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
# A queue made outside get_queue (a test's, a script's) gets the policy of the default settings.
_DEFAULT_POLICY = JobPolicy(timeout=Settings.__dataclass_fields__["job_timeout"].default)


def connect(settings: Settings) -> Redis:
    return Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=10)


def get_queue(settings: Settings, connection: Redis | None = None, priority: str = MAIL) -> Queue:
    """The queue of that priority (``worker.policy``); its jobs get the settings' policy (JOB_TIMEOUT...)."""
    queue = Queue(queue_name(settings, priority), connection=connection or connect(settings))
    queue.inbox_policy = job_policy(settings)  # type: ignore[attr-defined]
    return queue


def policy_of(queue: Queue) -> JobPolicy:
    return getattr(queue, "inbox_policy", _DEFAULT_POLICY)


def _enqueue_once(queue: Queue, func: str, job_id: str, arg: int, force: bool) -> str:
    try:
        existing = Job.fetch(job_id, connection=queue.connection)
    except NoSuchJobError:
        existing = None
    if existing is not None:
        status = existing.get_status(refresh=True)
        # A running job is never replaced; a waiting one only when a person asked for a re-run.
        if status == JobStatus.STARTED or (status in _ACTIVE and not force):
            return job_id
        existing.delete()
    # unique: RQ checks and creates the job atomically (a Lua script), so two enqueuers racing (two sweeps
    # on two hosts, a sweep and a person's retry) create one job, never two queue entries; the loser's
    # DuplicateJobError means the winner's job is the one.
    with contextlib.suppress(DuplicateJobError):
        queue.enqueue(func, arg, job_id=job_id, unique=True, **policy_of(queue).enqueue_options())
    return job_id


def ingest_job_id(message_id: int) -> str:
    return f"ingest-message-{message_id}"


def extract_job_id(document_id: int) -> str:
    return f"extract-document-{document_id}"


def existing_jobs(connection: Redis, job_ids: list[str], chunk: int = 1000) -> set[str]:
    """Which of ``job_ids`` have a job in Redis (waiting, running, scheduled, or kept as finished/failed)."""
    found: set[str] = set()
    for start in range(0, len(job_ids), chunk):
        part = job_ids[start:start + chunk]
        with connection.pipeline(transaction=False) as pipe:
            for job_id in part:
                pipe.exists(Job.key_for(job_id))
            found.update(job_id for job_id, exists in zip(part, pipe.execute(), strict=True) if exists)
    return found


def enqueue_ingest(queue: Queue, message_id: int, force: bool = False) -> str:
    # The ingest job extracts the email's first document itself: the one JOB_TIMEOUT covers both.
    return _enqueue_once(queue, INGEST_JOB, ingest_job_id(message_id), message_id, force)


def enqueue_ingest_many(queue: Queue, message_ids: list[int]) -> None:
    """``enqueue_ingest`` for many just-received messages in two round trips (the SMTP gateway's batches).

    A new message has no job yet: those are created in one pipeline. An id that has a job already
    (a reused id, a race with the sweep) takes ``enqueue_ingest``'s path, which decides what to do with it.
    """
    ids = list(dict.fromkeys(message_ids))
    with queue.connection.pipeline(transaction=False) as pipe:
        for message_id in ids:
            pipe.exists(Job.key_for(ingest_job_id(message_id)))
        exists = pipe.execute()
    new = [message_id for message_id, found in zip(ids, exists, strict=True) if not found]
    if new:
        with queue.connection.pipeline() as pipe:
            queue.enqueue_many(
                [
                    Queue.prepare_data(INGEST_JOB, (message_id,), job_id=ingest_job_id(message_id),
                                       **policy_of(queue).prepare_options())
                    for message_id in new
                ],
                pipeline=pipe,
            )
            pipe.execute()
    for message_id, found in zip(ids, exists, strict=True):
        if found:
            enqueue_ingest(queue, message_id)


def enqueue_extract(queue: Queue, document_id: int, force: bool = False) -> str:
    return _enqueue_once(queue, EXTRACT_JOB, extract_job_id(document_id), document_id, force)


def enqueue_rematch(queue: Queue, invoice_id: int) -> str:
    """Match the bank transactions waiting for a payment against a newly validated invoice (issue 17)."""
    return _enqueue_once(queue, REMATCH_JOB, f"rematch-invoice-{invoice_id}", invoice_id, False)
