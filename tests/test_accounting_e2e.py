"""Issue 18's "Done when", end to end on real components: a company with its identity set receives a supplier
invoice and a sales invoice by a real SMTP socket, a real ``inbox worker`` reads them, both are validated
(the direction decided from the identity), both entries are posted, the FEC downloaded through the API passes
the FEC checker, and a payment run for the supplier invoice gives a SEPA file valid against its XSD.
Both databases (the ``db_url`` fixture behind ``settings``)."""

from __future__ import annotations

import os
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import sepaxml
import xmlschema
from flask.testing import FlaskClient
from lxml import etree

from tests.conftest import TenantFixture
from tests.fecchecker import check_fec
from tests.invoicegen import make_email, make_invoice_pdf
from tests.services import run_worker_burst

# Not the IBAN tests/invoicegen.py prints in its footers: that one is the issuer's (our supplier's here), and
# ours printed on a supplier invoice would (rightly) count as evidence that we issued it.
SIREN, VAT, IBAN = "303265045", "FR40303265045", "FR1420041010050500013M02606"
SUPPLIER_IBAN = "FR7630006000011234567890189"  # printed in the footer of tests/invoicegen.py's invoices
XSD = os.path.join(os.path.dirname(sepaxml.__file__), "schemas", "pain.001.001.09.xsd")
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}

PURCHASE = dict(number="FA-2026-0042", issuer="Dupont Conseil SARL", client="Acme SAS",
                issue_date=date(2026, 11, 23), due_date=date(2026, 12, 23),
                net=Decimal("1000.00"), tax=Decimal("200.00"))
SALE = dict(number="VT-2026-0007", issuer="Acme SAS", client="Martin Industries SA",
            issue_date=date(2026, 11, 25), due_date=date(2026, 12, 25),
            net=Decimal("500.00"), tax=Decimal("100.00"), layout=2)


def api(client: FlaskClient, token: str, method: str, path: str, **kwargs: Any) -> Any:
    return client.open(f"/api/v1{path}", method=method, headers={"Authorization": f"Bearer {token}"}, **kwargs)


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def send(port: int, to: str, pdf: bytes, filename: str, sender: str) -> None:
    import smtplib

    raw = make_email(to, pdf, filename=filename, sender=sender, subject=f"Facture {filename}")
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        assert smtp.sendmail(sender, [to], raw) == {}


def entry_of(client: FlaskClient, token: str, invoice_id: int) -> dict:
    entries = ok(api(client, token, "GET", "/accounting/entries?per_page=100"))["items"]
    found = [e for e in entries if e["invoice_id"] == invoice_id]
    assert len(found) == 1, entries
    return found[0]


