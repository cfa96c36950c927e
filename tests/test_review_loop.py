"""The review loop's last steps (issue 17, item 5) through the dashboard: a typed number that is an
existing invoice's opens the duplicate choice, and validation matches a payment that arrived first."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import BankTransaction, Document, DocumentStatus, Invoice, InvoiceFile, Match, MatchState
from core.services import bank
from core.services import documents as docs
from core.storage import FileStorage
from tests.bankhelpers import csv_row, statement_csv
from tests.conftest import TenantFixture
from tests.test_dashboard import COMPLETE, client, make_document, post, text  # noqa: F401 - the client fixture

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
    form = COMPLETE | {"number": "fa-2026-0042 ", "title": "Typed again", "action": "confirm"}
    response = post(client, f"/documents/{other.id}", form)
    assert response.status_code == 302 and response.headers["Location"] == f"/documents/{other.id}"

    page = text(client.get(f"/documents/{other.id}"))
    assert "This number is already used: link, replace or discard below." in page
    assert "invoice FA-2026-0042 has the same number" in page
    assert f'href="/invoices/{invoice.id}"' in page
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
    client: FlaskClient, session: Session, storage: FileStorage, tenant: TenantFixture
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
    assert invoice.status == "paid" and invoice.amount_paid == Decimal("1200.00")
    (match,) = session.scalars(select(Match).where(Match.invoice_id == invoice.id)).all()
    assert match.state == MatchState.APPLIED.value and match.transaction_id == paid.transaction_ids[0]
    statuses = dict(session.execute(select(BankTransaction.amount, BankTransaction.status)).tuples().all())
    assert statuses == {Decimal("1200.00"): "matched", Decimal("-1200.00"): "unmatched"}
