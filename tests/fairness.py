"""One company imports thousands of documents; how long do another company's e-mail and upload wait?

The scenario shared by ``tests/test_fairness.py`` (bounded) and ``bench/fairness.py`` (5,000 documents):
real ``inbox smtp`` and ``inbox worker`` processes, a private redis-server, a real database.

1. Company A's import: ``documents`` messages of one invoice PDF each, stored and queued as an import
   queues them (the ``bulk`` queue of ``worker.policy``), or, with ``priority="mail"``, on the e-mail
   queue as every job was before the policy had two queues (the comparison).
2. The workers start on that backlog; a few seconds later company B's e-mail arrives over SMTP.
3. Measured: from B's ``250`` to B's document *pending verification*, and how much of A's import
   was still waiting then (the e-mail must not have waited for it).
4. Then company B uploads one PDF through the API (``POST /api/v1/uploads``: bulk work, like A's import).
   Measured: from the ``202`` to that document pending, and how many of A's documents were done meanwhile.
   ``bulk_shards`` is ``BULK_SHARDS`` for every process: 0 is one bulk queue for every company (before the
   per-company shards), the comparison.
"""

from __future__ import annotations

import io
import smtplib
import time
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from core.config import Settings
from core.db import make_engine, make_session_factory, session_scope
from core.files.storage import FileStorage
from core.inbound import intake
from core.models import Document, DocumentStatus, Role, Tenant
from core.tenancy import accounts
from dashboard.app import create_app
from tests.invoicegen import make_email, make_invoice_pdf
from tests.reliability.faults import Process, smtp_env, wait_for_port, wait_until
from tests.services import free_port, process_env
from worker import policy as bulk_policy
from worker.policy import BULK
from worker.queue import enqueue_ingest_many, get_queue


@dataclass
class FairnessRun:
    documents: int
    priority: str
    bulk_shards: int
    email_seconds: float | None = None  # B's 250 -> B's document pending (None: not within the wait)
    backlog_at_email: int = 0  # A's documents not yet extracted when B's e-mail arrived
    backlog_at_done: int = 0  # ... and when B's document was pending
    upload_seconds: float | None = None  # B's upload: 202 -> its document pending (None: not within the wait)
    backlog_at_upload: int = 0  # A's documents not yet extracted when B uploaded
    backlog_at_upload_done: int = 0  # ... and when B's upload was pending
    post_seconds: float = 0.0  # the upload request itself, up to its 202

    def summary(self) -> str:
        def took(seconds: float | None) -> str:
            return "not within the wait" if seconds is None else f"{seconds:.2f} s"

        return (f"import of {self.documents} documents on the {self.priority!r} queue, BULK_SHARDS="
                f"{self.bulk_shards}: the other company's e-mail, 250 to pending: {took(self.email_seconds)}; "
                f"the import had {self.backlog_at_email} documents waiting when it arrived, "
                f"{self.backlog_at_done} when it was done. Its upload, 202 to pending: "
                f"{took(self.upload_seconds)} (the request took {self.post_seconds:.2f} s); "
                f"the import had {self.backlog_at_upload} documents waiting then, "
                f"{self.backlog_at_upload_done} when it was done or the wait was over")


def _pending(factory, tenant_id: int) -> int:  # noqa: ANN001 - a sessionmaker
    with factory() as session:
        return session.scalar(select(func.count()).select_from(Document).where(
            Document.tenant_id == tenant_id, Document.status == DocumentStatus.PENDING.value)) or 0


def _not_done(factory, tenant_id: int, total: int) -> int:  # noqa: ANN001 - a sessionmaker
    with factory() as session:
        done = session.scalar(select(func.count()).select_from(Document).where(
            Document.tenant_id == tenant_id, Document.status != DocumentStatus.EXTRACTING.value)) or 0
    return total - done


