"""Several invoices in one PDF (issue 4): detection, one document per invoice, regrouping on review.

Real components: reportlab PDFs, pdftotext and Tesseract, the real worker and Redis, SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pypdf import PdfReader
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.documents import processing, splitting
from core.documents import review as docs
from core.errors import NotFound, ServiceError, ValidationFailed
from core.extraction.split import PageInfo, decide, split_pdf
from core.files.storage import FileStorage
from core.inbound import intake
from core.models import Document, DocumentSource, DocumentStatus, InboundMessage, Invoice
from mailgate.smtp import build_controller
from tests.conftest import TenantFixture
from tests.invoicegen import concat_pdfs, make_batch_pdf, make_email, make_invoice_pdf, make_scanned_pdf
from tests.services import free_port, run_worker_burst
from tests.test_dashboard import csrf_token, login, text
from tests.test_end_to_end import send
from worker.queue import enqueue_ingest, get_queue

SPECS = [
    dict(number="LOT-001", net=Decimal("100.00"), tax=Decimal("20.00"), layout=0, language="fr", pages=2),
    dict(number="LOT-002", net=Decimal("250.00"), tax=Decimal("50.00"), layout=1, language="en"),
    dict(number="LOT-003", net=Decimal("1000.00"), tax=Decimal("200.00"), layout=2, language="de", pages=2),
]
EXPECTED = [[0, 1], [2], [3, 4]]


def batch() -> bytes:
    pdf, groups = make_batch_pdf(SPECS)
    assert groups == EXPECTED
    return pdf


def text_page_pdf(lines: list[str]) -> bytes:
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=True)
    for i, line in enumerate(lines):
        canvas.drawString(50, 800 - 14 * i, line)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def auth(fixture: TenantFixture) -> dict[str, str]:
    return {"Authorization": f"Bearer {fixture.token}"}


def documents_of(session: Session, message_id: int) -> list[Document]:
    session.expire_all()
    found = session.scalars(select(Document).where(Document.message_id == message_id)).all()
    return sorted(found, key=lambda d: min(d.source_pages or [0]))


def ingest(session: Session, storage: FileStorage, tenant: TenantFixture, pdf: bytes) -> InboundMessage:
    """Store an email carrying ``pdf`` and run the worker's two steps in process (no queue)."""
    raw = make_email(tenant.address, pdf, filename="lot.pdf")
    message = intake.store_message(session, storage, tenant.tenant.id, raw, recipient=tenant.address)
    session.commit()
    ids = processing.ingest_message(session, storage, message.id)
    session.commit()
    extract(session, storage, ids)
    return message


def extract(session: Session, storage: FileStorage, ids: list[int]) -> None:
    for document_id in ids:
        processing.extract_document(session, storage, document_id)
        session.commit()


# Detection -----------------------------------------------------------------------------------


def test_detection_finds_each_invoice_and_keeps_one_invoice_whole() -> None:
    found = split_pdf(batch())
    assert found.groups == EXPECTED
    assert [b.page for b in found.boundaries] == [2, 3]
    assert all(b.reason for b in found.boundaries)

    # One invoice of three pages ("page 2/3", "page 3/3"): one group.
    assert split_pdf(make_invoice_pdf(number="ONE-1", pages=3)).groups == [[0, 1, 2]]
    # A page without header nor marker continues the invoice before it, even if it says "facture".
    terms = text_page_pdf(["Conditions générales de vente", "Toute facture impayée porte intérêt.",
                           "Article 2 - Livraison"])
    assert split_pdf(concat_pdfs([make_invoice_pdf(number="ONE-2"), terms])).groups == [[0, 1]]
    # The same invoice number repeated on a second page with a title (a duplicate page): not a new invoice.
    same = make_invoice_pdf(number="ONE-3")
    assert split_pdf(concat_pdfs([same, same])).groups == [[0, 1]]


def test_boundary_rules_on_what_pages_tell() -> None:
    def page(i: int, **kw: object) -> PageInfo:
        return PageInfo(i, has_text=True, **kw)  # type: ignore[arg-type]

    # OCR read neither number nor totals: another issuer under an invoice title still starts an invoice...
    found = decide([page(0, title=True, issuer="dupont"), page(1, title=True, issuer="nordwind")])
    assert found.groups == [[0], [1]] and found.boundaries[0].reason == "invoice title with another issuer"
    # ... the same issuer with the header repeated does not (a long invoice whose number OCR missed).
    assert decide([page(0, title=True, issuer="dupont"), page(1, title=True, issuer="dupont")]).groups == [[0, 1]]
    # "page 2/2" continues whatever else the page says; a page without text continues too.
    assert decide([page(0, number="A-1", totals=True), page(1, number="B-2", title=True, marker=(2, 2)),
                   PageInfo(2, has_text=False)]).groups == [[0, 1, 2]]
    # A new number alone (no title, previous invoice not closed) is not enough: "Commande n° 12" on page 2.
    assert decide([page(0, number="A-1", title=True), page(1, number="CMD-12")]).groups == [[0, 1]]
    assert decide([page(0, number="A-1", title=True, totals=True), page(1, number="B-2")]).groups == [[0], [1]]


