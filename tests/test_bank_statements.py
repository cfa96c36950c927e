"""core.banking: every file of the bank corpus, checked against the manifest and by hand."""

from __future__ import annotations

import ast
import csv
import random
import re
import time
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from core.banking import (
    DKB_GIRO,
    SPARKASSE_CAMT,
    CsvMapping,
    Statement,
    StatementError,
    Transaction,
    detect_format,
    guess_csv_mapping,
    parse_statement,
)
from tests.corpus import CORPUS as SHARED

CORPUS = SHARED
BANK = CORPUS / "bank"
needs_corpus = pytest.mark.skipif(not BANK.is_dir(), reason=f"bank corpus not found at {BANK}")


def _manifest() -> dict[str, dict[str, str]]:
    if not BANK.is_dir():
        return {}
    with (CORPUS / "MANIFEST.tsv").open(encoding="utf-8", newline="") as fh:
        return {row["file"]: row for row in csv.DictReader(fh, delimiter="\t")}


MANIFEST = _manifest()
BANK_FILES = sorted(p.name for p in BANK.iterdir()) if BANK.is_dir() else []


def parse_file(name: str) -> list[Statement]:
    return parse_statement((BANK / name).read_bytes(), name)


def all_tx(statements: list[Statement]) -> list[Transaction]:
    return [tx for s in statements for tx in s.transactions]


def signed_sum(statements: list[Statement]) -> Decimal:
    return sum((tx.amount for tx in all_tx(statements)), Decimal(0))


def expected(name: str) -> dict[str, str]:
    """The manifest's ``bank_expected`` as key -> value ("k=v; k=v"; free text without "=" is dropped)."""
    text = MANIFEST[f"bank/{name}"]["bank_expected"]
    pairs = (part.split("=", 1) for part in re.split(r";\s+", text) if "=" in part)
    return {key.strip(): value.strip() for key, value in pairs}


# --- every file --------------------------------------------------------------------------------


@needs_corpus
def test_manifest_lists_every_bank_file() -> None:
    listed = {path.removeprefix("bank/") for path in MANIFEST if path.startswith("bank/")}
    assert listed == set(BANK_FILES)


@needs_corpus
@pytest.mark.parametrize("name", BANK_FILES)
def test_every_file_parses(name: str) -> None:
    statements = parse_file(name)
    assert statements
    for statement in statements:
        assert statement.kind in {"statement", "report", "notification"}
        for tx in statement.transactions:
            assert isinstance(tx.amount, Decimal)
            assert isinstance(tx.booking_date, date)
            assert len(tx.fingerprint) == 40
    if name != "ofx_multiple_accounts2.ofx":  # the manifest: two accounts, balances only
        assert all_tx(statements)


@needs_corpus
@pytest.mark.parametrize("name", BANK_FILES)
def test_fingerprints_are_unique_within_a_file(name: str) -> None:
    fingerprints = [tx.fingerprint for tx in all_tx(parse_file(name))]
    assert len(fingerprints) == len(set(fingerprints))


@needs_corpus
@pytest.mark.parametrize("name", BANK_FILES)
def test_detects_format_without_file_name(name: str) -> None:
    fmt = detect_format((BANK / name).read_bytes())
    assert fmt == {"camt": "camt", "mt94": "mt940", "ofx_": "ofx", "csv_": "csv"}[name[:4]]


# --- CAMT against the manifest -----------------------------------------------------------------

CAMT_FILES = [n for n in BANK_FILES if n.startswith("camt")]


@needs_corpus
@pytest.mark.parametrize("name", CAMT_FILES)
def test_camt_matches_manifest(name: str) -> None:
    exp = expected(name)
    statements = parse_file(name)
    assert len(statements) == int(exp["stmt/rpt/ntfctn"])
    assert len(all_tx(statements)) == int(exp["entries"])
    assert signed_sum(statements) == Decimal(exp["signed_sum"])
    assert (statements[0].account_iban or "") == exp["iban"]
    balances = {code: Decimal(value) for code, value in ast.literal_eval(exp["balances"]).items()}
    # The manifest keeps the balances of the last block of a file.
    assert statements[-1].balances == balances


@needs_corpus
def test_camt_kinds() -> None:
    assert [s.kind for s in parse_file("camt052.v2.xml")] == ["report"]
    assert [s.kind for s in parse_file("camt054.v2.xml")] == ["notification"]
    assert {s.kind for n in CAMT_FILES if n.startswith("camt053") for s in parse_file(n)} == {"statement"}
    assert parse_file("camt053.v8.xml")[0].source_format == "camt.053.001.08"