def store_import(settings: Settings, tenant_id: int, address: str, documents: int, priority: str) -> None:
    """A's import: ``documents`` stored messages with one PDF each, queued on ``priority``'s queue."""
    storage = FileStorage(settings.storage_dir)
    pdf = make_invoice_pdf(number="IMPORT-1", issuer="Gros Import SA", issue_date=date(2026, 11, 2),
                           net=Decimal("100.00"))
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    ids: list[int] = []
    try:
        for start in range(0, documents, 500):
            with session_scope(factory) as session:
                for n in range(start, min(start + 500, documents)):
                    raw = make_email(address, pdf, filename=f"import-{n}.pdf", subject=f"Import {n}")
                    message = intake.store_message(session, storage, tenant_id, raw, recipient=address)
                    session.flush()
                    ids.append(message.id)
        queue = get_queue(settings, priority=priority)
        for start in range(0, len(ids), 1000):
            enqueue_ingest_many(queue, ids[start:start + 1000])
        with session_scope(factory) as session:
            intake.mark_many_queued(session, ids)
        queue.connection.close()
    finally:
        engine.dispose()


def _upload_token(factory, tenant_id: int) -> str:  # noqa: ANN001 - a sessionmaker
    with session_scope(factory) as session:
        tenant = session.get(Tenant, tenant_id)
        user = accounts.create_user(session, "compta@petite.example", "correct horse battery", tenant, Role.ADMIN)
        return accounts.create_token(session, user, tenant)


def run_fairness(settings: Settings, logs: Path, *, documents: int, workers: int = 2, priority: str = BULK,
                 bulk_shards: int | None = None, head_start: float = 3.0, wait: float = 120.0) -> FairnessRun:
    if bulk_shards is not None:  # every process of the run, this one included, sees the same BULK_SHARDS
        settings = replace(settings, extra={**settings.extra, "BULK_SHARDS": str(bulk_shards)})
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        big, big_address = accounts.create_tenant(session, "Gros Import SA")
        small, small_address = accounts.create_tenant(session, "Petite SARL")
        session.flush()
        big_id, small_id = big.id, small.id
        big_to = accounts.address_of(big_address, settings.inbound_domain)
        small_to = accounts.address_of(small_address, settings.inbound_domain)
    token = _upload_token(factory, small_id)
    store_import(settings, big_id, big_to, documents, priority)
    run = FairnessRun(documents=documents, priority=priority, bulk_shards=bulk_policy.bulk_shards(settings))
    env = {**process_env(settings), **settings.extra}
    port = free_port()
    smtp = Process("smtp", smtp_env(settings, port) | settings.extra, logs / "smtp.log")
    pool = [Process("worker", env, logs / f"worker-{i}.log") for i in range(workers)]
    email = make_email(small_to, make_invoice_pdf(number="PETITE-1", issuer="Petite SARL"))
    upload = make_invoice_pdf(number="PETITE-2", issuer="Petite SARL")
    web = create_app(settings).test_client()  # the API's own upload path, in this process
    try:
        smtp.start()
        wait_for_port(port)
        for worker in pool:
            worker.start()
        # The workers are into the import (its first documents are done), then the e-mail arrives.
        assert wait_until(lambda: _not_done(factory, big_id, documents) < documents, timeout=120, step=0.2)
        time.sleep(head_start)
        run.backlog_at_email = _not_done(factory, big_id, documents)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail("compta@petite.example", [small_to], email)
        accepted = time.monotonic()
        if wait_until(lambda: _pending(factory, small_id) == 1, timeout=wait, step=0.05):
            run.email_seconds = time.monotonic() - accepted
        run.backlog_at_done = _not_done(factory, big_id, documents)
        # Then B's upload: bulk work, like A's import.
        posted = time.monotonic()
        response = web.post("/api/v1/uploads", headers={"Authorization": f"Bearer {token}"},
                            content_type="multipart/form-data", data={"file": [(io.BytesIO(upload), "petite.pdf")]})
        assert response.status_code == 202, response.get_data(as_text=True)
        accepted = time.monotonic()
        run.post_seconds = accepted - posted
        # Counted once the upload is queued (the 202): the request itself is not the queue's doing.
        run.backlog_at_upload = _not_done(factory, big_id, documents)
        if wait_until(lambda: _pending(factory, small_id) == 2, timeout=wait, step=0.05):
            run.upload_seconds = time.monotonic() - accepted
        run.backlog_at_upload_done = _not_done(factory, big_id, documents)
    finally:
        smtp.terminate()
        for worker in pool:
            worker.terminate()
        engine.dispose()
    return run
