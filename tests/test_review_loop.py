"""The review loop's last steps (issue 17, item 5) through the dashboard: a typed number that is an
existing invoice's opens the duplicate choice, and validation matches a payment that arrived first."""

from __future__ import annotations

import io
import re
from datetime import date
from decimal import Decimal

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.banking import reconciliation
from core.banking import transactions as bank
from core.config import Settings
from core.documents import assignment, invoice_edits
from core.documents import review as docs
from core.files.storage import FileStorage
from core.models import (
    BankTransaction,
    ClientAssignment,
    Document,
    DocumentStatus,
    Invoice,
    InvoiceFile,
    Match,
    MatchState,
    Role,
    Tenant,
)
from core.receivables import invoices as receivables
from core.tenancy import access, accounts, audit
from tests.bankhelpers import csv_row, statement_csv
from tests.conftest import PASSWORD, TenantFixture
from tests.invoicegen import make_invoice_pdf
from tests.services import run_worker_burst
from tests.test_dashboard import COMPLETE, client, csrf_token, login, make_document, post, text  # noqa: F401 - fixture

__all__ = ["client"]


def _validated(session: Session, storage: FileStorage, tenant: TenantFixture) -> Invoice:
    original = make_document(session, storage, tenant.tenant.id, filename="original.pdf")
    invoice = docs.validate_document(session, tenant.tenant.id, original.id, COMPLETE, tenant.admin.id)
    session.commit()
    return invoice


