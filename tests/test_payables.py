"""Issue 18 items 1 and 6: the company's identity, the direction of documents, suppliers, approval, payment
runs (SEPA pain.001.001.09 validated against its XSD) and payments marked by hand. Real SQLite and
PostgreSQL (the ``db_url`` fixture), real worker extraction of an e-invoice, real HTTP calls to the app."""

from __future__ import annotations

import os
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import sepaxml
import xmlschema
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.documents import review
from core.documents.processing import extract_document, store_file
from core.errors import ValidationFailed
from core.files.storage import FileStorage
from core.models import AuditEvent, Client, Document, DocumentStatus, Invoice, Role, Tenant
from core.models_summaries import ClientSummary
from core.payables.models import SupplierIbanChange
from core.tenancy import company
from tests.conftest import TenantFixture
from tests.test_api import add_document, add_user

OUR_VAT, OUR_IBAN, OUR_SIREN = "FR40303265045", "FR7630006000011234567890189", "303265045"
SUPPLIER_VAT, SUPPLIER_IBAN = "DE136695976", "DE89370400440532013000"
OTHER_IBAN = "GB82WEST12345698765432"
XSD = os.path.join(os.path.dirname(sepaxml.__file__), "schemas", "pain.001.001.09.xsd")
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}

CII = """<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
 xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
 xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
 <rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter>
  <ram:ID>urn:cen.eu:en16931:2017</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter></rsm:ExchangedDocumentContext>
 <rsm:ExchangedDocument><ram:ID>{number}</ram:ID><ram:TypeCode>380</ram:TypeCode>
  <ram:IssueDateTime><udt:DateTimeString format="102">20261101</udt:DateTimeString></ram:IssueDateTime>
 </rsm:ExchangedDocument>
 <rsm:SupplyChainTradeTransaction>
  <ram:ApplicableHeaderTradeAgreement>
   <ram:SellerTradeParty><ram:Name>{seller}</ram:Name>
    <ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">{seller_vat}</ram:ID></ram:SpecifiedTaxRegistration>
   </ram:SellerTradeParty>
   <ram:BuyerTradeParty><ram:Name>{buyer}</ram:Name>
    <ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">{buyer_vat}</ram:ID></ram:SpecifiedTaxRegistration>
   </ram:BuyerTradeParty>
  </ram:ApplicableHeaderTradeAgreement>
  <ram:ApplicableHeaderTradeSettlement>
   <ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
   <ram:SpecifiedTradeSettlementPaymentMeans><ram:TypeCode>58</ram:TypeCode>
    <ram:PayeePartyCreditorFinancialAccount><ram:IBANID>{iban}</ram:IBANID></ram:PayeePartyCreditorFinancialAccount>
   </ram:SpecifiedTradeSettlementPaymentMeans>
   <ram:ApplicableTradeTax><ram:CalculatedAmount>20.00</ram:CalculatedAmount><ram:TypeCode>VAT</ram:TypeCode>
    <ram:BasisAmount>100.00</ram:BasisAmount><ram:CategoryCode>S</ram:CategoryCode>
    <ram:RateApplicablePercent>20</ram:RateApplicablePercent></ram:ApplicableTradeTax>
   <ram:SpecifiedTradePaymentTerms><ram:DueDateDateTime><udt:DateTimeString format="102">20261201</udt:DateTimeString>
    </ram:DueDateDateTime></ram:SpecifiedTradePaymentTerms>
   <ram:SpecifiedTradeSettlementHeaderMonetarySummation>
    <ram:TaxBasisTotalAmount>100.00</ram:TaxBasisTotalAmount>
    <ram:TaxTotalAmount currencyID="EUR">20.00</ram:TaxTotalAmount>
    <ram:GrandTotalAmount>120.00</ram:GrandTotalAmount>
    <ram:DuePayableAmount>120.00</ram:DuePayableAmount>
   </ram:SpecifiedTradeSettlementHeaderMonetarySummation>
  </ram:ApplicableHeaderTradeSettlement>
 </rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
"""


def cii(number: str, seller: str, seller_vat: str, buyer: str, buyer_vat: str, iban: str) -> bytes:
    return CII.format(number=number, seller=seller, seller_vat=seller_vat, buyer=buyer, buyer_vat=buyer_vat,
                      iban=iban).encode()


