"""Issue 18 item 3: one expense / revenue line per invoice line when the e-invoice has lines (each with its
VAT rate), one VAT line per rate; per rate when the lines do not add up to the breakdown (document-level
allowances or charges) or were stored without their rate. Real e-invoices of the shared corpus, and the real
services on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.accounting import entries as entrysvc
from core.accounting.build import FLAG_TOTALS, entry_for_invoice
from core.accounting.charts import PCG, SKR03
from core.accounting.ledger import AccountInfo, Books, problems
from core.accounting.models import EntryStatus, JournalEntry
from core.documents import review as docs
from core.documents.processing import einvoice_details
from core.einvoice import EInvoiceError, read_einvoice
from core.models import Direction, Document, DocumentStatus, Invoice
from tests.corpus import CORPUS, needs
from tests.test_accounting import ISSUE, lines_of, vat
from tests.test_dashboard import make_document

D = Decimal
EINVOICES = CORPUS / "einvoice"


def _read(path: Path) -> Any:
    try:
        return read_einvoice(path.read_bytes(), path.name)
    except EInvoiceError:
        return None


def _books(chart: Any) -> Books:
    return Books(accounts={a.number: AccountInfo(a.number, a.label, True, a.is_vat, a.vat_rate)
                           for a in chart.accounts}, journals=frozenset({"AC", "VT", "BQ", "OD"}))


def _base_lines(entry: Any, chart: Any) -> list[Any]:
    """The expense / revenue lines: neither the counterparty's (aux) nor VAT nor autoliquidation."""
    vat_accounts = {a.number for a in chart.accounts if a.is_vat} | {chart.reverse_charge_due}
    return [line for line in entry.lines if line.aux is None and line.account not in vat_accounts]


@needs(EINVOICES)
@pytest.mark.parametrize("direction", ["payable", "receivable"])
def test_corpus_einvoices_with_lines_give_balanced_entries_line_by_line(direction: str) -> None:
    with_lines = per_line = multi_line = flagged = extras = 0
    for chart in (PCG, SKR03):
        books = _books(chart)
        for path in sorted(EINVOICES.iterdir()):
            einv = _read(path)
            if einv is None or not einv.lines or not einv.vat_breakdown or einv.grand_total is None:
                continue
            with_lines += 1
            invoice = Invoice(direction=direction, doc_type="credit_note" if einv.is_credit_note else "invoice",
                              number=einv.number or path.name, amount=abs(einv.grand_total),
                              currency=einv.currency or "EUR", issue_date=einv.issue_date or ISSUE,
                              issuer=einv.seller_name or "x")
            details = einvoice_details(einv)
            facts = entrysvc.invoice_facts(invoice, Document(extraction_details=details), chart)
            entry = entry_for_invoice(facts, chart)
            if any(FLAG_TOTALS.split("(")[0] in flag for flag in entry.flags):
                flagged += 1  # the document's own breakdown does not add up to its total: said, not hidden
                continue
            assert problems(entry, books) == [], path.name
            assert entry.debit == entry.credit > 0, path.name
            bases = _base_lines(entry, chart)
            items = [item for part in facts.parts for item in part.items]
            split = [part for part in facts.parts if part.items]
            # Each part is either split by invoice line or one line (zero amounts add none); VAT stays per rate.
            expected = [item.label or entry.label for item in items if item.net] + [
                entry.label for part in facts.parts if not part.items and part.base]
            assert sorted(line.label for line in bases) == sorted(expected), path.name
            if items and len(split) == len(facts.parts):
                per_line += 1
                names = [" ".join((line.description or "").split()) or entry.label for line in einv.lines
                         if line.net_amount]
                # Document-level allowances and charges (BG-20 / BG-21) are lines of their own.
                names += [item.reason or ("Frais" if item.charge else "Remise")
                          for item in einv.allowances_charges if item.amount]
                extras += len(einv.allowances_charges)
                assert sorted(line.label for line in bases) == sorted(name[:200] for name in names), path.name
                if len(einv.lines) > len(facts.parts):
                    multi_line += 1  # more lines than rates: the entry says more than the per-rate one did
            # Documents read before lines kept their rate keep the per-rate entry.
            old = {**details, "lines": [{k: v for k, v in line.items() if k != "vat_rate"}
                                        for line in details["lines"]]}
            old_facts = entrysvc.invoice_facts(invoice, Document(extraction_details=old), chart)
            old_entry = entry_for_invoice(old_facts, chart)
            assert not any(part.items for part in old_facts.parts)
            assert problems(old_entry, books) == [] and _per_account(old_entry) == _per_account(entry), path.name
    assert with_lines >= 50 and flagged <= 4, (with_lines, flagged)
    assert per_line >= 40 and multi_line >= 10 and extras >= 20, (per_line, multi_line, extras)


def _per_account(entry: Any) -> dict[str, Decimal]:
    """What an entry books on each account (debit - credit): the same whether split by line or by rate."""
    totals: dict[str, Decimal] = {}
    for line in entry.lines:
        totals[line.account] = totals.get(line.account, D(0)) + line.balance
    return totals


def _details(breakdown: list[dict[str, str]], lines: list[tuple[str, str, str | None]]) -> dict[str, Any]:
    """extraction_details as the worker stores an e-invoice's (``einvoice_details``)."""
    return {"reader": "einvoice", "vat_breakdown": breakdown,
            "lines": [{"description": name, "quantity": "1", "unit_price": net, "net_amount": net,
                       "vat_rate": rate, "vat_category": "S" if rate else None} for name, net, rate in lines],
            "lines_total": len(lines)}


