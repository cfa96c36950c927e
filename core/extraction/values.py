"""Reading dates and amounts as invoices print them (French, English, German, Spanish, Italian, Dutch).

Pure functions over text. They only return what is written: a date that cannot be read is None, never
today; an ambiguous one (``03/04/2026``) is read day-first and flagged so that its confidence drops.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from core.fields import CURRENCIES

# Folding ---------------------------------------------------------------------------------------

_FOLD_MAP = {
    "\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u00ab": '"', "\u00bb": '"',
    "\u00a0": " ", "\u202f": " ", "\u2007": " ", "\u2009": " ", "\t": " ",
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2010": "-", "\u2011": "-",
    "\u00ba": "\u00b0",  # masculine ordinal, often typed for the degree sign in "N°"
}


def fold_char(char: str) -> str:
    mapped = _FOLD_MAP.get(char)
    if mapped is not None:
        return mapped
    base = unicodedata.normalize("NFD", char)[0]
    return base.lower() if len(base.lower()) == 1 else char


class _FoldTable(dict[int, str]):
    """``str.translate`` table filled on first sight of each character (``fold_char`` is slow: NFD each)."""

    def __missing__(self, code: int) -> str:
        folded = fold_char(chr(code))
        if len(self) < 100_000:  # bounded: a hostile text cannot grow it without end
            self[code] = folded
        return folded


_FOLD_TABLE = _FoldTable()


def fold(text: str) -> str:
    """Lower case without accents, typographic quotes, dashes and spaces unified, SAME LENGTH as ``text``.

    Keeping the length lets a pattern matched on the folded text be cut out of the original text.
    """
    return text.translate(_FOLD_TABLE)


def clean_spaces(text: str) -> str:
    """Typographic spaces (no-break, narrow no-break, thin) and tabs as plain spaces, same length."""
    return text.translate({0xA0: " ", 0x202F: " ", 0x2007: " ", 0x2009: " ", 0x09: " "})


# Dates -----------------------------------------------------------------------------------------

MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    (
        ("janvier", "janv", "january", "jan", "januar", "janner", "januari", "enero", "gennaio", "gen"),
        ("fevrier", "fevr", "fev", "february", "feb", "februar", "februari", "febrero", "febbraio"),
        ("mars", "march", "mar", "marz", "maerz", "maart", "marzo", "mrt"),
        ("avril", "avr", "april", "apr", "abril", "aprile", "abr"),
        ("mai", "may", "mei", "mayo", "maggio", "mag"),
        ("juin", "june", "jun", "juni", "junio", "giugno", "giu"),
        ("juillet", "juil", "july", "jul", "juli", "julio", "luglio", "lug"),
        ("aout", "august", "aug", "augustus", "agosto", "ago"),
        ("septembre", "sept", "september", "sep", "septiembre", "setiembre", "settembre", "set"),
        ("octobre", "oct", "october", "oktober", "okt", "octubre", "ottobre", "ott"),
        ("novembre", "nov", "november", "noviembre"),
        ("decembre", "dec", "december", "dezember", "dez", "diciembre", "dicembre", "dic"),
    ),
    start=1,
):
    for _name in _names:
        MONTHS[_name] = _number

_MONTH_RE = "|".join(sorted(MONTHS, key=len, reverse=True))
# Patterns run on folded text (lower case, no accents).
_ISO = re.compile(r"(?<![\d/.-])(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?![\d/.-]?\d)")
_NUMERIC = re.compile(r"(?<![\d/.-])(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})(?![\d/.-]?\d)")
_DAY_MONTH = re.compile(rf"(?<!\d)(\d{{1,2}})(?:er|st|nd|rd|th)?\.?\s+(?:de\s+)?({_MONTH_RE})\.?,?\s+(?:de\s+)?"
                        r"(\d{4})(?!\d)")
# "12-Nov-2021", "26-apr-18"
_DAY_MON_DASHED = re.compile(rf"(?<![\d-])(\d{{1,2}})-({_MONTH_RE})-(\d{{4}}|\d{{2}})(?![\d-])")
_CJK = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_MONTH_DAY = re.compile(rf"(?<![a-z])({_MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\s?,?\s+(\d{{4}})(?!\d)")


@dataclass(frozen=True)
class FoundDate:
    value: date
    start: int
    end: int
    ambiguous: bool  # day and month could be swapped (both <= 12, numeric form)
    numeric: tuple[int, int] | None = None  # the first two numbers of a numeric date, as written


def reads_month_first(text: str, hint: bool = False) -> bool:
    """Whether the numeric dates of one document are written month first (``10/18/18``): a first number over
    12 anywhere says day first, a second one over 12 says month first; else ``hint`` (the document's
    language or currency: US dollars, English without a European sign)."""
    votes = month_first_votes(text)
    return votes > 0 if votes else hint


def month_first_votes(text: str) -> int:
    """Numeric dates of ``text`` that only read month first, minus those that only read day first: 0 when
    none decides (every one could be either, or there is none)."""
    votes = 0
    for m in _NUMERIC.finditer(fold(text)):
        first, second = int(m[1]), int(m[2])
        if first > 12 >= second:
            votes -= 1
        elif second > 12 >= first:
            votes += 1
    return votes


def make_date(year: int, month: int, day: int) -> date | None:
    """``date(year, month, day)`` for a plausible invoice date (1950-2100; a 2-digit year completed), else None."""
    return _make_date(year, month, day)


def _make_date(year: int, month: int, day: int) -> date | None:
    if year < 100:
        year += 2000 if year < 70 else 1900
    if not 1950 <= year <= 2100:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def find_dates(text: str, month_first: bool = False) -> list[FoundDate]:
    """Every date written in ``text`` (any case, accents or not), in order of appearance. Numeric dates are
    read day first unless only month first makes sense, or ``month_first`` (the document's way, see
    ``reads_month_first``) says so."""
    folded = fold(text)
    found: list[FoundDate] = []
    taken: list[tuple[int, int]] = []

    def add(value: date | None, match: re.Match[str], ambiguous: bool = False,
            numeric: tuple[int, int] | None = None) -> None:
        span = match.span()
        if value is None or any(s < span[1] and span[0] < e for s, e in taken):
            return
        taken.append(span)
        found.append(FoundDate(value, span[0], span[1], ambiguous, numeric))

    for m in _CJK.finditer(folded):
        add(_make_date(int(m[1]), int(m[2]), int(m[3])), m)
    for m in _DAY_MON_DASHED.finditer(folded):
        add(_make_date(int(m[3]), MONTHS[m[2]], int(m[1])), m)

    for m in _DAY_MONTH.finditer(folded):
        add(_make_date(int(m[3]), MONTHS[m[2]], int(m[1])), m)
    for m in _MONTH_DAY.finditer(folded):
        add(_make_date(int(m[3]), MONTHS[m[1]], int(m[2])), m)
    for m in _ISO.finditer(folded):
        add(_make_date(int(m[1]), int(m[2]), int(m[3])), m)
    for m in _NUMERIC.finditer(folded):
        first, second, year = int(m[1]), int(m[2]), int(m[3])
        if month_first and first <= 12 and second <= 31:
            add(_make_date(year, first, second), m, numeric=(first, second))
        elif first > 12 or second <= 12:
            # Day first, as in Europe; ambiguous when both could be a month.
            add(_make_date(year, second, first), m, ambiguous=first <= 12 and first != second, numeric=(first, second))
        else:
            add(_make_date(year, first, second), m)  # 11/23/2026: only month-first makes sense
    found.sort(key=lambda d: d.start)
    return found


def parse_date(text: str, month_first: bool = False) -> FoundDate | None:
    """The first date in ``text``."""
    dates = find_dates(text, month_first)
    return dates[0] if dates else None


# Amounts ---------------------------------------------------------------------------------------

_SYMBOLS = {"€": "EUR", "£": "GBP", "$": "USD", "us$": "USD", "ca$": "CAD", "c$": "CAD", "a$": "AUD",
            "au$": "AUD", "chf": "CHF", "fr.": "CHF", "元": "CNY", "人民币": "CNY"}  # yuan (the yen is 円)
_CUR = r"(?:us\$|ca\$|c\$|au\$|a\$|[€£$]|[a-z]{3}\b)"
# On folded text. Thousands groups need a separator and three digits, decimals one or two digits.
_MONEY = re.compile(
    rf"(?P<pre>{_CUR}\s?)?(?P<sign>-\s?)?(?P<pre2>[€£$]\s?)?"
    r"(?P<num>\d{1,3}(?:[ .,'](?:\d{3}))+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?)(?!\d|[.,/-]\d)"
    rf"(?P<post>\s?{_CUR})?"
)


@dataclass(frozen=True)
class FoundMoney:
    value: Decimal
    currency: str | None
    ambiguous_currency: bool  # "$" alone: most often USD, but CAD, AUD... print it too
    start: int
    end: int


def parse_number(num: str) -> Decimal | None:
    """``1 234,56``, ``1.234,56``, ``1,234.56``, ``1234.5``, ``1'234.56`` -> Decimal; None if unreadable."""
    num = num.replace(" ", "").replace("'", "")
    match = re.search(r"[.,](\d{1,2})$", num)
    if match:
        whole, decimals = num[: match.start()], match.group(1)
    else:
        whole, decimals = num, ""
    whole = whole.replace(".", "").replace(",", "")
    if not whole.isdigit():
        return None
    try:
        return Decimal(f"{whole}.{decimals or '0'}").quantize(Decimal("0.01"))
    except InvalidOperation:
        return None


