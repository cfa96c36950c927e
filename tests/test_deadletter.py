"""Dead letters: failed messages and documents listed with their reasons, and *retry* puts them back on the
real queue (page and API), for the tenant's own items only."""

from __future__ import annotations

from flask import Flask
from rq import Queue
from sqlalchemy.orm import Session

from core.documents import processing
from core.files.storage import FileStorage
from core.inbound import intake
from core.models import Document, DocumentStatus, InboundMessage, MessageStatus
from tests.conftest import TenantFixture
from tests.invoicegen import make_email, make_invoice_pdf
from tests.test_dashboard import csrf_token, login
from worker.policy import BULK
from worker.queue import get_queue, queues_of


def _failed_message(session: Session, storage: FileStorage, tenant: TenantFixture) -> int:
    raw = make_email(tenant.address, make_invoice_pdf(number="DL-1"))
    message = intake.store_message(session, storage, tenant.tenant.id, raw, recipient=tenant.address)
    session.flush()
    storage.delete(message.raw_key)  # the stored file is gone: the message fails with a reason
    processing.ingest_message(session, storage, message.id)
    session.commit()
    assert message.status == MessageStatus.FAILED.value
    return message.id


def _failed_document(session: Session, storage: FileStorage, tenant: TenantFixture) -> int:
    broken = b"%PDF-1.4\n" + b"\x00garbage" * 200  # a PDF header, then nothing readable
    message = intake.store_message(session, storage, tenant.tenant.id,
                                   make_email(tenant.address, broken, filename="cassé.pdf"), recipient=tenant.address)
    session.flush()
    [document_id] = processing.ingest_message(session, storage, message.id)
    processing.extract_document(session, storage, document_id, ())
    session.commit()
    doc = session.get(Document, document_id)
    assert doc.status == DocumentStatus.FAILED.value, doc.reason
    return document_id


def test_failed_items_are_listed_with_reasons_and_retried(
    app: Flask, settings, session: Session, storage: FileStorage, tenant: TenantFixture,
    other_tenant: TenantFixture, redis_url: str,
) -> None:
    message_id = _failed_message(session, storage, tenant)
    document_id = _failed_document(session, storage, tenant)
    foreign_id = _failed_message(session, storage, other_tenant)

    client = app.test_client()
    assert login(client, tenant.admin.email, tenant.password).status_code == 302
    page = client.get("/imports/failed")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'id="message-{message_id}"' in body and f'id="document-{document_id}"' in body
    assert f'id="message-{foreign_id}"' not in body  # another company's failures are not shown
    assert "cassé.pdf" in body and "missing" in body.lower()

    api = client.get("/api/v1/failed", headers={"Authorization": f"Bearer {tenant.token}"})
    assert {(i["kind"], i["id"]) for i in api.get_json()["items"]} == {("message", message_id),
                                                                       ("document", document_id)}

    response = client.post("/imports/failed/retry", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(InboundMessage, message_id).status == MessageStatus.QUEUED.value
    assert session.get(Document, document_id).status == DocumentStatus.EXTRACTING.value
    assert session.get(InboundMessage, foreign_id).status == MessageStatus.FAILED.value  # untouched
    queue: Queue = get_queue(settings, priority=BULK)  # retries are bulk work (worker.policy)
    try:
        retried = {f"ingest-message-{message_id}", f"extract-document-{document_id}"}
        # on the company's own bulk shard (worker.policy), and nowhere else
        assert set(queue.tenant_queue(tenant.tenant.id).job_ids) == retried
        assert {job_id for each in queues_of(queue) for job_id in each.job_ids} == retried
    finally:
        queue.connection.close()
    assert "Nothing failed" in client.get("/imports/failed").get_data(as_text=True)


def test_retry_all_over_the_api(app: Flask, settings, session: Session, storage: FileStorage,
                                tenant: TenantFixture, redis_url: str) -> None:
    document_id = _failed_document(session, storage, tenant)
    response = app.test_client().post("/api/v1/failed/retry", headers={"Authorization": f"Bearer {tenant.token}"})
    assert response.status_code == 202
    assert response.get_json() == {"messages": [], "documents": [document_id], "queued": 1}
    session.expire_all()
    assert session.get(Document, document_id).status == DocumentStatus.EXTRACTING.value