def with_identity(session: Session, tenant: TenantFixture, **extra: Any) -> Tenant:
    company.update_identity(session, tenant.tenant.id, {"legal_name": "Acme SAS", "country": "FR",
                                                        "siren": OUR_SIREN, "vat_number": OUR_VAT,
                                                        "iban": OUR_IBAN} | extra)
    session.commit()
    return session.get(Tenant, tenant.tenant.id)


def extracted(session: Session, storage: FileStorage, tenant_id: int, xml: bytes) -> Document:
    """The document as the worker leaves it after reading ``xml`` (the real extraction path)."""
    stored = store_file(session, storage, tenant_id, xml, "application/xml")
    doc = Document(tenant_id=tenant_id, file_id=stored.id, filename="facture.xml",
                   status=DocumentStatus.EXTRACTING.value, field_info={})
    session.add(doc)
    session.commit()
    assert extract_document(session, storage, doc.id)
    session.commit()
    return doc


def api(client: FlaskClient, token: str, method: str, path: str, **kwargs: Any) -> Any:
    return client.open(f"/api/v1{path}", method=method, headers={"Authorization": f"Bearer {token}"}, **kwargs)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# Identity ------------------------------------------------------------------------------------


def test_identity_is_checked_by_stdnum_and_audited(session: Session, tenant: TenantFixture) -> None:
    tenant_row = with_identity(session, tenant, iban="fr76 3000 6000 0112 3456 7890 189", vat_number="fr 40303265045")
    assert (tenant_row.iban, tenant_row.vat_number, tenant_row.siren) == (OUR_IBAN, OUR_VAT, OUR_SIREN)
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "settings.company")).all()
    assert events and events[-1].detail["changes"]["siren"] == [None, OUR_SIREN]
    bad = {"siren": "303265046", "vat_number": "FR00303265045", "iban": "FR7630006000011234567890180",
           "country": "XX"}
    with pytest.raises(ValidationFailed) as caught:
        company.update_identity(session, tenant.tenant.id, bad)
    assert set(caught.value.errors) == {"siren", "vat_number", "iban", "country"}
    assert "SIREN" in caught.value.errors["siren"] and "IBAN" in caught.value.errors["iban"]
    session.rollback()
    with pytest.raises(ValidationFailed) as caught:  # a valid German VAT id for a French company
        company.update_identity(session, tenant.tenant.id, {"vat_number": SUPPLIER_VAT})
    assert "country" in caught.value.errors["vat_number"]
    session.rollback()
    assert session.get(Tenant, tenant.tenant.id).vat_number == OUR_VAT  # nothing half-written


def test_put_tenant_api_admin_only_with_clear_errors(
    session: Session, client: FlaskClient, tenant: TenantFixture
) -> None:
    body = {"legal_name": "Acme SAS", "country": "fr", "siren": "303 265 045 00011", "vat_number": OUR_VAT,
            "iban": OUR_IBAN, "approval_mode": "two_above", "approval_threshold": "5000"}
    answer = api(client, tenant.token, "PUT", "/tenant", json=body)
    assert answer.status_code == 200, answer.get_json()
    got = answer.get_json()
    assert (got["country"], got["siren"], got["approval_mode"], got["approval_threshold"]) == (
        "FR", "30326504500011", "two_above", "5000.00")
    assert api(client, tenant.token, "GET", "/tenant").get_json()["iban"] == OUR_IBAN
    refused = api(client, tenant.token, "PUT", "/tenant", json={"siren": "123456789", "iban": "FR76 nonsense",
                                                                 "approval_mode": "always", "colour": "red"})
    assert refused.status_code == 422 and refused.get_json()["fields"] == {"colour": "unknown field"}
    refused = api(client, tenant.token, "PUT", "/tenant", json={"siren": "123456789", "approval_mode": "always"})
    assert refused.status_code == 422 and set(refused.get_json()["fields"]) == {"siren", "approval_mode"}
    member = add_user(session, tenant, "member@acme.example", Role.MEMBER)
    assert api(client, member, "PUT", "/tenant", json={"legal_name": "Evil"}).status_code == 403


# Direction at extraction and validation -------------------------------------------------------


