"""Restricted access: a member's session (and token) sees only their assigned clients' invoices, an
admin sees everything and manages the assignments (admin only, CSRF on)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.files.storage import FileStorage
from core.models import AuditEvent, ClientAssignment, DocumentStatus, Invoice, Membership, Role, Tenant, User
from core.receivables import invoices as receivables
from core.tenancy import accounts
from tests.conftest import PASSWORD, TenantFixture
from tests.invoicegen import make_image
from tests.test_clients import TODAY, admin_viewer, confirm
from tests.test_dashboard import csrf_token, login, make_document, post, text


@dataclass
class Team:
    member: User
    member_token: str
    alpha: Invoice  # assigned to the member
    beta: Invoice  # not assigned


@pytest.fixture
def team(session: Session, storage: FileStorage, tenant: TenantFixture) -> Team:
    member = accounts.create_user(session, "member@acme.example", PASSWORD, tenant.tenant, Role.MEMBER)
    token = accounts.create_token(session, member, tenant.tenant)
    session.commit()
    alpha = confirm(session, storage, tenant.tenant.id, tenant.admin, "A-1", "Alpha SA", "100.00")
    beta = confirm(session, storage, tenant.tenant.id, tenant.admin, "B-1", "Beta SARL", "2000.00")
    session.add(ClientAssignment(tenant_id=tenant.tenant.id, client_id=alpha.client_id, user_id=member.id))
    session.get(Tenant, tenant.tenant.id).restrict_access = True
    session.commit()
    return Team(member, token, alpha, beta)


def web(app: Flask, email: str) -> FlaskClient:
    app.config["INBOX_TODAY"] = TODAY.isoformat()
    client = app.test_client()
    assert login(client, email).status_code == 302
    return client


def api(app: Flask, token: str, path: str) -> tuple[int, dict]:
    response = app.test_client().get(f"/api/v1{path}", headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.get_json()


def test_member_sees_only_assigned_clients_in_the_dashboard(app: Flask, session: Session, storage: FileStorage,
                                                            tenant: TenantFixture, team: Team) -> None:
    attached = receivables.attach_file(session, storage, admin_viewer(session, tenant), team.beta.id, make_image())
    session.commit()
    member, admin = web(app, team.member.email), web(app, tenant.admin.email)

    listing = text(member.get("/invoices"))
    assert "A-1" in listing and "B-1" not in listing
    assert member.get(f"/invoices/{team.alpha.id}").status_code == 200
    assert member.get(f"/invoices/{team.beta.id}").status_code == 404
    assert member.get(f"/files/{attached.id}").status_code == 404  # only reachable through Beta's invoice
    clients = text(member.get("/clients"))
    assert "Alpha SA" in clients and "Beta SARL" not in clients
    assert member.get(f"/clients/{team.beta.client_id}").status_code == 404
    analytics = text(member.get("/analytics"))
    assert 'id="kpi-due">€100.00' in analytics

    everything = text(admin.get("/invoices"))
    assert "A-1" in everything and "B-1" in everything
    assert admin.get(f"/invoices/{team.beta.id}").status_code == 200
    assert admin.get(f"/files/{attached.id}").status_code == 200
    assert 'id="kpi-due">€2,100.00' in text(admin.get("/analytics"))


def test_member_can_still_review_and_validate_every_document(app: Flask, session: Session, storage: FileStorage,
                                                             tenant: TenantFixture, team: Team) -> None:
    doc = make_document(session, storage, tenant.tenant.id, filename="gamma.pdf", status=DocumentStatus.PENDING)
    member = web(app, team.member.email)
    assert "gamma.pdf" in text(member.get("/pending"))
    datalist = text(member.get(f"/documents/{doc.id}")).split('<datalist id="clients">')[1].split("</datalist>")[0]
    assert "Alpha SA" in datalist and "Beta SARL" not in datalist
    response = post(member, f"/documents/{doc.id}", {
        "action": "confirm", "doc_type": "invoice", "number": "G-1", "client": "Gamma", "amount": "5.00",
        "currency": "EUR", "issue_date": "2026-11-01", "due_date": "2026-12-01"}, page=f"/documents/{doc.id}")
    assert response.status_code == 302
    assert session.scalar(select(func.count()).where(Invoice.number == "G-1")) == 1
    assert ">G-1</a>" not in text(member.get("/invoices"))  # validated, but Gamma is not assigned to them


def test_member_token_sees_only_assigned_clients_in_the_api(app: Flask, tenant: TenantFixture, team: Team) -> None:
    status, body = api(app, team.member_token, "/invoices")
    assert status == 200 and [item["number"] for item in body["items"]] == ["A-1"] and body["total"] == 1
    assert api(app, team.member_token, f"/invoices/{team.beta.id}")[0] == 404
    assert api(app, team.member_token, f"/invoices/{team.alpha.id}")[0] == 200
    status, body = api(app, team.member_token, "/analytics")
    assert status == 200 and body["amount_due"] == "100.00"
    status, body = api(app, team.member_token, "/clients")
    assert [item["name"] for item in body["items"]] == ["Alpha SA"]
    assert api(app, team.member_token, f"/clients/{team.beta.client_id}")[0] == 404

    status, body = api(app, tenant.token, "/invoices")
    assert sorted(item["number"] for item in body["items"]) == ["A-1", "B-1"]
    assert api(app, tenant.token, "/analytics")[1]["amount_due"] == "2100.00"


def test_restriction_off_means_members_see_everything(app: Flask, session: Session, tenant: TenantFixture,
                                                      team: Team) -> None:
    session.get(Tenant, tenant.tenant.id).restrict_access = False
    session.commit()
    member = web(app, team.member.email)
    assert "B-1" in text(member.get("/invoices"))
    assert api(app, team.member_token, f"/invoices/{team.beta.id}")[0] == 200


def test_assignments_are_managed_by_admins_only_with_csrf(app: Flask, session: Session, tenant: TenantFixture,
                                                         team: Team, other_tenant: TenantFixture) -> None:
    member, admin = web(app, team.member.email), web(app, tenant.admin.email)
    assert member.get("/settings/members").status_code == 403
    assert post(member, f"/settings/members/{team.member.id}/clients", {"client_id": str(team.beta.client_id)}
                ).status_code == 403
    assert post(member, "/settings/members/restrict", {"restrict_access": "0"}).status_code == 403

    page = admin.get("/settings/members")
    assert page.status_code == 200 and team.member.email in text(page) and "Alpha SA" in text(page)
    no_token = admin.post(f"/settings/members/{team.member.id}/clients", data={"client_id": str(team.beta.client_id)})
    assert no_token.status_code == 400
    token = csrf_token(page)
    assert admin.post(f"/settings/members/{team.member.id}/clients",
                      data={"client_id": str(team.beta.client_id), "csrf_token": token}).status_code == 302
    assert "B-1" in text(member.get("/invoices"))
    # Twice is harmless; removing takes the access away again.
    admin.post(f"/settings/members/{team.member.id}/clients", data={"client_id": str(team.beta.client_id),
                                                                    "csrf_token": token})
    assert session.scalar(select(func.count()).select_from(ClientAssignment)) == 2
    assert admin.post(f"/settings/members/{team.member.id}/clients/{team.beta.client_id}/remove",
                      data={"csrf_token": token}).status_code == 302
    assert "B-1" not in text(member.get("/invoices"))

    # Another tenant's client or user cannot be assigned.
    theirs = confirm(session, session_storage(app), other_tenant.tenant.id, other_tenant.admin, "X", "Xo", "1.00")
    admin.post(f"/settings/members/{team.member.id}/clients", data={"client_id": str(theirs.client_id),
                                                                    "csrf_token": token})
    admin.post(f"/settings/members/{other_tenant.admin.id}/clients", data={"client_id": str(team.beta.client_id),
                                                                           "csrf_token": token})
    assert session.scalar(select(func.count()).select_from(ClientAssignment)) == 1

    assert admin.post("/settings/members/restrict", data={"restrict_access": "0", "csrf_token": token}
                      ).status_code == 302
    session.expire_all()
    assert session.get(Tenant, tenant.tenant.id).restrict_access is False
    actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == tenant.tenant.id)))
    assert {"members.assign_client", "members.unassign_client", "settings.restrict_access"} <= actions


def session_storage(app: Flask) -> FileStorage:
    return app.extensions["inbox.storage"]


def test_switching_tenant_applies_that_tenants_policy(app: Flask, session: Session, storage: FileStorage,
                                                      tenant: TenantFixture, team: Team,
                                                      other_tenant: TenantFixture) -> None:
    """The member is also an admin of another company: switching shows that company's invoices in full."""
    session.add(Membership(user_id=team.member.id, tenant_id=other_tenant.tenant.id, role=Role.ADMIN.value))
    session.commit()
    theirs = confirm(session, storage, other_tenant.tenant.id, other_tenant.admin, "G-9", "Globex client", "9.00")
    member = web(app, team.member.email)
    assert "B-1" not in text(member.get("/invoices"))
    assert post(member, "/tenant", {"tenant_id": str(other_tenant.tenant.id)}).status_code == 302
    listing = text(member.get("/invoices"))
    assert "G-9" in listing and "A-1" not in listing
    assert member.get(f"/invoices/{theirs.id}").status_code == 200
    assert member.get(f"/invoices/{team.alpha.id}").status_code == 404