def _currency(written: str | None) -> tuple[str | None, bool]:
    if not written:
        return None, False
    symbol = written.strip()
    if symbol in _SYMBOLS:
        return _SYMBOLS[symbol], symbol == "$"
    code = symbol.upper()
    return (code, False) if code in CURRENCIES else (None, False)


def find_money(text: str) -> list[FoundMoney]:
    """Amounts in ``text``: numbers with decimals or with a currency; never a rate (``20 %``)."""
    folded = fold(text)
    found: list[FoundMoney] = []
    for m in _MONEY.finditer(folded):
        rest = folded[m.end() :]
        if re.match(r"\s*%", rest):
            continue
        pre, pre_ambiguous = _currency(m["pre"] or m["pre2"])
        post, post_ambiguous = _currency(m["post"])
        currency = post if post and pre_ambiguous else pre or post  # "$5,270.00 AUD": the code says which dollar
        has_decimals = re.search(r"[.,]\d{1,2}$", m["num"]) is not None
        if not has_decimals and currency is None:
            continue  # a quantity, a year, a postcode...
        value = parse_number(m["num"])
        if value is None:
            continue
        if m["sign"]:
            value = -value
        ambiguous = post_ambiguous if currency == post and post else pre_ambiguous
        found.append(FoundMoney(value, currency, ambiguous, m.start("num"), m.end()))
    return found


def currency_codes_in(text: str) -> list[str]:
    """ISO codes and symbols written anywhere in ``text``, most frequent first."""
    counts: dict[str, int] = {}
    for m in re.finditer(r"(?<![A-Za-z])([A-Z]{3})(?![A-Za-z])|(€|£|元|人民币)", text):
        code = m.group(1) if m.group(1) in CURRENCIES else _SYMBOLS.get(m.group(2) or "")
        if code:
            counts[code] = counts.get(code, 0) + 1
    return sorted(counts, key=lambda c: -counts[c])
