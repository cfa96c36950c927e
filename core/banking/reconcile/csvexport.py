"""CSV files for the accountant: UTF-8 with a BOM (Excel opens it right), or the French Excel dialect
(``;`` separators, decimal comma). Cells a spreadsheet would run as formulas are neutralised."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value: str) -> str:
    """Text that a spreadsheet shows as text: a leading = + - @ (or tab / CR) gets a ``'`` before it."""
    value = value.replace("\x00", "")
    return "'" + value if value.startswith(FORMULA_START) else value


def cell(value: Any, french: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal | int):
        text = format(value, "f") if isinstance(value, Decimal) else str(value)
        return text.replace(".", ",") if french else text
    if isinstance(value, datetime):
        return value.strftime("%d/%m/%Y %H:%M") if french else value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y") if french else value.isoformat()
    return safe_text(str(value))


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]], french: bool = False) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";" if french else ",", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([safe_text(h) for h in header])
    for row in rows:
        writer.writerow([cell(v, french) for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")
