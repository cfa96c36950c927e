"""Worker policy: JOB_TIMEOUT and the retry policy from one place, and an import that never delays an e-mail."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from rq.job import Job

from tests.fairness import run_fairness
from worker.policy import BULK, FAILURE_TTL, MAIL, RESULT_TTL, RETRY_INTERVALS
from worker.queue import enqueue_extract, enqueue_ingest, enqueue_ingest_many, get_queue

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


def test_an_import_does_not_delay_another_companys_email(settings, tmp_path: Path):
    settings.storage_dir.mkdir(parents=True, exist_ok=True)
    logs = tmp_path / "logs"
    logs.mkdir()
    run = run_fairness(settings, logs, documents=150, workers=1, head_start=1.0, wait=60)
    print(f"\n[fairness] {run.summary()}")
    assert run.email_seconds is not None and run.email_seconds < 5, run.summary()
    assert run.backlog_at_done > 0, "the import was over before the e-mail was done: nothing was measured"
