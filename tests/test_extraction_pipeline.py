"""``processing.extract_document`` end to end on real files: stored file -> document pending or failed.

Real database (SQLite, and PostgreSQL when TEST_DATABASE_URL is set), real storage, real Tesseract, real
Redis and RQ worker for the timeout.
"""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from PIL import Image
from rq.registry import FailedJobRegistry
from sqlalchemy.orm import Session

from core.documents import processing
from core.files.records import store_file
from core.files.storage import FileStorage
from core.models import Client, Document, DocumentStatus
from core.receivables.clients import match_client, normalize_name
from tests.corpus import CORPUS as SHARED
from tests.invoicegen import encrypt_pdf, make_invoice_pdf, make_scanned_pdf, render_png
from worker.queue import enqueue_extract, get_queue

EINVOICES = SHARED / "einvoice"
EINSTEIN = {  # zc_EN16931_Einfach: the FeRD sample, as MANIFEST.tsv gives it
    "doc_type": "invoice",
    "number": "471102",
    "issue_date": date(2018, 3, 5),
    "currency": "EUR",
    "issuer": "Lieferant GmbH",
    "client": "Kunden AG Mitte",
    "net_amount": Decimal("473.00"),
    "tax_amount": Decimal("56.87"),
    "amount": Decimal("529.87"),
}


def new_document(session: Session, storage: FileStorage, tenant_id: int, data: bytes, content_type: str,
                 filename: str) -> Document:
    """A document waiting in ``extracting``, as ``ingest_message`` leaves it."""
    stored = store_file(session, storage, tenant_id, data, content_type)
    doc = Document(tenant_id=tenant_id, message_id=None, part_index=0, file_id=stored.id, filename=filename,
                   status=DocumentStatus.EXTRACTING.value, field_info={})
    session.add(doc)
    session.commit()
    return doc


def extract(session: Session, storage: FileStorage, doc: Document) -> Document:
    processing.extract_document(session, storage, doc.id)
    session.commit()
    session.expire_all()
    found = session.get(Document, doc.id)
    assert found is not None
    return found


def fields(doc: Document, names: list[str]) -> dict:
    return {name: getattr(doc, name) for name in names}


# E-invoices ---------------------------------------------------------------------------------------


def test_factur_x_pdf_is_read_exactly_from_its_xml(session, storage, tenant):
    data = (EINVOICES / "zc_EN16931_Einfach.pdf").read_bytes()
    doc = extract(session, storage, new_document(session, storage, tenant.tenant.id, data, "application/pdf",
                                                 "rechnung.pdf"))
    assert doc.status == DocumentStatus.PENDING.value, doc.reason
    assert fields(doc, list(EINSTEIN)) == EINSTEIN
    assert doc.due_date is None  # the sample has none: nothing is invented
    assert doc.extraction_source == "einvoice:factur-x"
    assert {info["confidence"] for info in doc.field_info.values()} == {1.0}
    assert all(info["source"] == "einvoice:factur-x" for info in doc.field_info.values())
    details = doc.extraction_details
    assert details["reader"] == "einvoice" and details["format"] == "factur-x"
    assert [(row["rate"], row["base"], row["tax"]) for row in details["vat_breakdown"]] == [
        ("7.00", "275.00", "19.25"), ("19.00", "198.00", "37.62")]
    assert details["lines"] and details["lines_total"] == len(details["lines"])
    assert doc.file.content_type == "application/pdf"  # the PDF stays the document people look at


@pytest.mark.parametrize("content_type", ["application/xml", "text/xml", "application/octet-stream"])
def test_standalone_ubl_xml_is_read_exactly(session, storage, tenant, content_type):
    data = (EINVOICES / "zc_EN16931_Einfach.ubl.xml").read_bytes()
    doc = extract(session, storage, new_document(session, storage, tenant.tenant.id, data, content_type,
                                                 "invoice.xml"))
    assert doc.status == DocumentStatus.PENDING.value, doc.reason
    assert fields(doc, list(EINSTEIN)) == EINSTEIN
    assert doc.extraction_source == "einvoice:ubl"
    assert {info["confidence"] for info in doc.field_info.values()} == {1.0}


def test_ubl_credit_note_is_stored_as_a_credit_note_with_positive_amounts(session, storage, tenant):
    data = (EINVOICES / "cef_ubl-tc434-creditnote1.xml").read_bytes()
    doc = extract(session, storage, new_document(session, storage, tenant.tenant.id, data, "text/xml", "cn.xml"))
    assert doc.status == DocumentStatus.PENDING.value, doc.reason
    assert doc.doc_type == "credit_note" and doc.amount is not None and doc.amount > 0