def test_forwarded_purchase_and_sale_are_posted_exported_as_fec_and_the_supplier_paid_by_sepa(
    settings, app, tenant: TenantFixture, smtp_port: int
) -> None:
    client, token = app.test_client(), tenant.token
    ok(api(client, token, "PUT", "/tenant", json={"legal_name": "Acme SAS", "country": "FR", "siren": SIREN,
                                                  "vat_number": VAT, "iban": IBAN}))

    send(smtp_port, tenant.address, make_invoice_pdf(**PURCHASE), "dupont.pdf", "compta@dupont-conseil.example")
    send(smtp_port, tenant.address, make_invoice_pdf(**SALE), "vente.pdf", "ventes@acme.example")
    run_worker_burst(settings)

    pending = ok(api(client, token, "GET", "/documents?status=pending"))["items"]
    by_number = {d["number"]: d for d in pending}
    assert set(by_number) == {"FA-2026-0042", "VT-2026-0007"}, pending
    # The identity decided each direction: addressed to us is a purchase, issued by us a sale.
    assert by_number["FA-2026-0042"]["direction"] == "payable"
    assert by_number["VT-2026-0007"]["direction"] == "receivable"

    purchase = ok(api(client, token, "POST", f"/documents/{by_number['FA-2026-0042']['id']}/validate", json={}))
    sale = ok(api(client, token, "POST", f"/documents/{by_number['VT-2026-0007']['id']}/validate", json={}))
    assert (purchase["direction"], purchase["client"], purchase["amount"]) == (
        "payable", "Dupont Conseil SARL", "1200.00")
    assert (sale["direction"], sale["client"], sale["amount"]) == ("receivable", "Martin Industries SA", "600.00")

    # Each validated invoice has its draft entry: counterparty, expense or revenue, VAT.
    numbers = []
    for invoice, journal, lines in (
        (purchase, "AC", {("401000", "0.00", "1200.00"), ("604000", "1000.00", "0.00"),
                          ("445660", "200.00", "0.00")}),
        (sale, "VT", {("411000", "600.00", "0.00"), ("706000", "0.00", "500.00"), ("445711", "0.00", "100.00")}),
    ):
        entry = entry_of(client, token, invoice["id"])
        assert entry["journal"] == journal and entry["status"] != "posted"
        assert entry["debit"] == entry["credit"] == invoice["amount"]
        got = {(ln["account"], ln["debit"], ln["credit"]) for ln in entry["lines"]}
        assert got == lines, entry["lines"]
        if entry["issues"]:  # e.g. a single VAT rate read from the PDF: the reviewer confirms it
            ok(api(client, token, "PUT", f"/accounting/entries/{entry['id']}", json={"confirm": True}))
        posted = ok(api(client, token, "POST", f"/accounting/entries/{entry['id']}/post", json={}))
        assert posted["status"] == "posted" and posted["valid_date"]
        numbers.append(posted["number"])
    assert numbers == [1, 2]

    fec = api(client, token, "GET", "/accounting/fec?year=2026")
    assert fec.status_code == 200, fec.get_data(as_text=True)
    name = f"{SIREN}FEC20261231.txt"
    assert f'filename="{name}"' in fec.headers["Content-Disposition"]
    assert check_fec(name, fec.data, date(2026, 1, 1), date(2026, 12, 31)) == []
    rows = [line.split("\t") for line in fec.data.decode("utf-8").splitlines()[1:]]
    assert [(r[0], r[2], r[8]) for r in rows if r[4].startswith(("401", "411"))] == [
        ("AC", "1", "FA-2026-0042"), ("VT", "2", "VT-2026-0007")]
    assert {(r[4], r[11], r[12]) for r in rows if r[2] == "1"} == {
        ("401000", "0,00", "1200,00"), ("604000", "1000,00", "0,00"), ("445660", "200,00", "0,00")}

    # Pay the supplier: its IBAN was read from its invoice's footer; its address, approval, a run, the file
    # valid against the XSD.
    supplier_id = purchase["client_id"]
    assert ok(api(client, token, "GET", f"/suppliers/{supplier_id}"))["iban"] == SUPPLIER_IBAN
    ok(api(client, token, "PUT", f"/suppliers/{supplier_id}",
           json={"street": "1 rue de la Paix", "postcode": "75002", "town": "Paris", "country": "FR"}))
    payables = ok(api(client, token, "GET", "/payables"))["items"]
    assert [p["id"] for p in payables] == [purchase["id"]]  # the sale is not something to pay
    ok(api(client, token, "POST", f"/payables/{purchase['id']}/approve"))
    run = ok(api(client, token, "POST", "/payment-runs",
                 json={"due_by": "2026-12-31", "execution_date": "2026-12-20"}), 201)
    assert (run["count"], run["total"]) == (1, "1200.00")
    file = api(client, token, "GET", f"/payment-runs/{run['id']}/file")
    assert file.status_code == 200 and "attachment" in file.headers["Content-Disposition"]
    xmlschema.XMLSchema(XSD).validate(file.get_data(as_text=True))  # raises when the file is not valid
    tree = etree.fromstring(file.get_data())
    assert tree.findtext(".//p:CdtTrfTxInf/p:Amt/p:InstdAmt", namespaces=NS) == "1200.00"
    assert tree.findtext(".//p:PmtId/p:EndToEndId", namespaces=NS) == "FA-2026-0042"
    assert tree.findtext(".//p:CdtrAcct/p:Id/p:IBAN", namespaces=NS) == SUPPLIER_IBAN
    assert tree.findtext(".//p:DbtrAcct/p:Id/p:IBAN", namespaces=NS) == IBAN
    assert tree.findtext(".//p:Cdtr/p:Nm", namespaces=NS) == "Dupont Conseil SARL"


# Bugs found on the way -------------------------------------------------------------------------


