"""Finding 10 of issue #14: resources an anonymous sender can make us spend.

A message of 200,000 empty MIME parts cost the stdlib parser ~13 s and ~87 MB per 2 MB; the parser now
stops while it parses, at ``core.mail.parsed.MAX_PARTS``. Real SMTP over a socket and the real worker.
"""

from __future__ import annotations

import dataclasses
import io
import smtplib
import time
import tracemalloc

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from core.config import Settings
from core.files.storage import FileStorage
from core.inbound import intake
from core.mail import parsed
from core.models import InboundMessage, MessageStatus, StoredFile
from dashboard.app import create_app
from tests.conftest import TenantFixture
from tests.invoicegen import make_email, make_invoice_pdf
from tests.services import run_worker_burst
from tests.test_senders import csrf_token, login
from tests.test_smtp import running_server
from worker.queue import enqueue_ingest, get_queue


def part_bomb(to: str, parts: int = 200_000) -> bytes:
    head = (f"From: bomb@attacker.example\r\nTo: {to}\r\nSubject: parts\r\nMessage-ID: <bomb@attacker.example>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n").encode()
    return head + b"--b\r\n\r\n" * parts + b"--b--\r\n"


def test_the_parser_stops_at_the_part_limit_while_parsing() -> None:
    raw = part_bomb("x@in.example.test")
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(parsed.TooManyParts):
        parsed.parse(raw)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 5 and peak < 10 * 1024 * 1024, (elapsed, peak)  # stdlib: 13 s and 87 MB per 2 MB
    fine = part_bomb("x@in.example.test", parts=parsed.MAX_PARTS - 2)  # the message and its parts: at the limit
    assert len(list(parsed.parse(fine).iter_parts())) == parsed.MAX_PARTS - 2


def test_a_part_bomb_over_smtp_ends_failed_with_its_reason(
    settings: Settings, session: Session, tenant: TenantFixture, session_factory  # noqa: ANN001
) -> None:
    raw = part_bomb(tenant.address)
    with running_server(settings) as controller:
        with smtplib.SMTP(controller.hostname, controller.port, timeout=60) as smtp:
            smtp.sendmail("bomb@attacker.example", [tenant.address], raw)
        assert controller.handler.in_flight.wait_idle(30)
    with session_factory() as s:
        message = s.scalars(select(InboundMessage)).one()
    enqueue_ingest(get_queue(settings), message.id)
    run_worker_burst(settings)  # the parse's own bound is timed above, apart from a worker's start-up
    with session_factory() as s:
        message = s.get(InboundMessage, message.id)
        assert message.status == MessageStatus.FAILED.value
        assert "more than 1000 MIME parts" in message.reason


# Per-company quotas -------------------------------------------------------------------------------


def _rcpt(controller, recipient: str) -> tuple[int, bytes]:  # noqa: ANN001
    with smtplib.SMTP(controller.hostname, controller.port, timeout=30) as smtp:
        smtp.ehlo()
        assert smtp.mail("billing@supplier.example")[0] == 250
        code, text = smtp.rcpt(recipient)
        if code == 250:
            assert smtp.data(make_email(recipient, make_invoice_pdf()))[0] == 250
        return code, text


def test_smtp_refuses_over_the_hourly_and_storage_quotas_with_text(
    settings: Settings, session: Session, storage: FileStorage, tenant: TenantFixture,
    other_tenant: TenantFixture,
) -> None:
    limited = dataclasses.replace(settings, tenant_max_messages_per_hour=2)
    with running_server(limited) as controller:
        assert [_rcpt(controller, tenant.address)[0] for _ in range(2)] == [250, 250]
        code, text = _rcpt(controller, tenant.address)
        assert code == 452 and b"4.2.2 Too many messages for this company in the last hour" in text
        assert _rcpt(controller, other_tenant.address)[0] == 250  # each company on its own
    # Storage: 1 MB allowed, 1.2 MB stored already.
    intake.store_message(session, storage, tenant.tenant.id, b"Subject: big\r\n\r\n" + b"x" * 1_200_000,
                         recipient=tenant.address)
    session.commit()
    full = dataclasses.replace(settings, tenant_max_storage_mb=1)
    with running_server(full) as controller:
        code, text = _rcpt(controller, tenant.address)
        assert code == 552 and b"5.2.2 Mailbox full" in text and b"storage quota" in text


