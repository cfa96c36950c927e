"""Find anything, act on many (issue 17 item 6): search, filters, sorts and CSV export of the lists, on
SQLite and PostgreSQL, scoped to what the viewer may see; bulk actions on the documents under review."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core import listing
from core.documents import bulk
from core.fields import coerce
from core.files.storage import FileStorage
from core.models import Document, DocumentStatus, InboundMessage, Invoice
from core.models_profiles import DocumentReading
from tests.conftest import TenantFixture, make_tenant
from tests.invoicegen import make_invoice_pdf
from tests.test_access import Team, team  # noqa: F401  (fixture: a restricted member and two clients)
from tests.test_clients import TODAY, admin_viewer, confirm, known_book
from tests.test_dashboard import COMPLETE, csrf_token, login, make_document
from tests.test_dashboard import text as page_text


@pytest.fixture
def web(app: Flask, tenant: TenantFixture) -> FlaskClient:
    app.config["INBOX_TODAY"] = TODAY.isoformat()
    client = app.test_client()
    assert login(client, tenant.admin.email).status_code == 302
    return client


def numbers(session: Session, stmt) -> list[str]:
    return [invoice.number for invoice in session.scalars(stmt)]


def run(session: Session, fx: TenantFixture, doc_type: str | None = "invoice", **args: str) -> list[str]:
    filters = listing.parse_filters(args, listing.INVOICE_SORTS, listing.INVOICE_DEFAULT_SORT)
    assert not filters.errors, filters.errors
    stmt = listing.invoice_list(admin_viewer(session, fx), doc_type, filters, TODAY, listing.dialect_of(session))
    return numbers(session, stmt)


def csv_rows(response) -> list[dict[str, str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


# The query layer ---------------------------------------------------------------------------------------


def test_filters_by_status_amount_currency_dates_and_validator(session: Session, storage: FileStorage,
                                                                tenant: TenantFixture) -> None:
    known_book(session, storage, tenant)
    other = make_tenant(session, "Globex", "admin@globex.example")
    confirm(session, storage, other.tenant.id, other.admin, "A-9", "Alpha SA", "500.00")  # never in tenant's lists

    assert run(session, tenant, status="overdue", sort="number") == ["A-2", "B-1"]  # unpaid, due before today
    assert run(session, tenant, status="partially_paid") == ["A-2"]
    assert run(session, tenant, status="paid", sort="number") == ["A-3", "A-4"]
    assert run(session, tenant, status="open", sort="-number") == ["B-1", "A-5", "A-1"]
    assert run(session, tenant, amount_min="600", amount_max="999,00", sort="amount") == ["A-4", "A-3", "A-5"]
    assert run(session, tenant, currency="usd") == ["A-5"]
    assert run(session, tenant, date_from=(TODAY - timedelta(days=100)).isoformat(),
               date_to=(TODAY - timedelta(days=100)).isoformat()) == ["B-1"]
    assert run(session, tenant, validated_by=str(tenant.admin.id), sort="number") == [
        "A-1", "A-2", "A-3", "A-4", "A-5", "B-1"]
    assert run(session, tenant, validated_by=str(other.admin.id)) == []
    assert run(session, tenant, doc_type="credit_note") == ["AV-1"]
    assert run(session, tenant, sort="-amount")[:2] == ["B-1", "A-1"]  # numerically, on SQLite's text too
    assert run(session, tenant, sort="client")[-1] == "B-1"


def test_search_by_number_counterparty_amount_and_document_text(session: Session, storage: FileStorage,
                                                                tenant: TenantFixture) -> None:
    book = known_book(session, storage, tenant)
    session.add(DocumentReading(document_id=book["beta_old"].document_id, tenant_id=tenant.tenant.id,
                                text="FACTURE\nRéférence chantier Tour Eiffel\nTotal 2000,00"))
    session.commit()
    assert run(session, tenant, q="a-2") == ["A-2"]
    assert run(session, tenant, q="  beta  sarl ") == ["B-1"]  # counterparty, case and spaces folded
    assert run(session, tenant, q="999") == ["A-5"]  # as an amount; no number holds "999"
    assert run(session, tenant, q="800,00") == ["A-3"]
    assert run(session, tenant, q="tour eiffel") == ["B-1"]  # the text the document was read from
    assert run(session, tenant, q="Nobody") == []


def test_search_patterns_are_literal_and_limited(session: Session, storage: FileStorage,
                                                 tenant: TenantFixture) -> None:
    known_book(session, storage, tenant)
    confirm(session, storage, tenant.tenant.id, tenant.admin, "X_1%", "Gamma", "10.00")
    assert run(session, tenant, q="%") == ["X_1%"]  # LIKE's wildcards are taken as characters
    assert run(session, tenant, q="_") == ["X_1%"]
    assert run(session, tenant, q="\\") == []
    refused = listing.parse_filters({"q": "x" * 101, "date_from": "2026-02-30", "amount_min": "1e9",
                                     "currency": "EURO", "status": "lost", "source": "fax", "validated_by": "me",
                                     "sort": "password"}, listing.INVOICE_SORTS, listing.INVOICE_DEFAULT_SORT)
    assert set(refused.errors) == {"q", "date_from", "amount_min", "currency", "status", "source", "validated_by",
                                   "sort"}
    assert not refused.active and refused.sort == listing.INVOICE_DEFAULT_SORT
    reversed_range = listing.parse_filters({"amount_min": "10", "amount_max": "5"}, listing.INVOICE_SORTS, "")
    assert reversed_range.errors == {"amount_max": listing.BAD_RANGE} and reversed_range.amount_min == 10


def test_source_filter_follows_the_message(session: Session, storage: FileStorage, tenant: TenantFixture) -> None:
    invoice = confirm(session, storage, tenant.tenant.id, tenant.admin, "UP-1", "Alpha SA", "10.00")
    confirm(session, storage, tenant.tenant.id, tenant.admin, "NONE-1", "Alpha SA", "10.00")
    message = InboundMessage(tenant_id=tenant.tenant.id, source="upload", recipient="x", raw_key="k",
                             raw_sha256="0" * 64, raw_size=1)
    session.add(message)
    session.flush()
    session.get(Document, invoice.document_id).message_id = message.id
    session.commit()
    assert run(session, tenant, source="upload") == ["UP-1"]
    assert run(session, tenant, source="smtp") == []


def test_trigram_indexes_exist_on_postgresql(session: Session) -> None:
    if listing.dialect_of(session) != "postgresql":
        pytest.skip("pg_trgm is PostgreSQL's: SQLite searches by scanning")
    names = set(session.scalars(text("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%\\_trgm'")))
    assert {"ix_invoices_number_trgm", "ix_clients_name_trgm", "ix_document_readings_text_trgm"} <= names
    plan = "\n".join(session.scalars(text(
        "EXPLAIN SELECT id FROM clients WHERE inbox_fold(name) LIKE inbox_fold('%alpha%')"
    ).execution_options()))
    assert "clients" in plan  # the plan is valid SQL; the index is chosen only when the table is large enough


# The dashboard ------------------------------------------------------------------------------------------


def test_invoice_list_filters_sort_links_and_export_the_same_rows(web: FlaskClient, session: Session,
                                                                  storage: FileStorage,
                                                                  tenant: TenantFixture) -> None:
    known_book(session, storage, tenant)
    confirm(session, storage, tenant.tenant.id, tenant.admin, "=HYPERLINK(1)", "=cmd|' /C calc'!A0", "5.00",
            due=TODAY - timedelta(days=1))
    page = page_text(web.get("/invoices?status=overdue&sort=number"))
    assert ">A-2<" in page and ">B-1<" in page and ">A-1<" not in page
    # Sort links keep the filters; the export link exports the same filtered list.
    assert "status=overdue" in page and "sort=-number" in page
    assert "/invoices/export.csv?status=overdue" in page.replace("&amp;", "&")
    rows = csv_rows(web.get("/invoices/export.csv?status=overdue&sort=number"))
    assert [row["number"] for row in rows] == ["'=HYPERLINK(1)", "A-2", "B-1"]  # formulas neutralised
    assert rows[0]["client"] == "'=cmd|' /C calc'!A0"
    french = web.get("/invoices/export.csv?status=overdue&sort=number&style=excel-fr").get_data(as_text=True)
    assert "A-2;Alpha SA;" in french and "500,00" in french
    assert [r["number"] for r in csv_rows(web.get("/credit-notes/export.csv"))] == ["AV-1"]
    # A refused filter is said and ignored, never a crash.
    refused = web.get("/invoices?date_from=2026-13-01&q=" + "x" * 150)
    assert refused.status_code == 200
    assert "Filter ignored" in page_text(refused) and ">A-1<" in page_text(refused)
    assert "Nothing matches these filters." in page_text(web.get("/invoices?q=nobody"))


def test_restricted_member_searches_and_exports_only_assigned_invoices(app: Flask, team: Team) -> None:  # noqa: F811
    app.config["INBOX_TODAY"] = TODAY.isoformat()
    member = app.test_client()
    assert login(member, team.member.email).status_code == 302
    for path in ("/invoices?q=-1", "/invoices?q=beta", "/invoices?amount_min=1", "/invoices?q=2000"):
        assert "B-1" not in page_text(member.get(path)), path
    assert ">A-1<" in page_text(member.get("/invoices?q=-1"))
    assert [r["number"] for r in csv_rows(member.get("/invoices/export.csv?q=-1"))] == ["A-1"]
    assert csv_rows(member.get("/invoices/export.csv?q=beta")) == []
    response = app.test_client().get("/api/v1/invoices?q=-1", headers={"Authorization": f"Bearer {team.member_token}"})
    assert [item["number"] for item in response.get_json()["items"]] == ["A-1"]
    # Validated documents follow their invoice in the pending export too (show=failed and the queue).
    assert "B-1" not in member.get("/pending/export.csv?q=b-1").get_data(as_text=True)


def test_api_filters_are_checked(app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture) -> None:
    known_book(session, storage, tenant)
    app.config["INBOX_TODAY"] = TODAY.isoformat()
    api = app.test_client()
    headers = {"Authorization": f"Bearer {tenant.token}"}
    body = api.get("/api/v1/invoices?status=overdue&sort=-amount", headers=headers).get_json()
    assert [item["number"] for item in body["items"]] == ["B-1", "A-2"]
    refused = api.get("/api/v1/invoices?q=" + "%25" * 101 + "&sort=id", headers=headers)
    assert refused.status_code == 400 and set(refused.get_json()["fields"]) == {"q", "sort"}
    assert api.get("/api/v1/documents?status=validated&q=a-3", headers=headers).get_json()["total"] == 1
    assert api.get("/api/v1/documents?status=overdue", headers=headers).status_code == 400  # a document status


# Bulk actions on pending documents ------------------------------------------------------------------------


def _pending(session: Session, storage: FileStorage, tenant: TenantFixture, name: str, **fields) -> Document:
    values = dict(COMPLETE) | {"filename": name} | fields
    field_info = values.pop("field_info", {})
    filename = values.pop("filename")
    coerced, errors = coerce(values)
    assert not errors
    return make_document(session, storage, tenant.tenant.id, filename=filename, field_info=field_info,
                         data=make_invoice_pdf(number=filename), **coerced)


def test_bulk_validate_takes_only_unflagged_complete_documents_and_says_why(
    web: FlaskClient, session: Session, storage: FileStorage, tenant: TenantFixture, other_tenant: TenantFixture
) -> None:
    sure = _pending(session, storage, tenant, "sure.pdf", number="BULK-1",
                    field_info={"number": {"confidence": 0.99}})
    unsure = _pending(session, storage, tenant, "unsure.pdf", number="BULK-2",
                      field_info={"amount": {"confidence": 0.2}})
    incomplete = _pending(session, storage, tenant, "incomplete.pdf", number="BULK-3", amount="")
    twin = _pending(session, storage, tenant, "twin.pdf", number="BULK-1")
    theirs = _pending(session, storage, other_tenant, "theirs.pdf", number="BULK-9")
    token = csrf_token(web.get("/pending"))
    ids = [sure.id, unsure.id, incomplete.id, twin.id, theirs.id]
    response = web.post("/pending/bulk", data={"csrf_token": token, "action": "validate", "doc_id": ids,
                                               "next": "/pending?sort=number"}, follow_redirects=False)
    assert response.status_code == 302 and response.headers["Location"] == "/pending?sort=number"
    page = page_text(web.get("/pending"))
    assert "1 document done." in page
    assert f"Document {unsure.id}: Not validated: check these fields first: amount." in page
    assert f"Document {incomplete.id}: Not validated: amount:" in page
    assert f"Document {twin.id}: Not validated: the number is already used" in page
    assert f"Document {theirs.id}: No such document." in page
    session.expire_all()
    states = {doc.id: doc.status for doc in session.scalars(select(Document).where(Document.id.in_(ids)))}
    assert states == {sure.id: "validated", unsure.id: "pending", incomplete.id: "pending", twin.id: "duplicate",
                      theirs.id: "pending"}
    assert session.scalars(select(Invoice.number).where(Invoice.tenant_id == tenant.tenant.id)).all() == ["BULK-1"]


def test_bulk_assign_and_discard_with_csrf(app: Flask, web: FlaskClient, session: Session, storage: FileStorage,
                                           tenant: TenantFixture) -> None:
    first = _pending(session, storage, tenant, "a.pdf", number="AS-1", client="")
    second = _pending(session, storage, tenant, "b.pdf", number="AS-2", client="Old")
    assert web.post("/pending/bulk", data={"action": "discard", "doc_id": [first.id]}).status_code == 400  # no CSRF
    token = csrf_token(web.get("/pending"))
    web.post("/pending/bulk", data={"csrf_token": token, "action": "assign", "client": "  Durand   SA ",
                                    "doc_id": [first.id, second.id, first.id]})
    session.expire_all()
    assert [session.get(Document, d.id).client for d in (first, second)] == ["Durand SA", "Durand SA"]
    assert "Choose a client." in page_text(web.post("/pending/bulk", data={
        "csrf_token": token, "action": "assign", "client": " ", "doc_id": [first.id]}, follow_redirects=True))
    assert "Select at least one document." in page_text(web.post("/pending/bulk", data={
        "csrf_token": token, "action": "discard"}, follow_redirects=True))
    web.post("/pending/bulk", data={"csrf_token": token, "action": "discard", "doc_id": [second.id]})
    session.expire_all()
    assert session.get(Document, second.id).status == DocumentStatus.DISCARDED.value
    too_many = [str(i) for i in range(1, bulk.MAX_SELECTED + 2)]
    assert "Select at most 200 documents at once." in page_text(web.post("/pending/bulk", data={
        "csrf_token": token, "action": "discard", "doc_id": too_many}, follow_redirects=True))
    # The API does the same, per item.
    api = app.test_client().post("/api/v1/documents/bulk", headers={"Authorization": f"Bearer {tenant.token}"},
                                 json={"action": "discard", "ids": [first.id, second.id]})
    assert api.status_code == 200
    assert json.loads(api.get_data())["items"] == [
        {"id": first.id, "ok": True, "message": "Deleted.", "invoice_id": None},
        {"id": second.id, "ok": False, "message": bulk.NOT_WAITING, "invoice_id": None}]


def test_pending_list_searches_sorts_and_exports(web: FlaskClient, session: Session, storage: FileStorage,
                                                 tenant: TenantFixture) -> None:
    _pending(session, storage, tenant, "zeta.pdf", number="PQ-1", client="Zeta", amount="10.00")
    _pending(session, storage, tenant, "alpha.pdf", number="PQ-2", client="Alpha", amount="20.00")
    page = page_text(web.get("/pending?q=pq-&sort=amount"))
    assert page.index("zeta.pdf") < page.index("alpha.pdf")
    assert 'name="doc_id"' in page and "Validate those with no field to check" in page
    rows = csv_rows(web.get("/pending/export.csv?q=alpha"))
    assert [row["number"] for row in rows] == ["PQ-2"]
    assert "Filter ignored" in page_text(web.get("/pending?status=paid"))  # no payment status on documents


# The imports list -----------------------------------------------------------------------------------------


def test_imports_search_never_reveals_a_confirmation_code_to_members(
    app: Flask, web: FlaskClient, session: Session, tenant: TenantFixture
) -> None:
    from core.models import Role
    from core.tenancy import accounts
    from tests.conftest import PASSWORD

    accounts.create_user(session, "member@acme.example", PASSWORD, tenant.tenant, Role.MEMBER)
    for sender, subject, source in (("forwarding-noreply@google.com", "(#493817265) Gmail Forwarding Confirmation",
                                     "smtp"), ("billing@dupont.example", "Facture novembre", "upload")):
        session.add(InboundMessage(tenant_id=tenant.tenant.id, source=source, recipient=tenant.address,
                                   sender=sender, subject=subject, raw_key=f"k-{source}", raw_sha256="0" * 64,
                                   raw_size=1))
    session.commit()
    assert "Gmail Forwarding" in page_text(web.get("/imports?q=493817"))  # an admin reads codes: searches them
    assert "billing@dupont.example" not in page_text(web.get("/imports?q=493817"))
    assert "Facture novembre" in page_text(web.get("/imports?q=DUPONT&source=upload&sort=sender"))
    assert "Facture novembre" not in page_text(web.get("/imports?source=smtp"))
    assert "Filter ignored" in page_text(web.get("/imports?amount_min=5"))
    rows = csv_rows(web.get("/imports/export.csv?q=google"))
    assert [row["subject"] for row in rows] == ["(#493817265) Gmail Forwarding Confirmation"]
    member = app.test_client()
    assert login(member, "member@acme.example").status_code == 302
    assert "Gmail Forwarding" not in page_text(member.get("/imports?q=493817"))  # no oracle on the code
    assert "Gmail Forwarding" in page_text(member.get("/imports?q=google"))
    assert [row["subject"] for row in csv_rows(member.get("/imports/export.csv?q=google"))] == [
        "(#•••) Gmail Forwarding Confirmation"]


# Bank transactions ----------------------------------------------------------------------------------------


def test_transactions_search_filter_and_export_within_the_status_tab(web: FlaskClient, session: Session,
                                                                    tenant: TenantFixture) -> None:
    from datetime import date
    from decimal import Decimal

    from core.models import BankAccount, BankTransaction

    account = BankAccount(tenant_id=tenant.tenant.id, iban="FR7630006000011234567890189")
    session.add(account)
    session.flush()
    for i, (who, amount, status) in enumerate((("Durand SA", "1200.00", "unmatched"), ("Loyer SCI", "-500.00",
                                                "unmatched"), ("Durand SA", "300.00", "matched"))):
        session.add(BankTransaction(tenant_id=tenant.tenant.id, account_id=account.id, fingerprint=f"f{i}",
                                    booking_date=date(2026, 11, 1 + i), amount=Decimal(amount), currency="EUR",
                                    counterparty=who, remittance=f"VIR {who} ref {i}", status=status))
    session.commit()
    page = page_text(web.get("/bank?status=unmatched&q=durand"))
    assert "VIR Durand SA ref 0" in page and "ref 2" not in page and "Loyer" not in page
    assert 'name="status" value="unmatched"' in page  # the tab is kept by the filter form
    assert "/bank/transactions/export.csv?status=unmatched&q=durand" in page.replace("&amp;", "&")
    assert "Loyer" in page_text(web.get("/bank?q=500"))
    rows = csv_rows(web.get("/bank/transactions/export.csv?amount_min=0&sort=-amount"))
    assert [row["amount"] for row in rows] == ["1200.00", "300.00"]
    assert "Filter ignored" in page_text(web.get("/bank?source=smtp"))


# The clients list ---------------------------------------------------------------------------------------


def test_clients_list_searches_names_within_the_viewers_clients(app: Flask, web: FlaskClient, session: Session,
                                                                storage: FileStorage, tenant: TenantFixture,
                                                                team: Team) -> None:  # noqa: F811
    page = page_text(web.get("/clients?q=BETA&sort=name"))
    assert "Beta SARL" in page and "Alpha SA" not in page
    assert "q=BETA" in page  # the sort links keep the search
    assert "Filter ignored" in page_text(web.get("/clients?q=" + "x" * 101))
    assert "Nothing matches these filters." in page_text(web.get("/clients?q=100%25"))  # % is literal
    member = app.test_client()
    assert login(member, team.member.email).status_code == 302
    assert "Beta SARL" not in page_text(member.get("/clients?q=beta"))
    response = app.test_client().get("/api/v1/clients?q=a", headers={"Authorization": f"Bearer {team.member_token}"})
    assert [item["name"] for item in response.get_json()["items"]] == ["Alpha SA"]