def test_detection_reads_scanned_pages_by_ocr() -> None:
    first = make_scanned_pdf(make_invoice_pdf(number="SCAN-001", net=Decimal("80.00"), tax=Decimal("16.00")))
    second = make_scanned_pdf(make_invoice_pdf(number="SCAN-002", layout=1, language="en"))
    found = split_pdf(concat_pdfs([first, second]))
    assert found.groups == [[0], [1]]
    assert found.ocr_pages == 2


# Ingest --------------------------------------------------------------------------------------


def test_upload_of_a_batch_becomes_one_document_per_invoice(
    app: Flask, session: Session, storage: FileStorage, settings,  # noqa: ANN001
    tenant: TenantFixture, other_tenant: TenantFixture,
) -> None:
    api = app.test_client()
    response = api.post("/api/v1/uploads", headers=auth(tenant), content_type="multipart/form-data",
                        data={"file": [(io.BytesIO(batch()), "lot de factures.pdf")]})
    assert response.status_code == 202, response.get_data(as_text=True)
    message_id = response.get_json()["id"]
    run_worker_burst(settings)

    found = documents_of(session, message_id)
    assert [d.number for d in found] == ["LOT-001", "LOT-002", "LOT-003"]
    assert [d.amount for d in found] == [Decimal("120.00"), Decimal("300.00"), Decimal("1200.00")]
    assert [d.source_pages for d in found] == EXPECTED
    assert {d.status for d in found} == {DocumentStatus.PENDING.value}
    assert [d.filename for d in found] == ["lot de factures_p1-2.pdf", "lot de factures_p3.pdf",
                                           "lot de factures_p4-5.pdf"]
    # Each document's file holds its own pages only; the source keeps the whole file.
    for doc, pages in zip(found, EXPECTED, strict=True):
        assert len(PdfReader(io.BytesIO(storage.read(doc.file.storage_key))).pages) == len(pages)
    [source] = session.scalars(select(DocumentSource).where(DocumentSource.message_id == message_id)).all()
    assert source.page_count == 5 and source.tenant_id == tenant.tenant.id
    assert storage.read(source.file.storage_key) == batch()
    assert {d.source_id for d in found} == {source.id}

    # The API tells the message's documents and the source's groups; another tenant gets 404.
    body = api.get(f"/api/v1/messages/{message_id}", headers=auth(tenant)).get_json()
    assert sorted(d["number"] for d in body["documents"]) == ["LOT-001", "LOT-002", "LOT-003"]
    groups = api.get(f"/api/v1/sources/{source.id}/groups", headers=auth(tenant)).get_json()
    assert [g["pages"] for g in groups["groups"]] == EXPECTED
    assert api.get(f"/api/v1/sources/{source.id}/groups", headers=auth(other_tenant)).status_code == 404
    assert api.put(f"/api/v1/sources/{source.id}/groups", headers=auth(other_tenant),
                   json={"groups": [[0, 1, 2, 3, 4]]}).status_code == 404

    # The Imports page shows the message with its three documents.
    client = app.test_client()
    assert login(client, tenant.admin.email).status_code == 302
    page = text(client.get("/imports"))
    for doc in found:
        assert f'data-document-id="{doc.id}"' in page

    # The ingest job run again (a retry, the sweep): still three documents, one source.
    enqueue_ingest(get_queue(settings), message_id, force=True)
    run_worker_burst(settings)
    assert len(documents_of(session, message_id)) == 3
    assert session.scalar(select(func.count()).select_from(DocumentSource)) == 1
    processing.ingest_message(session, storage, message_id)
    session.commit()
    assert len(documents_of(session, message_id)) == 3