def test_einvoice_issued_by_us_is_a_sale_addressed_to_us_a_purchase(
    session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    with_identity(session, tenant)
    tid = tenant.tenant.id
    sale = extracted(session, storage, tid, cii("V-1", "ACME S.A.S.", OUR_VAT, "Client GmbH", SUPPLIER_VAT, OUR_IBAN))
    assert sale.direction == "receivable" and sale.client == "Client GmbH"
    assert "sale" in sale.field_info["direction"]["note"] and not sale.field_info["direction"].get("undecided")
    purchase = extracted(session, storage, tid, cii("P-1", "Lieferant GmbH", SUPPLIER_VAT, "Acme SAS", OUR_VAT,
                                                    SUPPLIER_IBAN))
    assert purchase.direction == "payable" and purchase.issuer == "Lieferant GmbH"
    assert "purchase" in purchase.field_info["direction"]["note"]
    invoice = review.validate_document(session, tid, purchase.id, {}, None)
    session.commit()
    supplier = session.get(Client, invoice.client_id)
    assert (invoice.direction, supplier.role, supplier.name, supplier.iban, supplier.vat_id) == (
        "payable", "supplier", "Lieferant GmbH", SUPPLIER_IBAN, SUPPLIER_VAT)
    # Payables never enter the receivables summaries (money owed to us).
    assert session.scalars(select(ClientSummary).where(ClientSummary.client_id == supplier.id)).all() == []


def test_undecided_direction_is_flagged_and_must_be_picked(
    session: Session, storage: FileStorage, tenant: TenantFixture, client: FlaskClient
) -> None:
    with_identity(session, tenant)
    tid = tenant.tenant.id
    stranger = extracted(session, storage, tid, cii("X-1", "Alpha SARL", SUPPLIER_VAT, "Beta SA", "FR44732829320",
                                                    SUPPLIER_IBAN))
    assert stranger.field_info["direction"]["undecided"] is True
    refused = api(client, tenant.token, "POST", f"/documents/{stranger.id}/validate", json={})
    assert refused.status_code == 422 and "purchase" in refused.get_json()["fields"]["direction"]
    wrong = api(client, tenant.token, "POST", f"/documents/{stranger.id}/validate", json={"direction": "sideways"})
    assert wrong.status_code == 422 and wrong.get_json()["fields"]["direction"] == "must be receivable or payable"
    done = api(client, tenant.token, "POST", f"/documents/{stranger.id}/validate", json={"direction": "payable"})
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["direction"] == "payable" and done.get_json()["client"] == "Alpha SARL"
    # A company without an identity: taken as a sale, with a flag saying to set the identity.
    doc = add_document(session, storage, tid, number="NO-ID-1")
    assert review.direction_undecided(doc) is False


def test_the_review_page_offers_the_direction_control(
    session: Session, storage: FileStorage, tenant: TenantFixture, app: Flask
) -> None:
    from tests.test_dashboard import csrf_token, login

    with_identity(session, tenant)
    doc = extracted(session, storage, tenant.tenant.id, cii("X-2", "Alpha SARL", SUPPLIER_VAT, "Beta SA",
                                                            "FR44732829320", SUPPLIER_IBAN))
    browser = app.test_client()
    assert login(browser, tenant.admin.email).status_code == 302
    page = browser.get(f"/documents/{doc.id}")
    html = page.get_data(as_text=True)
    assert 'name="direction"' in html and "choose sale or purchase" in html
    form = {"action": "confirm", "csrf_token": csrf_token(page), "direction": "payable"}
    assert browser.post(f"/documents/{doc.id}", data=form).status_code == 302
    session.expire_all()
    assert session.get(Document, doc.id).status == "validated"
    assert session.get(Invoice, session.get(Document, doc.id).invoice_id).direction == "payable"


# Suppliers, IBAN changes ----------------------------------------------------------------------


def _payable(session: Session, storage: FileStorage, tid: int, number: str, amount: str,
             supplier: str = "Lieferant GmbH", due: date = date(2026, 12, 1),
             iban: str | None = SUPPLIER_IBAN) -> Invoice:
    doc = add_document(session, storage, tid, number=number, amount=amount, net_amount=None, tax_amount=None,
                       issuer=supplier, client="Acme SAS", due_date=due, issue_date=date(2026, 11, 1))
    if iban:
        doc.extraction_details = {"identifiers": {"ibans": [iban, OUR_IBAN]}}
    invoice = review.validate_document(session, tid, doc.id, {"direction": "payable"}, None)
    session.commit()
    return invoice


def test_suppliers_list_and_page_amounts_due_and_delay(
    session: Session, storage: FileStorage, tenant: TenantFixture, client: FlaskClient
) -> None:
    with_identity(session, tenant)
    tid = tenant.tenant.id
    first = _payable(session, storage, tid, "L-1", "100.00")
    _payable(session, storage, tid, "L-2", "250.50", due=date(2027, 3, 1))
    listing = api(client, tenant.token, "GET", "/suppliers").get_json()
    assert [(s["name"], s["amount_due"], s["open_invoices"]) for s in listing["items"]] == [
        ("Lieferant GmbH", "350.50", 2)]
    assert api(client, tenant.token, "GET", "/clients").get_json()["total"] == 0  # no supplier among clients
    assert api(client, tenant.token, "GET", "/invoices?direction=payable").get_json()["total"] == 2
    assert api(client, tenant.token, "GET", "/invoices?direction=receivable").get_json()["total"] == 0
    assert api(client, tenant.token, "GET", "/invoices?direction=both").status_code == 400
    marked = api(client, tenant.token, "POST", f"/payables/{first.id}/paid",
                 json={"paid_on": "2026-12-04", "method": "card"})
    assert marked.status_code == 200 and marked.get_json()["status"] == "paid"
    detail = api(client, tenant.token, "GET", f"/suppliers/{first.client_id}").get_json()
    assert detail["amount_due"] == "250.50" and detail["average_payment_delay_days"] == 3.0
    assert {i["number"] for i in detail["invoices"]} == {"L-1", "L-2"}
    again = api(client, tenant.token, "POST", f"/payables/{first.id}/paid", json={"paid_on": "2026-12-04",
                                                                                  "method": "card"})
    assert again.status_code == 409
    bad = api(client, tenant.token, "POST", f"/payables/{first.id}/paid", json={"paid_on": "04/12", "method": "gold"})
    assert bad.status_code == 422 and set(bad.get_json()["fields"]) == {"paid_on", "method"}


def test_a_changed_supplier_iban_waits_for_an_admin_and_is_audited(
    session: Session, storage: FileStorage, tenant: TenantFixture, client: FlaskClient
) -> None:
    with_identity(session, tenant)
    tid = tenant.tenant.id
    invoice = _payable(session, storage, tid, "L-1", "100.00")
    sid = invoice.client_id
    bad = api(client, tenant.token, "PUT", f"/suppliers/{sid}", json={"iban": "DE89370400440532013001"})
    assert bad.status_code == 422 and "IBAN" in bad.get_json()["fields"]["iban"]
    # A later invoice of the same supplier with another IBAN: the fraud pattern, held.
    _payable(session, storage, tid, "L-2", "90.00", iban=OTHER_IBAN)
    session.expire_all()
    assert session.get(Client, sid).iban == SUPPLIER_IBAN
    detail = api(client, tenant.token, "GET", f"/suppliers/{sid}").get_json()
    assert detail["iban_change_pending"] and detail["pending_iban"]["new_iban"] == OTHER_IBAN
    member = add_user(session, tenant, "member@acme.example", Role.MEMBER)
    assert api(client, member, "POST", f"/suppliers/{sid}/iban", json={"accept": True}).status_code == 403
    assert api(client, tenant.token, "POST", f"/suppliers/{sid}/iban", json={"accept": "yes"}).status_code == 400
    confirmed = api(client, tenant.token, "POST", f"/suppliers/{sid}/iban", json={"accept": True})
    assert confirmed.status_code == 200 and confirmed.get_json()["iban"] == OTHER_IBAN
    assert api(client, tenant.token, "POST", f"/suppliers/{sid}/iban", json={"accept": True}).status_code == 409
    actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == tid)))
    assert {"supplier.iban_set", "supplier.iban_change_requested", "supplier.iban_confirmed"} <= actions
    states = session.scalars(select(SupplierIbanChange.state)).all()
    assert states == ["confirmed"]


