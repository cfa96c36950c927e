"""Enqueueing work for the worker on RQ.

Job ids are derived from what the job works on, so enqueueing the same work twice while it waits or
runs does not run it twice; jobs are referenced by dotted path so that callers need not import them.

The bulk queue (``get_queue(settings, priority=BULK)``) is a ``BulkQueue``: every enqueue through it lands on
the shard of the job's company (``worker.policy``: fairness between companies), found from the message,
document or invoice id in the database, so that callers keep passing ids only. A caller that knows the
company may take ``bulk.tenant_queue(tenant_id)`` directly and skip that read.
"""

from __future__ import annotations

import contextlib
import logging
import os

from redis import Redis
from rq import Queue
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import select
from sqlalchemy.engine import Engine

from core.config import Settings
from core.db import make_engine
from core.models import Document, InboundMessage, Invoice
from worker.policy import (
    BULK,
    MAIL,
    PRIORITIES,
    JobPolicy,
    bulk_shard_name,
    bulk_shards,
    is_bulk_shard,
    job_policy,
    queue_name,
    shard_of,
)

logger = logging.getLogger(__name__)

INGEST_JOB = "worker.jobs.ingest_message"
EXTRACT_JOB = "worker.jobs.extract_document"
REMATCH_JOB = "worker.jobs.rematch_invoice"

_ACTIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
# A queue made outside get_queue (a test's, a script's) gets the policy of the default settings.
_DEFAULT_POLICY = JobPolicy(timeout=Settings.__dataclass_fields__["job_timeout"].default)


def connect(settings: Settings) -> Redis:
    return Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=10)


def get_queue(settings: Settings, connection: Redis | None = None, priority: str = MAIL) -> Queue:
    """The queue of that priority (``worker.policy``); its jobs get the settings' policy (JOB_TIMEOUT...).

    ``BULK`` gives a ``BulkQueue``, which routes each job to its company's shard."""
    connection = connection or connect(settings)
    if priority == BULK:
        queue: Queue = BulkQueue(settings, connection)
    else:
        queue = Queue(queue_name(settings, priority), connection=connection)
    queue.inbox_policy = job_policy(settings)  # type: ignore[attr-defined]
    return queue


def policy_of(queue: Queue) -> JobPolicy:
    return getattr(queue, "inbox_policy", _DEFAULT_POLICY)


# The table whose row names the company of a job's argument.
_OWNER = {INGEST_JOB: InboundMessage, EXTRACT_JOB: Document, REMATCH_JOB: Invoice}
_ENGINES: dict[tuple[str, int], Engine] = {}


def _engine(database_url: str) -> Engine:
    # One per process (a forked worker or web process must not share its parent's connections).
    key = (database_url, os.getpid())
    if key not in _ENGINES:
        _ENGINES[key] = make_engine(database_url)
    return _ENGINES[key]


class BulkQueue(Queue):
    """``QUEUE_NAME-bulk`` plus its per-company shards (``worker.policy``). Enqueueing through
    ``worker.queue``'s functions puts a job on its company's shard; this queue itself holds the jobs whose
    company could not be read (and those queued before the shards existed). Workers listen to them all."""

    def __init__(self, settings: Settings, connection: Redis) -> None:
        super().__init__(queue_name(settings, BULK), connection=connection)
        self.inbox_settings = settings
        self.shards = bulk_shards(settings)
        self._shard_queues: dict[int, Queue] = {}

    def tenant_queue(self, tenant_id: int) -> Queue:
        """The queue of that company's bulk jobs (this queue itself when sharding is off)."""
        if self.shards == 0:
            return self
        shard = shard_of(tenant_id, self.shards)
        if shard not in self._shard_queues:
            queue = Queue(bulk_shard_name(self.inbox_settings, shard), connection=self.connection)
            queue.inbox_policy = policy_of(self)  # type: ignore[attr-defined]
            self._shard_queues[shard] = queue
        return self._shard_queues[shard]

    def route(self, func: str, ids: list[int]) -> dict[int, Queue]:
        """The queue of each id's job. An id whose company cannot be read (no such row, the database
        unreachable) stays on this queue: a delayed-fairness job beats a lost one."""
        owner = _OWNER.get(func)
        if self.shards == 0 or owner is None or not ids:
            return dict.fromkeys(ids, self)
        tenants: dict[int, int] = {}
        try:
            with _engine(self.inbox_settings.database_url).connect() as conn:
                for start in range(0, len(ids), 900):  # under every database's bound-parameter limit
                    part = ids[start:start + 900]
                    tenants.update(conn.execute(select(owner.id, owner.tenant_id).where(owner.id.in_(part))).all())
        except Exception as exc:
            logger.warning("bulk jobs queued without their company's shard (%s)", type(exc).__name__)
        return {i: self.tenant_queue(tenants[i]) if i in tenants else self for i in ids}

    def member_queues(self) -> list[Queue]:
        """This queue, the configured shards, and shards left by a former ``BULK_SHARDS`` that RQ knows."""
        names = [bulk_shard_name(self.inbox_settings, n) for n in range(self.shards)]
        known = {q.name for q in Queue.all(connection=self.connection)}
        names += sorted((n for n in known - set(names) if is_bulk_shard(self.inbox_settings, n)),
                        key=lambda n: int(n.rsplit("-", 1)[1]))
        members = [Queue(name, connection=self.connection) for name in names]
        for member in members:
            member.inbox_policy = policy_of(self)  # type: ignore[attr-defined]
        return [self, *members]


