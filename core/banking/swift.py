"""SWIFT MT940 statements and MT942 intraday reports, read with the ``mt-940`` library.

The library splits tags and decodes the German ``?20..?63`` sub-fields of ``:86:``. What it
leaves as free text is read here per dialect: the SEPA slash codes of Dutch banks
(``/EREF/../NAME/../REMI/..``), mBank's ``OD: ..; TYT.: ..`` and ASN Bank's IBAN-first layout.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import mt940
from mt940.options import Options

from core.banking.models import Statement, StatementError, StatementKind, Transaction
from core.banking.util import clean_reference, collapse, iban_or_none, opt

# Every opt-in fix of the library: most importantly ``reversal_sign`` (an "RC" reversal of a
# credit is money going out; without it the betterplace corpus file does not balance) and
# ``applicant_iban`` (keep the counterparty account of ?31 out of the name).
_OPTIONS = Options.all()
_TAG_LINE = re.compile(r"(?m)^:\n?\d{2}[A-Z]?:")
_MT942_MARKERS = re.compile(r"(?m)^:(34F|13D|90D|90C):|\{2:[IO]942")
_SWIFT_LINE = 65  # :86: is sent as lines of at most 65 characters, cut anywhere
# :61: patterns to try in turn: SWIFT standard, ASN Bank, GLS/Atruvia (stateless, so shared).
_DIALECT_TAGS = (None, mt940.tags.StatementASNB(), mt940.tags.StatementGLS())

# The library logs every :61: regex miss at ERROR. Here a miss only means "try the next
# dialect", and a final failure becomes a StatementError, so its log lines are noise. Left
# alone when the application configured that logger itself.
_LIBRARY_LOG = logging.getLogger("mt940.tags")
if _LIBRARY_LOG.level == logging.NOTSET:
    _LIBRARY_LOG.setLevel(logging.CRITICAL)


def looks_like_mt940(head: str) -> bool:
    return bool(re.search(r"(?m)^:(20|25|28C?|60[FM]|61):", head) or "{1:F01" in head or "{4:" in head)


def parse_mt940(text: str) -> list[Statement]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    kind: StatementKind = "report" if _MT942_MARKERS.search(text) else "statement"
    source_format = "mt942" if kind == "report" else "mt940"
    statements = [_statement(_parse_block(block), kind, source_format) for block in _blocks(text)]
    if not statements:
        raise StatementError("the file looks like MT940 but holds no :61: or balance tags")
    return statements


def _blocks(text: str) -> list[str]:
    """One block per ``:20:`` (one statement each); a fragment without ``:20:`` is one block."""
    return [block for block in re.split(r"(?m)^(?=:20:)", text) if _TAG_LINE.search(block)]


def _parse_block(block: str) -> mt940.models.Transactions:
    """Parse with the standard tags, then with the dialect tags the library ships.

    ASN Bank puts the counterparty IBAN (up to 34 chars) where SWIFT allows 16, GLS/Atruvia send
    over-long customer references; the standard :61: pattern rejects both.
    """
    last_error: Exception | None = None
    for tag in _DIALECT_TAGS:
        # The collection is fed the text directly: mt940.parse() would treat a string that names
        # an existing file as a path and read that file instead.
        collection = mt940.models.Transactions(tags={tag.id: tag} if tag else None, options=_OPTIONS)
        try:
            collection.parse(block)
            return collection
        except (RuntimeError, ValueError, KeyError, TypeError, ArithmeticError) as exc:
            last_error = exc
    raise StatementError(f"an MT940 :61: line could not be read in any known bank dialect ({last_error})")


# --- statement level ---------------------------------------------------------------------------


def _balance(data: dict[str, Any], *keys: str) -> tuple[Decimal | None, date | None]:
    for key in keys:
        balance = data.get(key)
        if balance is not None:
            return balance.amount.amount, _plain_date(balance.date)
    return None, None


def _statement(collection: mt940.models.Transactions, kind: StatementKind, source_format: str) -> Statement:
    data = collection.data
    opening, opened = _balance(data, "final_opening_balance", "intermediate_opening_balance", "opening_balance")
    closing, closed = _balance(
        data, "final_closing_balance", "intermediate_closing_balance", "closing_balance"
    )
    account = opt(data.get("account_identification"))
    currency = collection.currency
    transactions = [_transaction(tx.data, currency) for tx in collection]
    number = opt(data.get("statement_number"))
    sequence = opt(data.get("sequence_number"))
    booked = [tx.booking_date for tx in transactions]
    return Statement(
        account_iban=_account_iban(account),
        account_id=account,
        currency=currency or next((tx.currency for tx in transactions if tx.currency), None),
        opening_balance=opening,
        closing_balance=closing,
        statement_id=_statement_id(number, sequence, data),
        period_start=opened or (min(booked) if booked else None),
        period_end=closed or (max(booked) if booked else None),
        kind=kind,
        transactions=transactions,
        source_format=source_format,
        balances=_balances(data),
    )


def _statement_id(number: str | None, sequence: str | None, data: dict[str, Any]) -> str | None:
    # :28C: "statement/sequence" identifies a statement; :20: is only the sender's message id.
    if number and sequence:
        return f"{number}/{sequence}"
    return number or opt(data.get("transaction_reference"))


def _account_iban(account: str | None) -> str | None:
    # :25: is "IBAN", "BIC/IBAN", "BLZ/Konto" or a bare account number.
    if not account:
        return None
    return iban_or_none(account) or iban_or_none(account.rsplit("/", 1)[-1])


def _balances(data: dict[str, Any]) -> dict[str, Decimal]:
    codes = {
        "final_opening_balance": "60F",
        "intermediate_opening_balance": "60M",
        "final_closing_balance": "62F",
        "intermediate_closing_balance": "62M",
        "available_balance": "64",
        "forward_available_balance": "65",
    }
    return {code: data[key].amount.amount for key, code in codes.items() if data.get(key) is not None}


def _plain_date(value: Any) -> date:
    # The library's Date subclasses date; a plain date keeps equality and pickling simple.
    return date(value.year, value.month, value.day)


# --- transaction level -------------------------------------------------------------------------


@dataclass(slots=True)
class _Details:
    """What the :86: line says, whichever dialect it was written in."""

    name: str | None = None
    iban: str | None = None
    remittance: str = ""
    reference: str | None = None


def _transaction(data: dict[str, Any], currency: str | None) -> Transaction:
    amount = data["amount"]
    value_date = _plain_date(data["date"])
    entry = data.get("entry_date")
    details = _details(data)
    customer_ref = _customer_reference(data.get("customer_reference"))
    return Transaction(
        booking_date=_plain_date(entry) if entry else value_date,  # :61: entry date is the booking date
        value_date=value_date,
        amount=amount.amount,
        currency=amount.currency or currency,
        counterparty_name=details.name,
        # Rabobank sends the counterparty account on the :61: continuation line.
        counterparty_iban=details.iban or iban_or_none(data.get("extra_details")),
        remittance=details.remittance,
        reference=details.reference or customer_ref,
        bank_reference=clean_reference(data.get("bank_reference")),
        booking_text=opt(data.get("posting_text")) or opt(data.get("id")),
    )


def _customer_reference(value: str | None) -> str | None:
    """The :61: customer reference, unless it is a placeholder or something else in disguise."""
    ref = clean_reference(re.sub(r"^KREF\+", "", value or ""))  # German banks prefix the GVC keyword
    if not ref or ref == "EREF" or len(ref) < 3:
        return None  # "EREF" points at :86:; "N" is a truncated NONREF
    return None if iban_or_none(ref) else ref  # ASN Bank puts the counterparty IBAN here


def _details(data: dict[str, Any]) -> _Details:
    if "transaction_details" not in data:
        return _german_details(data)  # the library consumed a structured ?20..?63 :86:
    text = _unwrap(data.get("transaction_details") or "")
    for reader in (_slash_details, _mbank_details):
        found = reader(text)
        if found is not None:
            return found
    return _free_details(text, data)


def _unwrap(details: str) -> str:
    """Join :86: lines: a full-length line was cut mid-word, a shorter one ended on purpose."""
    lines = details.split("\n")
    out = ""
    for index, line in enumerate(lines):
        out += line
        full = len(line) + (4 if index == 0 else 0) >= _SWIFT_LINE  # the first line also held ":86:"
        if index < len(lines) - 1 and not full:
            out += "\n"
    return out


def _german_details(data: dict[str, Any]) -> _Details:
    purpose = (data.get("purpose") or "") + (data.get("additional_purpose") or "")
    iban = iban_or_none(data.get("gvc_applicant_iban")) or iban_or_none(data.get("applicant_iban"))
    return _Details(
        name=opt(data.get("applicant_name")),
        iban=iban,
        remittance=collapse(purpose),
        reference=clean_reference(data.get("end_to_end_reference")),
    )


_SLASH_CODES = (
    "EREF|PREF|KREF|MARF|CSID|BENM|ORDP|NAME|ADDR|REMI|ISDT|IBAN|BIC|CNTP|RTRN|ATNT|ULTC|ULTD|ULTB|PURP|SVCL|TRCD|RTYP"
)
_SLASH_SPLIT = re.compile(rf"/({_SLASH_CODES})/")


def _slash_details(text: str) -> _Details | None:
    """SEPA slash codes (Rabobank, ING, ABN AMRO, Triodos): ``/EREF/x/BENM//NAME/y/REMI/z``."""
    flat = text.replace("\n", "")
    if not flat.lstrip().startswith("/") or not _SLASH_SPLIT.search(flat):
        return None
    parts = _SLASH_SPLIT.split(flat)
    fields: dict[str, str] = {}
    for code, value in zip(parts[1::2], parts[2::2], strict=True):
        fields.setdefault(code, value.strip("/ "))
    name, iban = fields.get("NAME"), fields.get("IBAN")
    if "CNTP" in fields:  # /CNTP/IBAN/BIC/NAME/CITY/
        cntp = fields["CNTP"].split("/") + ["", "", ""]
        iban, name = iban or cntp[0], name or cntp[2]
    remittance, reference = _slash_remittance(fields.get("REMI", ""))
    return _Details(
        name=opt(name),
        iban=iban_or_none(iban),
        remittance=remittance,
        reference=reference or clean_reference(fields.get("EREF")),
    )