@needs_corpus
def test_camt053_v2_minimal_known_values() -> None:
    [statement] = parse_file("camt053.v2.minimal.xml")
    assert statement.statement_id == "253EURNL26VAYB8060476890"
    assert statement.account_iban == "NL26VAYB8060476890"
    assert statement.currency == "EUR"
    assert statement.opening_balance == Decimal("18.15")
    assert statement.closing_balance == Decimal("-27.00")  # CLBD with DBIT indicator
    [tx] = statement.transactions
    assert tx.amount == Decimal("8.85")
    assert tx.booking_date == date(2014, 12, 31)
    assert tx.value_date == date(2015, 1, 2)
    assert tx.currency == "EUR"
    # A credit: the counterparty is the debtor, who paid us.
    assert tx.counterparty_name == "NAME NAME"
    assert tx.counterparty_iban == "NL56AGDH9619008421"
    assert tx.reference == "4654654654654654"  # SCOR creditor reference
    assert not tx.pending


@needs_corpus
def test_camt053_debit_sign_and_second_statement() -> None:
    first, second = parse_file("camt053.v2.multi.statement.xml")
    assert first.statement_id != second.statement_id
    [tx] = second.transactions
    assert tx.amount == Decimal("-7.00")  # unsigned <Amt> + DBIT
    assert tx.counterparty_name == "Company Name 2"  # a debit: the creditor we paid
    assert tx.remittance == "Transaction Description 2"
    assert tx.reference == "000000002"  # end-to-end id, no creditor reference given


@needs_corpus
def test_camt053_v8_nested_party_and_datetime_booking() -> None:
    [tx] = parse_file("camt053.v8.xml")[0].transactions
    assert tx.counterparty_name == "NAME NAME"  # <Dbtr><Pty><Nm> since version 08
    assert tx.booking_date == date(2014, 12, 31)  # from <DtTm>2014-12-31T13:15:00+01:00
    assert tx.bank_reference == "AAAASESS-FP-CN_98765/01"


@needs_corpus
def test_camt054_batch_entry_joins_remittance() -> None:
    [tx] = parse_file("camt054.v2.xml")[0].transactions
    assert tx.amount == Decimal("-200000")
    assert tx.currency == "SEK"
    assert tx.bank_reference == "AAAASESS-FP-ACCR001"
    assert tx.reference == "ISR ref number V1"
    assert "Unstructured Remittance Information V3 block 2" in tx.remittance
    assert "Additional Remittance Information V2" in tx.remittance


def test_camt_pending_entry() -> None:
    data = _camt_doc('<Ntry><Amt Ccy="EUR">5.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>PDNG</Cd></Sts>'
                     "<BookgDt><Dt>2024-01-02</Dt></BookgDt></Ntry>")
    [tx] = parse_statement(data)[0].transactions
    assert tx.pending and tx.amount == Decimal("-5.00")


# --- MT940 / MT942 against the manifest ---------------------------------------------------------

MT_FILES = [n for n in BANK_FILES if n.startswith("mt94")]
# The manifest's sum counts the two "RC" (reversal of credit) entries as credits, as mt-940 does
# by default. They are debits: with them negative every one of the 26 statements balances
# (test_mt940_statements_balance); with the manifest's signs two do not.
MANIFEST_SUM_DIFFERS = {"mt940_betterplace_sepa_mt9401.sta": Decimal("-9269135.90")}


@needs_corpus
@pytest.mark.parametrize("name", MT_FILES)
def test_mt940_matches_manifest(name: str) -> None:
    exp = expected(name)
    statements = parse_file(name)
    assert len(all_tx(statements)) == int(exp["transactions"])
    assert signed_sum(statements) == MANIFEST_SUM_DIFFERS.get(name, Decimal(exp["signed_sum"]))
    accounts = {s.account_id for s in statements}
    assert (accounts == {None}) if exp["account"] == "None" else (exp["account"] in accounts)
    # The manifest merged all blocks of a file and kept the last :60F:/:62F:; some block has them.
    for key, amount_of, date_of in (
        ("opening", lambda s: s.opening_balance, lambda s: s.period_start),
        ("closing", lambda s: s.closing_balance, lambda s: s.period_end),
    ):
        if exp[key] == "None":
            assert all(amount_of(s) is None for s in statements)
            continue
        amount, currency, _, day = exp[key].split()
        assert any(
            amount_of(s) == Decimal(amount) and s.currency == currency and date_of(s) == date.fromisoformat(day)
            for s in statements
        ), exp[key]