def queues_of(queue: Queue) -> list[Queue]:
    """The RQ queues behind ``queue``: a bulk queue's shards too (depth, registries, job ids)."""
    return queue.member_queues() if isinstance(queue, BulkQueue) else [queue]


def worker_queues(settings: Settings, connection: Redis) -> list[Queue]:
    """Every queue a worker listens to, in priority order: ``mail``, then every bulk queue. Plain RQ queues
    (RQ rebuilds queues from their names as its own class), each with the settings' policy."""
    found = []
    for priority in PRIORITIES:
        for each in queues_of(get_queue(settings, connection, priority)):
            plain = Queue(each.name, connection=connection)
            plain.inbox_policy = policy_of(each)  # type: ignore[attr-defined]
            found.append(plain)
    return found


def is_bulk_queue(settings: Settings, name: str) -> bool:
    return name == queue_name(settings, BULK) or is_bulk_shard(settings, name)


def _target(queue: Queue, func: str, arg: int) -> Queue:
    return queue.route(func, [arg])[arg] if isinstance(queue, BulkQueue) else queue


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
    # DuplicateJobError means the winner's job is the one. The check is on the job id, whatever the queue.
    with contextlib.suppress(DuplicateJobError):
        _target(queue, func, arg).enqueue(func, arg, job_id=job_id, unique=True, **policy_of(queue).enqueue_options())
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
    present = existing_jobs(queue.connection, [ingest_job_id(message_id) for message_id in ids])
    new = [message_id for message_id in ids if ingest_job_id(message_id) not in present]
    if new:
        # The bulk queue's jobs go to their companies' shards: one enqueue_many per queue, one transaction.
        targets = queue.route(INGEST_JOB, new) if isinstance(queue, BulkQueue) else dict.fromkeys(new, queue)
        by_queue: dict[str, tuple[Queue, list[int]]] = {}
        for message_id in new:
            target = targets[message_id]
            by_queue.setdefault(target.name, (target, []))[1].append(message_id)
        with queue.connection.pipeline() as pipe:
            for target, message_ids in by_queue.values():
                target.enqueue_many(
                    [
                        Queue.prepare_data(INGEST_JOB, (message_id,), job_id=ingest_job_id(message_id),
                                           **policy_of(queue).prepare_options())
                        for message_id in message_ids
                    ],
                    pipeline=pipe,
                )
            pipe.execute()
    for message_id in ids:
        if ingest_job_id(message_id) in present:
            enqueue_ingest(queue, message_id)


def enqueue_extract(queue: Queue, document_id: int, force: bool = False) -> str:
    return _enqueue_once(queue, EXTRACT_JOB, extract_job_id(document_id), document_id, force)


def enqueue_rematch(queue: Queue, invoice_id: int) -> str:
    """Match the bank transactions waiting for a payment against a newly validated invoice (issue 17)."""
    return _enqueue_once(queue, REMATCH_JOB, f"rematch-invoice-{invoice_id}", invoice_id, False)
