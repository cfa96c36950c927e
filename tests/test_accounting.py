"""Issue 18 part A: validated invoices become balanced entries; posting, rules that learn, the FEC.

Every test runs on SQLite and PostgreSQL (``db_url``), through the real services and the real hook in
``core.documents.review``."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounting import books as booksvc
from core.accounting import entries as entrysvc
from core.accounting import fec
from core.accounting.models import CounterpartyRule, EntryStatus, FiscalYear, JournalEntry
from core.documents import invoice_edits
from core.documents import review as docs
from core.errors import ServiceError, ValidationFailed
from core.files.storage import FileStorage
from core.models import Direction, DocumentStatus, Invoice, Tenant
from tests.conftest import TenantFixture
from tests.fecchecker import check_fec
from tests.test_dashboard import make_document

D = Decimal
ISSUE = date(2026, 3, 2)


def validate(session: Session, storage: FileStorage, fx: TenantFixture, number: str, amount: str, *,
             direction: str = Direction.RECEIVABLE.value, doc_type: str = "invoice", client: str = "Client SA",
             net: str | None = None, tax: str | None = None, breakdown: list[dict[str, Any]] | None = None,
             currency: str = "EUR", issue: date = ISSUE) -> tuple[Invoice, JournalEntry]:
    """A document validated through the real service; returns the invoice and its draft entry."""
    details = {"reader": "einvoice", "vat_breakdown": breakdown} if breakdown is not None else None
    doc = make_document(session, storage, fx.tenant.id, filename=f"{number}.pdf",
                        data=b"%PDF-1.4\n% " + number.encode(), status=DocumentStatus.PENDING,
                        direction=direction, extraction_details=details)
    data = {"doc_type": doc_type, "number": number, "client": client, "amount": amount, "currency": currency,
            "issue_date": issue.isoformat(), "due_date": "" if doc_type == "credit_note" else issue.isoformat(),
            "net_amount": net or "", "tax_amount": tax or ""}
    if direction == Direction.PAYABLE.value:  # a purchase's counterparty is its issuer, the supplier
        data["issuer"] = client
    invoice = docs.validate_document(session, fx.tenant.id, doc.id, data, fx.admin.id)
    session.commit()
    entry = session.scalars(select(JournalEntry).where(JournalEntry.invoice_id == invoice.id)).one()
    return invoice, entry


def lines_of(entry: JournalEntry) -> list[tuple[str, str, str, str | None]]:
    return [(ln.account, str(ln.debit), str(ln.credit), None if ln.vat_rate is None else str(ln.vat_rate))
            for ln in entry.lines]


def vat(rate: str, base: str, tax: str, category: str = "S") -> dict[str, str]:
    return {"category": category, "rate": rate, "base": base, "tax": tax}


def test_sale_with_four_vat_rates_from_the_einvoice_breakdown(session, storage, tenant):
    breakdown = [vat("20", "100.00", "20.00"), vat("10", "50.00", "5.00"), vat("5.5", "200.00", "11.00"),
                 vat("2.1", "100.00", "2.10")]
    invoice, entry = validate(session, storage, tenant, "F-1", "488.10", breakdown=breakdown)
    assert entry.status == EntryStatus.READY.value, entry.issues
    assert entry.journal == "VT"
    assert lines_of(entry) == [
        ("411000", "488.10", "0.00", None),
        ("706000", "0.00", "100.00", "20.00"), ("445711", "0.00", "20.00", "20.00"),
        ("706000", "0.00", "50.00", "10.00"), ("445712", "0.00", "5.00", "10.00"),
        ("706000", "0.00", "200.00", "5.50"), ("445713", "0.00", "11.00", "5.50"),
        ("706000", "0.00", "100.00", "2.10"), ("445714", "0.00", "2.10", "2.10"),
    ]
    assert entry.lines[0].aux == f"C{invoice.client_id:06d}" and entry.lines[0].aux_label == "Client SA"
    # Idempotent: drafting again finds the same entry.
    assert entrysvc.draft_for_invoice(session, invoice).id == entry.id


def test_purchase_credit_note_is_reversed_and_extraction_gives_the_rate(session, storage, tenant):
    _, entry = validate(session, storage, tenant, "AV-7", "120.00", direction="payable", doc_type="credit_note",
                        client="Fournisseur SARL", net="100.00", tax="20.00")
    assert entry.journal == "AC"
    assert lines_of(entry) == [("401000", "120.00", "0.00", None), ("604000", "0.00", "100.00", "20.00"),
                               ("445660", "0.00", "20.00", "20.00")]
    assert entry.lines[0].aux.startswith("F")
    assert entry.status == EntryStatus.READY.value


def test_intra_eu_purchase_gets_the_autoliquidation_lines(session, storage, tenant):
    _, entry = validate(session, storage, tenant, "EU-1", "1000.00", direction="payable", client="GmbH",
                        breakdown=[vat("0", "1000.00", "0.00", "K")])
    assert lines_of(entry) == [
        ("401000", "0.00", "1000.00", None), ("604000", "1000.00", "0.00", "0.00"),
        ("445662", "200.00", "0.00", "20.00"), ("445200", "0.00", "200.00", "20.00"),
    ]
    assert entry.status == EntryStatus.READY.value, entry.issues


def test_intra_eu_sale_goes_to_the_exempt_revenue_account(session, storage, tenant):
    _, entry = validate(session, storage, tenant, "EU-S", "500.00", breakdown=[vat("0", "500.00", "0.00", "K")])
    assert lines_of(entry) == [("411000", "500.00", "0.00", None), ("707100", "0.00", "500.00", "0.00")]


def test_no_breakdown_assumes_one_rate_and_waits_for_the_reviewer(session, storage, tenant):
    _, entry = validate(session, storage, tenant, "F-2", "120.00")
    assert entry.status == EntryStatus.TO_PROCESS.value
    assert "single rate of 20 %" in " ".join(entry.issues)
    with pytest.raises(ValidationFailed):
        entrysvc.post_entry(session, tenant.tenant.id, entry.id, tenant.admin.id)
    entrysvc.update_entry(session, tenant.tenant.id, entry.id, {"confirm": True})
    assert entry.status == EntryStatus.READY.value


def test_foreign_currency_waits_for_its_rate_and_keeps_the_amounts_in_currency(session, storage, tenant):
    _, entry = validate(session, storage, tenant, "US-1", "110.00", currency="USD", direction="payable",
                        client="Acme Inc", breakdown=[vat("10", "100.00", "10.00")])
    assert entry.status == EntryStatus.TO_PROCESS.value and "USD" in " ".join(entry.issues)
    entrysvc.update_entry(session, tenant.tenant.id, entry.id, {"exchange_rate": "0.9137", "confirm": True})
    session.commit()
    assert lines_of(entry) == [("401000", "0.00", "100.51", None), ("604000", "91.37", "0.00", "10.00"),
                               ("445660", "9.14", "0.00", "10.00")]
    assert [(str(ln.amount_currency), ln.currency) for ln in entry.lines] == [
        ("-110.00", "USD"), ("100.00", "USD"), ("10.00", "USD")]
    assert entry.status == EntryStatus.READY.value, entry.issues
    with pytest.raises(ValidationFailed):
        entrysvc.update_entry(session, tenant.tenant.id, entry.id, {"exchange_rate": "-1"})


def test_posting_numbers_freezes_and_refuses_edits(session, storage, tenant):
    _, first = validate(session, storage, tenant, "P-1", "120.00", net="100.00", tax="20.00")
    _, second = validate(session, storage, tenant, "P-2", "240.00", net="200.00", tax="40.00")
    entrysvc.post_entry(session, tenant.tenant.id, second.id, tenant.admin.id, today=date(2026, 3, 5))
    entrysvc.post_entry(session, tenant.tenant.id, first.id, tenant.admin.id, today=date(2026, 3, 6))
    session.commit()
    assert (second.number, first.number) == (1, 2)
    assert first.valid_date == date(2026, 3, 6) and first.status == EntryStatus.POSTED.value
    with pytest.raises(ServiceError, match="posted entry cannot be changed"):
        entrysvc.update_entry(session, tenant.tenant.id, first.id, {"label": "x"})
    # Posting twice is the same posting.
    assert entrysvc.post_entry(session, tenant.tenant.id, first.id, tenant.admin.id).number == 2
    reversal = entrysvc.reverse_entry(session, tenant.tenant.id, first.id, on=date(2026, 3, 7))
    assert [(ln.account, str(ln.debit), str(ln.credit)) for ln in reversal.lines] == [
        ("411000", "0.00", "120.00"), ("706000", "100.00", "0.00"), ("445711", "20.00", "0.00")]
    assert entrysvc.reverse_entry(session, tenant.tenant.id, first.id).id == reversal.id


def test_refusals_say_what_to_fix_and_write_nothing(session, storage, tenant):
    _, entry = validate(session, storage, tenant, "R-1", "120.00", net="100.00", tax="20.00")
    tid = tenant.tenant.id
    unbalanced = [{"account": "411000", "debit": "120.00"}, {"account": "706000", "credit": "100.00"},
                  {"account": "445711", "credit": "19.99", "vat_rate": "20"}]
    entrysvc.update_entry(session, tid, entry.id, {"lines": unbalanced})
    assert entry.status == EntryStatus.TO_PROCESS.value
    with pytest.raises(ValidationFailed, match="not balanced.*differ by 0.01"):
        entrysvc.post_entry(session, tid, entry.id, tenant.admin.id)
    wrong_rate = [{"account": "411000", "debit": "110.00"}, {"account": "706000", "credit": "100.00"},
                  {"account": "445711", "credit": "10.00", "vat_rate": "10"}]
    entrysvc.update_entry(session, tid, entry.id, {"lines": wrong_rate})
    with pytest.raises(ValidationFailed, match="445711 is for 20 %, not 10 %"):
        entrysvc.post_entry(session, tid, entry.id, tenant.admin.id)
    good = [{"account": "411000", "debit": "120.00"}, {"account": "706000", "credit": "100.00"},
            {"account": "445711", "credit": "20.00", "vat_rate": "20"}]
    entrysvc.update_entry(session, tid, entry.id, {"lines": good})
    booksvc.update_account(session, tid, "706000", active=False)
    with pytest.raises(ValidationFailed, match="706000 is deactivated"):
        entrysvc.post_entry(session, tid, entry.id, tenant.admin.id)
    booksvc.update_account(session, tid, "706000", active=True)
    unknown = [{"account": "999999", "debit": "1.00"}, {"account": "706000", "credit": "1.00"}]
    entrysvc.update_entry(session, tid, entry.id, {"lines": unknown})
    assert "999999 is not in the chart" in " ".join(entry.issues)
    entrysvc.update_entry(session, tid, entry.id, {"lines": good})
    with pytest.raises(ValidationFailed, match=r"1 entries of the fiscal year 2026 \(2026-01-01 to 2026-12-31\)"):
        entrysvc.close_year(session, tid, 2026)
    with pytest.raises(ValidationFailed, match="four digits"):
        entrysvc.close_year(session, tid, "2026")
    entrysvc.update_entry(session, tid, entry.id, {"entry_date": "2025-12-31"})
    entrysvc.close_year(session, tid, 2026)
    entrysvc.update_entry(session, tid, entry.id, {"entry_date": "2026-03-02"})
    with pytest.raises(ValidationFailed, match="fiscal year 2026 is closed"):
        entrysvc.post_entry(session, tid, entry.id, tenant.admin.id)
    session.rollback()
    assert session.get(JournalEntry, entry.id).number is None  # nothing half-written
    with pytest.raises(ValidationFailed):
        entrysvc.update_entry(session, tid, entry.id, {"lines": [{"account": "411000", "debit": "abc"}] * 2})
    with pytest.raises(ValidationFailed):
        entrysvc.update_entry(session, tid, entry.id, {"lines": "not a list"})
    with pytest.raises(ValidationFailed):
        entrysvc.update_entry(session, tid, entry.id, {"journal": "ZZ"})


def test_other_tenant_cannot_see_or_post(session, storage, tenant, other_tenant):
    _, entry = validate(session, storage, tenant, "T-1", "120.00", net="100.00", tax="20.00")
    with pytest.raises(ServiceError):
        entrysvc.get_entry(session, other_tenant.tenant.id, entry.id)
    with pytest.raises(ServiceError):
        entrysvc.post_entry(session, other_tenant.tenant.id, entry.id, other_tenant.admin.id)


def test_rules_learn_at_posting_and_apply_to_next_and_waiting_drafts(session, storage, tenant):
    tid = tenant.tenant.id
    booksvc.add_account(session, tid, "626000X", "Téléphone mobile")
    _, first = validate(session, storage, tenant, "O-1", "60.00", direction="payable", client="Orange",
                        net="50.00", tax="10.00")
    _, waiting = validate(session, storage, tenant, "O-2", "30.00", direction="payable", client="Orange")
    lines = [{"account": "401000", "credit": "60.00", "aux": first.lines[0].aux, "aux_label": "Orange"},
             {"account": "626000X", "debit": "50.00", "vat_rate": "20"},
             {"account": "445660", "debit": "10.00", "vat_rate": "20"}]
    entrysvc.update_entry(session, tid, first.id, {"lines": lines, "journal": "OD"})
    entrysvc.post_entry(session, tid, first.id, tenant.admin.id)
    session.commit()
    rule = session.scalars(select(CounterpartyRule).where(CounterpartyRule.tenant_id == tid)).one()
    assert (rule.account, rule.vat_rate, rule.journal) == ("626000X", D("20.00"), "OD")
    session.refresh(waiting)
    assert waiting.journal == "OD" and waiting.lines[1].account == "626000X"
    # The learned rate is not "assumed" any more: the waiting draft is ready.
    assert waiting.status == EntryStatus.READY.value, waiting.issues
    _, later = validate(session, storage, tenant, "O-3", "12.00", direction="payable", client="Orange")
    assert later.journal == "OD" and [ln.account for ln in later.lines] == ["401000", "626000X", "445660"]


def test_deleting_an_invoice_takes_its_draft_and_refuses_a_posted_one(session, storage, tenant):
    from core.tenancy import access

    viewer = access.viewer_for(session, tenant.tenant.id, tenant.admin.id)
    invoice, entry = validate(session, storage, tenant, "D-1", "120.00", net="100.00", tax="20.00")
    other, posted = validate(session, storage, tenant, "D-2", "120.00", net="100.00", tax="20.00")
    entrysvc.post_entry(session, tenant.tenant.id, posted.id, tenant.admin.id)
    session.commit()
    invoice_edits.delete_invoice(session, viewer, invoice.id, "wrong file")
    session.commit()
    assert session.get(JournalEntry, entry.id) is None
    with pytest.raises(ServiceError, match="posted"):
        invoice_edits.delete_invoice(session, viewer, other.id, "wrong file")


def test_fec_of_a_generated_year_passes_the_checker(session, storage, tenant):
    tid = tenant.tenant.id
    with pytest.raises(ValidationFailed, match="SIREN"):
        fec.filename(session, tid, 2026)
    session.get(Tenant, tid).siren = "732829320"
    rates = [("20", "20.00"), ("10", "10.00"), ("5.5", "5.50"), ("2.1", "2.10")]
    for i in range(24):
        rate, _ = rates[i % 4]
        base = D(100 + i * 7)
        tax = (base * D(rate) / 100).quantize(D("0.01"))
        direction = "payable" if i % 3 == 0 else "receivable"
        doc_type = "credit_note" if i % 5 == 4 else "invoice"
        currency = "USD" if i == 7 else "EUR"
        _, entry = validate(session, storage, tenant, f"G-{i}", str(base + tax), direction=direction,
                            doc_type=doc_type, client=f"Tiers\t{i % 4}", breakdown=[vat(rate, str(base), str(tax))],
                            issue=date(2026, 1 + i % 12, 1 + i), currency=currency)
        if currency == "USD":
            entrysvc.update_entry(session, tid, entry.id, {"exchange_rate": "0.92"})
        entrysvc.post_entry(session, tid, entry.id, tenant.admin.id, today=date(2026, 12, 1 + i))
    session.commit()
    name = fec.filename(session, tid, 2026)
    assert name == "732829320FEC20261231.txt"
    data = b"".join(fec.stream(session, tid, 2026))
    assert check_fec(name, data, date(2026, 1, 1), date(2026, 12, 31)) == []
    text = data.decode()
    assert text.count("\r\n") == 1 + sum(len(e.lines) for e in session.scalars(select(JournalEntry)))
    assert "\t0,92" not in text and ",00\t" in text and "USD" in text
    # The checker catches what it must: a gap, an unbalanced entry, a dot decimal.
    broken = text.replace("\t2\t", "\t3\t", 1).encode()
    assert "EcritureNum is not sequential from 1 without gaps" in check_fec(name, broken, date(2026, 1, 1),
                                                                            date(2026, 12, 31))
    lines = text.split("\r\n")
    cols = lines[1].split("\t")
    cols[11] = "1.00" if cols[11] else cols[11]
    cols[12] = "1.00" if cols[12] else cols[12]
    lines[1] = "\t".join(cols)
    found = check_fec(name, "\r\n".join(lines).encode(), date(2026, 1, 1), date(2026, 12, 31))
    assert any("not an amount with a comma" in p for p in found)
    assert session.scalars(select(FiscalYear.last_number).where(FiscalYear.tenant_id == tid)).one() == 24


# The shared e-invoice corpus: each VAT breakdown, kept as the worker keeps it, gives a balanced entry. -----

def _corpus_files() -> list[Any]:
    from tests.corpus import CORPUS

    folder = CORPUS / "einvoice"
    return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize("direction", ["payable", "receivable"])
def test_corpus_breakdowns_give_balanced_entries(direction: str) -> None:
    from core.accounting.build import FLAG_TOTALS
    from core.accounting.build import entry_for_invoice as build_entry
    from core.accounting.charts import PCG, SKR03
    from core.accounting.ledger import AccountInfo, Books, problems
    from core.documents.processing import einvoice_details
    from core.einvoice import EInvoiceError, read_einvoice
    from core.models import Document

    files = _corpus_files()
    if not files:
        pytest.skip("the shared corpus is absent (set INBOX_CORPUS)")
    checked = flagged = 0
    for chart in (PCG, SKR03):
        books = Books(accounts={a.number: AccountInfo(a.number, a.label, True, a.is_vat, a.vat_rate)
                                for a in chart.accounts}, journals=frozenset({"AC", "VT", "BQ", "OD"}))
        for path in files:
            try:
                einv = read_einvoice(path.read_bytes(), path.name)
            except EInvoiceError:
                continue
            if einv is None or not einv.vat_breakdown or einv.grand_total is None:
                continue
            invoice = Invoice(direction=direction, doc_type="credit_note" if einv.is_credit_note else "invoice",
                              number=einv.number or path.name, amount=abs(einv.grand_total),
                              currency=einv.currency or "EUR", issue_date=einv.issue_date or ISSUE,
                              issuer=einv.seller_name or "x")
            document = Document(extraction_details=einvoice_details(einv))
            facts = entrysvc.invoice_facts(invoice, document, chart)
            assert not facts.rate_assumed, path.name
            entry = build_entry(facts, chart, exchange_rate=D("1.1"))
            found = problems(entry, books)
            if any(FLAG_TOTALS.split("(")[0] in flag for flag in entry.flags):
                flagged += 1  # the document's breakdown does not add up to its total: said, not hidden
                continue
            assert found == [], (path.name, found)
            assert entry.debit == entry.credit > 0
            checked += 1
    assert checked >= 60 and flagged <= 4, (checked, flagged)


# The dashboard's Accounting area: review -> entry -> post -> export, with CSRF on every form. ---------------


def test_dashboard_entry_edit_post_and_fec(app, session, storage, tenant):
    from tests.test_dashboard import csrf_token, login, post, text

    tid = tenant.tenant.id
    session.get(Tenant, tid).siren = "732829320"
    session.commit()
    _, entry = validate(session, storage, tenant, "W-1", "120.00", client="Client <b>SA</b>")
    web = app.test_client()
    assert login(web, tenant.admin.email).status_code == 302
    listing = text(web.get("/accounting"))
    assert "W-1" in listing and "Client &lt;b&gt;SA&lt;/b&gt;" in listing and "single rate of 20" in listing
    page = web.get(f"/accounting/entries/{entry.id}")
    assert page.status_code == 200 and 'name="lines-0-account" value="411000"' in text(page)
    url = f"/accounting/entries/{entry.id}"
    form = {"journal": "VT", "entry_date": "2026-03-02", "label": "Client SA W-1", "confirm": "1",
            "lines-0-account": "411000", "lines-0-debit": "120.00", "lines-0-aux": entry.lines[0].aux,
            "lines-0-aux_label": entry.lines[0].aux_label, "lines-1-account": "706000", "lines-1-credit": "100",
            "lines-1-vat_rate": "20", "lines-2-account": "445711", "lines-2-credit": "20,00", "lines-2-vat_rate": "20",
            "lines-3-account": ""} | {f"lines-{i}-label": line.label for i, line in enumerate(entry.lines)}
    assert web.post(url, data=form).status_code == 400  # no CSRF token: refused
    assert post(web, url, form, page=url).status_code == 302
    session.expire_all()
    saved = session.get(JournalEntry, entry.id)
    assert saved.status == EntryStatus.READY.value and not saved.edited  # same lines: not marked edited
    assert post(web, f"{url}/post", {"remember": "1"}, page=url).status_code == 302
    session.expire_all()
    assert session.get(JournalEntry, entry.id).number == 1
    refused = post(web, url, form, page=url)
    assert refused.status_code == 302
    assert "posted entry cannot be changed" in text(web.get(url))
    # The invoice's page links its entry, with its status and number.
    invoice_page = text(web.get(f"/invoices/{saved.invoice_id}"))
    assert f'href="/accounting/entries/{entry.id}"' in invoice_page and "No. 1" in invoice_page
    exported = web.get("/accounting/fec?year=2026")
    assert exported.status_code == 200
    assert 'filename="732829320FEC20261231.txt"' in exported.headers["Content-Disposition"]
    assert check_fec("732829320FEC20261231.txt", exported.data, date(2026, 1, 1), date(2026, 12, 31)) == []
    # DATEV: refused until the company's Beraternummer and Mandantennummer are set, then in its header.
    datev_url = "/accounting/export?format=datev&from=2026-01-01&to=2026-12-31"
    refused_datev = web.get(datev_url)
    assert refused_datev.status_code == 302 and "Beraternummer" in text(web.get(refused_datev.location))
    assert post(web, "/settings/company", {"datev_consultant_number": "1000", "datev_client_number": "0"},
                page="/settings/company").status_code == 422
    company_form = {"datev_consultant_number": "29098", "datev_client_number": "55003", "siren": "732829320",
                    "approval_mode": "none"}
    assert post(web, "/settings/company", company_form, page="/settings/company").status_code == 302
    datev = web.get(datev_url)
    header, columns, *rows = datev.data.decode("cp1252").split("\r\n")[:-1]
    assert header.startswith('"EXTF";700;21;"Buchungsstapel";13;') and ';29098;55003;20260101;' in header
    assert len(columns.split(";")) == 125 and columns.split(";")[114] == "Leistungsdatum"
    assert all(len(row.split(";")) == 125 for row in rows) and rows[0].split(";")[114] == "02032026"
    assert "120,00" not in rows[0] and any(row.startswith("100,00;H") for row in rows)
    csv_data = web.get("/accounting/export?format=csv").data.decode("utf-8-sig").splitlines()
    assert csv_data[0].startswith("entry_id,entry_number,journal") and len(csv_data) == 4
    ebp = web.get("/accounting/export?format=ebp").data.decode("cp850").splitlines()
    assert ebp[0].startswith("    1,02032026,VT,C") and ",0000000120.00,D,02032026," in ebp[0] and len(ebp) == 3
    # The chart: add, rename, deactivate (CSRF on each).
    accounts_url = "/accounting/accounts"
    assert post(web, accounts_url, {"number": "706100", "label": "Formations"}, page=accounts_url).status_code == 302
    added = booksvc.get_account(session, tid, "706100")
    assert post(web, f"{accounts_url}/{added.id}", {"action": "deactivate"}, page=accounts_url).status_code == 302
    session.expire_all()
    assert booksvc.get_account(session, tid, "706100").active is False
    assert "Formations" in text(web.get(accounts_url))
    assert csrf_token(web.get("/accounting/exports"))
    assert post(web, "/accounting/close-year", {"year": "2026"}, page="/accounting/exports").status_code == 302
    session.expire_all()
    assert session.scalars(select(FiscalYear.closed).where(FiscalYear.tenant_id == tid,
                                                            FiscalYear.year == 2026)).one() is True


def test_dashboard_members_cannot_post_or_export(app, session, storage, tenant):
    from core.models import Role
    from core.tenancy import accounts
    from tests.conftest import PASSWORD
    from tests.test_dashboard import login, post

    _, entry = validate(session, storage, tenant, "M-1", "120.00", net="100.00", tax="20.00")
    accounts.create_user(session, "member@acme.example", PASSWORD, tenant.tenant, Role.MEMBER)
    session.commit()
    web = app.test_client()
    assert login(web, "member@acme.example").status_code == 302
    url = f"/accounting/entries/{entry.id}"
    assert web.get(url).status_code == 200
    assert post(web, f"{url}/post", {"remember": "1"}, page=url).status_code == 403
    assert web.get("/accounting/fec?year=2026").status_code == 403
    assert web.get("/accounting/export?format=csv").status_code == 403


def test_partial_payments_give_settlements_and_letter_the_invoice_when_settled(session, storage, tenant):
    from core.accounting.settlements import sync_settlements
    from core.banking import reconciliation
    from core.models import BankAccount, BankTransaction, Match

    tid = tenant.tenant.id
    invoice, entry = validate(session, storage, tenant, "L-1", "120.00", net="100.00", tax="20.00")
    account = BankAccount(tenant_id=tid, iban="FR7630006000011234567890189")
    session.add(account)
    session.flush()
    matches = []
    for i, (day, amount) in enumerate(((10, "50.00"), (20, "70.00"))):
        tx = BankTransaction(tenant_id=tid, account_id=account.id, fingerprint=f"l-{i}",
                             booking_date=date(2026, 3, day), amount=D(amount), counterparty="Client SA")
        session.add(tx)
        session.flush()
        match = Match(tenant_id=tid, transaction_id=tx.id, invoice_id=invoice.id, amount=D(amount))
        session.add(match)
        session.flush()
        matches.append(match)
    session.commit()
    reconciliation.accept_match(session, tid, matches[0].id, tenant.admin.id)
    assert sync_settlements(session, tid) == 1
    assert sync_settlements(session, tid) == 0  # idempotent
    first = session.scalars(select(JournalEntry).where(JournalEntry.source == f"match:{matches[0].id}")).one()
    assert first.journal == "BQ1" and first.status == EntryStatus.READY.value  # the bank account's own journal
    assert [(ln.account, str(ln.debit), str(ln.credit), ln.aux) for ln in first.lines] == [
        ("512001", "50.00", "0.00", None), ("411000", "0.00", "50.00", entry.lines[0].aux)]
    entrysvc.post_entries(session, tid, [entry.id, first.id], tenant.admin.id, today=date(2026, 3, 21))
    assert all(ln.letter is None for ln in entry.lines)  # partly paid: open
    reconciliation.accept_match(session, tid, matches[1].id, tenant.admin.id)
    sync_settlements(session, tid)
    second = session.scalars(select(JournalEntry).where(JournalEntry.source == f"match:{matches[1].id}")).one()
    entrysvc.post_entry(session, tid, second.id, tenant.admin.id, today=date(2026, 3, 22))
    session.commit()
    lettered = [ln for e in (entry, first, second) for ln in e.lines if ln.aux]
    assert {ln.letter for ln in lettered} == {"AAAA"} and {ln.letter_date for ln in lettered} == {date(2026, 3, 22)}
    assert all(ln.letter is None for e in (entry, first, second) for ln in e.lines if not ln.aux)
    # An undone match's draft goes; a posted settlement stays (its correction is a reversal).
    reconciliation.undo_match(session, tid, matches[1].id, tenant.admin.id)
    assert sync_settlements(session, tid) == 0
    assert session.get(JournalEntry, second.id) is not None


def test_a_german_company_gets_skr03_accounts(session, storage, tenant):
    session.get(Tenant, tenant.tenant.id).chart = "skr03"
    session.commit()
    _, sale = validate(session, storage, tenant, "DE-1", "226.00",
                       breakdown=[vat("19", "100.00", "19.00"), vat("7", "100.00", "7.00")])
    assert lines_of(sale)[0] == ("1400", "226.00", "0.00", None) and sale.status == EntryStatus.READY.value
    assert [ln[0] for ln in lines_of(sale)] == ["1400", "8200", "1776", "8200", "1771"]
    _, purchase = validate(session, storage, tenant, "DE-2", "119.00", direction="payable", client="Lieferant GmbH",
                           breakdown=[vat("19", "100.00", "19.00")])
    assert lines_of(purchase) == [("1600", "0.00", "119.00", None), ("3200", "100.00", "0.00", "19.00"),
                                  ("1576", "19.00", "0.00", "19.00")]
    assert purchase.status == EntryStatus.READY.value


def test_an_undone_payment_takes_its_settlement_draft_away(session, storage, tenant):
    from core.accounting.settlements import sync_settlements
    from core.banking import reconciliation
    from core.models import BankAccount, BankTransaction, Match

    tid = tenant.tenant.id
    invoice, _ = validate(session, storage, tenant, "U-1", "120.00", direction="payable", net="100.00", tax="20.00")
    account = BankAccount(tenant_id=tid, iban="FR7630006000011234567890189")
    session.add(account)
    session.flush()
    tx = BankTransaction(tenant_id=tid, account_id=account.id, fingerprint="u-1", booking_date=date(2026, 4, 1),
                         amount=D("-118.00"), counterparty="Fournisseur")
    session.add(tx)
    session.flush()
    match = Match(tenant_id=tid, transaction_id=tx.id, invoice_id=invoice.id, amount=D("120.00"),
                  write_off=D("2.00"))
    session.add(match)
    session.commit()
    reconciliation.accept_match(session, tid, match.id, tenant.admin.id)
    assert sync_settlements(session, tid) == 1
    draft = session.scalars(select(JournalEntry).where(JournalEntry.source == f"match:{match.id}")).one()
    assert [(ln.account, str(ln.debit), str(ln.credit)) for ln in draft.lines] == [
        ("401000", "120.00", "0.00"), ("512001", "0.00", "118.00"), ("758000", "0.00", "2.00")]
    reconciliation.undo_match(session, tid, match.id, tenant.admin.id)
    assert sync_settlements(session, tid) == 1
    assert session.scalars(select(JournalEntry).where(JournalEntry.source == f"match:{match.id}")).first() is None
