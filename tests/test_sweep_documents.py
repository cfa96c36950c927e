"""Sweep races. The sweep also queues documents left ``extracting`` with no job (lost with Redis, or a worker that died
between unpacking the email and extracting its first document), once, and a real worker then reads them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from rq import Queue

from core.db import session_scope
from core.documents import processing
from core.files.storage import FileStorage
from core.inbound import intake
from core.models import Document, DocumentStatus, InboundMessage, MessageStatus, utcnow
from tests.invoicegen import make_email, make_invoice_pdf
from tests.services import run_worker_burst
from tests.test_smtp import open_queue
from worker.queue import enqueue_ingest, ingest_job_id
from worker.sweep import sweep_once


@pytest.fixture
def queue(settings) -> Iterator[Queue]:
    with open_queue(settings) as opened:
        yield opened


def stranded_document(settings, session_factory, tenant, age: timedelta) -> int:
    """A message unpacked (processed) whose document never got its extraction, ``age`` ago."""
    storage = FileStorage(settings.storage_dir)
    with session_scope(session_factory) as session:
        raw = make_email(tenant.address, make_invoice_pdf(number="SWEEP-7"))
        message = intake.store_message(session, storage, tenant.tenant.id, raw, recipient=tenant.address)
        session.flush()
        document_ids = processing.ingest_message(session, storage, message.id)
        assert len(document_ids) == 1
        session.get(Document, document_ids[0]).updated_at = utcnow() - age
    return document_ids[0]


def test_a_stranded_document_is_queued_once_then_extracted(settings, session_factory, tenant, queue):
    document_id = stranded_document(settings, session_factory, tenant, age=timedelta(hours=1))
    assert sweep_once(settings, session_factory, queue) == 1
    assert queue.job_ids == [f"extract-document-{document_id}"]
    assert sweep_once(settings, session_factory, queue) == 0  # waits stale_after again: no second job
    run_worker_burst(settings)
    with session_factory() as session:
        doc = session.get(Document, document_id)
        assert doc.status == DocumentStatus.PENDING.value and doc.number == "SWEEP-7"


def test_a_document_being_extracted_now_is_left_alone(settings, session_factory, tenant, queue):
    """Its message's ingest job (which extracts the first document inline) is still in Redis: not lost."""
    document_id = stranded_document(settings, session_factory, tenant, age=timedelta(seconds=10))
    with session_factory() as session:
        message_id = session.get(Document, document_id).message_id
    enqueue_ingest(queue, message_id)
    assert sweep_once(settings, session_factory, queue) == 0
    assert queue.job_ids == [ingest_job_id(message_id)]


def test_a_recent_document_whose_jobs_are_gone_is_queued_at_once(settings, session_factory, tenant, queue):
    """No staleness wait when Redis says no job (its own nor its message's) will ever extract it."""
    document_id = stranded_document(settings, session_factory, tenant, age=timedelta(seconds=10))
    assert sweep_once(settings, session_factory, queue) == 1
    assert queue.job_ids == [f"extract-document-{document_id}"]
    assert sweep_once(settings, session_factory, queue) == 0  # its job exists now: left alone


def test_marking_queued_never_undoes_a_finished_job(settings, session_factory, tenant):
    """The sweep enqueues first, then marks ``queued``: a fast worker may finish the message in between."""
    storage = FileStorage(settings.storage_dir)
    with session_scope(session_factory) as session:
        raw = make_email(tenant.address, make_invoice_pdf(number="RACE-1"))
        message_id = intake.store_message(session, storage, tenant.tenant.id, raw, recipient=tenant.address).id
    sweeper = session_factory()
    try:
        assert sweeper.get(InboundMessage, message_id).status == MessageStatus.RECEIVED.value  # loaded, as before
        with session_scope(session_factory) as worker:  # the job runs and commits meanwhile
            processing.ingest_message(worker, storage, message_id)
        intake.mark_queued(sweeper, message_id)
        sweeper.commit()
    finally:
        sweeper.close()
    with session_factory() as session:
        assert session.get(InboundMessage, message_id).status == MessageStatus.PROCESSED.value
