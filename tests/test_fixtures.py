"""The real files in tests/fixtures/ (issue 16): what a clone without the shared corpus still checks.

The e-mails go through the real pipeline in ``tests/test_real_world_email.py`` (with the corpus); here the
e-invoice and the statements are read exactly, and every fixture is accounted for with its licence.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from core.banking import parse_statement
from core.einvoice.reader import read_einvoice

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_every_fixture_names_its_source_and_licence() -> None:
    listed = (FIXTURES / "README.md").read_text(encoding="utf-8")
    files = [p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*") if p.is_file()]
    unlisted = [f for f in files if f != "README.md" and not f.startswith("eml/LICENSE") and f"`{f}`" not in listed]
    assert not unlisted, unlisted
    assert "Apache License" in (FIXTURES / "eml" / "LICENSE-mail-parser.txt").read_text(encoding="utf-8")


def test_the_factur_x_fixture_is_read_exactly() -> None:
    einv = read_einvoice((FIXTURES / "einvoice" / "zc_EN16931_Einfach.pdf").read_bytes())
    assert einv is not None
    assert (einv.format, einv.number, einv.type_code, einv.is_credit_note) == ("factur-x", "471102", "380", False)
    assert (einv.issue_date, einv.currency, einv.seller_name, einv.buyer_name) == (
        date(2018, 3, 5), "EUR", "Lieferant GmbH", "Kunden AG Mitte")
    assert (einv.net_total, einv.tax_total, einv.grand_total) == (Decimal("473.00"), Decimal("56.87"),
                                                                   Decimal("529.87"))
    assert [(v.rate, v.base, v.tax) for v in einv.vat_breakdown] == [
        (Decimal("7.00"), Decimal("275.00"), Decimal("19.25")), (Decimal("19.00"), Decimal("198.00"), Decimal("37.62"))]
    assert sum(line.net_amount for line in einv.lines) == einv.net_total


def test_the_bank_statement_fixtures_are_read() -> None:
    (camt,) = parse_statement((FIXTURES / "bank" / "camt053.v2.minimal.xml").read_bytes(), "camt053.v2.minimal.xml")
    assert [t.amount for t in camt.transactions] == [Decimal("8.85")]
    mt940 = parse_statement((FIXTURES / "bank" / "mt940_betterplace_sepa_mt9401.sta").read_bytes(), "sepa.sta")
    assert len(mt940) == 26 and sum(len(s.transactions) for s in mt940) == 97
    assert mt940[0].transactions[0].amount == Decimal("300")