def test_smtp_counts_the_declared_size_against_the_storage_quota(
    settings: Settings, session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    # 0.6 MB stored of 1 MB: a small message still comes in, a declared 0.6 MB one does not.
    intake.store_message(session, storage, tenant.tenant.id, b"Subject: big\r\n\r\n" + b"x" * 600_000,
                         recipient=tenant.address)
    session.commit()

    def rcpt(controller, size: int | None) -> tuple[int, bytes]:  # noqa: ANN001
        with smtplib.SMTP(controller.hostname, controller.port, timeout=30) as smtp:
            smtp.ehlo()
            assert smtp.has_extn("size")
            assert smtp.mail("billing@supplier.example", [] if size is None else [f"SIZE={size}"])[0] == 250
            return smtp.rcpt(tenant.address)

    with running_server(dataclasses.replace(settings, tenant_max_storage_mb=1)) as controller:
        code, text = rcpt(controller, 600_000)
        assert code == 552 and b"storage quota" in text
        assert rcpt(controller, 20_000)[0] == 250
        assert rcpt(controller, None)[0] == 250  # nothing declared: as before, the current usage decides


def test_api_answers_429_and_the_imports_page_says_why(
    settings: Settings, session: Session, tenant: TenantFixture
) -> None:
    app = create_app(dataclasses.replace(settings, tenant_max_messages_per_hour=1), TESTING=True)
    try:
        client = app.test_client()
        headers = {"Authorization": f"Bearer {tenant.token}"}
        pdf = make_invoice_pdf()

        def upload() -> object:
            return client.post("/api/v1/uploads", headers=headers,
                               data={"file": (io.BytesIO(pdf), "f.pdf")}, content_type="multipart/form-data")

        assert upload().status_code == 202
        refused = upload()
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "3600"
        assert "in the last hour; its limit is 1" in refused.get_json()["error"]
        page = login(app, tenant.admin.email).get("/imports").get_data(as_text=True)
        assert 'id="quota-notice"' in page and "its limit is 1" in page
    finally:
        from dashboard.extensions import db

        with app.app_context():
            db.engine.dispose()


def test_assigning_files_counts_against_the_storage_quota(
    settings: Settings, session: Session, tenant: TenantFixture
) -> None:
    app = create_app(dataclasses.replace(settings, tenant_max_storage_mb=1), TESTING=True)
    try:
        headers = {"Authorization": f"Bearer {tenant.token}"}

        def assign(client: FlaskClient, url: str, name: str, **form: str) -> TestResponse:
            data = {"file": (io.BytesIO(name.encode() * (600_000 // len(name))), f"{name}.pdf"), **form}
            return client.post(url, data=data, content_type="multipart/form-data",
                               headers=headers if url.startswith("/api/") else {})

        api = app.test_client()
        assert assign(api, "/api/v1/invoices/assign", "first").status_code == 200  # 0.6 of the 1 MB
        stored = session.scalar(select(func.count()).select_from(StoredFile))
        refused = assign(api, "/api/v1/invoices/assign", "second")
        assert refused.status_code == 429 and "of its 1 MB" in refused.get_json()["error"]
        # The dashboard says why, and nothing more was stored either way.
        client = login(app, tenant.admin.email)
        token = csrf_token(client.get("/invoices/assign").get_data(as_text=True))
        shown = assign(client, "/invoices/assign", "third", csrf_token=token)
        assert shown.status_code == 302
        assert "of its 1 MB" in client.get(shown.headers["Location"]).get_data(as_text=True)
        session.expire_all()
        assert session.scalar(select(func.count()).select_from(StoredFile)) == stored == 1
    finally:
        from dashboard.extensions import db

        with app.app_context():
            db.engine.dispose()