@needs_corpus
@pytest.mark.parametrize(
    "name",
    [
        "mt940_betterplace_sepa_mt9401.sta",
        "mt940_jejik_rabobank-iban.sta",
        "mt940_cmxl_mt940.sta",
        "mt940_citi_mt940.txt",
        "mt940_mBank_mt940.sta",
        "mt940_ASNB_mt940.txt",
    ],
)
def test_mt940_statements_balance(name: str) -> None:
    # (The ABN AMRO and ING samples do not balance in the source data itself.)
    for statement in parse_file(name):
        total = sum((tx.amount for tx in statement.transactions), Decimal(0))
        assert statement.opening_balance is not None and statement.closing_balance is not None
        assert statement.opening_balance + total == statement.closing_balance, statement.statement_id


@needs_corpus
def test_mt940_german_structured_details() -> None:
    txs = {tx.bank_reference: tx for tx in all_tx(parse_file("mt940_betterplace_sepa_mt9401.sta"))}
    tx = txs["0724710290621954"]
    assert tx.amount == Decimal("15000.05")
    assert tx.counterparty_name == "Richter Renate 70 Zeichen Beginn Fuellzeichen xxxxxxxx"
    assert tx.counterparty_iban == "DE42100100100043921105"
    assert tx.reference == "EndToEndIdTFNR2000400001"
    assert tx.booking_text == "GUTSCHRIFT"
    # ":61:0709040904RCR204,88": a reversal of a credit takes money out.
    assert Decimal("-204.88") in {t.amount for t in txs.values()}


@needs_corpus
def test_mt940_rabobank_slash_codes() -> None:
    first, second, *_ = all_tx(parse_file("mt940_jejik_rabobank-iban.sta"))
    assert first.amount == Decimal("-25.00")
    assert first.booking_date == date(2013, 1, 1)
    assert first.counterparty_name == "CONTRA ACCOUNT HOLDER"  # joined across a 65-char line break
    assert first.counterparty_iban == "NL70ABNA0987654321"
    assert first.reference == "01-01-2013 12:00 0030000987654321"
    assert second.counterparty_name == "JOHN DOE"
    assert second.remittance == "Reference 201301234"


@needs_corpus
def test_mt940_mbank_details() -> None:
    [statement] = parse_file("mt940_mBank_mt940.sta")
    assert statement.account_iban == "PL29114010810000267002001002"
    tx = statement.transactions[0]
    assert tx.amount == Decimal("0.01") and tx.currency == "PLN"
    assert tx.counterparty_name == "JAN NOWAK"
    assert tx.counterparty_iban == "PL56114010810000267002001001"  # "Z RACH.:" NRB + PL
    assert tx.remittance == "PRZELEW SRODKOW"
    assert tx.bank_reference == "MB170119012058"


@needs_corpus
def test_mt940_asn_bank_dialect() -> None:
    txs = all_tx(parse_file("mt940_ASNB_mt940.txt"))
    assert txs[0].amount == Decimal("-65.00")
    assert txs[0].counterparty_name == "hr gjlm paulissen"
    assert txs[0].counterparty_iban == "NL47INGB9999999999"
    assert txs[0].remittance == "Betaling sieraden"
    assert any("Betaling aan ICS 99999999999" in tx.remittance for tx in txs)  # 65-char line rejoined


@needs_corpus
def test_mt940_abnamro_and_value_vs_booking_date() -> None:
    txs = all_tx(parse_file("mt940_jejik_abnamro.sta"))
    assert txs[0].amount == Decimal("-9")
    assert "BETREFT FACTUUR D.D. 20-05-2011" in txs[0].remittance
    # ":61:1105210523D11,59": value date 2011-05-21, entry (booking) date 05-23
    assert (txs[1].value_date, txs[1].booking_date) == (date(2011, 5, 21), date(2011, 5, 23))


