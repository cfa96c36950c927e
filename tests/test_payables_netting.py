"""Payables, issue 18 gaps: supplier credit notes netted in payment runs, write-offs of supplier balances
booked as a gain, and the payables list filtered by approval state in SQL. SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import xmlschema
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounting.models import EntryStatus, JournalEntry
from core.accounting.settlements import sync_settlements
from core.banking import reconciliation
from core.documents import review
from core.files.storage import FileStorage
from core.models import BankAccount, BankTransaction, Invoice, Match, Role, Tenant
from core.payables import approval
from core.payables.models import PaymentRun, PaymentRunItem
from core.tenancy import access
from tests.bankhelpers import csv_row, statement_csv
from tests.conftest import TenantFixture
from tests.test_api import add_document, add_user
from tests.test_dashboard import login
from tests.test_payables import NS, OTHER_IBAN, SUPPLIER_IBAN, XSD, _payable, with_identity

D = Decimal
SUPPLIER = "Lieferant GmbH"


def api(client: FlaskClient, token: str, method: str, path: str, **kwargs: Any) -> Any:
    return client.open(f"/api/v1{path}", method=method, headers={"Authorization": f"Bearer {token}"}, **kwargs)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def credit_note(session: Session, storage: FileStorage, tid: int, number: str, amount: str,
                supplier: str = SUPPLIER) -> Invoice:
    doc = add_document(session, storage, tid, number=number, amount=amount, net_amount=None, tax_amount=None,
                       doc_type="credit_note", issuer=supplier, client="Acme SAS", due_date=None,
                       issue_date=date(2026, 11, 5))
    doc.extraction_details = {"identifiers": {"ibans": [SUPPLIER_IBAN]}}
    note = review.validate_document(session, tid, doc.id, {"direction": "payable"}, None)
    session.commit()
    assert (note.doc_type, note.direction) == ("credit_note", "payable")
    return note


def approve(client: FlaskClient, token: str, *invoices: Invoice) -> None:
    for invoice in invoices:
        assert api(client, token, "POST", f"/payables/{invoice.id}/approve").status_code == 200, invoice.number


def state(session: Session, invoice_id: int) -> tuple[str, Decimal]:
    session.expire_all()
    invoice = session.get(Invoice, invoice_id)
    return invoice.status, invoice.amount_paid


# Credit notes netted in payment runs ---------------------------------------------------------------------


def test_a_credit_note_is_netted_into_one_transfer_for_its_supplier(
    app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture, client: FlaskClient
) -> None:
    with_identity(session, tenant, approval_mode="one")
    tid = tenant.tenant.id
    first = _payable(session, storage, tid, "L-1", "100.00", due=date(2026, 11, 20))
    second = _payable(session, storage, tid, "L-2", "50.00", due=date(2026, 12, 1))
    other = _payable(session, storage, tid, "O-1", "40.00", supplier="Autre SARL", iban=OTHER_IBAN)
    note = credit_note(session, storage, tid, "LA-1", "30.00")
    approve(client, tenant.token, first, second, other)

    # The preview names the credit note deducted.
    web = app.test_client()
    assert login(web, tenant.admin.email).status_code == 302
    preview = web.get("/payment-runs?due_by=2026-12-31").get_data(as_text=True)
    assert "LA-1" in preview and 'id="run-netting"' in preview

    created = api(client, tenant.token, "POST", "/payment-runs", json={"due_by": "2026-12-31",
                                                                     "execution_date": "2026-12-10"})
    assert created.status_code == 201, created.get_json()
    run = created.get_json()
    assert (run["count"], run["total"]) == (2, "160.00")  # (100 + 50 - 30) + 40
    assert sorted((i["invoice_id"], i["amount"], i["end_to_end_id"]) for i in run["items"]) == sorted([
        (first.id, "100.00", "L-1+L-2"), (second.id, "50.00", "L-1+L-2"), (note.id, "-30.00", "L-1+L-2"),
        (other.id, "40.00", "O-1")])

    xml = api(client, tenant.token, "GET", f"/payment-runs/{run['id']}/file").get_data()
    xmlschema.XMLSchema(XSD).validate(xml.decode("utf-8"))  # raises when the file is not valid
    tree = etree.fromstring(xml)
    transfers = {t.findtext("p:PmtId/p:EndToEndId", namespaces=NS): (
        t.findtext("p:Amt/p:InstdAmt", namespaces=NS), t.findtext("p:RmtInf/p:Ustrd", namespaces=NS),
        t.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS)) for t in tree.findall(".//p:CdtTrfTxInf", NS)}
    assert transfers == {"L-1+L-2": ("120.00", "L-1 + L-2 - LA-1", SUPPLIER_IBAN),
                         "O-1": ("40.00", "O-1", OTHER_IBAN)}
    assert tree.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=NS) == "160.00"
    assert tree.findtext(".//p:GrpHdr/p:NbOfTxs", namespaces=NS) == "2"

    # The run settled the credit note against the oldest invoice; the transfer pays what is left.
    assert state(session, note.id) == ("paid", D("30.00"))
    assert state(session, first.id) == ("partially_paid", D("30.00"))
    assert state(session, second.id) == ("open", D("0.00"))

    # Idempotent: nothing is in two runs, and the credit note is never netted again.
    again = api(client, tenant.token, "POST", "/payment-runs", json={"due_by": "2026-12-31"})
    assert again.status_code == 422
    later = _payable(session, storage, tid, "L-3", "80.00")
    approve(client, tenant.token, later)
    third = api(client, tenant.token, "POST", "/payment-runs", json={"due_by": "2026-12-31"}).get_json()
    assert [(i["invoice_id"], i["amount"], i["end_to_end_id"]) for i in third["items"]] == [
        (later.id, "80.00", "L-3")]

    # The statement carrying the net transfer marks both invoices paid.
    statement = statement_csv(csv_row(date(2026, 12, 10), "L-1+L-2 L-1 + L-2 - LA-1", "-120,00", SUPPLIER,
                                      SUPPLIER_IBAN))
    imported = api(client, tenant.token, "POST", "/bank-statements", content_type="multipart/form-data",
                   data={"file": (io.BytesIO(statement), "umsaetze.csv")})
    assert imported.status_code == 201, imported.get_json()
    assert state(session, first.id) == ("paid", D("100.00"))
    assert state(session, second.id) == ("paid", D("50.00"))
    detail = api(client, tenant.token, "GET", f"/suppliers/{first.client_id}").get_json()
    assert detail["amount_due"] == "80.00"  # L-3 only: the credit note is settled, not owed back


def test_credit_notes_covering_the_invoices_leave_the_supplier_out_and_settle_nothing(
    session: Session, storage: FileStorage, tenant: TenantFixture, client: FlaskClient
) -> None:
    with_identity(session, tenant, approval_mode="one")
    tid = tenant.tenant.id
    invoice = _payable(session, storage, tid, "L-1", "50.00")
    other = _payable(session, storage, tid, "O-1", "40.00", supplier="Autre SARL", iban=OTHER_IBAN)
    note = credit_note(session, storage, tid, "LA-1", "80.00")
    approve(client, tenant.token, invoice, other)

    chosen = api(client, tenant.token, "POST", "/payment-runs", json={"due_by": "2026-12-31",
                                                                    "invoice_ids": [invoice.id]})
    assert chosen.status_code == 422
    reason = chosen.get_json()["fields"]["invoice L-1"]
    assert "LA-1" in reason and "80.00" in reason and "50.00" in reason and "nothing to transfer" in reason

    created = api(client, tenant.token, "POST", "/payment-runs", json={"due_by": "2026-12-31"})
    assert created.status_code == 201
    run = created.get_json()
    assert [i["invoice_id"] for i in run["items"]] == [other.id] and run["total"] == "40.00"
    assert run["skipped"] == [{"invoice_id": invoice.id, "reason": reason}]
    assert state(session, invoice.id) == ("open", D("0.00"))
    assert state(session, note.id) == ("open", D("0.00"))
    assert session.scalars(select(PaymentRunItem.invoice_id).where(
        PaymentRunItem.invoice_id.in_([invoice.id, note.id]))).all() == []

    french = skipped_in_french(client, tenant)
    assert "les avoirs ouverts du fournisseur LA-1 (80.00 EUR) couvrent" in french and "rien à virer" in french


def skipped_in_french(client: FlaskClient, tenant: TenantFixture) -> str:
    """The payment-run page in French: why invoices are left out, translated with their values."""
    web = client.application.test_client()
    assert login(web, tenant.admin.email).status_code == 302
    page = web.get("/payment-runs?due_by=2026-12-31", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    start = page.index('id="run-skipped"')
    return page[start: page.index("</ul>", start)]


def test_a_transfer_of_many_invoices_references_them_within_35_characters() -> None:
    from core.models import Client
    from core.payables.runs import Transfer

    supplier = Client(name=SUPPLIER, iban=SUPPLIER_IBAN)
    invoices = [Invoice(number=f"FACTURE-2026-{n:05d}", amount=D("10.00"), amount_paid=D("0")) for n in range(4)]
    transfer = Transfer(supplier, invoices, [Invoice(number="AV-1", amount=D("5.00"), amount_paid=D("0"))])
    assert transfer.end_to_end == "FACTURE-2026-00000+3" and transfer.cents == 3500
    assert transfer.remittance.endswith(" - AV-1")


# Write-offs: a supplier paid less is a gain, a client paying less an expense ---------------------------


@pytest.mark.parametrize("chart,gain,bank,control", [("pcg", "758000", "512001", "401000"),
                                                     ("skr03", "2700", "1201", "1600"),
                                                     ("skr04", "4830", "1801", "3300")])
def test_a_supplier_write_off_is_booked_as_a_gain(session: Session, storage: FileStorage, tenant: TenantFixture,
                                                  chart: str, gain: str, bank: str, control: str) -> None:
    tid = tenant.tenant.id
    session.get(Tenant, tid).chart = chart
    session.commit()
    purchase = _payable(session, storage, tid, "W-1", "120.00")
    draft = _settled(session, tenant, purchase, "-118.00")
    assert [(ln.account, str(ln.debit), str(ln.credit)) for ln in draft.lines] == [
        (control, "120.00", "0.00"), (bank, "0.00", "118.00"), (gain, "0.00", "2.00")]
    assert draft.status == EntryStatus.READY.value  # the gain account is in the seeded chart


def test_a_client_write_off_keeps_its_expense_account(session: Session, storage: FileStorage,
                                                      tenant: TenantFixture) -> None:
    tid = tenant.tenant.id
    doc = add_document(session, storage, tid, number="S-1", amount=D("120.00"), net_amount=D("100.00"),
                       tax_amount=D("20.00"), client="Client SA", issuer="Acme SAS")
    sale = review.validate_document(session, tid, doc.id, {"direction": "receivable"}, None)
    session.commit()
    draft = _settled(session, tenant, sale, "118.00")
    assert [(ln.account, str(ln.debit), str(ln.credit)) for ln in draft.lines] == [
        ("512001", "118.00", "0.00"), ("627000", "2.00", "0.00"), ("411000", "0.00", "120.00")]


def _settled(session: Session, tenant: TenantFixture, invoice: Invoice, cash: str) -> JournalEntry:
    """The settlement draft of a payment of ``cash`` for the invoice, the rest written off."""
    tid = tenant.tenant.id
    account = BankAccount(tenant_id=tid, iban="FR7630006000011234567890189")
    session.add(account)
    session.flush()
    tx = BankTransaction(tenant_id=tid, account_id=account.id, fingerprint=f"w-{invoice.id}",
                         booking_date=date(2026, 12, 5), amount=D(cash), counterparty="Counterparty")
    session.add(tx)
    session.flush()
    match = Match(tenant_id=tid, transaction_id=tx.id, invoice_id=invoice.id, amount=D("120.00"),
                  write_off=D("120.00") - abs(D(cash)))
    session.add(match)
    session.commit()
    reconciliation.accept_match(session, tid, match.id, tenant.admin.id)
    assert sync_settlements(session, tid) == 1
    session.commit()
    return session.scalars(select(JournalEntry).where(JournalEntry.source == f"match:{match.id}")).one()


# The payables list filtered by approval state in SQL ----------------------------------------------------


def test_the_approval_state_filter_is_sql_and_pages_like_the_policy_says(
    session: Session, storage: FileStorage, tenant: TenantFixture, client: FlaskClient
) -> None:
    with_identity(session, tenant, approval_mode="two_above", approval_threshold="1000")
    tid = tenant.tenant.id
    # 900.00 sorts after 1000.00 as text (SQLite stores money as text): compared as numbers.
    amounts = {"P-900": "900.00", "P-1000": "1000.00", "P-1000.01": "1000.01", "P-1500": "1500.00",
               "P-99": "99.00", "P-20000": "20000.00"}
    made = {n: _payable(session, storage, tid, n, a, due=date(2026, 11, 1 + i)) for i, (n, a) in
            enumerate(amounts.items())}
    credit_note(session, storage, tid, "PA-1", "10.00")  # credit notes have no approval state
    paid = made["P-99"]
    second = add_user(session, tenant, "cfo@acme.example", Role.MEMBER)
    approve(client, tenant.token, made["P-900"], made["P-1500"], made["P-1000.01"], made["P-20000"], paid)
    approve(client, second, made["P-1000.01"], made["P-20000"])
    assert api(client, tenant.token, "POST", f"/payables/{paid.id}/paid",
               json={"paid_on": "2026-11-20", "method": "card"}).status_code == 200
    expected = {approval.APPROVED: ["P-900", "P-1000.01", "P-20000"], approval.AWAITING: ["P-1000"],
                approval.AWAITING_SECOND: ["P-1500"]}
    session.expire_all()
    viewer = access.viewer_for(session, tid, tenant.admin.id)
    tenant_row = session.get(Tenant, tid)
    for wanted, numbers in expected.items():
        rows = session.scalars(approval.payables_query(viewer, wanted)).all()  # filtered by the database
        assert [r.number for r in rows] == numbers, wanted
        assert set(approval.states(session, tenant_row, list(rows)).values()) == {wanted}
        first_page = api(client, tenant.token, "GET", f"/payables?state={wanted}&per_page=1").get_json()
        assert (first_page["total"], first_page["pages"]) == (len(numbers), len(numbers)), wanted
        assert [(i["number"], i["approval"]) for i in first_page["items"]] == [(numbers[0], wanted)]
        last = api(client, tenant.token, "GET", f"/payables?state={wanted}&per_page=1&page={len(numbers)}")
        assert [i["number"] for i in last.get_json()["items"]] == [numbers[-1]]
    # Another policy, the same rows: "none" approves everything, nothing waits.
    tenant_row.approval_mode = "none"
    session.commit()
    assert api(client, tenant.token, "GET", "/payables?state=approved").get_json()["total"] == 5
    assert api(client, tenant.token, "GET", "/payables?state=awaiting_approval").get_json()["total"] == 0
    tenant_row.approval_mode = "one"
    session.commit()
    assert api(client, tenant.token, "GET", "/payables?state=awaiting_approval").get_json()["total"] == 1
    assert session.scalar(select(PaymentRun.id)) is None