# Finding 1 of issue 14: every other way to an invoice -------------------------------------------------

SEEN_NUMBER, SEEN_CLIENT = "SEEN-4412", "Alpha Visible SA"
HIDDEN_NUMBER, HIDDEN_CLIENT = "HIDDEN-7731", "Zeta Confidential SARL"


@dataclass
class Book:
    """A restricted member (session and token) and one invoice of each kind, each paid by a transaction."""

    member: User
    member_token: str
    seen: Invoice
    hidden: Invoice
    hidden_document_id: int
    hidden_message_id: int
    hidden_file: bytes
    hidden_transaction_id: int
    hidden_match_id: int


def _validated(session: Session, storage: FileStorage, fx: TenantFixture, number: str, client: str) -> Invoice:
    from core.documents import review as docs
    from core.inbound import intake
    from tests.invoicegen import make_email, make_invoice_pdf

    pdf = make_invoice_pdf(number=number)
    message = intake.store_message(session, storage, fx.tenant.id, make_email(fx.address, pdf), recipient=fx.address)
    doc = make_document(session, storage, fx.tenant.id, filename=f"{number}.pdf", data=pdf, message_id=message.id,
                        status=DocumentStatus.PENDING)
    invoice = docs.validate_document(session, fx.tenant.id, doc.id, {
        "doc_type": "invoice", "number": number, "client": client, "amount": "300.00", "currency": "EUR",
        "issue_date": TODAY.isoformat(), "due_date": TODAY.isoformat()}, fx.admin.id)
    session.commit()
    return invoice


