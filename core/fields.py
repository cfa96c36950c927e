"""The invoice fields: their names, and how a person's (or an API client's) input becomes typed values."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from core.i18n import N_
from core.models import DocType

FIELDS: tuple[str, ...] = (
    "doc_type",
    "number",
    "title",
    "client",
    "issuer",
    "amount",
    "net_amount",
    "tax_amount",
    "currency",
    "issue_date",
    "due_date",
)
AMOUNT_FIELDS = ("amount", "net_amount", "tax_amount")
DATE_FIELDS = ("issue_date", "due_date")
TEXT_LIMITS = {"number": 100, "title": 300, "client": 300, "issuer": 300}

# ISO 4217 active codes (2024 list).
CURRENCIES = frozenset(
    (
        "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
        "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC",
        "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS",
        "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD",
        "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL",
        "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD",
        "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD",
        "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP",
        "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VES",
        "VND", "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWL",
    )
)
_AMOUNT_RE = re.compile(r"^-?\d{1,16}(\.\d{1,2})?$")  # fits NUMERIC(18, 2)


def parse_amount(text: str) -> Decimal:
    """``1234.56``, ``1 234,56`` or ``1234,56`` as typed by a person; at most two decimals."""
    cleaned = text.strip().replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    if "," in cleaned and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    if not _AMOUNT_RE.match(cleaned):
        raise ValueError(N_("not an amount (e.g. 1234.56)"))
    try:
        return Decimal(cleaned)
    except InvalidOperation as exc:
        raise ValueError(N_("not an amount (e.g. 1234.56)")) from exc


def number_key(number: str) -> str:
    """Invoice numbers compared without case or white space: ``fa 2026-001`` equals ``FA2026-001``."""
    return re.sub(r"\s+", "", number).upper()


def coerce(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Typed values for the known fields present in ``data`` (``""``/None clears), and errors by field."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in FIELDS:
        if name not in data:
            continue
        raw = data[name]
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            values[name] = None
            continue
        try:
            values[name] = _coerce_one(name, raw)
        except ValueError as exc:
            errors[name] = str(exc)
    return values, errors


def _coerce_one(name: str, raw: Any) -> Any:
    if name in AMOUNT_FIELDS:
        if isinstance(raw, bool):
            raise ValueError(N_("not an amount (e.g. 1234.56)"))
        return parse_amount(str(raw)) if not isinstance(raw, Decimal) else raw
    if name in DATE_FIELDS:
        if isinstance(raw, date):
            return raw
        try:
            return date.fromisoformat(str(raw).strip())
        except ValueError as exc:
            raise ValueError(N_("not a date (YYYY-MM-DD)")) from exc
    if name == "currency":
        code = str(raw).strip().upper()
        if code not in CURRENCIES:
            raise ValueError(N_("not an ISO 4217 currency code (e.g. EUR)"))
        return code
    if name == "doc_type":
        try:
            return DocType(str(raw).strip()).value
        except ValueError as exc:
            raise ValueError(N_("must be invoice or credit_note")) from exc
    text = " ".join(str(raw).split())
    if len(text) > TEXT_LIMITS[name]:
        raise ValueError(f"at most {TEXT_LIMITS[name]} characters")
    return text


def check_complete(values: dict[str, Any]) -> dict[str, str]:
    """Errors that stop a validation: required fields and consistency between them."""
    errors: dict[str, str] = {}
    required = ["doc_type", "number", "client", "amount", "currency", "issue_date"]
    if values.get("doc_type") != DocType.CREDIT_NOTE.value:
        required.append("due_date")  # a credit note is not paid at a due date
    for name in required:
        if values.get(name) in (None, ""):
            errors[name] = N_("required")
    issue, due = values.get("issue_date"), values.get("due_date")
    if issue and due and due < issue:
        errors["due_date"] = N_("the due date is before the issue date")
    amount, net, tax = (values.get(n) for n in AMOUNT_FIELDS)
    if amount is not None and net is not None and tax is not None and net + tax != amount:
        errors["amount"] = f"net {net} + tax {tax} is {net + tax}, not {amount}"
    return errors