# Approval and payment runs ---------------------------------------------------------------------


def test_approval_policy_then_a_payment_run_validated_against_the_xsd(
    session: Session, storage: FileStorage, tenant: TenantFixture, client: FlaskClient
) -> None:
    with_identity(session, tenant, approval_mode="two_above", approval_threshold="1000")
    tid = tenant.tenant.id
    small = _payable(session, storage, tid, "L-1", "100.00")
    big = _payable(session, storage, tid, "L/2 é", "1500.00")
    late = _payable(session, storage, tid, "L-3", "40.00", due=date(2027, 6, 1))
    supplier = session.get(Client, small.client_id)
    supplier.town, supplier.country, supplier.street, supplier.postcode = "Berlin", "DE", "Hauptstr. 1", "10115"
    session.commit()
    unapproved = api(client, tenant.token, "POST", "/payment-runs", json={"due_by": "2026-12-31",
                                                                        "invoice_ids": [small.id]})
    assert unapproved.status_code == 422
    assert unapproved.get_json()["fields"] == {"invoice L-1": "not approved for payment yet"}
    nothing = api(client, tenant.token, "POST", "/payment-runs", json={"due_by": "2026-12-31"})
    assert nothing.status_code == 422 and "no approved" in nothing.get_json()["fields"]["invoices"]
    assert api(client, tenant.token, "POST", f"/payables/{small.id}/approve").get_json()["approval"] == "approved"
    assert api(client, tenant.token, "POST", f"/payables/{big.id}/approve").get_json()["approval"] == (
        "awaiting_second_approval")
    same = api(client, tenant.token, "POST", f"/payables/{big.id}/approve")
    assert same.status_code == 409 and "another person" in same.get_json()["error"]
    second = add_user(session, tenant, "cfo@acme.example", Role.MEMBER)
    assert api(client, second, "POST", f"/payables/{big.id}/approve").get_json()["approval"] == "approved"
    assert api(client, second, "POST", f"/payables/{late.id}/approve").status_code == 200
    waiting = api(client, tenant.token, "GET", "/payables?state=approved").get_json()
    assert waiting["total"] == 3
    created = api(client, tenant.token, "POST", "/payment-runs",
                  json={"due_by": "2026-12-31", "execution_date": "2026-12-10"})
    assert created.status_code == 201, created.get_json()
    run = created.get_json()
    assert (run["count"], run["total"]) == (2, "1600.00")
    assert run["skipped"] == [{"invoice_id": late.id, "reason": "not due by 2026-12-31"}]
    assert {i["end_to_end_id"] for i in run["items"]} == {"L-1", "L/2 -"}
    file = api(client, tenant.token, "GET", f"/payment-runs/{run['id']}/file")
    assert file.status_code == 200 and "attachment" in file.headers["Content-Disposition"]
    xmlschema.XMLSchema(XSD).validate(file.get_data(as_text=True))  # raises when the file is not valid
    tree = etree.fromstring(file.get_data())
    amounts = [t.text for t in tree.findall(".//p:CdtTrfTxInf/p:Amt/p:InstdAmt", NS)]
    assert sorted(amounts) == ["100.00", "1500.00"] and tree.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=NS) == (
        "1600.00")
    assert tree.findtext(".//p:DbtrAcct/p:Id/p:IBAN", namespaces=NS) == OUR_IBAN
    assert tree.findtext(".//p:Cdtr/p:PstlAdr/p:TwnNm", namespaces=NS) == "Berlin"
    assert {t.text for t in tree.findall(".//p:PmtId/p:EndToEndId", NS)} == {"L-1", "L/2 -"}
    again = api(client, tenant.token, "POST", "/payment-runs", json={"due_by": "2026-12-31",
                                                                   "invoice_ids": [small.id]})
    assert again.status_code == 422 and "already in payment run" in again.get_json()["fields"]["invoice L-1"]
    assert api(client, tenant.token, "GET", "/payment-runs").get_json()["total"] == 1