@pytest.fixture
def book(session: Session, storage: FileStorage, tenant: TenantFixture) -> Book:
    from datetime import date
    from decimal import Decimal

    from core.models import BankAccount, BankTransaction, Document, Match, StoredFile

    member = accounts.create_user(session, "member@acme.example", PASSWORD, tenant.tenant, Role.MEMBER)
    token = accounts.create_token(session, member, tenant.tenant)
    seen = _validated(session, storage, tenant, SEEN_NUMBER, SEEN_CLIENT)
    hidden = _validated(session, storage, tenant, HIDDEN_NUMBER, HIDDEN_CLIENT)
    session.add(ClientAssignment(tenant_id=tenant.tenant.id, client_id=seen.client_id, user_id=member.id))
    session.get(Tenant, tenant.tenant.id).restrict_access = True
    account = BankAccount(tenant_id=tenant.tenant.id, iban="FR7630006000011234567890189")
    session.add(account)
    session.flush()
    txs = [BankTransaction(tenant_id=tenant.tenant.id, account_id=account.id, fingerprint=f"scope-{i}",
                           booking_date=date(2026, 11, 10), amount=Decimal("300.00"), counterparty=client,
                           remittance=f"Payment {number}", status="suggested")
           for i, (number, client) in enumerate([(SEEN_NUMBER, SEEN_CLIENT), (HIDDEN_NUMBER, HIDDEN_CLIENT)])]
    session.add_all(txs)
    session.flush()
    matches = [Match(tenant_id=tenant.tenant.id, transaction_id=tx.id, invoice_id=invoice.id,
                     amount=Decimal("300.00"), state="suggested")
               for tx, invoice in zip(txs, (seen, hidden), strict=True)]
    session.add_all(matches)
    session.commit()
    document = session.scalars(select(Document).where(Document.invoice_id == hidden.id)).one()
    stored = session.get(StoredFile, hidden.file_id)
    return Book(member, token, seen, hidden, document.id, document.message_id, storage.read(stored.storage_key),
                txs[1].id, matches[1].id)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _leaks(body: bytes, book: Book) -> list[str]:
    markers = [HIDDEN_NUMBER.encode(), HIDDEN_CLIENT.encode(), book.hidden_file]
    return [marker.decode(errors="replace")[:40] for marker in markers if marker in body]


