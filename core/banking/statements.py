"""``parse_statement``: bank statement bytes in any supported format -> ``Statement`` objects.

Formats are told apart by content; the file name only breaks ties (a CSV cannot be recognised
by content alone when its layout is unknown). Every failure surfaces as ``StatementError``.
"""

from __future__ import annotations

from pathlib import PurePath

from core.banking.camt import looks_like_camt, parse_camt
from core.banking.csv_import import CsvMapping, guess_csv_mapping, parse_csv
from core.banking.fingerprint import assign_fingerprints
from core.banking.models import Statement, StatementError, UnknownCsvLayout
from core.banking.ofx import looks_like_ofx, parse_ofx
from core.banking.swift import looks_like_mt940, parse_mt940
from core.banking.util import decode_text

MAX_BYTES = 50 * 1024 * 1024  # a year of a busy account is a few MB; more is not a statement
_HEAD = 8192
_EXTENSIONS = {
    ".xml": "camt",
    ".camt": "camt",
    ".sta": "mt940",
    ".mt940": "mt940",
    ".940": "mt940",
    ".942": "mt940",
    ".ofx": "ofx",
    ".qfx": "ofx",
    ".csv": "csv",
}
# Formats whose transaction id is unique per account by specification (AcctSvcrRef, FITID).
_UNIQUE_BANK_REFERENCE = {"camt", "ofx"}


def detect_format(data: bytes, filename: str = "") -> str:
    """"camt", "mt940", "ofx" or "csv"; raises StatementError when it is none of them."""
    head = data[:_HEAD].decode("latin-1").lstrip("\ufeff\xef\xbb\xbf \t\r\n")
    if head.startswith("<"):
        if looks_like_ofx(head):
            return "ofx"
        if looks_like_camt(head):
            return "camt"
        raise StatementError("the file is XML but neither a CAMT (ISO 20022) message nor OFX")
    if looks_like_ofx(head):
        return "ofx"
    if looks_like_mt940(head):
        return "mt940"
    if _looks_like_csv(head):
        return "csv"
    by_name = _EXTENSIONS.get(PurePath(filename).suffix.lower())
    if by_name:
        return by_name
    raise StatementError("unrecognised file: not CAMT, MT940/MT942, OFX or a delimited CSV export")


def _looks_like_csv(head: str) -> bool:
    lines = [line for line in head.splitlines()[:20] if line.strip()]
    if not lines or "\x00" in head:
        return False
    return any(line.count(";") >= 2 or line.count(",") >= 3 or line.count("\t") >= 2 for line in lines)


def parse_statement(data: bytes, filename: str = "", csv_mapping: CsvMapping | None = None) -> list[Statement]:
    """Parse one bank statement file into one or more ``Statement`` objects.

    ``csv_mapping`` forces CSV with that layout; without it a CSV is read only if its header
    matches a built-in layout (see ``guess_csv_mapping``).
    """
    if not data or not data.strip():
        raise StatementError("the file is empty")
    if len(data) > MAX_BYTES:
        raise StatementError(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB; not a bank statement")
    fmt = "csv" if csv_mapping is not None else detect_format(data, filename)
    try:
        statements = _parse(fmt, data, csv_mapping)
    except StatementError:
        raise
    except Exception as exc:  # a library bug must not escape as anything but StatementError
        raise StatementError(f"the {fmt.upper()} file could not be read: {type(exc).__name__}: {exc}") from exc
    for statement in statements:
        assign_fingerprints(statement, trust_bank_reference=fmt in _UNIQUE_BANK_REFERENCE)
    return statements


def _parse(fmt: str, data: bytes, csv_mapping: CsvMapping | None) -> list[Statement]:
    if fmt == "camt":
        return parse_camt(data)
    if fmt == "ofx":
        return parse_ofx(data)
    if fmt == "mt940":
        return parse_mt940(decode_text(data))
    mapping = csv_mapping or guess_csv_mapping(data)
    if mapping is None:
        raise UnknownCsvLayout(
            "CSV layout not recognised (known: DKB, Sparkasse CSV-CAMT/CSV-MT940); pass a CsvMapping"
        )
    return parse_csv(data, mapping)


__all__ = ["CsvMapping", "StatementError", "detect_format", "guess_csv_mapping", "parse_statement"]