def test_a_run_refuses_a_supplier_whose_iban_change_waits(
    session: Session, storage: FileStorage, tenant: TenantFixture, client: FlaskClient
) -> None:
    with_identity(session, tenant, approval_mode="one")
    tid = tenant.tenant.id
    invoice = _payable(session, storage, tid, "L-1", "100.00")
    _payable(session, storage, tid, "L-2", "10.00", iban=OTHER_IBAN)
    assert api(client, tenant.token, "POST", f"/payables/{invoice.id}/approve").status_code == 200
    refused = api(client, tenant.token, "POST", "/payment-runs", json={"due_by": "2026-12-31",
                                                                     "invoice_ids": [invoice.id]})
    assert refused.status_code == 422
    assert "administrator's confirmation" in refused.get_json()["fields"]["invoice L-1"]
    receivable = add_document(session, storage, tid, number="S-1")
    sale = review.validate_document(session, tid, receivable.id, {"direction": "receivable"}, None)
    session.commit()
    assert api(client, tenant.token, "POST", f"/payables/{sale.id}/approve").status_code == 404
    no_iban = session.get(Tenant, tid)
    no_iban.iban = None
    session.commit()
    missing = api(client, tenant.token, "POST", "/payment-runs", json={"due_by": "2026-12-31"})
    assert missing.status_code == 422 and "IBAN" in missing.get_json()["fields"]["iban"]