@needs_corpus
def test_mt942_is_a_report() -> None:
    [statement] = parse_file("mt942_self.sta")
    assert statement.kind == "report" and statement.source_format == "mt942"
    [tx] = statement.transactions
    assert tx.amount == Decimal("-0.42")
    assert tx.booking_date == date(2016, 10, 31)
    assert tx.remittance == "REMIT:Costs to MT940 Parsing. This is Somuchfun."


@needs_corpus
def test_mt940_fragment_without_header() -> None:
    [statement] = parse_file("mt940_self_sparkassen.sta")
    [tx] = statement.transactions
    assert tx.amount == Decimal("30.00")
    assert tx.remittance == "Test"
    assert tx.booking_text == "GUTSCHR. UEBERWEISUNG"


def test_mt940_string_naming_a_file_is_not_read(tmp_path: Path) -> None:
    # mt940.parse() reads a str that names an existing file; the data must never be used as a path.
    secret = tmp_path / "secret.sta"
    secret.write_text(":20:X\n:25:SECRET\n:60F:C240101EUR1,00\n:61:240101C1,00NTRFNONREF\n:62F:C240101EUR2,00\n")
    with pytest.raises(StatementError):
        parse_statement(str(secret).encode(), "x.sta")


# --- OFX against the manifest -------------------------------------------------------------------

OFX_FILES = [n for n in BANK_FILES if n.startswith("ofx")]
_OFX_EXPECTED = re.compile(r"acct=(?P<acct>.+?) type=\d+ tx=(?P<tx>\d+) sum=(?P<sum>\S+) balance=(?P<bal>[^\s;]+)")


@needs_corpus
@pytest.mark.parametrize("name", OFX_FILES)
def test_ofx_matches_manifest(name: str) -> None:
    statements = parse_file(name)
    accounts = [m.groupdict() for m in _OFX_EXPECTED.finditer(MANIFEST[f"bank/{name}"]["bank_expected"])]
    assert len(statements) == len(accounts)
    for statement, exp in zip(statements, accounts, strict=True):
        assert statement.account_id == exp["acct"]
        assert len(statement.transactions) == int(exp["tx"])
        assert sum((tx.amount for tx in statement.transactions), Decimal(0)) == Decimal(exp["sum"])
        assert statement.closing_balance == Decimal(exp["bal"])


@needs_corpus
def test_ofx_checking_known_values() -> None:
    [statement] = parse_file("ofx_checking.ofx")  # BANKID longer than the spec allows: still read
    assert statement.currency == "USD"
    assert (statement.period_start, statement.period_end) == (date(2000, 1, 1), date(2013, 5, 25))
    first, _, check = statement.transactions
    assert first.amount == Decimal("0.01")
    assert first.booking_date == date(2011, 3, 31)
    assert first.bank_reference == "0000486"
    assert first.counterparty_name == "DIVIDEND EARNED FOR PERIOD OF 03"
    assert check.reference == "319" and check.booking_text == "CHECK"


@needs_corpus
def test_ofx_dates_keep_the_bank_day_and_cdata() -> None:
    first = parse_file("ofx_bank_medium.ofx")[0].transactions[0]
    assert first.booking_date == date(2009, 4, 1)  # 20090401122017.000[-5:EST], not moved to UTC
    assert first.counterparty_name == "MCDONALD'S #112"
    suncorp = parse_file("ofx_suncorp.ofx")[0].transactions[0]
    assert suncorp.counterparty_name == "EFTPOS WDL HANDYWAY ALDI STORE"  # from <![CDATA[...]]>
    anz = parse_file("ofx_anzcc.ofx")[0]  # credit card statement
    assert anz.closing_balance == Decimal("-123.45") and anz.currency == "AUD"


def test_ofx_without_header() -> None:
    body = b"<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS><CURDEF>EUR<BANKACCTFROM><ACCTID>DE02120300000000202051"
    body += b"</BANKACCTFROM><BANKTRANLIST><STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20240105<TRNAMT>-5,50<FITID>A1"
    body += b"<NAME>Caf&amp;e</STMTTRN></BANKTRANLIST></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>"
    [statement] = parse_statement(body, "export.ofx")
    assert statement.account_iban == "DE02120300000000202051"
    [tx] = statement.transactions
    assert (tx.amount, tx.counterparty_name, tx.bank_reference) == (Decimal("-5.50"), "Caf&e", "A1")


# --- CSV ---------------------------------------------------------------------------------------

DKB = "csv_dkb_giro_beancount-dkb.csv"
SPARKASSE = "csv_SYNTHETIC_sparkasse-csv-camt_payments.csv"