def test_a_purchase_picked_after_the_parties_were_swapped_gets_its_real_supplier(
    session, storage, tenant: TenantFixture, app
) -> None:
    """Our IBAN printed on a supplier invoice (a direct debit) leaves the direction undecided; extraction then
    matched the client as for a sale and swapped the parties (our company read as client). Picking
    "purchase" made our own company its supplier: the swap is now undone, and our company is refused as a
    counterparty with a message that says what to fix."""
    from core.documents import review
    from core.documents.processing import extract_document, store_file
    from core.errors import ValidationFailed
    from core.models import Client, Document, DocumentStatus
    from core.tenancy import company

    tid = tenant.tenant.id
    company.update_identity(session, tid, {"legal_name": "Acme SAS", "country": "FR", "siren": SIREN,
                                           "vat_number": VAT, "iban": SUPPLIER_IBAN})  # the footer's IBAN
    session.commit()

    def extracted(number: str) -> Document:
        pdf = make_invoice_pdf(**{**PURCHASE, "number": number})
        stored = store_file(session, storage, tid, pdf, "application/pdf")
        doc = Document(tenant_id=tid, file_id=stored.id, filename=f"{number}.pdf",
                       status=DocumentStatus.EXTRACTING.value, field_info={})
        session.add(doc)
        session.commit()
        assert extract_document(session, storage, doc.id)
        session.commit()
        return doc

    doc = extracted("FA-1")
    assert review.direction_undecided(doc) and (doc.issuer, doc.client) == ("Acme SAS", "Dupont Conseil SARL")
    invoice = review.validate_document(session, tid, doc.id, {"direction": "payable"}, None)
    session.commit()
    assert (invoice.issuer, invoice.direction) == ("Dupont Conseil SARL", "payable")
    assert session.get(Client, invoice.client_id).name == "Dupont Conseil SARL"
    validated = session.get(Document, doc.id)
    assert validated.client == "Acme SAS" and not validated.field_info["issuer"].get("swapped")

    # Typed by the reviewer: nothing undone, but our company is refused as the supplier, nothing written.
    other = extracted("FA-2")
    with pytest.raises(ValidationFailed) as caught:
        review.validate_document(session, tid, other.id, {"direction": "payable", "issuer": "ACME S.A.S."}, None)
    assert "your own company" in caught.value.errors["issuer"]
    session.rollback()
    assert session.get(Document, other.id).status == "pending"
    with pytest.raises(ValidationFailed) as caught:
        review.validate_document(session, tid, other.id, {"direction": "receivable", "client": "Acme SAS"}, None)
    assert "your own company" in caught.value.errors["client"]
    session.rollback()
    # Through the API: a 422 naming the field.
    refused = api(app.test_client(), tenant.token, "POST", f"/documents/{other.id}/validate",
                  json={"direction": "payable", "issuer": "Acme SAS"})
    assert refused.status_code == 422 and "your own company" in refused.get_json()["fields"]["issuer"]


def test_a_run_with_nothing_to_pay_says_why_each_invoice_was_left_out(session, storage, tenant: TenantFixture,
                                                                     app) -> None:
    """Found on the way: with the supplier's IBAN change waiting, a run without a choice answered only "no
    approved supplier invoice is due", which hid what to fix. Each invoice left out is now named with why."""
    from tests.test_payables import OTHER_IBAN, _payable, with_identity

    with_identity(session, tenant)
    tid = tenant.tenant.id
    first = _payable(session, storage, tid, "L-1", "100.00")
    second = _payable(session, storage, tid, "L-2", "90.00", iban=OTHER_IBAN)  # the IBAN change waits
    client = app.test_client()
    ok(api(client, tenant.token, "PUT", f"/suppliers/{first.client_id}",
           json={"street": "Hauptstr. 1", "postcode": "10115", "town": "Berlin", "country": "DE"}))
    for invoice in (first, second):
        ok(api(client, tenant.token, "POST", f"/payables/{invoice.id}/approve"))
    refused = api(client, tenant.token, "POST", "/payment-runs", json={"due_by": "2026-12-31"})
    assert refused.status_code == 422
    fields = refused.get_json()["fields"]
    assert "no approved" in fields["invoices"]
    assert "waits for an administrator" in fields["invoice L-1"] and "waits for an administrator" in fields[
        "invoice L-2"]
    ok(api(client, tenant.token, "POST", f"/suppliers/{first.client_id}/iban", json={"accept": True}))
    run = ok(api(client, tenant.token, "POST", "/payment-runs", json={"due_by": "2026-12-31"}), 201)
    assert (run["count"], run["total"]) == (2, "190.00")
