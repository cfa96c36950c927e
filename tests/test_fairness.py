"""Worker policy: JOB_TIMEOUT and the retry policy from one place, an import that never delays an e-mail, and
per-company bulk shards so that one company's import does not delay another company's upload."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from redis import Redis
from rq.job import Job
from sqlalchemy.orm import Session

from core.documents import processing
from core.files.storage import FileStorage
from core.inbound import intake
from core.metrics import StateCollector
from tests.conftest import TenantFixture
from tests.fairness import run_fairness
from tests.invoicegen import make_email, make_invoice_pdf
from worker.main import build_worker
from worker.policy import (
    BULK,
    DEFAULT_BULK_SHARDS,
    FAILURE_TTL,
    MAIL,
    RESULT_TTL,
    RETRY_INTERVALS,
    bulk_shards,
    rotate_bulk,
)
from worker.queue import (
    enqueue_extract,
    enqueue_ingest,
    enqueue_ingest_many,
    enqueue_rematch,
    get_queue,
    queues_of,
    worker_queues,
)

pytestmark = pytest.mark.timeout(600)


def test_every_enqueue_honours_job_timeout_and_the_retry_policy(settings):
    configured = replace(settings, job_timeout=42)
    for priority in (MAIL, BULK):
        queue = get_queue(configured, priority=priority)
        try:
            enqueue_ingest(queue, 1)
            enqueue_ingest_many(queue, [2, 3])
            enqueue_extract(queue, 4)
            for job_id in ("ingest-message-1", "ingest-message-2", "ingest-message-3", "extract-document-4"):
                job = Job.fetch(job_id, connection=queue.connection)
                assert job.timeout == 42, job_id
                assert job.origin == queue.name and (job.result_ttl, job.failure_ttl) == (RESULT_TTL, FAILURE_TTL)
                assert job.retries_left == len(RETRY_INTERVALS) and job.retry_intervals == list(RETRY_INTERVALS)
        finally:
            queue.connection.flushall()
            queue.connection.close()
    with pytest.raises(ValueError, match="JOB_TIMEOUT"):
        get_queue(replace(settings, job_timeout=0))


def _stored(session: Session, storage: FileStorage, tenant: TenantFixture, n: int) -> list[int]:
    pdf = make_invoice_pdf(number="SHARD-1")
    ids = []
    for i in range(n):
        message = intake.store_message(session, storage, tenant.tenant.id,
                                       make_email(tenant.address, pdf, subject=f"Shard {i}"), recipient=tenant.address)
        session.flush()
        ids.append(message.id)
    session.commit()
    return ids


def _origin(connection: Redis, job_id: str) -> str:
    return Job.fetch(job_id, connection=connection).origin


def test_bulk_jobs_go_to_their_companys_shard_once(settings, session: Session, storage: FileStorage,
                                                   tenant: TenantFixture, other_tenant: TenantFixture) -> None:
    a1, a2, a3 = _stored(session, storage, tenant, 3)
    [b1] = _stored(session, storage, other_tenant, 1)
    [document_id] = processing.ingest_message(session, storage, a3)
    session.commit()
    bulk = get_queue(settings, priority=BULK)
    connection = bulk.connection
    try:
        shard_a, shard_b = bulk.tenant_queue(tenant.tenant.id), bulk.tenant_queue(other_tenant.tenant.id)
        assert bulk.shards == DEFAULT_BULK_SHARDS and shard_a.name != shard_b.name
        assert shard_a.name == f"{settings.queue_name}-bulk-{tenant.tenant.id % DEFAULT_BULK_SHARDS}"

        enqueue_ingest_many(bulk, [a1, a2, b1])
        enqueue_ingest(bulk, a1)  # again while it waits: still one job
        enqueue_ingest_many(bulk, [a2, b1])
        enqueue_extract(bulk, document_id)
        enqueue_ingest(bulk, 999_999)  # no such message: its company is unknown, the shared bulk queue
        enqueue_rematch(bulk, 999_998)
        assert shard_a.job_ids == [f"ingest-message-{a1}", f"ingest-message-{a2}", f"extract-document-{document_id}"]
        assert shard_b.job_ids == [f"ingest-message-{b1}"]
        assert bulk.job_ids == ["ingest-message-999999", "rematch-invoice-999998"]
        assert _origin(connection, f"ingest-message-{b1}") == shard_b.name
        job = Job.fetch(f"ingest-message-{a1}", connection=connection)  # the policy holds on a shard too
        assert job.timeout == settings.job_timeout and job.retries_left == len(RETRY_INTERVALS)

        # A forced re-run replaces the waiting job on the company's shard, never on another queue.
        enqueue_ingest(bulk, a1, force=True)
        assert shard_a.job_ids.count(f"ingest-message-{a1}") == 1
        assert sum(len(each.job_ids) for each in queues_of(bulk)) == 6

        # Workers listen to mail first, then every bulk queue; metrics add the shards up.
        names = [each.name for each in worker_queues(settings, connection)]
        assert names[:2] == [settings.queue_name, f"{settings.queue_name}-bulk"]
        assert len(names) == 2 + DEFAULT_BULK_SHARDS and {shard_a.name, shard_b.name} <= set(names)
        state = StateCollector(lambda: session,
                               lambda: {MAIL: [get_queue(settings, connection)], BULK: queues_of(bulk)})
        depth = {s.labels["queue"]: s.value for family in state.collect() for s in family.samples
                 if family.name == "inbox_queue_jobs"}
        assert depth == {MAIL: 0, BULK: 6}
    finally:
        connection.flushall()
        connection.close()


def test_without_shards_and_after_a_change_of_their_number(settings, session: Session, storage: FileStorage,
                                                          tenant: TenantFixture) -> None:
    [a1, a2] = _stored(session, storage, tenant, 2)
    one_queue = replace(settings, extra={"BULK_SHARDS": "0"})  # one bulk queue for all, as before the shards
    bulk = get_queue(one_queue, priority=BULK)
    try:
        enqueue_ingest(bulk, a1)
        assert bulk.job_ids == [f"ingest-message-{a1}"]
        assert [each.name for each in worker_queues(one_queue, bulk.connection)] == [
            settings.queue_name, f"{settings.queue_name}-bulk"]
        # A job left on a shard of a former BULK_SHARDS is still listened to (nothing strands).
        four = get_queue(replace(settings, extra={"BULK_SHARDS": "4"}), bulk.connection, BULK)
        enqueue_ingest(four, a2)
        left_on = four.tenant_queue(tenant.tenant.id).name
        assert left_on in [each.name for each in worker_queues(one_queue, bulk.connection)]
        for wrong in ("-1", "many", "5000"):
            with pytest.raises(ValueError, match="BULK_SHARDS"):
                bulk_shards(replace(settings, extra={"BULK_SHARDS": wrong}))
    finally:
        bulk.connection.flushall()
        bulk.connection.close()


def test_workers_serve_the_bulk_queues_in_turn(settings) -> None:
    bulk = {"b", "b-0", "b-1", "b-2"}
    order = ["m", "b", "b-0", "b-1", "b-2"]
    assert rotate_bulk(order, "b-0", bulk) == ["m", "b", "b-1", "b-2", "b-0"]
    assert rotate_bulk(order, "m", bulk) == order  # an e-mail job leaves the order alone: mail stays first
    # The real worker applies it after each job it takes.
    worker = build_worker(settings)
    try:
        shard = worker.queues[5]
        worker.reorder_queues(reference_queue=shard)
        names = [each.name for each in worker._ordered_queues]  # the listening order (RQ: BLPOP keys)
        assert names[0] == settings.queue_name and names[-1] == shard.name and len(names) == len(set(names))
    finally:
        worker.connection.close()


def test_an_import_does_not_delay_another_companys_email_or_upload(settings, tmp_path: Path):
    settings.storage_dir.mkdir(parents=True, exist_ok=True)
    logs = tmp_path / "logs"
    logs.mkdir()
    run = run_fairness(settings, logs, documents=150, workers=1, head_start=1.0, wait=60)
    print(f"\n[fairness] {run.summary()}")
    assert run.email_seconds is not None and run.email_seconds < 5, run.summary()
    assert run.backlog_at_done > 0, "the import was over before the e-mail was done: nothing was measured"
    # B's upload waited for the job the worker was running and at most one more of A's, not for A's backlog.
    assert run.upload_seconds is not None and run.backlog_at_upload_done > 0, run.summary()
    assert run.backlog_at_upload - run.backlog_at_upload_done <= 3, run.summary()


def test_with_one_bulk_queue_the_upload_waits_for_the_import(settings, tmp_path: Path):
    """The control: with one bulk queue for every company (BULK_SHARDS=0, as before), B's upload is done
    only once A's whole import is: what the shards change."""
    settings.storage_dir.mkdir(parents=True, exist_ok=True)
    logs = tmp_path / "logs"
    logs.mkdir()
    run = run_fairness(settings, logs, documents=40, workers=1, bulk_shards=0, head_start=0.0, wait=120)
    print(f"\n[fairness, one bulk queue] {run.summary()}")
    assert run.upload_seconds is not None and run.backlog_at_upload > 0, run.summary()
    assert run.backlog_at_upload_done == 0, run.summary()