@needs_corpus
def test_guess_csv_mapping_recognises_corpus_layouts() -> None:
    assert guess_csv_mapping((BANK / DKB).read_bytes()) == DKB_GIRO
    assert guess_csv_mapping((BANK / SPARKASSE).read_bytes()) == SPARKASSE_CAMT
    assert guess_csv_mapping(b"date,amount,text\n2024-01-01,5.00,x\n") is None


@needs_corpus
def test_dkb_csv_matches_manifest() -> None:
    exp = expected(DKB)
    [statement] = parse_file(DKB)
    assert len(statement.transactions) == int(exp["transactions"])
    assert signed_sum([statement]) == Decimal(exp["signed_sum"])
    assert statement.account_iban == exp["account"]
    assert statement.closing_balance == Decimal("5000.01")  # preamble "5.000,01 EUR"
    assert (statement.period_start, statement.period_end) == (date(2018, 1, 1), date(2018, 1, 31))
    [tx] = statement.transactions
    assert tx.booking_date == date(2018, 1, 16)
    assert tx.counterparty_name == "REWE Filialen Voll"
    assert tx.remittance == "REWE SAGT DANKE."
    assert tx.booking_text == "Lastschrift"
    assert not tx.pending


@needs_corpus
def test_dkb_csv_as_the_bank_sends_it_in_cp1252() -> None:
    # The corpus copy is UTF-8; real DKB exports are ISO-8859-1/cp1252 ("Begünstigter").
    latin = (BANK / DKB).read_text(encoding="utf-8").encode("cp1252")
    assert parse_statement(latin, DKB)[0].transactions == parse_file(DKB)[0].transactions


def _invoice_due(file: str) -> Decimal:
    return Decimal(MANIFEST[file]["due_payable"])


@needs_corpus
def test_sparkasse_csv_rows_pay_corpus_invoices() -> None:
    [statement] = parse_file(SPARKASSE)
    assert statement.account_iban == "DE02120300000000202051"
    rows = statement.transactions
    assert len(rows) == 8
    # Row amounts as the manifest lists them ("row1 -529.87 -> ...").
    listed = dict(re.findall(r"row(\d) ([+-][\d.]+)", MANIFEST[f"bank/{SPARKASSE}"]["bank_expected"]))
    for number, amount in listed.items():
        assert rows[int(number) - 1].amount == Decimal(amount)
    # Against the invoices of einvoice/ they pay:
    full, refund, part1, part2, skonto, debit, fee, pending = rows
    assert full.amount == -_invoice_due("einvoice/zc_EN16931_Einfach.pdf")
    assert (full.reference, full.counterparty_name) == ("471102", "Lieferant GmbH")
    assert full.counterparty_iban == "DE75512108001245126199"
    assert full.booking_date == date(2018, 3, 20)  # "20.03.18": two-digit year
    assert refund.amount == -_invoice_due("einvoice/zc_EN16931_Rechnungskorrektur.pdf") > 0
    assert refund.reference is None  # "NOTPROVIDED"
    assert part1.amount + part2.amount == -_invoice_due("einvoice/zc_Mustang_RE-20201121_508.pdf")
    assert "RE-20201121/508" in part1.remittance
    discounted = (_invoice_due("einvoice/kosit_01.10a-INVOICE_ubl.xml") * Decimal("0.98")).quantize(Decimal("0.01"))
    assert skonto.amount == -discounted == Decimal("-2542.32")  # "-2.542,32"
    assert debit.booking_text == "FOLGELASTSCHRIFT" and debit.amount == Decimal("-340.96")
    assert fee.counterparty_name is None and fee.amount == Decimal("-9.90")
    assert [tx.pending for tx in rows] == [False] * 7 + [True]  # "Umsatz vorgemerkt"
    assert pending.counterparty_name == "Müller & Söhne"  # cp1252 decoded