def _slash_remittance(remi: str) -> tuple[str, str | None]:
    # ING writes /REMI/USTD//free text/ or /REMI/STRD/CUR/RF18.../ for a creditor reference.
    if remi.startswith("STRD/"):
        return "", clean_reference(remi.rsplit("/", 1)[-1])
    return collapse(re.sub(r"^USTD/+", "", remi)), None


_MBANK = re.compile(r";\s*TYT\.:")


def _mbank_details(text: str) -> _Details | None:
    """mBank: ``911 ...; Z RACH.: <NRB>; OD: <name  address>; TYT.: <title>; TNR: ...``."""
    if not _MBANK.search(text):
        return None
    fields = dict(re.findall(r"(Z RACH\.|NA RACH\.|OD|DO|TYT\.):\s*([^;]*)", text))
    account = re.sub(r"\s", "", fields.get("Z RACH.") or fields.get("NA RACH.") or "")
    party = (fields.get("OD") or fields.get("DO") or "").strip()
    return _Details(
        name=opt(re.split(r"\n|\s{2,}", party)[0]),  # the address follows on the next line
        # A Polish NRB is the IBAN without its "PL" prefix.
        iban=iban_or_none(account) or (iban_or_none("PL" + account) if re.fullmatch(r"\d{26}", account) else None),
        remittance=collapse(fields.get("TYT.")),
    )


def _free_details(text: str, data: dict[str, Any]) -> _Details:
    """Unstructured :86:. ASN Bank puts the counterparty IBAN in the :61: reference and repeats
    "IBAN name" as the first :86: line; everything else is remittance text as it stands."""
    iban = iban_or_none(data.get("customer_reference"))
    if iban:
        lines = text.split("\n")
        if lines and lines[0].replace(" ", "").upper().startswith(iban):
            text = "\n".join(lines[1:])
        return _Details(name=opt(data.get("extra_details")), iban=iban, remittance=collapse(text))
    return _Details(remittance=collapse(text))