def _validate(session, storage, fx, number: str, amount: str, details: dict[str, Any],
              client: str = "Fournitures Martin") -> JournalEntry:
    doc = make_document(session, storage, fx.tenant.id, filename=f"{number}.pdf",
                        data=b"%PDF-1.4\n% " + number.encode(), status=DocumentStatus.PENDING,
                        direction=Direction.PAYABLE.value, extraction_details=details)
    data = {"doc_type": "invoice", "number": number, "client": client, "issuer": client, "amount": amount,
            "currency": "EUR", "issue_date": ISSUE.isoformat(), "due_date": ISSUE.isoformat()}
    invoice = docs.validate_document(session, fx.tenant.id, doc.id, data, fx.admin.id)
    session.commit()
    return session.scalars(select(JournalEntry).where(JournalEntry.invoice_id == invoice.id)).one()


def test_purchase_gets_a_line_per_invoice_line_and_the_learned_account(session, storage, tenant):
    tid = tenant.tenant.id
    details = _details([vat("20", "150.00", "30.00"), vat("5.5", "40.00", "2.20")],
                       [("Ramettes A4", "100.00", "20.00"), ("Livres", "40.00", "5.50"),
                        ("Remise fidélité", "-10.00", "20.00"), ("Toner", "60.00", "20.00")])
    entry = _validate(session, storage, tenant, "L-1", "222.20", details)
    assert entry.status == EntryStatus.READY.value, entry.issues
    assert [(ln.account, str(ln.debit), str(ln.credit), ln.label) for ln in entry.lines] == [
        ("401000", "0.00", "222.20", "Fournitures Martin L-1"),
        ("604000", "100.00", "0.00", "Ramettes A4"), ("604000", "0.00", "10.00", "Remise fidélité"),
        ("604000", "60.00", "0.00", "Toner"), ("445660", "30.00", "0.00", "Fournitures Martin L-1"),
        ("604000", "40.00", "0.00", "Livres"), ("445660", "2.20", "0.00", "Fournitures Martin L-1"),
    ]
    # The accountant books this supplier on 606400 and posts: the next invoice's lines all go there.
    edited = [{"account": ln.account if ln.account != "604000" else "606400", "debit": str(ln.debit),
               "credit": str(ln.credit), "label": ln.label, "aux": ln.aux, "aux_label": ln.aux_label,
               "vat_rate": None if ln.vat_rate is None else str(ln.vat_rate)} for ln in entry.lines]
    entrysvc.update_entry(session, tid, entry.id, {"lines": edited})
    entrysvc.post_entry(session, tid, entry.id, tenant.admin.id)
    session.commit()
    following = _validate(session, storage, tenant, "L-2", "36.00", _details(
        [vat("20", "30.00", "6.00")], [("Agrafes", "12.50", "20.00"), ("Classeurs", "17.50", "20.00")]))
    assert [(ln.account, str(ln.debit), ln.label) for ln in following.lines[1:]] == [
        ("606400", "12.50", "Agrafes"), ("606400", "17.50", "Classeurs"),
        ("445660", "6.00", "Fournitures Martin L-2")]


def test_lines_that_do_not_add_up_fall_back_to_one_line_per_rate(session, storage, tenant):
    # A document-level allowance of 10.00 at 20 %: the 20 % lines sum to 160.00, the breakdown says 150.00.
    details = _details([vat("20", "150.00", "30.00"), vat("5.5", "40.00", "2.20")],
                       [("Ramettes A4", "100.00", "20.00"), ("Livres", "40.00", "5.50"), ("Toner", "60.00", "20.00")])
    entry = _validate(session, storage, tenant, "L-3", "222.20", details)
    assert entry.status == EntryStatus.READY.value, entry.issues
    assert lines_of(entry) == [
        ("401000", "0.00", "222.20", None), ("604000", "150.00", "0.00", "20.00"),
        ("445660", "30.00", "0.00", "20.00"), ("604000", "40.00", "0.00", "5.50"),
        ("445660", "2.20", "0.00", "5.50")]
    assert entry.lines[3].label == "Livres"  # the 5.5 % part adds up: it keeps its line
    # The same invoice read with its allowance (BG-20, kept since): the allowance is a line of its own.
    allowance = {**details, "allowances_charges": [{"charge": False, "amount": "10.00", "reason": "",
                                                    "vat_rate": "20.00", "vat_category": "S"}]}
    entry = _validate(session, storage, tenant, "L-5", "222.20", allowance)
    assert [(ln.account, str(ln.debit), str(ln.credit), ln.label) for ln in entry.lines[1:5]] == [
        ("604000", "100.00", "0.00", "Ramettes A4"), ("604000", "60.00", "0.00", "Toner"),
        ("604000", "0.00", "10.00", "Remise"), ("445660", "30.00", "0.00", "Fournitures Martin L-5")]
    assert entry.status == EntryStatus.READY.value, entry.issues  # balanced: nothing to fix
    # Only the first lines stored (a very long invoice): per rate, whatever they add up to.
    long = {**details, "lines_total": 500}
    entry = _validate(session, storage, tenant, "L-4", "222.20", long)
    assert [ln.label for ln in entry.lines if ln.account == "604000"] == ["Fournitures Martin L-4"] * 2