def test_csv_custom_mapping_debit_credit_indexes_no_header() -> None:
    data = "\n".join(
        [
            "01/02/24;;1.234,50;Kunde AG;Rechnung 7;RF18539007547034",
            "03/02/24;99,00-;;Lieferant;Miete;",
            "",
            "04/02/24;5,00;;Lieferant;Miete;",
        ]
    ).encode("cp1252")
    mapping = CsvMapping(
        booking_date=0,
        debit=1,
        credit=2,
        counterparty_name=3,
        remittance=(4,),
        reference=5,
        has_header=False,
        date_formats=("%d/%m/%y",),
    )
    [statement] = parse_statement(data, csv_mapping=mapping)
    amounts = [tx.amount for tx in statement.transactions]
    assert amounts == [Decimal("1234.50"), Decimal("-99.00"), Decimal("-5.00")]
    assert statement.transactions[0].reference == "RF18539007547034"
    assert statement.transactions[0].booking_date == date(2024, 2, 1)


def test_csv_pending_row_without_booking_date_uses_value_date() -> None:
    data = b"Buchungstag;Valuta;Betrag;Status\n;05.01.2024;-1,00;Vorgemerkt\n04.01.2024;04.01.2024;2,00;Gebucht\n"
    mapping = CsvMapping(booking_date="Buchungstag", value_date="Valuta", amount="Betrag", status="Status")
    pending, booked = parse_statement(data, csv_mapping=mapping)[0].transactions
    assert pending.pending and pending.booking_date == date(2024, 1, 5)
    assert not booked.pending


def test_csv_errors_name_the_line() -> None:
    mapping = CsvMapping(booking_date="Datum", amount="Betrag")
    with pytest.raises(StatementError, match="line 3"):
        parse_statement(b"Datum;Betrag\n01.01.2024;1,00\n02.01.2024;abc\n", csv_mapping=mapping)
    with pytest.raises(StatementError, match="no column 'Betrag'"):
        parse_statement(b"Datum;Summe\n01.01.2024;1,00\n", csv_mapping=mapping)
    with pytest.raises(StatementError, match="CSV layout not recognised"):
        parse_statement(b"a;b;c\n1;2;3\n", "x.csv")


# --- fingerprints across re-imports ------------------------------------------------------------


def _fingerprints(statements: list[Statement]) -> list[str]:
    return [tx.fingerprint for tx in all_tx(statements)]


@needs_corpus
@pytest.mark.parametrize("name", BANK_FILES)
def test_same_file_twice_gives_same_fingerprints(name: str) -> None:
    assert _fingerprints(parse_file(name)) == _fingerprints(parse_file(name))


@needs_corpus
def test_truncated_sparkasse_csv_fingerprints_coincide() -> None:
    data = (BANK / SPARKASSE).read_bytes()
    truncated = b"\r\n".join(data.split(b"\r\n")[:5]) + b"\r\n"  # header + first 4 rows
    full, part = _fingerprints(parse_statement(data)), _fingerprints(parse_statement(truncated))
    assert len(part) == 4 and part == full[:4]


@needs_corpus
def test_truncated_mt940_fingerprints_coincide() -> None:
    text = (BANK / "mt940_betterplace_sepa_mt9401.sta").read_text()
    blocks = re.split(r"(?m)^(?=:20:)", text)
    truncated = "".join(blocks[:10]).encode()
    full, part = _fingerprints(parse_statement(text.encode())), _fingerprints(parse_statement(truncated))
    assert 0 < len(part) < len(full)
    assert part == full[: len(part)]


@needs_corpus
def test_overlapping_ofx_fingerprints_coincide() -> None:
    text = (BANK / "ofx_bank_medium.ofx").read_text()
    last_transaction = r"<STMTTRN>(?:(?!<STMTTRN>).)*</STMTTRN>\s*</BANKTRANLIST>"
    without_last = re.sub(last_transaction, "</BANKTRANLIST>", text, flags=re.S)
    full, part = _fingerprints(parse_statement(text.encode())), _fingerprints(parse_statement(without_last.encode()))
    assert len(part) == 2 and part == full[:2]


@needs_corpus
def test_overlapping_camt_fingerprints_coincide() -> None:
    data = (BANK / "camt053.v2.multi.statement.xml").read_bytes()
    first_only = re.sub(rb"</Stmt>\s*<Stmt>.*</Stmt>", b"</Stmt>", data, flags=re.S)
    full, part = _fingerprints(parse_statement(data)), _fingerprints(parse_statement(first_only))
    assert len(part) == 1 and part == full[:1]


