"""ISO 20022 CAMT.053 statements, plus CAMT.052 reports and CAMT.054 notifications.

Read with lxml and a hardened parser (no entity expansion, no DTD, no network). Paths use the
``{*}`` namespace wildcard, so every message version (001.02 ... 001.08+) goes through the same
code; where versions differ (``Sts`` vs ``Sts/Cd``, ``Dbtr/Nm`` vs ``Dbtr/Pty/Nm``) both are tried.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation

from lxml import etree

from core.banking.models import Statement, StatementError, StatementKind, Transaction
from core.banking.util import clean_reference, collapse, iban_or_none, opt

Element = etree._Element

# The message element under <Document>, its repeated child and what kind of document it is.
_MESSAGES: dict[str, tuple[str, StatementKind]] = {
    "BkToCstmrStmt": ("Stmt", "statement"),
    "BkToCstmrAcctRpt": ("Rpt", "report"),
    "BkToCstmrDbtCdtNtfctn": ("Ntfctn", "notification"),
}
_OPENING_CODES = ("OPBD", "PRCD")  # PRCD: previous closing booked, what some banks send instead
_CLOSING_CODES = ("CLBD",)
_NOT_BOOKED = {"PDNG", "INFO", "FUTR"}


def _parser() -> etree.XMLParser:
    # Hardened: entities stay unexpanded references, no DTD is loaded, nothing is fetched.
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )


def looks_like_camt(head: str) -> bool:
    return "camt.05" in head or "BkToCstmr" in head


def parse_camt(data: bytes) -> list[Statement]:
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise StatementError(f"the CAMT file is not well-formed XML: {exc}") from exc
    version = _version(root)
    for name, (child, kind) in _MESSAGES.items():
        message = root.find(f"{{*}}{name}")
        if message is not None:
            blocks = message.findall(f"{{*}}{child}")
            if not blocks:
                raise StatementError(f"the CAMT {name} message holds no <{child}> block")
            return [_statement(block, kind, version) for block in blocks]
    raise StatementError("the XML file is not a CAMT.052/053/054 bank-to-customer message")


def _version(root: Element) -> str:
    match = re.search(r"camt\.\d{3}\.\d{3}\.\d{2}", etree.QName(root).namespace or "")
    return match.group(0) if match else "camt"


# --- small element helpers -------------------------------------------------------------------


def _text(el: Element | None) -> str:
    """Element text without expanding entity references (their tails are kept, the names dropped)."""
    if el is None:
        return ""
    parts = [el.text or ""]
    parts.extend(child.tail or "" for child in el)
    return collapse("".join(parts))


def _find(el: Element | None, *paths: str) -> Element | None:
    """First element found under any of ``paths`` (slash-separated local names)."""
    if el is None:
        return None
    for path in paths:
        found = el.find("/".join(f"{{*}}{part}" for part in path.split("/")))
        if found is not None:
            return found
    return None


def _first(el: Element | None, *paths: str) -> str:
    return _text(_find(el, *paths))


def _all(el: Element, path: str) -> list[Element]:
    return el.findall(".//" + "/".join(f"{{*}}{part}" for part in path.split("/")))


def _date(el: Element | None) -> date | None:
    """A <Dt> or <DtTm> under ``el``; DtTm keeps its own calendar day (the bank's local date)."""
    value = _first(el, "Dt", "DtTm") or _text(el)
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError as exc:
        raise StatementError(f"the CAMT file has an unreadable date {value!r}") from exc


def _amount(el: Element | None) -> Decimal | None:
    if el is None:
        return None
    try:
        return Decimal(_text(el))
    except InvalidOperation as exc:
        raise StatementError(f"the CAMT file has an unreadable amount {_text(el)!r}") from exc


def _signed(amount: Decimal, indicator: str) -> Decimal:
    # CAMT amounts are unsigned; the CdtDbtInd beside them carries the direction.
    return -amount if indicator == "DBIT" else amount


# --- statement level ---------------------------------------------------------------------------


def _statement(block: Element, kind: StatementKind, version: str) -> Statement:
    balances, balance_dates = _balances(block)
    account = _find(block, "Acct")
    iban = iban_or_none(_first(account, "Id/IBAN"))
    transactions = [_transaction(entry) for entry in block.findall("{*}Ntry")]
    currency = _first(account, "Ccy") or next((tx.currency for tx in transactions if tx.currency), None)
    opening_code = next((c for c in _OPENING_CODES if c in balances), None)
    closing_code = next((c for c in _CLOSING_CODES if c in balances), None)
    period = _find(block, "FrToDt")
    return Statement(
        account_iban=iban,
        account_id=iban or opt(_first(account, "Id/Othr/Id")),
        currency=currency,
        opening_balance=balances.get(opening_code) if opening_code else None,
        closing_balance=balances.get(closing_code) if closing_code else None,
        statement_id=opt(_first(block, "Id")),
        period_start=_date(_find(period, "FrDtTm")) or balance_dates.get(opening_code or ""),
        period_end=_date(_find(period, "ToDtTm")) or balance_dates.get(closing_code or ""),
        kind=kind,
        transactions=transactions,
        source_format=version,
        balances=balances,
    )


def _balances(block: Element) -> tuple[dict[str, Decimal], dict[str, date]]:
    amounts: dict[str, Decimal] = {}
    dates: dict[str, date] = {}
    for bal in block.findall("{*}Bal"):
        code = _first(bal, "Tp/CdOrPrtry/Cd", "Tp/CdOrPrtry/Prtry")
        amount = _amount(_find(bal, "Amt"))
        if not code or amount is None or code in amounts:
            continue
        amounts[code] = _signed(amount, _first(bal, "CdtDbtInd"))
        when = _date(_find(bal, "Dt"))
        if when:
            dates[code] = when
    return amounts, dates


# --- entry level -------------------------------------------------------------------------------


def _transaction(entry: Element) -> Transaction:
    amount_el = _find(entry, "Amt")
    amount = _amount(amount_el)
    if amount is None:
        raise StatementError("a CAMT <Ntry> has no <Amt>")
    value = _date(_find(entry, "ValDt"))
    booking = _date(_find(entry, "BookgDt")) or value  # pending entries may not be booked yet
    if booking is None:
        raise StatementError("a CAMT <Ntry> has neither booking nor value date")
    details = _all(entry, "NtryDtls/TxDtls")
    credit = _first(entry, "CdtDbtInd") != "DBIT"
    name, iban = _counterparty(details, credit)
    return Transaction(
        booking_date=booking,
        value_date=value,
        amount=_signed(amount, _first(entry, "CdtDbtInd")),
        currency=opt(amount_el.get("Ccy") if amount_el is not None else None),
        counterparty_name=name,
        counterparty_iban=iban,
        remittance=_remittance(entry, details),
        reference=_reference(details),
        bank_reference=_bank_reference(entry, details),
        pending=(_first(entry, "Sts/Cd", "Sts") or "BOOK") in _NOT_BOOKED,
        booking_text=opt(_first(entry, "AddtlNtryInf"))
        or opt(_first(entry, "BkTxCd/Prtry/Cd"))
        or _domain_code(entry),
    )


def _bank_reference(entry: Element, details: list[Element]) -> str | None:
    """The bank's unique id of the entry; batch entries may carry it per transaction only."""
    candidates = [_first(entry, "AcctSvcrRef")] + [_first(tx, "Refs/AcctSvcrRef") for tx in details]
    return next((ref for ref in candidates if ref), None)


def _domain_code(entry: Element) -> str | None:
    parts = [_first(entry, p) for p in ("BkTxCd/Domn/Cd", "BkTxCd/Domn/Fmly/Cd", "BkTxCd/Domn/Fmly/SubFmlyCd")]
    return "/".join(parts) if all(parts) else None


def _counterparty(details: list[Element], credit: bool) -> tuple[str | None, str | None]:
    """Who paid us (Dbtr) on a credit, whom we paid (Cdtr) on a debit; ultimate parties as fallback."""
    party, ultimate = ("Dbtr", "UltmtDbtr") if credit else ("Cdtr", "UltmtCdtr")
    for tx in details:
        related = _find(tx, "RltdPties")
        name = _first(related, f"{party}/Nm", f"{party}/Pty/Nm", f"{ultimate}/Nm", f"{ultimate}/Pty/Nm")
        account = _first(related, f"{party}Acct/Id/IBAN", f"{party}Acct/Id/Othr/Id")
        if name or account:
            return name or None, iban_or_none(account)
    return None, None


def _remittance(entry: Element, details: list[Element]) -> str:
    """All unstructured remittance lines of the entry; booking info only when there are none."""
    lines: list[str] = []
    for tx in details:
        lines.extend(_text(el) for el in _all(tx, "RmtInf/Ustrd"))
        lines.extend(_text(el) for el in _all(tx, "RmtInf/Strd/AddtlRmtInf"))
    if not any(lines):
        lines = [_first(tx, "AddtlTxInf") for tx in details]
    if not any(lines):
        lines = [_first(entry, "AddtlNtryInf")]
    return collapse(" ".join(line for line in lines if line))


def _reference(details: list[Element]) -> str | None:
    """Structured creditor reference (e.g. RF18... / ISR) if given, else the end-to-end id."""
    for tx in details:
        for ref in _all(tx, "RmtInf/Strd/CdtrRefInf/Ref"):
            if clean_reference(_text(ref)):
                return clean_reference(_text(ref))
    for tx in details:
        e2e = clean_reference(_first(tx, "Refs/EndToEndId"))
        if e2e:
            return e2e
    return None
