"""Small text helpers shared by the statement format readers."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from core.banking.models import StatementError

_WS = re.compile(r"\s+")
_IBAN = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")
# Placeholders banks write where a reference is required but none was given.
_NO_REFERENCE = {"", "NONREF", "NOTPROVIDED", "NOT PROVIDED", "NONE", "KEINE ANGABE", "NONREFERENCE"}


def collapse(text: str | None) -> str:
    """Join all whitespace (line breaks of 65-char MT940 lines, CSV padding) into single spaces."""
    return _WS.sub(" ", text or "").strip()


def opt(text: str | None) -> str | None:
    """Collapsed text, or None when nothing is left."""
    return collapse(text) or None


def clean_reference(text: str | None) -> str | None:
    """A reference, or None for empty values and placeholders like NONREF / NOTPROVIDED."""
    value = collapse(text)
    return None if value.upper() in _NO_REFERENCE else value


def iban_or_none(text: str | None) -> str | None:
    """The IBAN in ``text`` if it has the shape of one (spaces dropped, upper-cased).

    Only the shape is checked, not the checksum: statements are the bank's own word and test
    data is full of IBANs with made-up check digits.
    """
    value = re.sub(r"[\s-]", "", text or "").upper()
    return value if _IBAN.fullmatch(value) else None


def decode_text(data: bytes, encoding: str | None = None) -> str:
    """Decode with ``encoding`` if given, else UTF-8 (BOM allowed), else cp1252.

    German bank exports are cp1252/ISO-8859-1 more often than not; cp1252 is tried before
    latin-1 because it maps 0x80-0x9f to the printable characters Windows tools wrote.
    """
    if encoding:
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise StatementError(f"the file is not valid {encoding} text: {exc}") from exc
    for candidate in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(candidate)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")  # maps every byte, never fails


_AMOUNT_NOISE = re.compile(r"[\s\u00a0'€$£]|EUR|USD|CHF|GBP", re.IGNORECASE)


def parse_amount(text: str, decimal_comma: bool = True) -> Decimal:
    """Parse a human-formatted amount: ``-2.542,32``, ``1,234.56``, ``15,37-``, ``(5.50)``, ``+8,79 EUR``.

    Raises ValueError (the CSV reader turns it into a StatementError naming the row).
    """
    value = _AMOUNT_NOISE.sub("", text)
    negative = False
    if value.startswith("(") and value.endswith(")"):
        negative, value = True, value[1:-1]
    if value.endswith("-"):  # trailing minus, as some German exports write it
        negative, value = True, value[:-1]
    if value.startswith(("-", "+")):
        negative, value = negative ^ (value[0] == "-"), value[1:]
    thousands, point = (".", ",") if decimal_comma else (",", ".")
    value = value.replace(thousands, "").replace(point, ".")
    if not re.fullmatch(r"\d+(\.\d+)?|\.\d+", value):
        raise ValueError(f"not an amount: {text!r}")
    try:
        amount = Decimal(value)
    except InvalidOperation as exc:  # pragma: no cover - the regex above already guards this
        raise ValueError(f"not an amount: {text!r}") from exc
    return -amount if negative else amount
