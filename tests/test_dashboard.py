"""The dashboard's HTML pages, through the Flask test client, with CSRF protection left on."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from core.documents import duplicates
from core.documents import review as docs
from core.fields import coerce
from core.files.storage import FileStorage, sha256_hex
from core.inbound import intake
from core.models import Document, DocumentStatus, Invoice, InvoiceFile, MessageSource, Role, StoredFile
from core.tenancy import accounts
from tests.conftest import PASSWORD, TenantFixture
from tests.invoicegen import make_image, make_invoice_pdf

XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"

COMPLETE = {
    "doc_type": "invoice",
    "number": "FA-2026-0042",
    "title": "Mission de conseil",
    "client": "Acme SAS",
    "issuer": "Dupont Conseil SARL",
    "amount": "1200.00",
    "net_amount": "1000.00",
    "tax_amount": "200.00",
    "currency": "EUR",
    "issue_date": "2026-11-23",
    "due_date": "2026-12-23",
}


# Helpers -------------------------------------------------------------------------------------


def store_file(session: Session, storage: FileStorage, tenant_id: int, data: bytes, content_type: str) -> StoredFile:
    digest = sha256_hex(data)
    key = storage.file_key(tenant_id, digest)
    storage.write(key, data)
    stored = StoredFile(tenant_id=tenant_id, sha256=digest, size=len(data), content_type=content_type, storage_key=key)
    session.add(stored)
    session.flush()
    return stored


def make_document(
    session: Session,
    storage: FileStorage,
    tenant_id: int,
    *,
    filename: str = "facture.pdf",
    data: bytes | None = None,
    content_type: str = "application/pdf",
    status: DocumentStatus = DocumentStatus.PENDING,
    message_id: int | None = None,
    part_index: int = 0,
    **fields: Any,
) -> Document:
    """A document as the worker leaves it (there is no upload path yet); committed."""
    if data is None:
        data = make_invoice_pdf(number=fields.get("number") or f"TEST-{filename}")
    stored = store_file(session, storage, tenant_id, data, content_type)
    doc = Document(
        tenant_id=tenant_id,
        message_id=message_id,
        part_index=part_index,
        file_id=stored.id,
        filename=filename,
        status=status.value,
        **fields,
    )
    session.add(doc)
    session.commit()
    return doc


def _typed(form: dict[str, str]) -> dict[str, Any]:
    """Form strings as the typed column values a document holds."""
    values, errors = coerce(form)
    assert not errors
    return values


def csrf_token(response: TestResponse) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))
    assert found, "no CSRF token on the page"
    return found.group(1)


def login(client: FlaskClient, email: str, password: str = PASSWORD, **extra: str) -> TestResponse:
    token = csrf_token(client.get("/login"))
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token, **extra})


def post(client: FlaskClient, url: str, data: dict[str, str], page: str = "/pending") -> TestResponse:
    """Post a form the way a browser does: with the CSRF token of a page just loaded."""
    token = csrf_token(client.get(page))
    return client.post(url, data={**data, "csrf_token": token})


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def client(app: Flask, tenant: TenantFixture) -> FlaskClient:
    client = app.test_client()
    assert login(client, tenant.admin.email).status_code == 302
    return client


# Authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/", "/pending", "/invoices", "/credit-notes", "/imports", "/documents/1",
                                 "/documents/1/file", "/invoices/1", "/files/1"])
def test_pages_require_login(app: Flask, url: str) -> None:
    response = app.test_client().get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_login_and_logout(app: Flask, tenant: TenantFixture) -> None:
    client = app.test_client()
    refused = login(client, tenant.admin.email, "wrong password")
    assert refused.status_code == 200 and "Wrong email or password." in text(refused)
    assert client.get("/pending").status_code == 302

    response = login(client, tenant.admin.email.upper())
    assert response.status_code == 302 and response.headers["Location"] == "/pending"
    page = client.get("/pending")
    assert page.status_code == 200 and "Acme SAS" in text(page) and "Pending verification" in text(page)

    assert client.get("/logout").status_code == 405  # logging out is a POST, so a link elsewhere cannot do it
    response = post(client, "/logout", {})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/pending").status_code == 302


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        ("/invoices?page=2", "/invoices?page=2"),
        ("https://evil.example/", "/pending"),
        ("//evil.example/", "/pending"),
        ("/\\evil.example", "/pending"),
        ("/\t/evil.example", "/pending"),
        ("javascript:alert(1)", "/pending"),
    ],
)
def test_login_redirects_only_to_local_paths(app: Flask, tenant: TenantFixture, next_url: str, expected: str) -> None:
    response = login(app.test_client(), tenant.admin.email, next=next_url)
    assert response.status_code == 302 and response.headers["Location"] == expected


def test_login_is_throttled_after_repeated_failures(app: Flask, tenant: TenantFixture) -> None:
    client = app.test_client()
    for _ in range(5):
        assert "Wrong email or password." in text(login(client, tenant.admin.email, "wrong password"))
    blocked = login(client, tenant.admin.email)  # even the right password, for a while
    assert blocked.status_code == 429 and "Too many failed attempts" in text(blocked)
    assert login(app.test_client(), "someone.else@acme.example", "x" * 8).status_code == 200  # other accounts not


def test_csrf_is_enforced(app: Flask, tenant: TenantFixture, session: Session, storage: FileStorage) -> None:
    anonymous = app.test_client()
    anonymous.get("/login")
    response = anonymous.post("/login", data={"email": tenant.admin.email, "password": PASSWORD})
    assert response.status_code == 400

    client = app.test_client()
    login(client, tenant.admin.email)
    doc = make_document(session, storage, tenant.tenant.id, **_typed(COMPLETE))
    response = client.post(f"/documents/{doc.id}", data={"action": "confirm"})
    assert response.status_code == 400 and "The form has expired" in text(response)
    response = client.post(f"/documents/{doc.id}", data={"action": "confirm", "csrf_token": "forged"})
    assert response.status_code == 400
    session.refresh(doc)
    assert doc.status == DocumentStatus.PENDING.value


def test_security_headers(client: FlaskClient) -> None:
    response = client.get("/pending")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "object-src 'self'" in csp and "frame-ancestors 'self'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "<script>" not in text(response) and " style=" not in text(response)  # no inline code for the CSP


def test_tenant_switcher(app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture,
                         other_tenant: TenantFixture) -> None:
    accounts.create_user(session, tenant.admin.email, PASSWORD, other_tenant.tenant, Role.MEMBER)
    session.commit()
    mine = make_document(session, storage, tenant.tenant.id, filename="acme.pdf")
    theirs = make_document(session, storage, other_tenant.tenant.id, filename="globex.pdf")
    client = app.test_client()
    login(client, tenant.admin.email)
    page = text(client.get("/pending"))
    assert "acme.pdf" in page and "globex.pdf" not in page and 'name="tenant_id"' in page
    assert client.get(f"/documents/{theirs.id}").status_code == 404

    response = post(client, "/tenant", {"tenant_id": str(other_tenant.tenant.id)})
    assert response.status_code == 302
    page = text(client.get("/pending"))
    assert "globex.pdf" in page and "acme.pdf" not in page
    assert client.get(f"/documents/{theirs.id}").status_code == 200
    assert client.get(f"/documents/{mine.id}").status_code == 404

    stranger, _ = accounts.create_tenant(session, "Initech")
    session.commit()
    assert post(client, "/tenant", {"tenant_id": str(stranger.id)}).status_code == 404


# Pending list --------------------------------------------------------------------------------


def test_pending_lists_waiting_documents_newest_first(client: FlaskClient, session: Session, storage: FileStorage,
                                                      tenant: TenantFixture) -> None:
    raw = b"From: Compta <compta@dupont.example>\r\nSubject: Factures novembre\r\n\r\nci-joint\r\n"
    message = intake.store_message(session, storage, tenant.tenant.id, raw, recipient=tenant.address,
                                   source=MessageSource.SMTP)
    session.commit()
    make_document(session, storage, tenant.tenant.id, filename="older.pdf", message_id=message.id,
                  client="Initech", amount=Decimal("1234.56"), currency="EUR")
    make_document(session, storage, tenant.tenant.id, filename="newer.pdf", status=DocumentStatus.DUPLICATE,
                  reason=duplicates.DUPLICATE_REASON)
    make_document(session, storage, tenant.tenant.id, filename="done.pdf", status=DocumentStatus.VALIDATED)
    make_document(session, storage, tenant.tenant.id, filename="unreadable.pdf", status=DocumentStatus.FAILED,
                  reason="no text layer")

    page = text(client.get("/pending"))
    assert page.index("newer.pdf") < page.index("older.pdf")
    assert "done.pdf" not in page and "unreadable.pdf" not in page
    assert "compta@dupont.example" in page and "Initech" in page
    assert "€1,234.56" in page
    assert 'class="badge status-duplicate"' in page
    assert '<span class="count">2</span>' in page

    failed = text(client.get("/pending?show=failed"))
    assert "unreadable.pdf" in failed and "no text layer" in failed and "older.pdf" not in failed


def test_pending_is_paginated(client: FlaskClient, session: Session, storage: FileStorage,
                              tenant: TenantFixture) -> None:
    for i in range(52):
        make_document(session, storage, tenant.tenant.id, filename=f"doc-{i:02d}.pdf", data=f"file {i}".encode())
    first = text(client.get("/pending"))
    assert "doc-51.pdf" in first and "doc-01.pdf" not in first and "Page 1 of 2" in first
    second = text(client.get("/pending?page=2"))
    assert "doc-01.pdf" in second and "doc-00.pdf" in second and "doc-51.pdf" not in second
    assert client.get("/pending?page=abc").status_code == 200


# Review ----------------------------------------------------------------------------------------


def test_review_confirm_then_invoice_is_listed(client: FlaskClient, session: Session, storage: FileStorage,
                                               tenant: TenantFixture) -> None:
    doc = make_document(session, storage, tenant.tenant.id, filename="FA-2026-0042.pdf",
                        field_info={"client": {"source": "regex", "confidence": 0.4},
                                    "number": {"source": "regex", "confidence": 0.95}},
                        **(_typed(COMPLETE) | {"client": "ACME"}))
    page = client.get(f"/documents/{doc.id}")
    body = text(page)
    assert page.status_code == 200
    assert f'<iframe src="/documents/{doc.id}/file"' in body
    # The unsure field is flagged, the sure one is not.
    assert re.search(r'class="field unsure">\s*<label for="f-client">', body)
    assert re.search(r'class="field">\s*<label for="f-number">', body)
    assert 'value="ACME"' in body and 'value="1200.00"' in body and 'value="2026-11-23"' in body

    original = client.get(f"/documents/{doc.id}/file")
    assert original.status_code == 200 and original.mimetype == "application/pdf"
    assert original.headers["Content-Disposition"].startswith("inline")
    assert original.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in original.headers["Content-Security-Policy"]  # the file itself runs nothing
    assert original.data.startswith(b"%PDF")

    form = COMPLETE | {"client": "Acme SAS", "amount": "1200,00", "action": "confirm"}
    response = post(client, f"/documents/{doc.id}", form, page=f"/documents/{doc.id}")
    assert response.status_code == 302 and response.headers["Location"] == f"/documents/{doc.id}"
    validated = text(client.get(f"/documents/{doc.id}"))
    assert "Invoice FA-2026-0042 confirmed." in validated
    assert docs.FROZEN_NUMBER in validated and "import the file again" in validated
    assert 'id="review-form"' not in validated  # read-only now

    invoice = session.scalars(select(Invoice).where(Invoice.tenant_id == tenant.tenant.id)).one()
    assert invoice.amount == Decimal("1200.00") and invoice.client is not None and invoice.client.name == "Acme SAS"
    listing = text(client.get("/invoices"))
    assert "FA-2026-0042" in listing and "Acme SAS" in listing and "€1,200.00" in listing
    assert "23/11/2026" in listing and "23/12/2026" in listing
    assert "FA-2026-0042" not in text(client.get("/credit-notes"))
    detail = text(client.get(f"/invoices/{invoice.id}"))
    assert f'<iframe src="/files/{invoice.file_id}"' in detail and docs.FROZEN_NUMBER in detail
    assert client.get(f"/files/{invoice.file_id}").data.startswith(b"%PDF")


def test_credit_note_is_listed_with_credit_notes(client: FlaskClient, session: Session, storage: FileStorage,
                                                 tenant: TenantFixture) -> None:
    doc = make_document(session, storage, tenant.tenant.id)
    form = COMPLETE | {"doc_type": "credit_note", "number": "AV-7", "due_date": "", "action": "confirm"}
    assert post(client, f"/documents/{doc.id}", form).status_code == 302
    assert "AV-7" in text(client.get("/credit-notes")) and "AV-7" not in text(client.get("/invoices"))


def test_validation_errors_are_shown_next_to_fields(client: FlaskClient, session: Session, storage: FileStorage,
                                                    tenant: TenantFixture) -> None:
    doc = make_document(session, storage, tenant.tenant.id)
    form = COMPLETE | {"client": "", "amount": "12,3,4", "due_date": "2026-01-01", "action": "confirm"}
    response = post(client, f"/documents/{doc.id}", form)
    body = text(response)
    assert response.status_code == 422
    assert re.search(r'<p class="error" id="e-client">required</p>', body)
    assert re.search(r'<p class="error" id="e-amount">not an amount', body)
    assert re.search(r'<p class="error" id="e-due_date">the due date is before the issue date</p>', body)
    assert 'value="12,3,4"' in body  # what the person typed is kept
    session.refresh(doc)
    assert doc.status == DocumentStatus.PENDING.value and doc.number is None


def test_save_draft_keeps_the_document_pending(client: FlaskClient, session: Session, storage: FileStorage,
                                               tenant: TenantFixture) -> None:
    doc = make_document(session, storage, tenant.tenant.id)
    response = post(client, f"/documents/{doc.id}", {"number": "FA-1", "amount": "99,90", "action": "save"})
    assert response.status_code == 302
    assert "Draft saved." in text(client.get(f"/documents/{doc.id}"))
    session.refresh(doc)
    assert doc.status == DocumentStatus.PENDING.value and doc.number == "FA-1" and doc.amount == Decimal("99.90")


def test_number_is_frozen_after_validation(client: FlaskClient, session: Session, storage: FileStorage,
                                           tenant: TenantFixture) -> None:
    doc = make_document(session, storage, tenant.tenant.id)
    assert post(client, f"/documents/{doc.id}", COMPLETE | {"action": "confirm"}).status_code == 302
    response = post(client, f"/documents/{doc.id}", COMPLETE | {"number": "FA-CHANGED", "action": "confirm"})
    assert response.status_code == 422 and docs.FROZEN_NUMBER in text(response)
    saved = post(client, f"/documents/{doc.id}", {"number": "FA-CHANGED", "action": "save"})
    assert saved.status_code == 302 and "cannot be edited" in text(client.get(f"/documents/{doc.id}"))
    invoice = session.scalars(select(Invoice)).one()
    session.refresh(invoice)
    assert invoice.number == "FA-2026-0042"


def test_failed_document_can_be_entered_by_hand(client: FlaskClient, session: Session, storage: FileStorage,
                                                tenant: TenantFixture) -> None:
    doc = make_document(session, storage, tenant.tenant.id, status=DocumentStatus.FAILED,
                        reason="The PDF has no text layer.", data=make_image(), content_type="image/png",
                        filename="scan.png")
    page = text(client.get(f"/documents/{doc.id}"))
    assert "The PDF has no text layer." in page and 'id="review-form"' in page
    assert f'<img src="/documents/{doc.id}/file"' in page
    assert post(client, f"/documents/{doc.id}", COMPLETE | {"action": "confirm"}).status_code == 302
    session.refresh(doc)
    assert doc.status == DocumentStatus.VALIDATED.value


def test_delete_and_next(client: FlaskClient, session: Session, storage: FileStorage, tenant: TenantFixture) -> None:
    first = make_document(session, storage, tenant.tenant.id, filename="a.pdf")
    second = make_document(session, storage, tenant.tenant.id, filename="b.pdf")
    third = make_document(session, storage, tenant.tenant.id, filename="c.pdf")
    # Next walks the queue oldest first and wraps around, without bouncing between two documents.
    assert client.get(f"/documents/{first.id}/next").headers["Location"] == f"/documents/{second.id}"
    assert client.get(f"/documents/{second.id}/next").headers["Location"] == f"/documents/{third.id}"
    assert client.get(f"/documents/{third.id}/next").headers["Location"] == f"/documents/{first.id}"

    response = post(client, f"/documents/{first.id}/discard", {})
    assert response.status_code == 302 and response.headers["Location"] == f"/documents/{second.id}"
    session.refresh(first)
    assert first.status == DocumentStatus.DISCARDED.value
    listing = text(client.get("/pending"))
    assert "a.pdf deleted." in listing and f'href="/documents/{first.id}"' not in listing


@pytest.mark.parametrize("action", ["link", "replace", "discard"])
def test_duplicate_actions(client: FlaskClient, session: Session, storage: FileStorage, tenant: TenantFixture,
                           action: str) -> None:
    original = make_document(session, storage, tenant.tenant.id)
    invoice = docs.validate_document(session, tenant.tenant.id, original.id, COMPLETE, tenant.admin.id)
    session.commit()
    copy = make_document(session, storage, tenant.tenant.id, filename="resent.pdf", data=b"%PDF-1.4 resent copy",
                         number="FA-2026-0042", doc_type="invoice")
    duplicate, reason = duplicates.find_duplicate(session, copy)
    copy.status, copy.duplicate_of_id, copy.reason = DocumentStatus.DUPLICATE.value, duplicate.id, reason
    session.commit()

    page = text(client.get(f"/documents/{copy.id}"))
    assert "It seems this invoice has already been imported" in page
    assert f'href="/invoices/{invoice.id}"' in page
    for value in ("link", "replace", "discard"):
        assert f'name="action" value="{value}"' in page

    response = post(client, f"/documents/{copy.id}/duplicate", {"action": action})
    assert response.status_code == 302
    session.expire_all()
    invoice = session.get(Invoice, invoice.id)
    copy = session.get(Document, copy.id)
    files = {a.file_id for a in session.scalars(select(InvoiceFile).where(InvoiceFile.invoice_id == invoice.id))}
    if action == "discard":
        assert copy.status == DocumentStatus.DISCARDED.value and not files
        assert invoice.file_id == original.file_id
    else:
        assert response.headers["Location"] == f"/invoices/{invoice.id}"
        assert copy.status == DocumentStatus.VALIDATED.value
        if action == "link":
            assert invoice.file_id == original.file_id and files == {copy.file_id}
        else:
            assert invoice.file_id == copy.file_id and files == {original.file_id}
        detail = text(client.get(f"/invoices/{invoice.id}"))
        assert f'href="/files/{files.pop()}"' in detail


def test_duplicate_of_a_pending_twin_can_only_be_discarded(client: FlaskClient, session: Session,
                                                           storage: FileStorage, tenant: TenantFixture) -> None:
    doc = make_document(session, storage, tenant.tenant.id, status=DocumentStatus.DUPLICATE,
                        reason=f"{duplicates.DUPLICATE_REASON}: the same file is already waiting for review "
                               "(document 1).")
    page = text(client.get(f"/documents/{doc.id}"))
    assert re.search(r'name="action" value="link"\s+disabled', page)
    response = post(client, f"/documents/{doc.id}/duplicate", {"action": "link"})
    assert response.status_code == 302
    assert "only discard is possible" in text(client.get(f"/documents/{doc.id}"))


# Isolation and hostile content -------------------------------------------------------------------


def test_other_tenants_objects_are_not_found(client: FlaskClient, session: Session, storage: FileStorage,
                                             other_tenant: TenantFixture) -> None:
    doc = make_document(session, storage, other_tenant.tenant.id)
    invoice = docs.validate_document(session, other_tenant.tenant.id, doc.id, COMPLETE, None)
    pending = make_document(session, storage, other_tenant.tenant.id, filename="other.pdf")
    session.commit()
    for url in (f"/documents/{doc.id}", f"/documents/{pending.id}", f"/documents/{pending.id}/file",
                f"/documents/{pending.id}/next", f"/invoices/{invoice.id}", f"/files/{invoice.file_id}"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "not part of your company" in text(response)
    for url, data in ((f"/documents/{pending.id}", COMPLETE | {"action": "confirm"}),
                      (f"/documents/{pending.id}", {"action": "save", "number": "X"}),
                      (f"/documents/{pending.id}/discard", {}),
                      (f"/documents/{pending.id}/duplicate", {"action": "discard"})):
        assert post(client, url, data).status_code == 404, url
    session.refresh(pending)
    assert pending.status == DocumentStatus.PENDING.value and pending.number is None
    assert "other.pdf" not in text(client.get("/pending"))
    assert "FA-2026-0042" not in text(client.get("/invoices"))


def test_extracted_strings_are_escaped(client: FlaskClient, session: Session, storage: FileStorage,
                                       tenant: TenantFixture) -> None:
    raw = f"From: {XSS} <x@evil.example>\r\nSubject: {XSS}\r\n\r\nbody\r\n".encode()
    message = intake.store_message(session, storage, tenant.tenant.id, raw, recipient=tenant.address)
    session.commit()
    doc = make_document(session, storage, tenant.tenant.id, filename=f"{XSS}.pdf", message_id=message.id,
                        client=XSS, title=XSS, reason=XSS)
    for url in ("/pending", f"/documents/{doc.id}", "/imports"):
        body = text(client.get(url))
        assert XSS not in body and XSS_ESCAPED in body, url

    form = COMPLETE | {"client": XSS, "number": XSS, "action": "confirm"}
    assert post(client, f"/documents/{doc.id}", form).status_code == 302
    invoice = session.scalars(select(Invoice)).one()
    for url in (f"/documents/{doc.id}", "/invoices", f"/invoices/{invoice.id}"):
        body = text(client.get(url))
        assert XSS not in body and XSS_ESCAPED in body, url

    response = client.get(f"/documents/{doc.id}/file")
    disposition = response.headers["Content-Disposition"]
    assert "\n" not in disposition and response.mimetype == "application/pdf"


def test_unsafe_file_types_are_downloaded_not_shown(client: FlaskClient, session: Session, storage: FileStorage,
                                                    tenant: TenantFixture) -> None:
    doc = make_document(session, storage, tenant.tenant.id, filename="invoice.html", data=f"<p>{XSS}</p>".encode(),
                        content_type="text/html")
    page = text(client.get(f"/documents/{doc.id}"))
    assert "<iframe" not in page and "cannot be shown here" in page
    response = client.get(f"/documents/{doc.id}/file")
    assert response.mimetype == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]


def test_imports_lists_messages_with_their_documents(client: FlaskClient, session: Session, storage: FileStorage,
                                                     tenant: TenantFixture, other_tenant: TenantFixture) -> None:
    raw = b"From: billing@dupont.example\r\nSubject: Invoices of November\r\n\r\nhello\r\n"
    message = intake.store_message(session, storage, tenant.tenant.id, raw, recipient=tenant.address)
    message.status, message.reason = "processed", "2 attachments"
    empty = intake.store_message(session, storage, tenant.tenant.id, b"Subject: Nothing attached\r\n\r\nhi\r\n",
                                 recipient=tenant.address)
    empty.status, empty.reason = "ignored", "no attachment"
    intake.store_message(session, storage, other_tenant.tenant.id, b"Subject: Secret\r\n\r\nx\r\n",
                         recipient=other_tenant.address)
    session.commit()
    make_document(session, storage, tenant.tenant.id, filename="one.pdf", message_id=message.id, part_index=0)
    make_document(session, storage, tenant.tenant.id, filename="two.pdf", message_id=message.id, part_index=1,
                  status=DocumentStatus.FAILED, reason="encrypted PDF")

    body = text(client.get("/imports"))
    assert "billing@dupont.example" in body and "Invoices of November" in body and "2 attachments" in body
    assert "one.pdf" in body and "two.pdf" in body and "encrypted PDF" in body
    assert body.index("Nothing attached") < body.index("Invoices of November")  # newest first
    assert "no attachment" in body and "Secret" not in body


def test_unknown_pages_get_the_html_error_page(client: FlaskClient) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404 and "<h1>Not Found</h1>" in text(response)
    assert response.headers["Content-Security-Policy"]


def test_display_helpers() -> None:
    from dashboard.web import format_date, format_money, is_local_url

    assert format_money(Decimal("1234567.5"), "EUR") == "1\u202f234\u202f567,50\u00a0€"
    assert format_money(Decimal("-12"), "CHF") == "-12,00\u00a0CHF"
    assert format_money(None) == ""
    assert format_date(date(2026, 1, 9)) == "09/01/2026"
    assert is_local_url("/documents/3?x=1") and not is_local_url("//x") and not is_local_url("http://x/")