def test_a_single_invoice_pdf_stays_one_plain_document(
    session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    message = ingest(session, storage, tenant, make_invoice_pdf(number="SOLO-1", pages=2))
    [doc] = documents_of(session, message.id)
    assert doc.number == "SOLO-1" and doc.source_id is None and doc.source_pages is None
    assert doc.filename == "lot.pdf" and doc.part_index < splitting.SPLIT_BASE
    assert session.scalar(select(func.count()).select_from(DocumentSource)) == 0


# Regrouping ----------------------------------------------------------------------------------


def test_regroup_moves_merges_and_starts_groups_and_locks_validated_ones(
    session: Session, storage: FileStorage, tenant: TenantFixture, other_tenant: TenantFixture
) -> None:
    message = ingest(session, storage, tenant, batch())
    first, second, third = documents_of(session, message.id)
    source_id, tid = first.source_id, tenant.tenant.id
    assert source_id is not None

    # Pages must each appear once; another tenant's source does not exist for them.
    for wrong in ([[0, 1], [2]], [[0, 1], [1, 2], [3, 4]], [[0, 1, 2, 3, 4, 5]], "0,1", [[0, "1"], [2, 3, 4]]):
        with pytest.raises(ValidationFailed):
            splitting.regroup(session, storage, tid, source_id, wrong)
        session.rollback()
    with pytest.raises(NotFound):
        splitting.regroup(session, storage, other_tenant.tenant.id, source_id, [[0, 1, 2, 3, 4]])
    session.rollback()

    # Move page 2 (index 1) into the second invoice: two groups change, the third is kept as it is.
    docs.update_fields(session, tid, third.id, {"title": "Kept by the reviewer"})
    session.commit()
    changed = splitting.regroup(session, storage, tid, source_id, [[0], [1, 2], [3, 4]], tenant.admin.id)
    session.commit()
    assert sorted(changed) == sorted([first.id, second.id])
    now = documents_of(session, message.id)
    assert [d.source_pages for d in now] == [[0], [1, 2], [3, 4]]
    assert now[2].id == third.id and now[2].title == "Kept by the reviewer"
    assert {d.status for d in now[:2]} == {DocumentStatus.EXTRACTING.value}
    assert len(PdfReader(io.BytesIO(storage.read(now[1].file.storage_key))).pages) == 2
    # While pages are being read, nothing can be regrouped.
    with pytest.raises(ServiceError):
        splitting.regroup(session, storage, tid, source_id, [[0, 1, 2], [3, 4]])
    session.rollback()
    extract(session, storage, changed)
    now = documents_of(session, message.id)
    assert [d.number for d in now] == ["LOT-001", "LOT-002", "LOT-003"]  # page 2 of LOT-001 has no number

    # Start a new group at page 2 (index 1): a fourth document.
    changed = splitting.regroup(session, storage, tid, source_id, [[0], [1], [2], [3, 4]])
    session.commit()
    extract(session, storage, changed)
    assert [d.source_pages for d in documents_of(session, message.id)] == [[0], [1], [2], [3, 4]]

    # Validate LOT-003: its group is locked; merging into it is refused, other groups still change.
    lot3 = documents_of(session, message.id)[3]
    docs.validate_document(session, tid, lot3.id, {"client": "Acme SAS", "issue_date": "2026-11-23"},
                           tenant.admin.id)
    session.commit()
    with pytest.raises(ValidationFailed) as refused:
        splitting.regroup(session, storage, tid, source_id, [[0, 1], [2, 3, 4]])
    assert "LOT-003" in refused.value.errors["groups"]
    session.rollback()

    # Merge the first two groups back: one document fewer, the validated one untouched.
    changed = splitting.regroup(session, storage, tid, source_id, [[0, 1], [2], [3, 4]])
    session.commit()
    extract(session, storage, changed)
    final = documents_of(session, message.id)
    assert [d.source_pages for d in final] == EXPECTED
    assert [d.number for d in final] == ["LOT-001", "LOT-002", "LOT-003"]
    assert final[2].id == lot3.id and final[2].status == DocumentStatus.VALIDATED.value
    assert final[0].amount == Decimal("120.00")


# Review page and API -------------------------------------------------------------------------


@pytest.fixture
def client(app: Flask, tenant: TenantFixture) -> FlaskClient:
    client = app.test_client()
    assert login(client, tenant.admin.email).status_code == 302
    return client


def test_review_page_shows_the_groups_and_the_form_regroups(
    app: Flask, client: FlaskClient, session: Session, storage: FileStorage,
    tenant: TenantFixture, other_tenant: TenantFixture,
) -> None:
    message = ingest(session, storage, tenant, batch())
    first, second, third = documents_of(session, message.id)
    source_id = first.source_id

    page = text(client.get(f"/documents/{second.id}"))
    assert 'data-split-form' in page and f"/sources/{source_id}/groups" in page
    for index in range(5):
        assert f'name="page_{index}"' in page and f"/sources/{source_id}/pages/{index}.png" in page
    assert "<script>" not in page  # CSP: no inline script
    thumb = client.get(f"/sources/{source_id}/pages/3.png")
    assert thumb.status_code == 200 and thumb.mimetype == "image/png" and thumb.data.startswith(b"\x89PNG")
    assert client.get(f"/sources/{source_id}/pages/5.png").status_code == 404
    # A plain document has no groups section.
    plain = ingest(session, storage, tenant, make_invoice_pdf(number="SOLO-2"))
    assert "data-split-form" not in text(client.get(f"/documents/{documents_of(session, plain.id)[0].id}"))

    token = csrf_token(client.get(f"/documents/{second.id}"))
    form = {"csrf_token": token, "document_id": str(second.id),
            "page_0": "1", "page_1": "1", "page_2": "1", "page_3": "3", "page_4": "3"}  # merge 1 and 2
    assert client.post(f"/sources/{source_id}/groups", data={**form, "csrf_token": "forged"}).status_code == 400
    intruder = app.test_client()
    assert login(intruder, other_tenant.admin.email).status_code == 302
    intruder_token = csrf_token(intruder.get("/imports"))
    assert intruder.post(f"/sources/{source_id}/groups", data={**form, "csrf_token": intruder_token}
                         ).status_code == 404
    assert intruder.get(f"/sources/{source_id}/pages/0.png").status_code == 404
    assert [d.source_pages for d in documents_of(session, message.id)] == EXPECTED  # nothing changed yet

    response = client.post(f"/sources/{source_id}/groups", data=form)
    assert response.status_code == 302
    assert [d.source_pages for d in documents_of(session, message.id)] == [[0, 1, 2], [3, 4]]
    # A page left out is refused with a message, nothing changes.
    token = csrf_token(client.get(response.headers["Location"]))
    bad = {"csrf_token": token, "page_0": "1", "page_1": "1", "page_2": "1", "page_3": "2"}
    follow = client.post(f"/sources/{source_id}/groups", data=bad, follow_redirects=True)
    assert "Every page must be in exactly one group." in text(follow)
    assert len(documents_of(session, message.id)) == 2


def test_api_regroups_and_refuses_a_validated_group_change(
    app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    message = ingest(session, storage, tenant, batch())
    first, second, third = documents_of(session, message.id)
    docs.validate_document(session, tenant.tenant.id, first.id, {"client": "Acme SAS", "issue_date": "2026-11-23"},
                           tenant.admin.id)
    session.commit()
    api = app.test_client()
    url = f"/api/v1/sources/{first.source_id}/groups"
    refused = api.put(url, headers=auth(tenant), json={"groups": [[0], [1, 2], [3, 4]]})
    assert refused.status_code == 422 and "LOT-001" in refused.get_json()["fields"]["groups"]
    assert api.put(url, headers=auth(tenant), json={"groups": [[0, 1], [2]]}).status_code == 422
    assert api.put(url, headers=auth(tenant), data="nope").status_code == 400
    accepted = api.put(url, headers=auth(tenant), json={"groups": [[0, 1], [2, 3, 4]]})
    assert accepted.status_code == 202, accepted.get_data(as_text=True)
    body = accepted.get_json()
    assert [g["pages"] for g in body["groups"]] == [[0, 1], [2, 3, 4]]
    assert body["groups"][0]["locked"] is True and len(body["reading"]) == 1
    assert body["groups"][0]["document_id"] == first.id
    assert body["groups"][1]["document_id"] in {second.id, third.id}  # one reused, the other deleted
    assert len(documents_of(session, message.id)) == 2


# By SMTP, through to validation ---------------------------------------------------------------


def test_batch_by_smtp_splits_and_a_validated_invoice_keeps_only_its_pages(
    app: Flask, session: Session, storage: FileStorage, settings, tenant: TenantFixture,  # noqa: ANN001
) -> None:
    controller = build_controller(settings, hostname="127.0.0.1", port=(port := free_port()))
    controller.start()
    try:
        send(port, tenant.address, batch(), filename="scan-lot.pdf")
    finally:
        controller.stop()
    run_worker_burst(settings)

    api = app.test_client()
    items = api.get("/api/v1/documents?status=pending", headers=auth(tenant)).get_json()["items"]
    assert sorted((d["number"], d["amount"], d["source_pages"]) for d in items) == [
        ("LOT-001", "120.00", [0, 1]), ("LOT-002", "300.00", [2]), ("LOT-003", "1200.00", [3, 4])]
    lot3 = next(d for d in items if d["number"] == "LOT-003")
    validated = api.post(f"/api/v1/documents/{lot3['id']}/validate", headers=auth(tenant),
                         json={"client": "Acme SAS"})
    assert validated.status_code == 200, validated.get_data(as_text=True)
    session.expire_all()
    invoice = session.get(Invoice, validated.get_json()["id"])
    assert invoice is not None and invoice.number == "LOT-003"
    attached = PdfReader(io.BytesIO(storage.read(invoice.file.storage_key)))
    assert len(attached.pages) == 2  # the invoice's own pages, not the whole batch
    assert "LOT-003" in attached.pages[0].extract_text()
