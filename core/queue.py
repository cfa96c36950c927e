"""Enqueueing work for the worker on RQ.

Job ids are derived from what the job works on, so enqueueing the same work twice while it waits or
runs does not run it twice; jobs are referenced by dotted path so that callers need not import them.
"""

from __future__ import annotations

import contextlib
from typing import Any

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

from core.config import Settings

INGEST_JOB = "worker.jobs.ingest_message"
EXTRACT_JOB = "worker.jobs.extract_document"

# Transient failures (database locked, Redis hiccup) are retried with backoff; the jobs themselves
# turn permanent failures (a corrupt PDF) into a visible state instead of raising.
_RETRY = Retry(max=3, interval=[10, 60, 300])
_ACTIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
# How long RQ keeps a job's result and a failed job, and its retries: the same for every job we enqueue.
_KEEP: dict[str, Any] = {"result_ttl": 3600, "failure_ttl": 7 * 24 * 3600, "retry": _RETRY}


def connect(settings: Settings) -> Redis:
    return Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=10)


def get_queue(settings: Settings, connection: Redis | None = None) -> Queue:
    return Queue(settings.queue_name, connection=connection or connect(settings))


def _enqueue_once(queue: Queue, func: str, job_id: str, arg: int, timeout: int, force: bool) -> str:
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
        queue.enqueue(func, arg, job_id=job_id, job_timeout=timeout, unique=True, **_KEEP)
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


def enqueue_ingest(queue: Queue, message_id: int, timeout: int = 300, force: bool = False) -> str:
    # As long as an extraction: the ingest job extracts the email's first document itself.
    return _enqueue_once(queue, INGEST_JOB, ingest_job_id(message_id), message_id, timeout, force)


def enqueue_ingest_many(queue: Queue, message_ids: list[int], timeout: int = 300) -> None:
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
                    Queue.prepare_data(INGEST_JOB, (message_id,), job_id=ingest_job_id(message_id), timeout=timeout,
                                       **_KEEP)
                    for message_id in new
                ],
                pipeline=pipe,
            )
            pipe.execute()
    for message_id, found in zip(ids, exists, strict=True):
        if found:
            enqueue_ingest(queue, message_id, timeout)


def enqueue_extract(queue: Queue, document_id: int, timeout: int = 300, force: bool = False) -> str:
    return _enqueue_once(queue, EXTRACT_JOB, extract_job_id(document_id), document_id, timeout, force)
