"""Typed values out of XML elements: text, names, amounts, dates. Shared by the CII and UBL readers."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation

from lxml import etree

from core.einvoice.model import EInvoiceError

Namespaces = dict[str, str]


def local_name(el: etree._Element) -> str:
    return etree.QName(el).localname


def text_of(el: etree._Element | None) -> str | None:
    """The element's text, stripped; None when absent or blank."""
    if el is None or el.text is None:
        return None
    value = el.text.strip()
    return value or None


def find_text(el: etree._Element | None, path: str, ns: Namespaces) -> str | None:
    return None if el is None else text_of(el.find(path, ns))


def find_name(el: etree._Element | None, path: str, ns: Namespaces) -> str | None:
    """A party or item name: white space (line breaks in multi-line names) collapsed to single spaces."""
    value = find_text(el, path, ns)
    return " ".join(value.split()) if value else None


def decimal_of(el: etree._Element | None) -> Decimal | None:
    """An amount, exactly as written; a value that is not a finite number makes the document broken."""
    raw = text_of(el)
    if raw is None:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        # Not guessed: "1.234,56" or "12 EUR" in an amount element means the generator is wrong.
        raise EInvoiceError(f"{local_name(el)} is not a number: {raw[:40]!r}")
    return value


def find_decimal(el: etree._Element | None, path: str, ns: Namespaces) -> Decimal | None:
    return None if el is None else decimal_of(el.find(path, ns))


def or_zero(value: Decimal | None) -> Decimal:
    return Decimal("0") if value is None else value


def parse_date(raw: str | None, fmt: str | None = None) -> date | None:
    """``20180305`` (UN/CEFACT format 102) or ``2018-03-05`` (ISO, UBL). Other formats (610 = month,
    616 = week) name no day, so they give None rather than an invented date."""
    if not raw or fmt not in (None, "102"):
        return None
    digits = re.sub(r"\D", "", raw[:10])
    if len(digits) != 8:
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None
