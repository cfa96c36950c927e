"""Helpers for the bank and reconciliation tests: invoices in a tenant, statements as Sparkasse CSV."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session

from core.documents.review import find_or_create_client
from core.fields import number_key
from core.files.records import store_file
from core.files.storage import FileStorage
from core.models import Invoice

ACCOUNT = "DE02120300000000202051"
HEADER = (
    '"Auftragskonto";"Buchungstag";"Valutadatum";"Buchungstext";"Verwendungszweck";"Glaeubiger ID";'
    '"Mandatsreferenz";"Kundenreferenz (End-to-End)";"Sammlerreferenz";"Lastschrift Ursprungsbetrag";'
    '"Auslagenersatz Ruecklastschrift";"Beguenstigter/Zahlungspflichtiger";"Kontonummer/IBAN";'
    '"BIC (SWIFT-Code)";"Betrag";"Waehrung";"Info"'
)


def make_invoice(
    session: Session,
    storage: FileStorage,
    tenant_id: int,
    number: str,
    amount: str | Decimal,
    client: str,
    *,
    direction: str = "receivable",
    doc_type: str = "invoice",
    issue_date: date = date(2026, 1, 5),
    due_date: date | None = None,
    client_iban: str | None = None,
    currency: str = "EUR",
) -> Invoice:
    content = f"{tenant_id}:{direction}:{doc_type}:{number}".encode()
    stored = store_file(session, storage, tenant_id, content, "application/pdf")
    owner = find_or_create_client(session, tenant_id, client)
    if client_iban:
        owner.iban = client_iban
    invoice = Invoice(
        tenant_id=tenant_id,
        direction=direction,
        doc_type=doc_type,
        number=number,
        number_key=number_key(number),
        client_id=owner.id,
        file_id=stored.id,
        amount=Decimal(amount),
        currency=currency,
        issue_date=issue_date,
        due_date=due_date,
        issuer="Acme SAS",
    )
    session.add(invoice)
    session.flush()
    return invoice


def csv_row(booking: date, text: str, amount: str, name: str = "", iban: str = "", info: str = "Umsatz gebucht",
            account: str = ACCOUNT) -> str:
    day = booking.strftime("%d.%m.%y")
    cells = [account, day, day, "GUTSCHRIFT", text, "", "", "", "", "", "", name, iban, "", amount, "EUR", info]
    return ";".join(f'"{c}"' for c in cells)


def statement_csv(*rows: str) -> bytes:
    return ("\r\n".join((HEADER, *rows)) + "\r\n").encode("utf-8")
