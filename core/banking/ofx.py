"""OFX 1.x (SGML) and 2.x (XML) bank and credit-card statements.

``ofxtools`` reads the header, decodes the body in the declared charset and turns the SGML tag
soup (end tags optional) into an element tree. Its second step, ``convert()``, validates
against the OFX spec and refuses real-world files (the corpus' ``checking.ofx`` has a 10-digit
BANKID where the spec allows 9) and moves dates to UTC (shifting booking days), so the tree is
read here instead, leniently.
"""

from __future__ import annotations

import html
import io
import re
import xml.etree.ElementTree as ET  # noqa: S405 - only walks a tree ofxtools built; nothing is parsed as XML
from datetime import date
from decimal import Decimal, InvalidOperation

from ofxtools.header import OFXHeaderError
from ofxtools.Parser import OFXTree, TreeBuilder

from core.banking.models import Statement, StatementError, Transaction
from core.banking.util import clean_reference, collapse, iban_or_none, opt

_STATEMENTS = ("STMTRS", "CCSTMTRS")
_ACCOUNTS = ("BANKACCTFROM", "CCACCTFROM")


def looks_like_ofx(head: str) -> bool:
    return "OFXHEADER" in head or "<OFX>" in head.upper()


def parse_ofx(data: bytes) -> list[Statement]:
    root = _tree(data)
    statements = [_statement(el) for el in root.iter() if el.tag in _STATEMENTS]
    if not statements:
        raise StatementError("the OFX file holds no bank or credit card statement (STMTRS/CCSTMTRS)")
    return statements


def _tree(data: bytes) -> ET.Element:
    try:
        root = OFXTree().parse(io.BytesIO(data))
    except OFXHeaderError:
        root = _headerless(data)  # some banks send the <OFX> body without the 9-line header
    # SyntaxError covers ofxtools' ParseError and ElementTree's (unbalanced tags).
    except (SyntaxError, ValueError, LookupError) as exc:
        raise StatementError(f"the OFX file cannot be read: {exc}") from exc
    if root is None:
        raise StatementError("the OFX file has a header but no body")
    return root


def _headerless(data: bytes) -> ET.Element:
    text = data.decode("cp1252", errors="replace")
    start = text.upper().find("<OFX>")
    if start < 0:
        raise StatementError("the OFX header is missing or broken and no <OFX> body follows")
    builder = TreeBuilder()
    try:
        builder.feed(text[start:])
        return builder.close()
    except (SyntaxError, ValueError, IndexError) as exc:
        raise StatementError(f"the OFX body cannot be read: {exc}") from exc


# --- field helpers -----------------------------------------------------------------------------


def _text(el: ET.Element | None, path: str) -> str:
    found = el.find(path) if el is not None else None
    return collapse(html.unescape(found.text or "")) if found is not None else ""


def _date(value: str) -> date | None:
    """OFX datetime ``YYYYMMDD[HHMMSS[.XXX]][[+-]tz:NAME]``: the calendar day as the bank wrote it."""
    if not value:
        return None
    match = re.match(r"(\d{4})(\d{2})(\d{2})", value)
    if not match:
        raise StatementError(f"the OFX file has an unreadable date {value!r}")
    try:
        return date(*(int(part) for part in match.groups()))
    except ValueError as exc:
        raise StatementError(f"the OFX file has an impossible date {value!r}") from exc


def _amount(value: str) -> Decimal | None:
    if not value:
        return None
    if "," in value and "." not in value:  # European banks write 5,50
        value = value.replace(",", ".")
    try:
        return Decimal(value.replace(" ", ""))
    except InvalidOperation as exc:
        raise StatementError(f"the OFX file has an unreadable amount {value!r}") from exc


# --- statement and transactions ----------------------------------------------------------------


def _statement(stmt: ET.Element) -> Statement:
    account = next((stmt.find(tag) for tag in _ACCOUNTS if stmt.find(tag) is not None), None)
    account_id = opt(_text(account, "ACCTID"))
    currency = opt(_text(stmt, "CURDEF"))
    tranlist = stmt.find("BANKTRANLIST")
    transactions = [_transaction(el, currency) for el in stmt.iter("STMTTRN")]
    balances = {
        name: amount
        for name in ("LEDGERBAL", "AVAILBAL")
        if (amount := _amount(_text(stmt, f"{name}/BALAMT"))) is not None
    }
    return Statement(
        account_iban=iban_or_none(account_id),
        account_id=account_id,
        currency=currency,
        opening_balance=None,  # OFX states only the balance at the end
        closing_balance=balances.get("LEDGERBAL"),
        statement_id=None,
        period_start=_date(_text(tranlist, "DTSTART")),
        period_end=_date(_text(tranlist, "DTEND")),
        kind="statement",
        transactions=transactions,
        source_format="ofx",
        balances=balances,
    )


def _check_number(value: str) -> str | None:
    # Banks fill CHECKNUM with 0 on every non-cheque transaction.
    return value if value.strip("0") else None


def _transaction(el: ET.Element, currency: str | None) -> Transaction:
    amount = _amount(_text(el, "TRNAMT"))
    posted = _date(_text(el, "DTPOSTED")) or _date(_text(el, "DTUSER"))
    if amount is None or posted is None:
        raise StatementError("an OFX <STMTTRN> lacks TRNAMT or DTPOSTED")
    name = _text(el, "NAME") or _text(el, "PAYEE/NAME")
    return Transaction(
        booking_date=posted,
        value_date=_date(_text(el, "DTAVAIL")),
        amount=amount,  # TRNAMT is already signed from the account holder's view
        currency=opt(_text(el, "CURRENCY/CURSYM")) or opt(_text(el, "ORIGCURRENCY/CURSYM")) or currency,
        counterparty_name=opt(name),
        counterparty_iban=iban_or_none(_text(el, "BANKACCTTO/ACCTID")),
        remittance=_text(el, "MEMO"),
        reference=clean_reference(_text(el, "REFNUM")) or _check_number(_text(el, "CHECKNUM")),
        bank_reference=clean_reference(_text(el, "FITID")),
        booking_text=opt(_text(el, "TRNTYPE")),
    )
