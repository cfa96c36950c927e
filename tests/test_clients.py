"""Receivables: what validation records (in one transaction), client balances, the clients pages,
attaching a file to an invoice and deleting an invoice."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from core.documents import invoice_edits
from core.documents import review as docs
from core.errors import ServiceError
from core.files.storage import FileStorage
from core.models import (
    CashMovement,
    Client,
    Document,
    DocumentStatus,
    Invoice,
    InvoiceFile,
    InvoiceStatus,
    StoredFile,
    User,
)
from core.receivables import invoices as receivables
from core.tenancy import access, audit
from tests.conftest import TenantFixture
from tests.invoicegen import make_image, make_invoice_pdf
from tests.test_dashboard import csrf_token, login, make_document, post, text

TODAY = date(2026, 11, 24)


# Helpers (also used by test_access, test_analytics and the browser tests) ----------------------


def confirm(
    session: Session,
    storage: FileStorage,
    tenant_id: int,
    user: User | None,
    number: str,
    client: str,
    amount: str,
    *,
    issue: date = TODAY - timedelta(days=30),
    due: date | None = TODAY,
    doc_type: str = "invoice",
    currency: str = "EUR",
) -> Invoice:
    """A document validated through the real service (committed): an invoice or a credit note."""
    doc = make_document(session, storage, tenant_id, filename=f"{number}.pdf",
                        data=make_invoice_pdf(number=number), status=DocumentStatus.PENDING)
    data = {"doc_type": doc_type, "number": number, "client": client, "amount": amount, "currency": currency,
            "issue_date": issue.isoformat(), "due_date": due.isoformat() if due else ""}
    invoice = docs.validate_document(session, tenant_id, doc.id, data, user.id if user else None)
    session.commit()
    return invoice


def pay(session: Session, invoice: Invoice, amount: str, paid_at: date | None = None) -> None:
    """What bank reconciliation does when it matches a payment: amount_paid, status, paid_at."""
    invoice.amount_paid = Decimal(amount)
    if invoice.amount_paid >= invoice.amount:
        invoice.status, invoice.paid_at = InvoiceStatus.PAID.value, paid_at
    else:
        invoice.status = InvoiceStatus.PARTIALLY_PAID.value
    session.commit()


def admin_viewer(session: Session, fx: TenantFixture) -> access.Viewer:
    return access.viewer_for(session, fx.tenant.id, fx.admin.id)


def known_book(session: Session, storage: FileStorage, fx: TenantFixture) -> dict[str, Invoice]:
    """Two clients with invoices in every state, relative to TODAY."""
    tid, user = fx.tenant.id, fx.admin
    book = {
        "not_due": confirm(session, storage, tid, user, "A-1", "Alpha SA", "1000.00", due=TODAY + timedelta(days=10)),
        "partly": confirm(session, storage, tid, user, "A-2", "Alpha SA", "500.00", due=TODAY - timedelta(days=5)),
        "paid_late": confirm(session, storage, tid, user, "A-3", "Alpha SA", "800.00",
                             issue=TODAY - timedelta(days=120), due=TODAY - timedelta(days=60)),
        "paid_early": confirm(session, storage, tid, user, "A-4", "Alpha SA", "600.00",
                              issue=TODAY - timedelta(days=120), due=TODAY - timedelta(days=50)),
        "credit": confirm(session, storage, tid, user, "AV-1", "Alpha SA", "100.00", due=None, doc_type="credit_note"),
        "usd": confirm(session, storage, tid, user, "A-5", "Alpha SA", "999.00", currency="USD"),
        "beta_old": confirm(session, storage, tid, user, "B-1", "Beta SARL", "2000.00",
                            issue=TODAY - timedelta(days=100), due=TODAY - timedelta(days=40)),
    }
    pay(session, book["partly"], "200.00")
    pay(session, book["paid_late"], "800.00", paid_at=TODAY - timedelta(days=56))  # 4 days late
    pay(session, book["paid_early"], "600.00", paid_at=TODAY - timedelta(days=52))  # 2 days early
    return book


@pytest.fixture
def client(app: Flask, tenant: TenantFixture) -> FlaskClient:
    app.config["INBOX_TODAY"] = TODAY.isoformat()
    web = app.test_client()
    assert login(web, tenant.admin.email).status_code == 302
    return web


# Validation effects ---------------------------------------------------------------------------


def test_validation_records_expected_cash_and_changes_the_balance(session: Session, storage: FileStorage,
                                                                  tenant: TenantFixture) -> None:
    viewer = admin_viewer(session, tenant)
    invoice = confirm(session, storage, tenant.tenant.id, tenant.admin, "FA-1", "Acme SAS", "1200.00",
                      due=TODAY + timedelta(days=30))
    movements = session.scalars(select(CashMovement).where(CashMovement.invoice_id == invoice.id)).all()
    assert [(m.direction, m.kind, m.expected_date, m.amount, m.currency) for m in movements] == [
        ("in", "expected", TODAY + timedelta(days=30), Decimal("1200.00"), "EUR")]
    assert invoice.status == InvoiceStatus.OPEN.value
    balance = receivables.client_balance(session, viewer, invoice.client_id, currency="EUR", today=TODAY)
    assert (balance.amount_due, balance.overdue, balance.open_invoices) == (Decimal("1200.00"), Decimal("0.00"), 1)

    second = confirm(session, storage, tenant.tenant.id, tenant.admin, "FA-2", "ACME sas", "300.00",
                     due=TODAY - timedelta(days=1))
    assert second.client_id == invoice.client_id  # the same client, found by its normalised name
    balance = receivables.client_balance(session, viewer, invoice.client_id, currency="EUR", today=TODAY)
    assert (balance.amount_due, balance.overdue, balance.open_invoices) == (Decimal("1500.00"), Decimal("300.00"), 2)

    credit = confirm(session, storage, tenant.tenant.id, tenant.admin, "AV-1", "Acme SAS", "50.00", due=None,
                     doc_type="credit_note")
    assert session.scalar(select(func.count()).where(CashMovement.invoice_id == credit.id)) == 0
    balance = receivables.client_balance(session, viewer, invoice.client_id, currency="EUR", today=TODAY)
    assert balance.available_credit == Decimal("50.00") and balance.amount_due == Decimal("1500.00")


def test_a_failure_mid_validation_leaves_nothing(session: Session, storage: FileStorage,
                                                 tenant: TenantFixture) -> None:
    doc = make_document(session, storage, tenant.tenant.id, status=DocumentStatus.PENDING)

    def fail_on_cash(sess: Session, _ctx: Any, _instances: Any) -> None:
        if any(isinstance(obj, CashMovement) for obj in sess.new):
            raise RuntimeError("disk full")  # a fault after the client and the invoice were flushed

    event.listen(session, "before_flush", fail_on_cash)
    data = {"doc_type": "invoice", "number": "FA-9", "client": "New Client", "amount": "10.00",
            "currency": "EUR", "issue_date": "2026-11-01", "due_date": "2026-12-01"}
    try:
        with pytest.raises(RuntimeError):
            docs.validate_document(session, tenant.tenant.id, doc.id, data, tenant.admin.id)
    finally:
        event.remove(session, "before_flush", fail_on_cash)
    session.rollback()

    assert session.scalar(select(func.count()).select_from(Invoice)) == 0
    assert session.scalar(select(func.count()).select_from(Client)) == 0
    assert session.scalar(select(func.count()).select_from(CashMovement)) == 0
    assert session.get(Document, doc.id).status == DocumentStatus.PENDING.value
    # And the same validation then succeeds, in full.
    invoice = docs.validate_document(session, tenant.tenant.id, doc.id, data, tenant.admin.id)
    session.commit()
    assert session.scalar(select(func.count()).where(CashMovement.invoice_id == invoice.id)) == 1


# Client balances on known data ----------------------------------------------------------------


def test_client_balances_on_known_data(session: Session, storage: FileStorage, tenant: TenantFixture) -> None:
    known_book(session, storage, tenant)
    viewer = admin_viewer(session, tenant)
    page = receivables.client_balances(session, viewer, currency="EUR", today=TODAY)
    rows = {row.name: row for row in page.items}
    alpha, beta = rows["Alpha SA"], rows["Beta SARL"]
    # Alpha: 1000 not due + (500 - 200) overdue; the paid ones and the USD one do not count.
    assert (alpha.amount_due, alpha.overdue, alpha.open_invoices) == (Decimal("1300.00"), Decimal("300.00"), 2)
    assert alpha.available_credit == Decimal("100.00")
    assert alpha.average_delay_days == 1.0  # (4 + -2) / 2
    assert (beta.amount_due, beta.overdue, beta.open_invoices, beta.average_delay_days) == (
        Decimal("2000.00"), Decimal("2000.00"), 1, None)
    assert [r.name for r in page.items] == ["Beta SARL", "Alpha SA"]  # by amount due, largest first
    ascending = receivables.client_balances(session, viewer, currency="EUR", today=TODAY, sort="amount_due")
    assert [r.name for r in ascending.items] == ["Alpha SA", "Beta SARL"]
    second = receivables.client_balances(session, viewer, currency="EUR", today=TODAY, page=2, per_page=1)
    assert (second.total, second.pages, [r.name for r in second.items]) == (2, 2, ["Alpha SA"])
    usd = receivables.client_balances(session, viewer, currency="USD", today=TODAY)
    assert {r.name: r.amount_due for r in usd.items}["Alpha SA"] == Decimal("999.00")
    # A year later everything not paid is overdue.
    later = receivables.client_balance(session, viewer, alpha.client_id, currency="EUR", today=TODAY + timedelta(365))
    assert later.overdue == Decimal("1300.00")


def test_clients_pages(client: FlaskClient, session: Session, storage: FileStorage, tenant: TenantFixture,
                       other_tenant: TenantFixture) -> None:
    book = known_book(session, storage, tenant)
    page = text(client.get("/clients"))
    rows = re.findall(r"<tr>\s*<td><a href=\"/clients/(\d+)[^>]*>([^<]+)</a></td>(.*?)</tr>", page, re.S)
    assert [name for _id, name, _rest in rows] == ["Beta SARL", "Alpha SA"]
    alpha_row = rows[1][2]
    assert "€1,300.00" in alpha_row and "€300.00" in alpha_row and "1.0 days" in alpha_row
    assert re.search(r'class="num">2</td>', alpha_row)
    ascending = text(client.get("/clients?sort=amount_due"))
    assert ascending.index("Alpha SA") < ascending.index("Beta SARL")
    assert "USD" in page  # the other currency is offered

    alpha_id = book["not_due"].client_id
    detail = text(client.get(f"/clients/{alpha_id}"))
    assert 'id="amount-due">€1,300.00' in detail and 'id="overdue">€300.00' in detail
    open_table = detail.split('id="open-invoices"')[1].split("</table>")[0]
    assert "A-1" in open_table and "A-2" in open_table and "A-3" not in open_table
    assert "AV-1" in detail.split('id="credit-notes"')[1]
    documents = detail.split('id="client-documents"')[1]
    assert "A-1.pdf" in documents and "B-1.pdf" not in documents
    # Another tenant's client, and a client of nobody: 404.
    theirs = confirm(session, storage, other_tenant.tenant.id, other_tenant.admin, "X-1", "Alpha SA", "1.00")
    assert client.get(f"/clients/{theirs.client_id}").status_code == 404
    assert client.get("/clients/999999").status_code == 404


def test_clients_list_is_paginated(client: FlaskClient, session: Session, storage: FileStorage,
                                   tenant: TenantFixture) -> None:
    for i in range(51):
        session.add(Client(tenant_id=tenant.tenant.id, name=f"Client {i:02d}", normalized_name=f"client {i:02d}"))
    session.commit()
    first, second = text(client.get("/clients?sort=name")), text(client.get("/clients?sort=name&page=2"))
    assert "Page 1 of 2" in first and "Client 00" in first and "Client 50" not in first
    assert "Client 50" in second and "Client 00" not in second


# Attach a file, delete an invoice -------------------------------------------------------------


def test_attach_a_file_to_an_invoice(client: FlaskClient, session: Session, storage: FileStorage,
                                     tenant: TenantFixture) -> None:
    invoice = confirm(session, storage, tenant.tenant.id, tenant.admin, "FA-1", "Acme SAS", "10.00")
    url = f"/invoices/{invoice.id}"
    token = csrf_token(client.get(url))
    image = make_image()
    refused = client.post(f"{url}/files", data={"file": (_io(image), "scan.png")}, content_type="multipart/form-data")
    assert refused.status_code == 400  # no CSRF token
    response = client.post(f"{url}/files", data={"csrf_token": token, "file": (_io(image), "scan.png")},
                           content_type="multipart/form-data")
    assert response.status_code == 302
    attached = session.scalars(select(InvoiceFile).where(InvoiceFile.invoice_id == invoice.id)).all()
    assert len(attached) == 1
    stored = session.get(StoredFile, attached[0].file_id)
    assert stored.content_type == "image/png" and storage.read(stored.storage_key) == image
    assert session.scalar(select(func.count()).select_from(Document)) == 1  # no document: no review, no extraction
    served = client.get(f"/files/{stored.id}")
    assert served.status_code == 200 and served.data == image
    # The same file again is not attached twice; an empty file is refused with a reason.
    client.post(f"{url}/files", data={"csrf_token": token, "file": (_io(image), "again.png")},
                content_type="multipart/form-data")
    assert session.scalar(select(func.count()).where(InvoiceFile.invoice_id == invoice.id)) == 1
    empty = client.post(f"{url}/files", data={"csrf_token": token, "file": (_io(b""), "empty.pdf")},
                        content_type="multipart/form-data", follow_redirects=True)
    assert "the file is empty" in text(empty)


def test_attachment_size_is_limited(session: Session, storage: FileStorage, tenant: TenantFixture) -> None:
    invoice = confirm(session, storage, tenant.tenant.id, tenant.admin, "FA-1", "Acme SAS", "10.00")
    too_big = b"%PDF-" + b"0" * receivables.MAX_ATTACHMENT_BYTES
    with pytest.raises(ServiceError, match="larger than"):
        receivables.attach_file(session, storage, admin_viewer(session, tenant), invoice.id, too_big)


def _io(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


def test_delete_invoice(client: FlaskClient, app: Flask, session: Session, storage: FileStorage,
                        tenant: TenantFixture) -> None:
    invoice = confirm(session, storage, tenant.tenant.id, tenant.admin, "FA-7", "Acme SAS", "10.00")
    invoice_id, doc_id, file_id = invoice.id, invoice.document_id, invoice.file_id
    client_id = invoice.client_id
    assert post(client, f"/invoices/{invoice_id}/delete", {"reason": ""}, page=f"/invoices/{invoice_id}"
                ).status_code == 302
    assert session.get(Invoice, invoice_id) is not None  # no reason given: nothing deleted

    # A member may not delete.
    from core.models import Role
    from core.tenancy import accounts

    member = accounts.create_user(session, "member@acme.example", "correct horse battery", tenant.tenant, Role.MEMBER)
    session.commit()
    other = app.test_client()
    assert login(other, member.email).status_code == 302
    assert post(other, f"/invoices/{invoice_id}/delete", {"reason": "typo"}, page=f"/invoices/{invoice_id}"
                ).status_code == 403
    assert "Delete invoice" not in text(other.get(f"/invoices/{invoice_id}"))

    response = post(client, f"/invoices/{invoice_id}/delete", {"reason": "wrong amount"},
                    page=f"/invoices/{invoice_id}")
    assert response.status_code == 302 and response.headers["Location"] == "/invoices"
    session.expire_all()
    assert session.get(Invoice, invoice_id) is None
    assert session.scalar(select(func.count()).select_from(CashMovement)) == 0
    doc = session.get(Document, doc_id)
    assert doc.status == DocumentStatus.DISCARDED.value and doc.invoice_id is None
    assert doc.reason == "Invoice FA-7 deleted: wrong amount"
    stored = session.get(StoredFile, file_id)
    assert stored is not None and storage.exists(stored.storage_key)  # the file is kept
    assert session.get(Client, client_id) is not None
    # The number is free again: the same file imported anew validates under the same number.
    from core.files.records import store_file

    same = store_file(session, storage, tenant.tenant.id, storage.read(stored.storage_key), "application/pdf")
    assert same.id == file_id
    fresh = Document(tenant_id=tenant.tenant.id, file_id=same.id, filename="FA-7.pdf",
                     status=DocumentStatus.PENDING.value, field_info={})
    session.add(fresh)
    session.commit()
    again = docs.validate_document(session, tenant.tenant.id, fresh.id, {
        "doc_type": "invoice", "number": "FA-7", "client": "Acme SAS", "amount": "12.00", "currency": "EUR",
        "issue_date": "2026-11-01", "due_date": "2026-12-01"}, tenant.admin.id)
    session.commit()
    assert again.number == "FA-7" and again.file_id == file_id


def test_deleting_an_invoice_frees_its_duplicates(session: Session, storage: FileStorage,
                                                  tenant: TenantFixture) -> None:
    invoice = confirm(session, storage, tenant.tenant.id, tenant.admin, "FA-8", "Acme SAS", "10.00")
    twin = make_document(session, storage, tenant.tenant.id, filename="copy.pdf", data=make_invoice_pdf(number="X"),
                         status=DocumentStatus.DUPLICATE, duplicate_of_id=invoice.id, number="FA-8")
    invoice_edits.delete_invoice(session, admin_viewer(session, tenant), invoice.id, "entered twice")
    session.commit()
    session.expire_all()
    twin = session.get(Document, twin.id)
    assert twin.status == DocumentStatus.PENDING.value and twin.duplicate_of_id is None


def test_the_domain_writes_the_audit_of_a_deletion_and_an_attachment(session: Session, storage: FileStorage,
                                                                      tenant: TenantFixture) -> None:
    """Issue 16: audit writes live in the services, so every transport (views, API, CLI) leaves the trail."""
    invoice = confirm(session, storage, tenant.tenant.id, tenant.admin, "FA-10", "Acme SAS", "10.00")
    viewer = admin_viewer(session, tenant)
    stored = receivables.attach_file(session, storage, viewer, invoice.id, make_image(), actor=tenant.admin,
                                     ip="192.0.2.9")
    invoice_edits.delete_invoice(session, viewer, invoice.id, "  entered   twice ", actor=tenant.admin, ip="192.0.2.9")
    session.commit()
    (attached,) = session.scalars(audit.events_query(tenant.tenant.id, "invoice.attach_file")).all()
    (deleted,) = session.scalars(audit.events_query(tenant.tenant.id, "invoice.delete")).all()
    assert (attached.actor_id, attached.target, attached.ip) == (tenant.admin.id, f"invoice:{invoice.id}", "192.0.2.9")
    assert attached.detail == {"file_id": stored.id, "size": stored.size}
    assert (deleted.actor_id, deleted.target) == (tenant.admin.id, f"invoice:{invoice.id}")
    assert deleted.detail == {"number": "FA-10", "reason": "entered twice"}


def test_an_invoice_with_a_payment_cannot_be_deleted(session: Session, storage: FileStorage,
                                                     tenant: TenantFixture) -> None:
    invoice = confirm(session, storage, tenant.tenant.id, tenant.admin, "FA-9", "Acme SAS", "10.00")
    pay(session, invoice, "4.00")
    with pytest.raises(ServiceError, match="undo its payment matches"):
        invoice_edits.delete_invoice(session, admin_viewer(session, tenant), invoice.id, "mistake")
    session.rollback()
    assert session.get(Invoice, invoice.id) is not None


def test_other_tenants_cannot_attach_or_delete(client: FlaskClient, session: Session, storage: FileStorage,
                                               other_tenant: TenantFixture) -> None:
    theirs = confirm(session, storage, other_tenant.tenant.id, other_tenant.admin, "G-1", "Someone", "1.00")
    assert post(client, f"/invoices/{theirs.id}/delete", {"reason": "x"}).status_code == 404
    token = csrf_token(client.get("/pending"))
    response = client.post(f"/invoices/{theirs.id}/files", content_type="multipart/form-data",
                           data={"csrf_token": token, "file": (_io(b"%PDF-1"), "a.pdf")})
    assert response.status_code == 404
    session.expire_all()
    assert session.get(Invoice, theirs.id) is not None


def test_review_page_offers_the_tenants_clients(client: FlaskClient, session: Session, storage: FileStorage,
                                                tenant: TenantFixture, other_tenant: TenantFixture) -> None:
    confirm(session, storage, tenant.tenant.id, tenant.admin, "FA-1", "Acme <b>SAS</b>", "10.00")
    confirm(session, storage, other_tenant.tenant.id, other_tenant.admin, "G-1", "Globex Secret", "1.00")
    doc = make_document(session, storage, tenant.tenant.id, filename="new.pdf", status=DocumentStatus.PENDING)
    page = text(client.get(f"/documents/{doc.id}"))
    assert 'list="clients"' in page
    datalist = page.split('<datalist id="clients">')[1].split("</datalist>")[0]
    assert "Acme &lt;b&gt;SAS&lt;/b&gt;" in datalist and "Globex" not in datalist
    assert f'href="/documents/{doc.id}/file" download' in page