def test_identical_rows_stay_distinct_and_stable() -> None:
    data = b"Datum;Betrag;Text\n01.01.2024;-3,50;Kaffee\n01.01.2024;-3,50;Kaffee\n"
    mapping = CsvMapping(booking_date="Datum", amount="Betrag", remittance="Text")
    first = _fingerprints(parse_statement(data, csv_mapping=mapping))
    assert len(set(first)) == 2
    assert first == _fingerprints(parse_statement(data, csv_mapping=mapping))
    # Same rows under another account are other transactions.
    other = replace(mapping, account_iban="DE02120300000000202051")
    assert set(first).isdisjoint(_fingerprints(parse_statement(data, csv_mapping=other)))


def test_fingerprint_uses_unique_bank_reference() -> None:
    # CAMT AcctSvcrRef identifies the entry even when the bank later rewrites the text.
    entry = ('<Ntry><Amt Ccy="EUR">5.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2024-01-02</Dt>'
             "</BookgDt><AcctSvcrRef>REF-1</AcctSvcrRef><NtryDtls><TxDtls><RmtInf><Ustrd>{}</Ustrd></RmtInf>"
             "</TxDtls></NtryDtls></Ntry>")
    a = parse_statement(_camt_doc(entry.format("Invoice 1")))[0].transactions[0]
    b = parse_statement(_camt_doc(entry.format("INVOICE 1 (corrected)")))[0].transactions[0]
    assert a.fingerprint == b.fingerprint


# --- hostile and broken input ------------------------------------------------------------------


def _camt_doc(entries: str, doctype: str = "") -> bytes:
    return (
        f'<?xml version="1.0"?>{doctype}<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">'
        "<BkToCstmrStmt><Stmt><Id>S1</Id><Acct><Id><IBAN>DE02120300000000202051</IBAN></Id></Acct>"
        f"{entries}</Stmt></BkToCstmrStmt></Document>"
    ).encode()


ENTRY_WITH = (
    '<Ntry><Amt Ccy="EUR">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2024-01-02</Dt>'
    "</BookgDt><NtryDtls><TxDtls><RmtInf><Ustrd>before {} after</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"
)


def test_camt_xxe_is_not_expanded(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET-CONTENT")
    doctype = f'<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file://{secret}">]>'
    [statement] = parse_statement(_camt_doc(ENTRY_WITH.format("&xxe;"), doctype))
    [tx] = statement.transactions
    assert "TOPSECRET" not in repr(statement)
    assert tx.remittance == "before after"


def test_camt_entity_bomb_is_not_expanded() -> None:
    levels = ['<!ENTITY l0 "lollollollollollollollollollol">'] + [
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)
    ]
    doctype = f"<!DOCTYPE Document [{''.join(levels)}]>"
    started = time.monotonic()
    try:
        [tx] = parse_statement(_camt_doc(ENTRY_WITH.format("&l9;"), doctype))[0].transactions
    except StatementError as exc:  # libxml2 may refuse the document outright: fine too
        assert "amplification" in exc.reason
    else:
        assert "lol" not in tx.remittance
    assert time.monotonic() - started < 2


CAMT_NS = b"urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (bytes(range(256)) * 4, "unrecognised"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "unrecognised"),
        (b"<html><body>hello</body></html>", "neither a CAMT"),
        (b'<?xml version="1.0"?><Document xmlns="' + CAMT_NS + b'"><BkToCstmrStmt>', "XML"),
        (b'<Document xmlns="' + CAMT_NS + b'"><BkToCstmrStmt/></Document>', "Stmt"),
        (b"OFXHEADER:100\nDATA:OFXSGML\n<OFX><BANKMSGSRSV1></OFX>", "OFX"),
        (b":20:X\n:25:1\n:61:NOTADATE\n", "MT940"),
    ],
)
def test_garbage_raises_statement_error(data: bytes, reason: str) -> None:
    with pytest.raises(StatementError, match=reason) as info:
        parse_statement(data, "upload.bin")
    assert info.value.reason


@needs_corpus
@pytest.mark.parametrize("name", BANK_FILES)
def test_damaged_files_raise_only_statement_error(name: str) -> None:
    data = (BANK / name).read_bytes()
    rng = random.Random(name)
    for _ in range(25):
        damaged = bytearray(data[: rng.randrange(1, len(data))])
        for _ in range(rng.randrange(0, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        try:
            parse_statement(bytes(damaged), name)
        except StatementError as exc:
            assert exc.reason
            # Damage is reported as such, not as a bug in our code caught by the last-resort handler.
            assert not isinstance(exc.__cause__, AttributeError | TypeError | IndexError | KeyError), exc.reason