RESTRICTED_PAGES = ["/bank", "/bank/suggestions", "/bank/treasury", "/bank/export/invoices.csv",
                    "/bank/export/payments.csv", "/bank/export/matches.csv", "/imports", "/pending", "/invoices",
                    "/clients", "/analytics"]
RESTRICTED_API = ["/treasury", "/matches", "/transactions", "/documents?status=validated", "/documents", "/messages",
                  "/invoices", "/clients", "/analytics"]


def test_restricted_member_reads_no_unassigned_invoice_through_any_listing_export_or_file(
    app: Flask, tenant: TenantFixture, book: Book
) -> None:
    """Issue 14, finding 1: exports, treasury, matches, transactions, validated documents and their files."""
    member, admin = web(app, book.member.email), web(app, tenant.admin.email)
    leaks: list[str] = []
    for page in [*RESTRICTED_PAGES, f"/imports/status?ids={book.hidden_message_id}"]:
        response = member.get(page)
        assert response.status_code == 200, page
        leaks += [f"{page}: {found}" for found in _leaks(response.get_data(), book)]
        assert _leaks(admin.get(page).get_data(), book) or page in ("/pending", "/analytics"), f"{page} proves nothing"
    for path in [*RESTRICTED_API, f"/messages/{book.hidden_message_id}"]:
        response = app.test_client().get(f"/api/v1{path}", headers=bearer(book.member_token))
        assert response.status_code == 200, path
        leaks += [f"/api/v1{path}: {found}" for found in _leaks(response.get_data(), book)]
    # The member's own client is there: the scoping hides, it does not blank everything.
    assert SEEN_NUMBER in text(member.get("/bank/export/invoices.csv"))
    assert SEEN_NUMBER in json.dumps(api(app, book.member_token, "/matches")[1])
    assert SEEN_NUMBER in json.dumps(api(app, book.member_token, "/treasury")[1])
    assert not leaks, "\n".join(leaks)

    for path in (f"/documents/{book.hidden_document_id}", f"/files/{book.hidden.file_id}",
                 f"/bank/transactions/{book.hidden_transaction_id}"):
        assert member.get(path).status_code == 404, path
        assert admin.get(path).status_code == 200, path
    for path in (f"/documents/{book.hidden_document_id}", f"/documents/{book.hidden_document_id}/file",
                 f"/transactions/{book.hidden_transaction_id}"):
        assert app.test_client().get(f"/api/v1{path}", headers=bearer(book.member_token)).status_code == 404, path
        assert app.test_client().get(f"/api/v1{path}", headers=bearer(tenant.token)).status_code == 200, path
    # Deciding on a hidden invoice's match is refused the same way.
    token = csrf_token(member.get("/bank"))
    assert member.post(f"/bank/matches/{book.hidden_match_id}/accept", data={"csrf_token": token}).status_code == 404
    response = app.test_client().post(f"/api/v1/matches/{book.hidden_match_id}/accept",
                                      headers=bearer(book.member_token))
    assert response.status_code == 404