def test_other_tenants_see_none_of_it(
    session: Session, storage: FileStorage, tenant: TenantFixture, other_tenant: TenantFixture, client: FlaskClient
) -> None:
    with_identity(session, tenant)
    invoice = _payable(session, storage, tenant.tenant.id, "L-1", "100.00")
    assert api(client, tenant.token, "POST", f"/payables/{invoice.id}/approve").status_code == 200
    run = api(client, tenant.token, "POST", "/payment-runs", json={"due_by": "2026-12-31"}).get_json()
    for method, path in (("GET", f"/suppliers/{invoice.client_id}"), ("POST", f"/payables/{invoice.id}/approve"),
                         ("GET", f"/payment-runs/{run['id']}"), ("GET", f"/payment-runs/{run['id']}/file"),
                         ("PUT", f"/suppliers/{invoice.client_id}")):
        assert api(client, other_tenant.token, method, path, json={}).status_code == 404, path
    assert api(client, other_tenant.token, "GET", "/suppliers").get_json()["total"] == 0
    assert api(client, other_tenant.token, "GET", "/payment-runs").get_json()["total"] == 0
    assert Decimal(run["total"]) == Decimal("100.00")


def exercise_payables_api(api: Any, session: Session, storage: FileStorage, tid: int) -> None:
    """Each issue-18 route once with a success, through tests/test_openapi.py's schema-checking caller."""
    api.call("PUT", "/tenant", "/tenant", 200, json={"legal_name": "Acme SAS", "country": "FR", "siren": OUR_SIREN,
                                                     "vat_number": OUR_VAT, "iban": OUR_IBAN, "approval_mode": "one"})
    session.expire_all()  # the app changed the tenant through its own connection
    invoice = _payable(session, storage, tid, "OA-1", "75.00")
    _payable(session, storage, tid, "OA-2", "5.00", iban=OTHER_IBAN)  # a changed IBAN, waiting for an admin
    sid = invoice.client_id
    assert api.call("GET", "/suppliers", "/suppliers", 200)["total"] == 1
    # The list's search, filters and sorts (issue 17 item 6): by an invoice number, an amount due range.
    found = api.call("GET", "/suppliers?q=oa-2&amount_min=1&date_from=2026-01-01&sort=-overdue&currency=EUR",
                     "/suppliers", 200)
    assert [s["id"] for s in found["items"]] == [sid]
    assert api.call("GET", "/suppliers?q=nobody", "/suppliers", 200)["total"] == 0
    api.call("GET", "/suppliers?status=paid", "/suppliers", 400)
    api.call("GET", f"/suppliers/{sid}", "/suppliers/{supplier_id}", 200)
    api.call("PUT", f"/suppliers/{sid}", "/suppliers/{supplier_id}", 200, json={"town": "Berlin", "country": "DE"})
    api.call("POST", f"/suppliers/{sid}/iban", "/suppliers/{supplier_id}/iban", 200, json={"accept": False})
    assert api.call("GET", "/payables?state=awaiting_approval", "/payables", 200)["total"] == 2
    api.call("POST", f"/payables/{invoice.id}/approve", "/payables/{invoice_id}/approve", 200)
    other = api.call("GET", "/payables?state=awaiting_approval", "/payables", 200)["items"][0]
    api.call("POST", f"/payables/{other['id']}/paid", "/payables/{invoice_id}/paid", 200,
             json={"paid_on": "2026-01-10", "method": "cheque"})
    run = api.call("POST", "/payment-runs", "/payment-runs", 201, json={"due_by": "2026-12-31"})
    api.call("GET", "/payment-runs", "/payment-runs", 200)
    api.call("GET", f"/payment-runs/{run['id']}", "/payment-runs/{run_id}", 200)
    xml = api.call("GET", f"/payment-runs/{run['id']}/file", "/payment-runs/{run_id}/file", 200)
    xmlschema.XMLSchema(XSD).validate(xml.decode("utf-8"))
    api.call("POST", "/payment-runs", "/payment-runs", 422, json={"due_by": "2026-12-31",
                                                                 "invoice_ids": [invoice.id]})


