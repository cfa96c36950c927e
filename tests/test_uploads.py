"""Uploads (dashboard and API), live progress, re-processing: through the real worker and Redis."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.inbound import uploads
from core.models import Document, DocumentStatus, InboundMessage, MessageSource, MessageStatus
from tests.conftest import TenantFixture
from tests.invoicegen import make_image, make_invoice_pdf
from tests.services import run_worker_burst
from tests.test_dashboard import csrf_token, login, text


@pytest.fixture
def client(app: Flask, tenant: TenantFixture) -> FlaskClient:
    client = app.test_client()
    assert login(client, tenant.admin.email).status_code == 302
    return client


def messages_of(session: Session, tenant: TenantFixture) -> list[InboundMessage]:
    session.expire_all()
    return list(session.scalars(
        select(InboundMessage).where(InboundMessage.tenant_id == tenant.tenant.id).order_by(InboundMessage.id)))


def docs_of(session: Session, message_id: int) -> list[Document]:
    session.expire_all()
    return list(session.scalars(select(Document).where(Document.message_id == message_id).order_by(Document.id)))


def upload(client: FlaskClient, files: list[tuple[bytes, str]], token: str | None = None):  # noqa: ANN201
    token = token if token is not None else csrf_token(client.get("/imports"))
    data = {"csrf_token": token, "file": [(io.BytesIO(body), name) for body, name in files]}
    return client.post("/imports/upload", data=data, content_type="multipart/form-data")


def auth(fixture: TenantFixture) -> dict[str, str]:
    return {"Authorization": f"Bearer {fixture.token}"}


def test_sniff_type_reads_magic_bytes_not_names() -> None:
    assert uploads.sniff_type(make_invoice_pdf()) == "application/pdf"
    assert uploads.sniff_type(make_image()) in {"image/png", "image/jpeg"}
    assert uploads.sniff_type(b'\xef\xbb\xbf<?xml version="1.0"?><Invoice/>') == "application/xml"
    assert uploads.sniff_type(b"MZ\x90\x00 an executable") is None
    assert uploads.sniff_type(b"hello, world") is None
    assert uploads.clean_filename("../../etc/passwd", 0) == "passwd"
    assert uploads.clean_filename("C:\\x\\facture\x00.pdf", 1) == "facture.pdf"
    assert uploads.clean_filename("", 2) == "upload-3"


def test_dashboard_upload_of_several_files_reaches_review(
    client: FlaskClient, session: Session, settings, tenant: TenantFixture  # noqa: ANN001
) -> None:
    first = make_invoice_pdf(number="UP-1", net=Decimal("100.00"), tax=Decimal("20.00"))
    second = make_invoice_pdf(number="UP-2", net=Decimal("250.00"), tax=Decimal("50.00"))
    response = upload(client, [(first, "facture 1.pdf"), (second, "fâcture-2.pdf")])
    assert response.status_code == 302
    [message] = messages_of(session, tenant)
    assert message.source == MessageSource.UPLOAD.value
    assert tenant.admin.email in message.sender  # the uploader is recorded
    assert message.status == MessageStatus.QUEUED.value

    page = text(client.get("/imports"))
    assert f'id="message-{message.id}"' in page and "data-in-progress" in page
    status = client.get(f"/imports/status?ids={message.id}").get_json()
    assert status["messages"][0]["stage"] == "received" and status["messages"][0]["in_progress"] is True

    run_worker_burst(settings)
    documents = docs_of(session, message.id)
    assert [d.filename for d in documents] == ["facture 1.pdf", "fâcture-2.pdf"]
    assert {d.status for d in documents} == {DocumentStatus.PENDING.value}
    assert sorted(d.number for d in documents) == ["UP-1", "UP-2"]
    status = client.get(f"/imports/status?ids={message.id}").get_json()["messages"][0]
    assert status["in_progress"] is False and status["stage"] == "processed"
    assert [d["status"] for d in status["documents"]] == ["pending", "pending"]


def test_dashboard_upload_refuses_other_files_and_missing_csrf(
    client: FlaskClient, session: Session, tenant: TenantFixture
) -> None:
    refused = upload(client, [(make_invoice_pdf(), "ok.pdf"), (b"MZ\x90\x00not an invoice", "invoice.pdf")])
    assert refused.status_code == 302
    page = text(client.get("/imports"))
    assert "invoice.pdf: only PDF, image" in page
    assert messages_of(session, tenant) == []  # nothing half-accepted

    assert upload(client, [(make_invoice_pdf(), "a.pdf")], token="forged").status_code == 400
    assert upload(client, []).status_code == 302
    assert "Choose at least one file." in text(client.get("/imports"))
    assert messages_of(session, tenant) == []


def test_upload_larger_than_the_limit_is_refused(app: Flask, client: FlaskClient, session: Session,
                                                 tenant: TenantFixture) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 10_000
    response = upload(client, [(make_invoice_pdf() + b"\n%" + b"x" * 20_000, "big.pdf")])
    assert response.status_code == 413
    assert messages_of(session, tenant) == []


def test_api_upload_then_message_with_documents(
    app: Flask, session: Session, settings, tenant: TenantFixture, other_tenant: TenantFixture  # noqa: ANN001
) -> None:
    api = app.test_client()
    pdf = make_invoice_pdf(number="API-7")
    response = api.post("/api/v1/uploads", headers=auth(tenant), content_type="multipart/form-data",
                        data={"file": [(io.BytesIO(pdf), "api.pdf")]})
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.get_json()
    assert body["source"] == "upload" and body["in_progress"] is True
    message_id = body["id"]

    run_worker_burst(settings)
    body = api.get(f"/api/v1/messages/{message_id}", headers=auth(tenant)).get_json()
    assert body["stage"] == "processed"
    assert [(d["filename"], d["status"], d["number"]) for d in body["documents"]] == [
        ("api.pdf", "pending", "API-7")]
    # Another tenant's token sees nothing of it.
    assert api.get(f"/api/v1/messages/{message_id}", headers=auth(other_tenant)).status_code == 404
    assert api.post(f"/api/v1/messages/{message_id}/reprocess", headers=auth(other_tenant)).status_code == 404

    refused = api.post("/api/v1/uploads", headers=auth(tenant), content_type="multipart/form-data",
                       data={"file": [(io.BytesIO(b"plain text"), "notes.txt")]})
    assert refused.status_code == 422 and "notes.txt" in refused.get_json()["fields"]["file"]
    assert api.post("/api/v1/uploads", content_type="multipart/form-data",
                    data={"file": [(io.BytesIO(pdf), "x.pdf")]}).status_code == 401


def test_reprocess_failed_document_and_message(
    client: FlaskClient, app: Flask, session: Session, settings, tenant: TenantFixture  # noqa: ANN001
) -> None:
    assert upload(client, [(make_invoice_pdf(number="RE-1"), "re.pdf")]).status_code == 302
    run_worker_burst(settings)
    [message] = messages_of(session, tenant)
    [doc] = docs_of(session, message.id)
    assert doc.status == DocumentStatus.PENDING.value

    # A document left failed (say the OCR service was down): re-process it from the Imports page.
    doc.status, doc.reason = DocumentStatus.FAILED.value, "The extraction service was unavailable."
    session.commit()
    page = client.get("/imports")
    assert f"/imports/documents/{doc.id}/reprocess" in text(page)
    token = csrf_token(page)
    assert client.post(f"/imports/documents/{doc.id}/reprocess", data={}).status_code == 400  # no CSRF
    for _ in range(2):  # asking twice is harmless
        assert client.post(f"/imports/documents/{doc.id}/reprocess", data={"csrf_token": token}).status_code == 302
    [doc] = docs_of(session, message.id)
    assert doc.status == DocumentStatus.EXTRACTING.value and doc.reason is None
    run_worker_burst(settings)
    [doc] = docs_of(session, message.id)
    assert doc.status == DocumentStatus.PENDING.value and doc.number == "RE-1"
    # A pending document is not re-processed.
    client.post(f"/imports/documents/{doc.id}/reprocess", data={"csrf_token": token})
    assert "Only a document whose extraction failed" in text(client.get("/imports"))

    # A message left failed: re-processing runs ingest again, reusing its document.
    message = messages_of(session, tenant)[0]
    message.status, message.reason = MessageStatus.FAILED.value, "Storage was unavailable."
    session.commit()
    api = app.test_client()
    response = api.post(f"/api/v1/messages/{message.id}/reprocess", headers=auth(tenant))
    assert response.status_code == 202 and response.get_json()["status"] == "queued"
    run_worker_burst(settings)
    [message] = messages_of(session, tenant)
    assert message.status == MessageStatus.PROCESSED.value and message.reason is None
    assert len(docs_of(session, message.id)) == 1
    again = api.post(f"/api/v1/messages/{message.id}/reprocess", headers=auth(tenant))
    assert again.status_code == 422  # processed: nothing to re-process


def test_status_endpoint_is_tenant_scoped(
    app: Flask, client: FlaskClient, session: Session, tenant: TenantFixture, other_tenant: TenantFixture
) -> None:
    other = app.test_client()
    assert login(other, other_tenant.admin.email).status_code == 302
    assert upload(other, [(make_invoice_pdf(), "theirs.pdf")]).status_code == 302
    [theirs] = messages_of(session, other_tenant)
    assert upload(client, [(make_invoice_pdf(number="MINE"), "mine.pdf")]).status_code == 302
    [mine] = messages_of(session, tenant)

    body = client.get(f"/imports/status?ids={theirs.id},{mine.id},abc,-3,99999999999").get_json()
    assert [m["id"] for m in body["messages"]] == [mine.id]
    assert "theirs.pdf" not in text(client.get("/imports"))
    assert app.test_client().get(f"/imports/status?ids={mine.id}").status_code == 302  # login required


def test_query_count_header_only_when_enabled(
    settings, tenant: TenantFixture, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    from dashboard.app import create_app

    plain = create_app(settings, TESTING=True).test_client()
    assert "X-Query-Count" not in plain.get("/login").headers
    monkeypatch.setenv("INBOX_COUNT_QUERIES", "1")
    counted = create_app(settings, TESTING=True).test_client()
    assert login(counted, tenant.admin.email).status_code == 302
    assert int(counted.get("/imports").headers["X-Query-Count"]) >= 2  # the membership and the page's rows


def test_queue_unreachable_keeps_everything_visible(
    settings, session: Session, tenant: TenantFixture  # noqa: ANN001
) -> None:
    from dataclasses import replace

    from dashboard.app import create_app

    app = create_app(replace(settings, redis_url="redis://127.0.0.1:1/0"), TESTING=True)
    client = app.test_client()
    assert login(client, tenant.admin.email).status_code == 302
    assert upload(client, [(make_invoice_pdf(), "down.pdf")]).status_code == 302
    [message] = messages_of(session, tenant)
    assert message.status == MessageStatus.RECEIVED.value  # stored; the sweep queues it later

    # A failed document of that message, re-processed while Redis is down.
    from core.files.records import store_file
    from core.files.storage import FileStorage

    stored = store_file(session, FileStorage(settings.storage_dir), tenant.tenant.id, make_invoice_pdf(),
                        "application/pdf")
    doc = Document(tenant_id=tenant.tenant.id, message_id=message.id, part_index=1, file_id=stored.id,
                   filename="down.pdf", status=DocumentStatus.FAILED.value, reason="earlier failure", field_info={})
    session.add(doc)
    session.commit()
    token = csrf_token(client.get("/imports"))
    assert client.post(f"/imports/documents/{doc.id}/reprocess", data={"csrf_token": token}).status_code == 302
    [doc] = docs_of(session, message.id)
    assert doc.status == DocumentStatus.FAILED.value and doc.reason == uploads.QUEUE_UNREACHABLE
    with app.app_context():
        from dashboard.extensions import db

        db.engine.dispose()