def test_typed_number_of_an_existing_invoice_opens_the_duplicate_choice(
    client: FlaskClient, session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    invoice = _validated(session, storage, tenant)
    other = make_document(session, storage, tenant.tenant.id, filename="resent.pdf", number="FA-OTHER")
    form = COMPLETE | {"number": "fa-2026-0042 ", "title": "Typed again", "client": "Typed Client SARL",
                       "action": "confirm"}
    response = post(client, f"/documents/{other.id}", form)
    assert response.status_code == 302 and response.headers["Location"] == f"/documents/{other.id}"

    page = text(client.get(f"/documents/{other.id}"))
    assert "This number is already used: link, replace or discard below." in page
    assert "invoice FA-2026-0042 has the same number" in page
    assert f'href="/invoices/{invoice.id}"' in page
    # The held document shows what was typed, its client too (the page showed "—" for it before).
    assert re.search(r"<dt>Client</dt>\s*<dd>\s*Typed Client SARL\s", page), page
    for value in ("link", "replace", "discard"):
        assert f'name="action" value="{value}"' in page
    session.expire_all()
    held = session.get(Document, other.id)
    assert held.status == DocumentStatus.DUPLICATE.value and held.duplicate_of_id == invoice.id
    assert held.number == "fa-2026-0042" and held.title == "Typed again"  # nothing typed is lost

    chosen = post(client, f"/documents/{other.id}/duplicate", {"action": "link"})
    assert chosen.status_code == 302 and chosen.headers["Location"] == f"/invoices/{invoice.id}"
    session.expire_all()
    attached = session.scalars(select(InvoiceFile.file_id).where(InvoiceFile.invoice_id == invoice.id)).all()
    assert attached == [held.file_id]
    assert session.scalars(select(Invoice).where(Invoice.tenant_id == tenant.tenant.id)).all() == [invoice]


def test_other_errors_still_come_first_and_change_nothing(
    client: FlaskClient, session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    _validated(session, storage, tenant)
    other = make_document(session, storage, tenant.tenant.id, filename="resent.pdf", number="FA-OTHER")
    response = post(client, f"/documents/{other.id}", COMPLETE | {"amount": "lots", "action": "confirm"})
    assert response.status_code == 422 and "not an amount" in text(response)
    session.expire_all()
    assert session.get(Document, other.id).status == DocumentStatus.PENDING.value


def test_a_payment_booked_before_validation_is_matched_at_validation(
    client: FlaskClient, session: Session, storage: FileStorage, tenant: TenantFixture, settings: Settings
) -> None:
    tid = tenant.tenant.id
    paid = bank.import_statement(
        session, tid, statement_csv(csv_row(date(2026, 12, 1), "Facture FA-2026-0042", "1.200,00", "ACME SAS")),
        "umsaetze.csv",
    )
    # A payment the wrong way round (outgoing) is never tried against a receivable.
    bank.import_statement(
        session, tid, statement_csv(csv_row(date(2026, 12, 2), "Facture FA-2026-0042", "-1.200,00", "ACME SAS")),
        "sortie.csv",
    )
    session.commit()
    assert paid.applied == 0 and paid.created == 1  # nothing to match yet
    doc = make_document(session, storage, tid)
    assert post(client, f"/documents/{doc.id}", COMPLETE | {"action": "confirm"}).status_code == 302
    session.expire_all()
    invoice = session.scalars(select(Invoice).where(Invoice.tenant_id == tid)).one()
    assert invoice.status == "open"  # the validation queued the matching; a real worker runs it
    run_worker_burst(settings)

    session.expire_all()
    invoice = session.scalars(select(Invoice).where(Invoice.tenant_id == tid)).one()
    assert invoice.status == "paid" and invoice.amount_paid == Decimal("1200.00")
    (match,) = session.scalars(select(Match).where(Match.invoice_id == invoice.id)).all()
    assert match.state == MatchState.APPLIED.value and match.transaction_id == paid.transaction_ids[0]
    rows = session.execute(select(BankTransaction.amount, BankTransaction.status))
    statuses = {amount: status for amount, status in rows}
    assert statuses == {Decimal("1200.00"): "matched", Decimal("-1200.00"): "unmatched"}


# Corrections after validation ------------------------------------------------------------------


def test_fields_other_than_the_number_are_corrected_with_a_trail(
    client: FlaskClient, session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    invoice = _validated(session, storage, tenant)
    page = text(client.get(f"/invoices/{invoice.id}"))
    assert 'id="edit-form"' in page and 'name="number"' not in page.split('id="edit-form"')[1].split("</form>")[0]
    form = {"title": "Mission <b>corrigée</b>", "client": "Beta SARL", "amount": "1500,00", "net_amount": "1250",
            "tax_amount": "250", "due_date": "2027-01-15"}
    response = post(client, f"/invoices/{invoice.id}/edit", form, page=f"/invoices/{invoice.id}")
    assert response.status_code == 302
    page = text(client.get(f"/invoices/{invoice.id}"))
    assert "Changes saved." in page
    assert "Mission &lt;b&gt;corrigée&lt;/b&gt;" in page and "<b>corrigée" not in page  # escaped
    assert tenant.admin.email in page and "1200.00" in page and "1500.00" in page and "Acme SAS" in page

    session.expire_all()
    invoice = session.get(Invoice, invoice.id)
    assert invoice.amount == Decimal("1500.00") and invoice.client.name == "Beta SARL"
    assert invoice.number == "FA-2026-0042" and invoice.due_date == date(2027, 1, 15)
    (movement,) = receivables.cash_movements(session, tenant.tenant.id, invoice.id)
    assert movement.amount == Decimal("1500.00") and movement.expected_date == date(2027, 1, 15)
    (event,) = invoice_edits.edit_trail(session, tenant.tenant.id, invoice.id)
    assert event.actor_id == tenant.admin.id and event.detail["changes"] == {
        "amount": ["1200.00", "1500.00"], "client": ["Acme SAS", "Beta SARL"],
        "due_date": ["2026-12-23", "2027-01-15"], "net_amount": ["1000.00", "1250"],
        "tax_amount": ["200.00", "250"], "title": ["Mission de conseil", "Mission <b>corrigée</b>"],
    }
    # The same values again: nothing changes, nothing more in the trail.
    again = post(client, f"/invoices/{invoice.id}/edit", form, page=f"/invoices/{invoice.id}")
    assert again.status_code == 302 and "Nothing changed." in text(client.get(f"/invoices/{invoice.id}"))
    assert len(invoice_edits.edit_trail(session, tenant.tenant.id, invoice.id)) == 1


def test_number_stays_frozen_and_bad_input_changes_nothing(
    client: FlaskClient, session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    invoice = _validated(session, storage, tenant)
    url = f"/invoices/{invoice.id}/edit"
    renumbered = post(client, url, {"number": "FA-NEW", "title": "x"}, page=f"/invoices/{invoice.id}")
    assert renumbered.status_code == 422 and docs.FROZEN_NUMBER in text(renumbered)
    bad = post(client, url, {"amount": "lots", "due_date": "2020-01-01"}, page=f"/invoices/{invoice.id}")
    body = text(bad)
    assert bad.status_code == 422 and "not an amount" in body and 'value="lots"' in body
    missing = post(client, url, {"client": ""}, page=f"/invoices/{invoice.id}")
    assert missing.status_code == 422 and "required" in text(missing)
    assert client.post(url, data={"title": "no token"}).status_code == 400  # CSRF
    session.expire_all()
    kept = session.get(Invoice, invoice.id)
    assert (kept.number, kept.amount, kept.title) == ("FA-2026-0042", Decimal("1200.00"), "Mission de conseil")
    assert invoice_edits.edit_trail(session, tenant.tenant.id, invoice.id) == []


def test_a_corrected_amount_moves_the_payment_status(
    session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    tid = tenant.tenant.id
    bank.import_statement(
        session, tid, statement_csv(csv_row(date(2026, 12, 1), "Facture FA-2026-0042", "1.200,00", "ACME SAS")),
        "umsaetze.csv",
    )
    invoice = _validated(session, storage, tenant)
    reconciliation.match_new_invoice(session, invoice)  # what the worker's job runs after a validation
    session.commit()
    assert invoice.status == "paid"
    viewer = access.viewer_for(session, tid, tenant.admin.id)
    changes = invoice_edits.edit_invoice(session, viewer, invoice.id, {"amount": "1500", "net_amount": "",
                                                                        "tax_amount": ""}, tenant.admin)
    session.commit()
    assert changes["amount"] == ["1200.00", "1500"]
    session.refresh(invoice)
    assert invoice.status == "partially_paid" and invoice.paid_at is None


def test_a_restricted_member_edits_only_within_their_clients(
    app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    tid = tenant.tenant.id
    invoice = _validated(session, storage, tenant)
    other = make_document(session, storage, tid, filename="beta.pdf")
    hidden = docs.validate_document(session, tid, other.id, COMPLETE | {"number": "B-1", "client": "Beta SARL"},
                                    tenant.admin.id)
    member = accounts.create_user(session, "member@acme.example", PASSWORD, tenant.tenant, Role.MEMBER)
    token = accounts.create_token(session, member, tenant.tenant)
    session.add(ClientAssignment(tenant_id=tid, client_id=invoice.client_id, user_id=member.id))
    session.get(Tenant, tid).restrict_access = True
    session.commit()
    api = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert api.patch(f"/api/v1/invoices/{hidden.id}", json={"title": "x"}, headers=headers).status_code == 404
    moved = api.patch(f"/api/v1/invoices/{invoice.id}", json={"client": "Beta SARL"}, headers=headers)
    assert moved.status_code == 422 and moved.get_json()["fields"] == {"client": invoice_edits.CLIENT_NOT_YOURS}
    done = api.patch(f"/api/v1/invoices/{invoice.id}", json={"title": "Fixed", "number": "FA-2026-0042"},
                     headers=headers)
    assert done.status_code == 200 and done.get_json()["changes"] == {"title": ["Mission de conseil", "Fixed"]}
    assert done.get_json()["invoice"]["title"] == "Fixed"
    renumber = api.patch(f"/api/v1/invoices/{invoice.id}", json={"number": "X-1"}, headers=headers)
    assert renumber.status_code == 422 and renumber.get_json()["fields"] == {"number": docs.FROZEN_NUMBER}
    retype = api.patch(f"/api/v1/invoices/{invoice.id}", json={"type": "credit_note"}, headers=headers)
    assert retype.status_code == 422 and "type" in retype.get_json()["fields"]
    session.expire_all()
    (event,) = invoice_edits.edit_trail(session, tid, invoice.id)
    assert event.actor_id == member.id and event.detail["changes"] == {"title": ["Mission de conseil", "Fixed"]}


# Replace: only the same document ----------------------------------------------------------------


def _resent(session: Session, original_id: int, filename: str, **fields: str) -> Document:
    """The original's very bytes sent again under ``filename``, routed by extraction (which read ``fields``)."""
    original = session.get(Document, original_id)
    doc = Document(tenant_id=original.tenant_id, file_id=original.file_id, filename=filename,
                   status=DocumentStatus.EXTRACTING.value)
    session.add(doc)
    session.flush()
    docs.finish_extraction(session, doc, dict(fields), {}, "test")
    session.commit()
    assert doc.status == DocumentStatus.DUPLICATE.value and doc.duplicate_of_id is not None
    return doc


def test_replace_is_refused_when_it_is_not_the_same_document(
    client: FlaskClient, session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    invoice = _validated(session, storage, tenant)
    copy = _resent(session, invoice.document_id, "scan-0001.pdf")  # same bytes, no number read, another name
    page = text(client.get(f"/documents/{copy.id}"))
    assert re.search(r'<button type="submit" name="action" value="replace" disabled', page)
    assert "Replace is only for the same document (same file name or same number)" in page
    refused = post(client, f"/documents/{copy.id}/duplicate", {"action": "replace"})
    assert refused.status_code == 302 and refused.headers["Location"] == f"/documents/{copy.id}"
    assert "Replace is only for the same document" in text(client.get(f"/documents/{copy.id}"))
    session.expire_all()
    assert session.get(Invoice, invoice.id).document_id == invoice.document_id
    assert session.get(Document, copy.id).status == DocumentStatus.DUPLICATE.value
    assert post(client, f"/documents/{copy.id}/duplicate", {"action": "link"}).status_code == 302


def test_replace_by_the_same_file_name_says_so(
    client: FlaskClient, session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    invoice = _validated(session, storage, tenant)
    copy = _resent(session, invoice.document_id, "Original.PDF")
    page = text(client.get(f"/documents/{copy.id}"))
    assert "Same document: the file name is the same (original.pdf)." in page
    assert re.search(r'<button type="submit" name="action" value="replace"\s+data-confirm', page)
    done = post(client, f"/documents/{copy.id}/duplicate", {"action": "replace"})
    assert done.status_code == 302 and done.headers["Location"] == f"/invoices/{invoice.id}"
    assert "File of invoice FA-2026-0042 replaced: same file name (original.pdf)." in text(
        client.get(f"/invoices/{invoice.id}"))
    session.expire_all()
    assert session.get(Invoice, invoice.id).document_id == copy.id


def test_replace_by_the_same_number_says_so(
    client: FlaskClient, session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    invoice = _validated(session, storage, tenant)
    other = make_document(session, storage, tenant.tenant.id, filename="resent.pdf", number="FA-OTHER")
    post(client, f"/documents/{other.id}", COMPLETE | {"number": "FA-2026-0042", "action": "confirm"})
    page = text(client.get(f"/documents/{other.id}"))
    assert "Same document: the number is the same (FA-2026-0042)." in page
    done = post(client, f"/documents/{other.id}/duplicate", {"action": "replace"})
    assert done.status_code == 302
    assert "File of invoice FA-2026-0042 replaced: same number." in text(client.get(f"/invoices/{invoice.id}"))
    session.expire_all()
    replaced = session.get(Invoice, invoice.id)
    assert replaced.file_id == other.file_id and replaced.document_id == other.id


# Assign PDFs to invoices --------------------------------------------------------------------------


def _two_invoices(session: Session, storage: FileStorage, tenant: TenantFixture) -> tuple[Invoice, Invoice]:
    first = _validated(session, storage, tenant)
    doc = make_document(session, storage, tenant.tenant.id, filename="b.pdf")
    second = docs.validate_document(session, tenant.tenant.id, doc.id,
                                    COMPLETE | {"number": "B-77", "client": "Beta SARL"}, tenant.admin.id)
    session.commit()
    return first, second


def _files(*parts: tuple[str, bytes]) -> dict[str, list[tuple[io.BytesIO, str]]]:
    return {"file": [(io.BytesIO(data), name) for name, data in parts]}


def test_assign_pdfs_by_file_name_and_content_after_confirmation(
    client: FlaskClient, session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    first, second = _two_invoices(session, storage, tenant)
    signed = make_invoice_pdf(number="SIGNED-COPY-1")  # its own text names no invoice of ours
    by_content = make_invoice_pdf(number="B-77")
    token = csrf_token(client.get("/invoices/assign"))
    response = client.post("/invoices/assign", content_type="multipart/form-data", data={
        "csrf_token": token, **_files(("facture_FA-2026-0042_signée.pdf", signed), ("scan 3.pdf", by_content),
                                      ("empty.pdf", b""), ("unknown.pdf", make_invoice_pdf(number="ZZ-9")))})
    page = text(response)
    assert response.status_code == 200 and 'id="assign-confirm"' in page
    session.expire_all()
    assert session.scalars(select(InvoiceFile)).all() == []  # nothing attached before confirmation
    file_ids = re.findall(r'name="file_id" value="(\d+)"', page)
    assert len(file_ids) == 3 and "the file is empty" in page
    rows = page.split("<tbody>")[1].split("</tr>")
    assert f'<option value="{first.id}" selected>' in rows[0] and "the file name" in rows[0]
    assert f'<option value="{second.id}" selected>' in rows[1] and "the text of the file" in rows[1]
    assert '<option value="" selected>' in rows[3] and "no invoice number found" in rows[3]

    form = {"csrf_token": csrf_token(response), "file_id": file_ids,
            f"invoice_{file_ids[0]}": str(first.id), f"invoice_{file_ids[1]}": str(second.id),
            f"invoice_{file_ids[2]}": ""}
    assert client.post("/invoices/assign/confirm", data={k: v for k, v in form.items() if k != "csrf_token"}
                       ).status_code == 400  # CSRF
    done = client.post("/invoices/assign/confirm", data=form)
    assert done.status_code == 302 and "2 files attached to their invoices." in text(client.get("/invoices"))
    again = client.post("/invoices/assign/confirm", data=form | {"csrf_token": csrf_token(client.get("/invoices"))})
    assert again.status_code == 302  # twice: still one attachment each
    session.expire_all()
    attached = {tuple(row) for row in session.execute(select(InvoiceFile.invoice_id, InvoiceFile.file_id))}
    assert attached == {(first.id, int(file_ids[0])), (second.id, int(file_ids[1]))}
    assert session.get(Document, first.document_id).status == DocumentStatus.VALIDATED.value  # no new review


def test_assign_api_and_its_refusals(
    app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture, other_tenant: TenantFixture
) -> None:
    first, second = _two_invoices(session, storage, tenant)
    api = app.test_client()
    auth = {"Authorization": f"Bearer {tenant.token}"}
    proposed = api.post("/api/v1/invoices/assign", headers=auth, content_type="multipart/form-data",
                        data=_files(("B-77.pdf", make_invoice_pdf(number="nothing"))))
    assert proposed.status_code == 200
    (item,) = proposed.get_json()["items"]
    assert item["found_in"] == "filename" and item["invoices"][0] == {"id": second.id, "number": "B-77",
                                                                        "type": "invoice"}
    assert api.post("/api/v1/invoices/assign", headers=auth, content_type="multipart/form-data",
                    data={}).status_code == 400
    too_many = _files(*[(f"{n}.pdf", b"%PDF-1.4 x") for n in range(assignment.MAX_FILES + 1)])
    assert api.post("/api/v1/invoices/assign", headers=auth, content_type="multipart/form-data",
                    data=too_many).status_code == 400
    for bad in ({}, {"pairs": []}, {"pairs": [{"file_id": "1", "invoice_id": 1}]}, {"pairs": [[1, 2]]}):
        assert api.post("/api/v1/invoices/assign/confirm", headers=auth, json=bad).status_code == 400
    pair = {"file_id": item["file_id"], "invoice_id": second.id}
    # Another tenant cannot use this tenant's file nor invoice.
    other = {"Authorization": f"Bearer {other_tenant.token}"}
    assert api.post("/api/v1/invoices/assign/confirm", headers=other, json={"pairs": [pair]}).status_code == 404
    done = api.post("/api/v1/invoices/assign/confirm", headers=auth, json={"pairs": [pair]})
    assert done.status_code == 200 and done.get_json() == {"attached": [pair]}
    assert api.get(f"/api/v1/invoices/{second.id}", headers=auth).get_json()["attachments"] == [item["file_id"]]


def test_a_restricted_member_cannot_assign_a_file_they_cannot_see(
    app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    tid = tenant.tenant.id
    first, second = _two_invoices(session, storage, tenant)
    member = accounts.create_user(session, "member@acme.example", PASSWORD, tenant.tenant, Role.MEMBER)
    token = accounts.create_token(session, member, tenant.tenant)
    session.add(ClientAssignment(tenant_id=tid, client_id=first.client_id, user_id=member.id))
    session.get(Tenant, tid).restrict_access = True
    session.commit()
    api = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    hidden_file = {"file_id": second.file_id, "invoice_id": first.id}  # Beta's original, onto Alpha's invoice
    refused = api.post("/api/v1/invoices/assign/confirm", headers=auth, json={"pairs": [hidden_file]})
    assert refused.status_code == 422 and refused.get_json()["fields"] == {str(second.file_id): assignment.NOT_YOURS}
    hidden_invoice = {"file_id": first.file_id, "invoice_id": second.id}
    assert api.post("/api/v1/invoices/assign/confirm", headers=auth,
                    json={"pairs": [hidden_invoice]}).status_code == 404
    # A number of an invoice the member may not see is never proposed.
    proposed = api.post("/api/v1/invoices/assign", headers=auth, content_type="multipart/form-data",
                        data=_files(("B-77.pdf", b"%PDF-1.4 beta")))
    assert proposed.get_json()["items"][0]["invoices"] == []
    session.expire_all()
    assert session.scalars(select(InvoiceFile)).all() == []


# A restricted member and an invoice they cannot see (review finding: fix-scope 1) ------------------


def _restricted_member(app: Flask, session: Session, storage: FileStorage,
                       tenant: TenantFixture) -> tuple[Invoice, FlaskClient, dict[str, str]]:
    """The admin's invoice FA-2026-0042 (client Acme SAS), and a restricted member assigned no client:
    their logged-in dashboard client and their API headers."""
    hidden = _validated(session, storage, tenant)
    member = accounts.create_user(session, "member@acme.example", PASSWORD, tenant.tenant, Role.MEMBER)
    token = accounts.create_token(session, member, tenant.tenant)
    session.get(Tenant, tenant.tenant.id).restrict_access = True
    session.commit()
    browser = app.test_client()
    assert login(browser, member.email).status_code == 302
    return hidden, browser, {"Authorization": f"Bearer {token}"}


def _untouched(session: Session, hidden: Invoice) -> None:
    session.expire_all()
    again = session.get(Invoice, hidden.id)
    assert (again.file_id, again.document_id) == (hidden.file_id, hidden.document_id)
    assert session.scalars(select(InvoiceFile).where(InvoiceFile.invoice_id == hidden.id)).all() == []


def test_a_restricted_member_typing_a_hidden_invoices_number_gets_a_plain_field_error(
    app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    hidden, browser, headers = _restricted_member(app, session, storage, tenant)
    mine = make_document(session, storage, tenant.tenant.id, filename="mine.pdf", number="FA-OTHER")
    form = COMPLETE | {"number": "FA-2026-0042", "action": "confirm"}
    page = post(browser, f"/documents/{mine.id}", form)
    assert page.status_code == 422
    body = text(page)
    assert "This number is already used by an invoice you cannot see: ask an administrator." in body
    assert f"/invoices/{hidden.id}" not in body and "link, replace or discard" not in body

    # The draft saved complete, so the API's validation meets the number clash and nothing else.
    draft = post(browser, f"/documents/{mine.id}", COMPLETE | {"number": "FA-OTHER", "action": "save"})
    assert draft.status_code == 302
    api = app.test_client().post(f"/api/v1/documents/{mine.id}/validate", json={"number": "FA-2026-0042"},
                                 headers=headers)
    assert api.status_code == 422
    assert api.get_json()["fields"] == {"number": docs.NUMBER_TAKEN_HIDDEN}
    assert "duplicate_of" not in api.get_json() and "choices" not in api.get_json()
    session.expire_all()
    doc = session.get(Document, mine.id)
    assert doc.status == DocumentStatus.PENDING.value and doc.duplicate_of_id is None and doc.number == "FA-OTHER"
    _untouched(session, hidden)


def test_a_restricted_member_cannot_link_or_replace_into_a_hidden_invoice(
    app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    hidden, browser, headers = _restricted_member(app, session, storage, tenant)
    # Extraction read the hidden invoice's number on a resent copy: the copy waits for a duplicate decision.
    copy = _resent(session, hidden.document_id, "original.pdf", number="FA-2026-0042")
    page = text(browser.get(f"/documents/{copy.id}"))
    assert re.search(r'<button type="submit" name="action" value="link" disabled', page)
    assert re.search(r'<button type="submit" name="action" value="replace" disabled', page)
    assert "a client you cannot see: only Discard is possible here" in page and f"/invoices/{hidden.id}" not in page
    api = app.test_client()
    shown = api.get(f"/api/v1/documents/{copy.id}", headers=headers).get_json()
    listed = api.get("/api/v1/documents?status=duplicate", headers=headers).get_json()["items"]
    assert shown["status"] == "duplicate" and shown["duplicate_of"] is None
    assert [(item["id"], item["duplicate_of"]) for item in listed] == [(copy.id, None)]
    for action in ("replace", "link"):
        answer = api.post(f"/api/v1/documents/{copy.id}/duplicate", json={"action": action}, headers=headers)
        assert answer.status_code == 404, action
        assert post(browser, f"/documents/{copy.id}/duplicate", {"action": action}).status_code == 404, action
    _untouched(session, hidden)
    assert session.get(Document, copy.id).status == DocumentStatus.DUPLICATE.value
    discarded = api.post(f"/api/v1/documents/{copy.id}/duplicate", json={"action": "discard"}, headers=headers)
    assert discarded.status_code == 200


def test_assignment_confirm_records_the_attach_audit_once_per_file(
    app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    """The audit of an assignment is the domain's (review finding: it was written in both transports)."""
    first, second = _two_invoices(session, storage, tenant)
    viewer = access.viewer_for(session, tenant.tenant.id, tenant.admin.id)
    done = assignment.confirm(session, viewer, [(second.file_id, first.id)], actor=tenant.admin, ip="192.0.2.7",
                              via="assign")
    session.commit()
    (event,) = session.scalars(audit.events_query(tenant.tenant.id, "invoice.attach_file")).all()
    assert done == [(second.file_id, first.id)]
    assert (event.actor_id, event.target, event.ip) == (tenant.admin.id, f"invoice:{first.id}", "192.0.2.7")
    assert event.detail == {"file_id": second.file_id, "via": "assign"}
    # Through the API: the same event, said to come from it.
    api = app.test_client()
    answer = api.post("/api/v1/invoices/assign/confirm", headers={"Authorization": f"Bearer {tenant.token}"},
                      json={"pairs": [{"file_id": first.file_id, "invoice_id": second.id}]})
    assert answer.status_code == 200
    latest = session.scalars(audit.events_query(tenant.tenant.id, "invoice.attach_file")).first()
    assert latest.detail == {"file_id": first.file_id, "via": "api assign"} and latest.actor_id == tenant.admin.id
