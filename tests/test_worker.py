"""The worker pipeline end to end on real components: stored message -> RQ (real redis-server) -> a real RQ
worker (the default WORKER_CLASS, as in production; ``fork`` tested too) -> database (SQLite, and PostgreSQL
when configured)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from rq.registry import FailedJobRegistry
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.config import Settings
from core.documents import processing
from core.documents.review import validate_document
from core.files.storage import FileStorage
from core.inbound import intake
from core.models import Document, DocumentStatus, InboundMessage, MessageStatus, StoredFile
from tests.conftest import TenantFixture
from tests.invoicegen import corrupt_pdf, make_email, make_image, make_invoice_pdf
from worker import jobs
from worker.main import InboxSimpleWorker, InboxWorker, run, worker_class
from worker.queue import connect, enqueue_ingest, get_queue, worker_queues

EXPECTED = {
    "doc_type": "invoice",
    "number": "FA-2026-0042",
    "title": "Mission de conseil",
    "issuer": "Dupont Conseil SARL",
    "client": "Acme SAS",
    "amount": Decimal("1200.00"),
    "net_amount": Decimal("1000.00"),
    "tax_amount": Decimal("200.00"),
    "currency": "EUR",
    "issue_date": date(2026, 11, 23),
    "due_date": date(2026, 12, 23),
}


@pytest.fixture
def env_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The environment a production worker would have, equal to the test's ``settings``."""
    values = {
        "VAR_DIR": str(settings.var_dir),
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "STORAGE_DIR": str(settings.storage_dir),
        "QUEUE_NAME": settings.queue_name,
        "SECRET_KEY": settings.secret_key,
        "INBOUND_DOMAIN": settings.inbound_domain,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    jobs.configure(None)
    from_env = Settings.from_env()
    assert (from_env.database_url, from_env.redis_url, from_env.storage_dir, from_env.queue_name) == (
        settings.database_url, settings.redis_url, settings.storage_dir, settings.queue_name)
    yield from_env
    jobs.configure(None)


def receive(session: Session, storage: FileStorage, settings: Settings, tenant: TenantFixture, raw: bytes) -> int:
    """What the SMTP gateway does: store durably, commit, enqueue, mark queued."""
    message = intake.store_message(session, storage, tenant.tenant.id, raw, recipient=tenant.address)
    session.commit()
    enqueue_ingest(get_queue(settings), message.id)
    intake.mark_queued(session, message.id)
    session.commit()
    return message.id


def work(settings: Settings) -> None:
    """A real RQ worker in burst mode, of the class production runs (``WORKER_CLASS``)."""
    assert run(settings, burst=True)


def documents(session: Session, message_id: int) -> list[Document]:
    session.expire_all()
    return list(session.scalars(select(Document).where(Document.message_id == message_id).order_by(Document.id)))


def message(session: Session, message_id: int) -> InboundMessage:
    session.expire_all()
    found = session.get(InboundMessage, message_id)
    assert found is not None
    return found


def fields_of(doc: Document) -> dict:
    return {name: getattr(doc, name) for name in EXPECTED}


def no_failed_jobs(settings: Settings) -> bool:
    connection = connect(settings)
    queues = worker_queues(settings, connection)  # mail, bulk and every bulk shard
    return all(FailedJobRegistry(queue=queue).count == 0 and queue.count == 0 for queue in queues)


def test_invoice_email_becomes_a_pending_document_with_its_fields(env_settings, session, storage, tenant):
    pdf = make_invoice_pdf()
    message_id = receive(session, storage, env_settings, tenant, make_email(tenant.address, pdf))
    work(env_settings)

    msg = message(session, message_id)
    assert (msg.status, msg.reason) == (MessageStatus.PROCESSED.value, None)
    [doc] = documents(session, message_id)
    assert doc.status == DocumentStatus.PENDING.value and doc.reason is None
    assert doc.filename == "facture.pdf" and doc.tenant_id == tenant.tenant.id
    assert fields_of(doc) == EXPECTED
    assert doc.extraction_source == "generic"
    assert set(doc.field_info) == set(EXPECTED)
    assert all(info["source"] == "generic" for info in doc.field_info.values())
    assert doc.file.content_type == "application/pdf" and doc.file.size == len(pdf)
    assert storage.read(doc.file.storage_key) == pdf
    assert doc.file.storage_key == FileStorage.file_key(tenant.tenant.id, doc.file.sha256)
    assert storage.exists(msg.raw_key)  # the raw message stays stored
    assert no_failed_jobs(env_settings)


def test_message_without_attachment_is_ignored_with_a_reason(env_settings, session, storage, tenant):
    message_id = receive(session, storage, env_settings, tenant, make_email(tenant.address, None))
    work(env_settings)
    msg = message(session, message_id)
    assert msg.status == MessageStatus.IGNORED.value
    assert msg.reason == "No PDF or image attachment found in this email"
    assert documents(session, message_id) == []
    assert storage.exists(msg.raw_key)


def test_corrupt_pdf_fails_with_a_reason_and_the_worker_goes_on(env_settings, session, storage, tenant):
    bad = receive(session, storage, env_settings, tenant, make_email(tenant.address, corrupt_pdf()))
    good = receive(session, storage, env_settings, tenant, make_email(tenant.address, make_invoice_pdf()))
    work(env_settings)  # one burst for both

    [failed] = documents(session, bad)
    assert failed.status == DocumentStatus.FAILED.value
    assert failed.reason.startswith("The PDF could not be read (it may be damaged or encrypted): ")
    assert len(failed.reason) < 300
    assert message(session, bad).status == MessageStatus.PROCESSED.value
    [ok] = documents(session, good)
    assert ok.status == DocumentStatus.PENDING.value and fields_of(ok) == EXPECTED
    assert no_failed_jobs(env_settings)  # a bad file is a verdict, not a crashed job


def test_running_ingest_again_creates_nothing_twice(env_settings, session, storage, tenant):
    pdf = make_invoice_pdf()
    raw = make_email(tenant.address, pdf)
    message_id = receive(session, storage, env_settings, tenant, raw)

    # Twice in the service before any extraction: the same documents, still to extract.
    first = processing.ingest_message(session, storage, message_id)
    session.commit()
    assert processing.ingest_message(session, storage, message_id) == first and len(first) == 1
    session.commit()

    work(env_settings)
    jobs.ingest_message(message_id)  # the job itself again, reading the environment like in production
    enqueue_ingest(get_queue(env_settings), message_id, force=True)  # and a forced re-run through RQ
    work(env_settings)

    [doc] = documents(session, message_id)
    assert doc.id == first[0] and doc.status == DocumentStatus.PENDING.value
    assert session.scalar(select(func.count()).select_from(StoredFile)) == 1
    assert message(session, message_id).status == MessageStatus.PROCESSED.value

    # Extraction re-run on a document already out of extraction changes nothing.
    jobs.extract_document(doc.id)
    session.expire_all()
    assert session.get(Document, doc.id).status == DocumentStatus.PENDING.value


def test_same_pdf_sent_twice_is_a_duplicate_once_the_first_is_validated(env_settings, session, storage, tenant):
    pdf = make_invoice_pdf()
    first_id = receive(session, storage, env_settings, tenant, make_email(tenant.address, pdf))
    work(env_settings)
    [first] = documents(session, first_id)
    invoice = validate_document(session, tenant.tenant.id, first.id, {}, tenant.admin.id)
    session.commit()

    again_id = receive(session, storage, env_settings, tenant,
                       make_email(tenant.address, pdf, filename="renvoi.pdf", subject="Relance"))
    work(env_settings)
    [again] = documents(session, again_id)
    assert again.status == DocumentStatus.DUPLICATE.value
    assert again.duplicate_of_id == invoice.id
    assert "It seems this invoice has already been imported" in again.reason
    assert again.file_id == first.file_id  # content-addressed: the bytes are stored once
    assert again.filename == "renvoi.pdf"


def test_same_pdf_twice_before_validation_is_flagged_too(env_settings, session, storage, tenant):
    pdf = make_invoice_pdf()
    first_id = receive(session, storage, env_settings, tenant, make_email(tenant.address, pdf))
    work(env_settings)
    again_id = receive(session, storage, env_settings, tenant, make_email(tenant.address, pdf))
    work(env_settings)
    [first], [again] = documents(session, first_id), documents(session, again_id)
    assert first.status == DocumentStatus.PENDING.value
    assert again.status == DocumentStatus.DUPLICATE.value and again.duplicate_of_id is None
    assert f"document {first.id}" in again.reason


def test_image_goes_to_review_without_fields_saying_why(env_settings, session, storage, tenant):
    raw = make_email(tenant.address, make_image(), filename="photo.png", content_type="image/png")
    message_id = receive(session, storage, env_settings, tenant, raw)
    work(env_settings)
    [doc] = documents(session, message_id)
    assert doc.status == DocumentStatus.PENDING.value
    assert all(value is None for value in fields_of(doc).values())
    assert doc.field_info["_document"]["note"] == "no text layer; fill in by hand"
    assert "no text layer" in doc.reason
    assert doc.file.content_type == "image/png"


def test_several_files_in_one_message_each_become_a_document(env_settings, session, storage, tenant):
    from email import message_from_bytes, policy

    raw = make_email(tenant.address, make_invoice_pdf(), filename="facture.pdf")
    mail = message_from_bytes(raw, policy=policy.default)
    mail.add_attachment(make_invoice_pdf(number="FA-2026-0043", language="en"), maintype="application",
                        subtype="octet-stream", filename="invoice.pdf")
    message_id = receive(session, storage, env_settings, tenant, mail.as_bytes())
    work(env_settings)
    docs = documents(session, message_id)
    assert [(d.filename, d.number, d.status) for d in docs] == [
        ("facture.pdf", "FA-2026-0042", "pending"), ("invoice.pdf", "FA-2026-0043", "pending")]


def test_missing_raw_file_fails_the_message_without_crashing(env_settings, session, storage, tenant):
    message_id = receive(session, storage, env_settings, tenant, make_email(tenant.address, make_invoice_pdf()))
    storage.delete(message(session, message_id).raw_key)
    assert jobs.ingest_message(message_id) == []
    msg = message(session, message_id)
    assert msg.status == MessageStatus.FAILED.value
    assert "stored message file is missing" in msg.reason.lower()


def test_deleted_message_or_document_is_a_no_op(env_settings, session, storage, tenant):
    assert jobs.ingest_message(987654) == []
    jobs.extract_document(987654)


def test_sigterm_is_a_warm_shutdown(env_settings, session, storage, tenant, tmp_path: Path):
    """``inbox worker`` as its own process: it processes mail, and SIGTERM stops it cleanly."""
    message_id = receive(session, storage, env_settings, tenant, make_email(tenant.address, make_invoice_pdf()))
    code = "from core.config import Settings; from worker.main import run; run(Settings.from_env())"
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parent.parent, env=dict(os.environ),
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            docs = documents(session, message_id)
            session.commit()
            if docs and docs[0].status != DocumentStatus.EXTRACTING.value:
                break
            time.sleep(0.2)
        assert docs and docs[0].status == DocumentStatus.PENDING.value
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    output = (tmp_path / "worker.log").read_text()
    assert "warm shut down" in output.lower() or "stopping on request" in output.lower()
    assert "Acme SAS" not in output and "Facture FA-2026-0042" not in output  # no contents in the logs


def test_unexpected_errors_end_as_failed_with_a_reason(env_settings, session, storage, tenant, monkeypatch):
    # A real fault, no mock: the stored files are replaced by directories (reading them raises).
    monkeypatch.setattr(jobs, "INLINE_EXTRACTIONS", 0)  # break the file between ingest and extraction
    broken_id = receive(session, storage, env_settings, tenant, make_email(tenant.address, make_invoice_pdf()))
    raw_path = storage.path(message(session, broken_id).raw_key)
    raw_path.unlink()
    raw_path.mkdir()
    assert jobs.ingest_message(broken_id) == []
    msg = message(session, broken_id)
    assert msg.status == MessageStatus.FAILED.value
    assert "failed unexpectedly (IsADirectoryError)" in msg.reason and documents(session, broken_id) == []

    ok_id = receive(session, storage, env_settings, tenant, make_email(tenant.address, make_invoice_pdf(number="X-1")))
    [doc_id] = jobs.ingest_message(ok_id)
    file_path = storage.path(documents(session, ok_id)[0].file.storage_key)
    file_path.unlink()
    file_path.mkdir()
    jobs.extract_document(doc_id)
    [doc] = documents(session, ok_id)
    assert doc.status == DocumentStatus.FAILED.value and "failed unexpectedly" in doc.reason


def test_worker_class_defaults_to_simple_and_fork_still_works(env_settings, session, storage, tenant, monkeypatch):
    assert worker_class(env_settings) is InboxSimpleWorker  # no fork per job: what meets the latency goal
    monkeypatch.setenv("WORKER_CLASS", "fork")
    assert worker_class(env_settings) is InboxWorker
    message_id = receive(session, storage, env_settings, tenant, make_email(tenant.address, make_invoice_pdf()))
    work(env_settings)  # each job in a forked child
    [doc] = documents(session, message_id)
    assert doc.status == DocumentStatus.PENDING.value and fields_of(doc) == EXPECTED
    monkeypatch.setenv("WORKER_CLASS", "threads")
    with pytest.raises(ValueError, match="WORKER_CLASS must be one of simple, fork"):
        run(env_settings, burst=True)


def test_the_simple_worker_enforces_job_time_limits(env_settings):
    """Without a fork, the limit is SIGALRM in the worker's main thread: a job over it fails, the worker goes on."""
    queue = get_queue(env_settings)
    slow = queue.enqueue("time.sleep", 30, job_timeout=1)
    quick = queue.enqueue("math.sqrt", 16.0)
    started = time.monotonic()
    work(env_settings)
    assert time.monotonic() - started < 15
    assert slow.get_status(refresh=True) == "failed"
    assert "JobTimeoutException" in (slow.latest_result().exc_string or "")
    assert quick.get_status(refresh=True) == "finished" and quick.return_value() == 4.0


@pytest.mark.parametrize("kind", ["simple", "fork"])
def test_a_worker_stops_listening_for_commands_at_once(
    env_settings: Settings, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # RQ polls its command channel every 60 s, and redis-py 8 waits for that poll when the listener stops:
    # every shutdown and every --burst run took up to a minute more. Ours polls every second.
    from worker.main import PUBSUB_POLL_SECONDS, build_worker

    monkeypatch.setenv("WORKER_CLASS", kind)
    worker = build_worker(env_settings)
    assert isinstance(worker, InboxSimpleWorker if kind == "simple" else InboxWorker)
    worker.subscribe()
    thread = worker.pubsub_thread
    assert thread.is_alive() and thread.sleep_time == PUBSUB_POLL_SECONDS <= 1
    worker.unsubscribe()  # redis-py 8 joins the listener here
    assert not thread.is_alive()