# Dashboard pages (forms with their CSRF token) ---------------------------------------------------


def test_dashboard_company_suppliers_approval_and_run(
    session: Session, storage: FileStorage, tenant: TenantFixture, app: Flask
) -> None:
    from tests.test_dashboard import csrf_token, login

    browser = app.test_client()
    assert login(browser, tenant.admin.email).status_code == 302
    page = browser.get("/settings/company")
    assert page.status_code == 200 and 'name="siren"' in page.get_data(as_text=True)
    form = {"legal_name": "Acme SAS", "country": "FR", "siren": "123", "vat_number": OUR_VAT, "iban": OUR_IBAN,
            "approval_mode": "one", "approval_threshold": ""}
    assert browser.post("/settings/company", data=form).status_code == 400  # no CSRF token: refused
    refused = browser.post("/settings/company", data=form | {"csrf_token": csrf_token(page)})
    assert refused.status_code == 422 and "SIREN" in refused.get_data(as_text=True)
    saved = browser.post("/settings/company", data=form | {"siren": OUR_SIREN, "csrf_token": csrf_token(page)})
    assert saved.status_code == 302
    session.expire_all()
    assert session.get(Tenant, tenant.tenant.id).siren == OUR_SIREN
    invoice = _payable(session, storage, tenant.tenant.id, "D-1", "80.00")
    listing = browser.get("/suppliers").get_data(as_text=True)
    assert "Lieferant GmbH" in listing and "80.00" in listing
    supplier_page = browser.get(f"/suppliers/{invoice.client_id}")
    assert SUPPLIER_IBAN in supplier_page.get_data(as_text=True)
    token = csrf_token(supplier_page)
    browser.post(f"/suppliers/{invoice.client_id}", data={"iban": OTHER_IBAN, "town": "Berlin", "csrf_token": token})
    held = browser.get(f"/suppliers/{invoice.client_id}").get_data(as_text=True)
    assert 'id="iban-change"' in held and OTHER_IBAN in held
    payables = browser.get("/payables")
    assert "D-1" in payables.get_data(as_text=True)
    assert browser.post(f"/payables/{invoice.id}/approve", data={"csrf_token": csrf_token(payables)}).status_code == 302
    runs_page = browser.get("/payment-runs?due_by=2026-12-31")
    html = runs_page.get_data(as_text=True)
    assert "D-1" in html and "administrator" in html  # the pending IBAN change keeps it out of the run
    browser.post(f"/suppliers/{invoice.client_id}/iban", data={"decision": "reject", "csrf_token": token})
    runs_page = browser.get("/payment-runs?due_by=2026-12-31")
    assert 'name="invoice_id"' in runs_page.get_data(as_text=True)
    created = browser.post("/payment-runs", data={"due_by": "2026-12-31", "execution_date": "2026-12-10",
                                                  "invoice_id": str(invoice.id), "csrf_token": csrf_token(runs_page)})
    assert created.status_code == 302 and "/payment-runs/" in created.headers["Location"]
    detail = browser.get(created.headers["Location"])
    assert "D-1" in detail.get_data(as_text=True)
    file = browser.get(created.headers["Location"] + "/file")
    assert file.status_code == 200 and file.headers["Content-Disposition"].startswith("attachment")
    xmlschema.XMLSchema(XSD).validate(file.get_data(as_text=True))
    french = browser.get("/payables", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Factures fournisseurs" in french


def test_a_restricted_member_sees_only_assigned_suppliers_and_their_runs(
    session: Session, storage: FileStorage, tenant: TenantFixture, client: FlaskClient
) -> None:
    from core.models import ClientAssignment, User

    with_identity(session, tenant)
    invoice = _payable(session, storage, tenant.tenant.id, "L-1", "100.00")
    assert api(client, tenant.token, "POST", f"/payables/{invoice.id}/approve").status_code == 200
    run = api(client, tenant.token, "POST", "/payment-runs", json={"due_by": "2026-12-31"}).get_json()
    member = add_user(session, tenant, "member@acme.example", Role.MEMBER)
    session.get(Tenant, tenant.tenant.id).restrict_access = True
    session.commit()
    for path in ("/suppliers", "/payables", "/payment-runs"):
        assert api(client, member, "GET", path).get_json()["total"] == 0, path
    assert api(client, member, "GET", f"/payment-runs/{run['id']}/file").status_code == 404
    user = session.scalars(select(User).where(User.email == "member@acme.example")).one()
    session.add(ClientAssignment(tenant_id=tenant.tenant.id, client_id=invoice.client_id, user_id=user.id))
    session.commit()
    for path in ("/suppliers", "/payables", "/payment-runs"):
        assert api(client, member, "GET", path).get_json()["total"] == 1, path
    assert api(client, member, "GET", f"/payment-runs/{run['id']}/file").status_code == 200


def test_the_statement_carrying_the_transfer_marks_the_payable_paid(
    session: Session, storage: FileStorage, tenant: TenantFixture, client: FlaskClient
) -> None:
    import io

    from tests.bankhelpers import csv_row, statement_csv

    with_identity(session, tenant)
    invoice = _payable(session, storage, tenant.tenant.id, "LF-2026-9", "120.00")
    assert api(client, tenant.token, "POST", f"/payables/{invoice.id}/approve").status_code == 200
    run = api(client, tenant.token, "POST", "/payment-runs", json={"due_by": "2026-12-31"})
    assert run.status_code == 201
    statement = statement_csv(csv_row(date(2026, 12, 10), "LF-2026-9", "-120,00", "Lieferant GmbH", SUPPLIER_IBAN))
    imported = api(client, tenant.token, "POST", "/bank-statements", content_type="multipart/form-data",
                   data={"file": (io.BytesIO(statement), "umsaetze.csv")})
    assert imported.status_code == 201, imported.get_json()
    paid = api(client, tenant.token, "GET", f"/invoices/{invoice.id}").get_json()
    assert (paid["status"], paid["paid_at"]) == ("paid", "2026-12-10")
    detail = api(client, tenant.token, "GET", f"/suppliers/{invoice.client_id}").get_json()
    assert detail["amount_due"] == "0.00" and detail["average_payment_delay_days"] == 9.0


def test_direction_decisions_and_the_file_check_refuse_what_they_should(tenant: TenantFixture) -> None:
    from core.payables import runs

    us = Tenant(name="x", legal_name="Acme Industries SAS", vat_number=OUR_VAT, iban=OUR_IBAN)
    read_wrong = company.decide_direction(us, company.Parties(seller_name="ACME Industr1es S.A.S."))
    assert read_wrong.direction == "receivable" and read_wrong.evidence == ("issuer name",)
    both = company.decide_direction(us, company.Parties(seller_vat=OUR_VAT, buyer_name="Acme Industries"))
    assert both.direction is None and "both" in both.note
    assert company.decide_direction(us, company.Parties(buyer_vat=OUR_VAT)).direction == "payable"
    assert company.decide_direction(Tenant(name="x"), company.Parties()).note == company.NO_IDENTITY
    with pytest.raises(ValidationFailed) as caught:
        runs.validate_file(b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"/>')
    assert "pain.001.001.09" in caught.value.errors["file"]
    assert runs.end_to_end_id("FA 2026/001 «été» " + "9" * 40) == ("FA 2026/001 --t-- " + "9" * 40)[:35]