def test_broken_embedded_xml_fails_the_document_with_the_reason(session, storage, tenant):
    data = (EINVOICES / "zc_FAIL_factur-x-invalid-xml-encoding-attribute.pdf").read_bytes()
    doc = extract(session, storage, new_document(session, storage, tenant.tenant.id, data, "application/pdf",
                                                 "broken.pdf"))
    assert doc.status == DocumentStatus.FAILED.value
    assert doc.reason.startswith("The e-invoice could not be read: ") and "factur-x.xml" in doc.reason


def test_xml_with_an_external_entity_fails_without_reading_the_entity(session, storage, tenant, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    data = (f'<?xml version="1.0"?>\n<!DOCTYPE Invoice [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
            '<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">'
            '<cbc:ID xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">&xxe;</cbc:ID>'
            '</Invoice>').encode()
    doc = extract(session, storage, new_document(session, storage, tenant.tenant.id, data, "application/xml",
                                                 "evil.xml"))
    assert doc.status == DocumentStatus.FAILED.value
    assert doc.reason.startswith("The e-invoice could not be read: ")
    assert "TOP-SECRET" not in (doc.reason or "") and doc.number is None


def test_xml_that_is_not_an_invoice_fails_with_a_reason(session, storage, tenant):
    data = b'<?xml version="1.0"?><catalog><book id="1">Dune</book></catalog>'
    doc = extract(session, storage, new_document(session, storage, tenant.tenant.id, data, "application/xml",
                                                 "books.xml"))
    assert (doc.status, doc.reason) == (DocumentStatus.FAILED.value, processing.NOT_AN_EINVOICE)


# Text, OCR, bad input ------------------------------------------------------------------------------


def test_german_invoice_gets_its_fields(session, storage, tenant):
    pdf = make_invoice_pdf(language="de", layout=2, number="RE-2026-0042", net=Decimal("1000.00"),
                           tax=Decimal("190.00"), issuer="Müller & Söhne GmbH")
    doc = extract(session, storage, new_document(session, storage, tenant.tenant.id, pdf, "application/pdf",
                                                 "rechnung.pdf"))
    assert doc.status == DocumentStatus.PENDING.value, doc.reason
    assert fields(doc, ["doc_type", "number", "issue_date", "due_date", "amount", "net_amount", "tax_amount",
                        "currency", "issuer", "client"]) == {
        "doc_type": "invoice", "number": "RE-2026-0042", "issue_date": date(2026, 11, 23),
        "due_date": date(2026, 12, 23), "amount": Decimal("1190.00"), "net_amount": Decimal("1000.00"),
        "tax_amount": Decimal("190.00"), "currency": "EUR", "issuer": "Müller & Söhne GmbH", "client": "Acme SAS"}
    assert doc.extraction_source == "generic"
    assert doc.field_info["client"]["note"].startswith("new client")


def test_german_credit_note(session, storage, tenant):
    pdf = make_invoice_pdf(language="de", layout=0, number="GS-7", credit_note=True)
    doc = extract(session, storage, new_document(session, storage, tenant.tenant.id, pdf, "application/pdf",
                                                 "gutschrift.pdf"))
    assert (doc.doc_type, doc.number, doc.amount) == ("credit_note", "GS-7", Decimal("1200.00"))


def test_photographed_invoice_is_read_by_ocr(session, storage, tenant):
    png = render_png(make_invoice_pdf(language="en", number="INV-7731", net=Decimal("2500.00"),
                                      tax=Decimal("500.00")))
    doc = extract(session, storage, new_document(session, storage, tenant.tenant.id, png, "image/png", "scan.png"))
    assert doc.status == DocumentStatus.PENDING.value, doc.reason
    assert (doc.number, doc.amount, doc.currency) == ("INV-7731", Decimal("3000.00"), "EUR")
    assert doc.extraction_source == "ocr+generic"
    assert doc.field_info["number"]["source"] == "ocr+generic"
    assert doc.field_info["number"]["confidence"] < 0.8  # OCR: the review page asks for a check
    assert doc.extraction_details["reader"] == "ocr"


def test_user_password_pdf_fails_with_a_reason_to_act_on(session, storage, tenant):
    pdf = encrypt_pdf(make_invoice_pdf(), user_password="s3cret")
    doc = extract(session, storage, new_document(session, storage, tenant.tenant.id, pdf, "application/pdf",
                                                 "locked.pdf"))
    assert (doc.status, doc.reason) == (
        DocumentStatus.FAILED.value, "This PDF is password-protected: ask the sender for an unprotected copy")


def test_owner_password_only_pdf_is_read(session, storage, tenant):
    pdf = encrypt_pdf(make_invoice_pdf(number="FA-OWNER-1"), user_password="")
    doc = extract(session, storage, new_document(session, storage, tenant.tenant.id, pdf, "application/pdf",
                                                 "protected.pdf"))
    assert doc.status == DocumentStatus.PENDING.value and doc.number == "FA-OWNER-1"


def test_long_pdf_is_read_from_its_first_pages_with_a_note(session, storage, tenant):
    pdf = make_invoice_pdf(pages=60)
    doc = extract(session, storage, new_document(session, storage, tenant.tenant.id, pdf, "application/pdf",
                                                 "long.pdf"))
    assert doc.status == DocumentStatus.PENDING.value and doc.number == "FA-2026-0042"
    assert doc.extraction_details["pages"] == 60
    assert any("first 50 of 60 pages" in note for note in doc.extraction_details["notes"])


def test_decompression_bomb_image_is_refused_before_decoding(session, storage, tenant):
    out = io.BytesIO()
    Image.new("1", (9000, 9000)).save(out, format="PNG")  # 81 megapixels in ~10 KB
    assert len(out.getvalue()) < 100_000
    doc = extract(session, storage, new_document(session, storage, tenant.tenant.id, out.getvalue(), "image/png",
                                                 "bomb.png"))
    assert doc.status == DocumentStatus.FAILED.value
    assert doc.reason.startswith("The image could not be read: the image has too many pixels")


def test_damaged_image_fails_with_a_reason(session, storage, tenant):
    data = b"\x89PNG\r\n\x1a\n" + b"\x00" * 5000
    doc = extract(session, storage, new_document(session, storage, tenant.tenant.id, data, "image/png", "x.png"))
    assert doc.status == DocumentStatus.FAILED.value and "cannot be decoded" in doc.reason


def test_extraction_that_runs_too_long_ends_failed_not_stuck(settings, session, storage, tenant):
    from worker.main import run

    scan = make_scanned_pdf(make_invoice_pdf(), copies=3)  # three pages of OCR: several seconds
    doc = new_document(session, storage, tenant.tenant.id, scan, "application/pdf", "scan.pdf")
    queue = get_queue(replace(settings, job_timeout=1))  # JOB_TIMEOUT=1, read through the worker's policy
    enqueue_extract(queue, doc.id)
    assert run(settings, burst=True)
    session.expire_all()
    doc = session.get(Document, doc.id)
    assert (doc.status, doc.reason) == (DocumentStatus.FAILED.value, processing.TIMED_OUT)
    assert FailedJobRegistry(queue=queue).count == 0  # handled: no retry of a file that would time out again


# Client matching ----------------------------------------------------------------------------------


def test_client_is_prefilled_from_the_tenants_clients(session, storage, tenant, other_tenant):
    session.add(Client(tenant_id=tenant.tenant.id, name="ACME S.A.S.", normalized_name="acme s.a.s."))
    session.add(Client(tenant_id=other_tenant.tenant.id, name="Acme SAS (other)", normalized_name="acme sas"))
    session.commit()
    doc = extract(session, storage, new_document(session, storage, tenant.tenant.id, make_invoice_pdf(),
                                                 "application/pdf", "f.pdf"))
    assert doc.client == "ACME S.A.S."
    assert "matched to your client" in doc.field_info["client"]["note"]
    assert doc.field_info["client"]["confidence"] >= 0.95
    # The printed IBAN passes mod-97 and is kept; "SIRET 123 456 789 00012" fails its Luhn key and is not.
    assert doc.extraction_details["identifiers"] == {"ibans": ["FR7630006000011234567890189"]}


def test_fuzzy_client_match_is_flagged_for_review(session, storage, tenant):
    session.add(Client(tenant_id=tenant.tenant.id, name="Société Générale des Eaux de Lyon",
                       normalized_name="societe generale des eaux de lyon"))
    session.commit()
    pdf = make_invoice_pdf(client="Societe Generale des Eaux de Lyons")
    doc = extract(session, storage, new_document(session, storage, tenant.tenant.id, pdf, "application/pdf",
                                                 "f.pdf"))
    assert doc.client == "Société Générale des Eaux de Lyon"
    assert doc.field_info["client"]["confidence"] < 0.8 and "similarity" in doc.field_info["client"]["note"]


def test_client_match_by_vat_id_and_tenant_scope(session, tenant, other_tenant):
    session.add(Client(tenant_id=tenant.tenant.id, name="Kunden AG", normalized_name="kunden ag",
                       vat_id="DE 136 695 976"))
    session.add(Client(tenant_id=other_tenant.tenant.id, name="Other Kunden", normalized_name="other kunden",
                       vat_id="FR40303265045"))
    session.add(Client(tenant_id=tenant.tenant.id, name="Beta Ltd", normalized_name="beta ltd"))
    session.commit()
    tid = tenant.tenant.id
    assert match_client(session, tid, "Something else", ["DE136695976"]).name == "Kunden AG"
    assert match_client(session, tid, "Other Kunden", ["FR40303265045"]) is None  # another tenant's client
    assert match_client(session, tid, "Totally Unrelated Corp", []) is None
    assert match_client(session, tid, "BETA LIMITED", []).method == "name"
    assert normalize_name("ACME S.A.S.") == normalize_name("Acme SAS") == "acme"
