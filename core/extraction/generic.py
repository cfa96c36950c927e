"""The generic extractor: invoice fields from the text of any layout, by labels ("Facture N°", "Total TTC").

It works best on layout-preserving text (``pdftotext -layout``), where two or more spaces separate
columns: a value is looked for after its label in the same cell, then in the next cells of the line, then
(for column headings) in the cell underneath. Fields are read in an order that lets specific labels claim
their cells before generic ones ("Date d'échéance" before "Date", "Total HT" before "Total"), and labels
of things that are not ours ("N° TVA", "Date de livraison") are claimed first of all.

Nothing is invented: a field without a readable value is left out. Where no label is printed, a few
layout rules read a position instead (the letterhead, the window-envelope or right-hand address block, a date
beside the number, a due date from the payment terms); those values always carry a confidence under the
check threshold (``result.CHECK_BELOW``). Labels in six languages are in ``labels``; every rule is a general
one, measured on real invoices by ``bench/realworld.py``. Keep it a pure function of the text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from core.extraction import identifiers
from core.extraction import labels as L
from core.extraction.result import GENERIC, Extraction
from core.extraction.values import (
    FoundMoney,
    clean_spaces,
    currency_codes_in,
    find_dates,
    find_money,
    fold,
    make_date,
    month_first_votes,
    parse_date,
)
from core.fields import CURRENCIES

MAX_LINES = 5000  # ~50 pages of text; the rest is terms and conditions
_BELOW_LOOKAHEAD = 3  # lines examined under a column heading
_MAX_GAP = 30  # characters between a label and the next cell beyond which that cell is another column's
_SHIFTED_BELOW = 0.7  # a value under its heading but not the cell overlapping it most: flagged
_RIGHT_ALIGNED = 8  # a value right-aligned under a left-aligned heading may start this far after its end
_TITLE_LINES = 25  # non-empty lines at the top where the document's title is looked for
# Compiled once (re's own cache costs a lookup per call, and these run for every cell of every document).
_CELL = re.compile(r"\S+(?: \S+)*")
_CREDIT_TITLE = re.compile(r"(?:facture d'avoir|note de credit|credit note|credit memo|avoir|gutschrift"
                           r"|rechnungskorrektur|stornorechnung|(?:ticket|bon|note) d'avoir|creditnota"
                           r"|nota de credito|nota di credito)\b")
_CREDIT_WORDS = re.compile(r"\b(?:facture d'avoir|note de credit|credit note|credit memo|gutschrift|creditnota)\b")
_INVOICE_TITLE = re.compile(r"(?:facture|invoice|tax invoice|rechnung|factura|fattura|factuur)\b|发票")
_INVOICE_WORDS = re.compile(r"\b(?:facture|invoice|rechnung|factura|fattura|factuur)\b|发票")
# Bills and statements that ask for payment: invoices, less surely said.
_BILL_WORDS = re.compile(r"\b(?:bill|statement|billing|amount due|total due)\b")
_AVOIR_CAPITALS = re.compile(r"\bAVOIR\b")
_US_COUNTRY = re.compile(r"\b(?:USA|U\.S\.A\.?|United States(?: of America)?)(?![A-Za-z])")
_OTHER_CURRENCY = re.compile(r"€|£|A\$|AU\$|C\$|CA\$")
_US_ADDRESS = re.compile(r"\b(?:A[LKZR]|C[AOT]|DE|FL|GA|HI|I[DLNA]|K[SY]|LA|M[EDAINSOT]|N[EVHJMYCD]|O[HKR]|PA|RI"
                         r"|S[CD]|T[NX]|UT|V[TA]|W[AVIY]|DC),?\s+\d{5}(?:-\d{4})?\b")  # "Redmond, WA 98052"


@dataclass(frozen=True)
class Cell:
    line: int
    index: int
    start: int
    end: int
    text: str
    folded: str


@dataclass(frozen=True)
class _Found:
    value: Any
    confidence: float
    cells: tuple[Cell, ...]  # the label cell and the value cell(s), claimed once the field is set
    note: str | None = None
    currency: str | None = None
    ambiguous_currency: bool = False


def _unstacked(lines: list[str]) -> list[str]:
    """Labels listed one under the other and then their values in the same order (a key/value table read
    column by column: OCR, or a PDF that draws the labels first) put back side by side, one pair a line:
    "Issue Date:", "Invoice Amount:", "8th December 2021", "$5,270.00 AUD" -> "Issue Date:  8th December 2021".
    Blank lines in between do not count."""
    out = list(lines)
    filled = [no for no, line in enumerate(out) if line.strip()]
    at = 0
    while at < len(filled):
        run = at
        while run < len(filled) and _is_stacked_label(out[filled[run]]):
            run += 1
        count = run - at
        values = filled[run : run + count]
        if count >= 2 and len(values) == count and not any(out[v].rstrip().endswith(":") for v in values):
            for label_no, value_no in zip(filled[at:run], values, strict=True):
                out[label_no] = f"{out[label_no].rstrip()}  {out[value_no].strip()}"
                out[value_no] = ""
            at = run + count
        else:
            at = max(run, at + 1)
    return out


def _is_stacked_label(line: str) -> bool:
    stripped = line.strip()
    return "  " not in stripped and _STACKED_LABEL.fullmatch(stripped) is not None


_STACKED_LABEL = re.compile(r"[^\W\d][^:]{1,40}:")


class _Doc:
    def __init__(self, text: str) -> None:
        self.lines: list[list[Cell]] = []
        for no, raw in enumerate(_unstacked(text.splitlines()[:MAX_LINES])):
            line = clean_spaces(raw)
            folded = fold(line)
            cells = [
                Cell(no, i, m.start(), m.end(), m.group(), folded[m.start() : m.end()])
                for i, m in enumerate(_CELL.finditer(line))
            ]
            self.lines.append(cells)
        self.claimed: set[tuple[int, int]] = set()
        # Label cells that held their own date ("TOTAL DUE BY 2/2/2000"): still a label for an amount after it.
        self.shared: set[tuple[int, int]] = set()
        # Numeric dates of this document: month first (10/18/18) or day first, decided once for all of them.
        # Without a day over 12 to decide, only a US document (dollars and a US address) is read month first.
        # A US document without "$" (a scan whose sign was lost, a bill printing none) that says "USA" and
        # writes no other currency also reads month first, but unsure: its ambiguous dates stay flagged.
        votes = month_first_votes(text)
        foreign = _OTHER_CURRENCY.search(text) is not None
        us = "$" in text and _US_ADDRESS.search(text) is not None and not foreign
        said_us = not us and not votes and not foreign and _US_COUNTRY.search(text) is not None \
            and set(currency_codes_in(text)) <= {"USD"}
        self.month_first = votes > 0 if votes else us or said_us
        self.month_first_sure = not said_us

    def cells(self) -> Iterator[Cell]:
        for line in self.lines:
            for cell in line:
                if (cell.line, cell.index) not in self.claimed:
                    yield cell

    def after(self, cell: Cell) -> list[Cell]:
        return [c for c in self.lines[cell.line][cell.index + 1 :] if (c.line, c.index) not in self.claimed]

    def below(self, cell: Cell) -> Cell | None:
        """The cell under ``cell`` in the next non-empty lines (the value of a column heading)."""
        under = self.all_below(cell)
        return under[0] if under else None

    def all_below(self, cell: Cell) -> list[Cell]:
        """The cells under ``cell`` on the first next non-empty line that reaches into its column, the one
        overlapping it most first. More than one when the value row is shifted against its heading row (a
        photo's OCR: "Date de Facture" straddles "17022020" and its neighbour)."""
        seen = 0
        for line in self.lines[cell.line + 1 :]:
            if not line:
                continue
            seen += 1
            if seen > _BELOW_LOOKAHEAD:
                return []
            overlapping = sorted(
                ((common, c) for c in line
                 if (common := min(c.end, cell.end) - max(c.start, cell.start)) > 0
                 and (c.line, c.index) not in self.claimed),
                key=lambda pair: -pair[0])  # stable: the leftmost first on a tie, as before
            if overlapping:
                return [c for _, c in overlapping]
            best = self._right_aligned_below(cell, line)
            if best is not None:
                return [best]
            # A line that does not reach into this column (a note on the left) is stepped over.
        return []

    def _right_aligned_below(self, cell: Cell, line: list[Cell]) -> Cell | None:
        """A cell that starts just after the heading's end, when no other heading of the heading's line is
        nearer to it (a right-aligned amount under "Charges")."""
        heading_line = self.lines[cell.line]
        next_heading = heading_line[cell.index + 1].start if cell.index + 1 < len(heading_line) else None
        for c in line:
            nearer = next_heading is None or c.start - cell.end < next_heading - c.start
            if cell.end <= c.start <= cell.end + _RIGHT_ALIGNED and nearer and (c.line, c.index) not in self.claimed:
                return c
        return None

    def claim(self, cells: tuple[Cell, ...]) -> None:
        self.claimed.update((c.line, c.index) for c in cells)


# Value readers: from the text after a label, a typed value and a confidence factor ---------------

_LEAD = re.compile(r"^[\s:#=.\-]*")
_NO_PREFIX = re.compile(r"^(?:n[°º]|no\b\.?|nr\b\.?|#)\s*[:.]?\s*", re.IGNORECASE)
_NUMBER_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-_/.]*(?: [0-9][A-Za-z0-9\-_/.]*)?")
_AMOUNT_LIKE = re.compile(r"^\d+[.,]\d{2}$")
_TRAILING_TITLE = re.compile(r"\s+(?:FACTURE|INVOICE|AVOIR|CREDIT NOTE|TAX INVOICE|NOTE DE CR[EÉ]DIT"
                             r"|RECHNUNG|GUTSCHRIFT)$")
_LEGAL_FORM = re.compile(r"\b(?:sarl|sas|sasu|sa|eurl|sci|snc|scop|gie|ltd|llc|llp|inc|plc|gmbh|ag|bv|nv|srl|spa"
                         r"|sl|oy|ab|as|corp|co|kg|ohg|ug|mbh|e\.k)\b\.?")


_IBAN_LIKE = re.compile(r"^[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4})")


def _strip_lead(text: str) -> str:
    return _LEAD.sub("", text).strip()


def _read_number(text: str) -> tuple[str, float] | None:
    text = _NO_PREFIX.sub("", _strip_lead(text), count=1)
    match = _NUMBER_TOKEN.match(text)
    if not match:
        return None
    token = match.group().rstrip("./-_")
    if " " in token and any(ch.isdigit() for ch in token.split(" ")[0]):
        token = token.split(" ")[0]  # "12345 2026..." is a number then something else
    if not any(ch.isdigit() for ch in token) or len(token) > 40 or _AMOUNT_LIKE.match(token):
        return None
    if re.match(r"[.,]\d", text[match.end():]) or not token.strip("0 ") or re.match(r"\d{1,2}:\d{2}$", token):
        return None  # "1479,85": an amount cut at its comma; a time of day
    found = parse_date(token)
    if found is not None and found.end - found.start >= len(token) - 1:
        return None  # a date, not a number
    return token, 1.0


def _read_date(text: str, month_first: bool = False, sure: bool = True) -> tuple[Any, float, int] | None:
    """``sure``: False when the document's month-first reading is itself a guess (its swappable dates are
    then flagged as a day-first reading is)."""
    found = parse_date(text[:80], month_first)
    if found is None or found.start > 20:  # the date must follow its label, not sit far along the line
        return _compact_date(text)
    swappable = found.numeric is not None and found.numeric[0] != found.numeric[1] and max(found.numeric) <= 12
    unsure = found.ambiguous and not month_first or month_first and not sure and swappable
    return found.value, 0.8 if unsure else 1.0, found.end


def _compact_date(text: str) -> tuple[date, float, int] | None:
    """A date written without separators right after its label ("17022020", "20180323"): day-month-year or
    year-month-day, whichever is a real date (never both). Only under a date label: elsewhere eight digits
    are a reference."""
    match = _EIGHT_DIGITS.match(text)
    if match is None:
        return None
    digits = match.group(1)
    readings = {d for d in (make_date(int(digits[4:]), int(digits[2:4]), int(digits[:2])),
                            make_date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))) if d is not None}
    return (readings.pop(), 0.8, match.end()) if len(readings) == 1 else None


_EIGHT_DIGITS = re.compile(r"\s*[:.]?\s*(\d{8})(?!\d)")


def _is_label(text: str) -> bool:
    folded = fold(text).rstrip(" :")
    return L.is_label(folded)


def _read_text(text: str, *, name_like: bool) -> tuple[str, float] | None:
    if text.rstrip().endswith(":"):
        return None  # "FOR:", "Address:": another label, not a value
    value = _strip_lead(text).rstrip(" :").strip()
    if len(value) < 2 or sum(ch.isalpha() for ch in value) < 2 or _is_label(value):
        return None
    if name_like:
        if find_dates(value) or find_money(value):
            return None  # a company name holds no date and no amount
        if "@" in value or value.lower().startswith(("http", "www.")):
            return None
        if re.match(r"^\d", value):
            return None  # "12 rue de la Paix": an address line, not a name
        if _IBAN_LIKE.match(value) or L.DOC_TITLES.fullmatch(fold(value)) or L.NOT_A_NAME.fullmatch(fold(value)):
            return None
        # An addressee block in "key: value" form ("Factuur aan:" then "Naam: Jan de Groot"): the name only.
        value = _NAME_KEY.sub("", value, count=1) or value
    return value[:300], 1.0


_NAME_KEY = re.compile(r"^(?:naam|name|nom|nombre|nome|raison sociale|firma|firmenname|bedrijfsnaam|company"
                       r"|company name|societe|société|empresa|ragione sociale)\s*:\s*(?=\S)", re.IGNORECASE)


# Finding fields ------------------------------------------------------------------------------------


def _candidates(
    doc: _Doc, cell: Cell, rest: str, label: L.Label, joined: bool
) -> Iterator[tuple[str, tuple[Cell, ...], float]]:
    """Texts where the value of a label may be, nearest first, with the cells each uses and a confidence factor."""
    following = doc.after(cell)
    if joined:  # amounts and dates: the rest of the line, whatever the columns
        line_rest = "  ".join([rest, *(c.text for c in following)]).strip()
        if line_rest:
            yield line_rest, (cell, *following), 1.0
    else:
        if rest.strip(" :.-#"):
            yield rest, (cell,), 1.0
        if following and following[0].start - cell.end <= _MAX_GAP:
            yield following[0].text, (cell, following[0]), 1.0
    if not label.below:
        return
    if not rest.strip(" :.-#"):  # a column heading: its value is underneath
        under = doc.all_below(cell)
        if under:
            yield under[0].text, (cell, under[0]), 1.0
        for other in under[1:]:  # the value row shifted against the headings: a less sure reading
            yield other.text, (cell, other), _SHIFTED_BELOW
    elif L.starts_with_label(fold(_strip_lead(rest))):
        # Several headings run together (text without columns): the line below mixes their values.
        under = doc.below(cell)
        if under is not None:
            yield under.text, (cell, under), 0.5


def _cells_until(rest: str, used: tuple[Cell, ...], end: int) -> tuple[Cell, ...]:
    """Of a label cell and the cells after it (joined as ``_candidates`` joins them), those that reach ``end``:
    "TOTAL DUE BY 2/2/2000   125.89" gives the date to the due date and leaves the amount to the total."""
    joined = "  ".join([rest, *(c.text for c in used[1:])])
    offset = len(joined) - len(joined.lstrip())
    position = len(rest) - offset
    kept = [used[0]]
    for c in used[1:]:
        if position >= end:
            break
        kept.append(c)
        position += 2 + len(c.text)
    return tuple(kept)


def _find(
    doc: _Doc,
    group: list[L.Label],
    read: Callable[[str], tuple[Any, ...] | None],
    *,
    last: bool = False,
    joined: bool = False,
    shared_labels: bool = False,
) -> _Found | None:
    """The value of the first label of ``group`` that has one (the first or last occurrence)."""
    # Only cells that start with one of the group's labels (one alternation, compiled once per group); nothing
    # is claimed until a label gives results, and then we return.
    starts = _any_of(group).match
    cells = [cell for cell in doc.cells() if starts(cell.folded)]
    if shared_labels and doc.shared:
        cells += [c for line, index in sorted(doc.shared) if starts((c := doc.lines[line][index]).folded)]
    for label in group:
        results: list[_Found] = []
        for cell in cells:
            match = label.regex.match(cell.folded)
            if not match:
                continue
            rest = cell.text[match.end() :]
            for text, used, where in _candidates(doc, cell, rest, label, joined):
                read_value = read(text)
                if read_value is not None:
                    value, factor = read_value[0], read_value[1]
                    if len(read_value) > 2 and len(used) > 1:  # claim the cells up to the value only
                        used = _cells_until(rest, used, read_value[2])
                    results.append(_Found(value, label.confidence * factor * where, used))
                    break
        if results:
            for found in results:
                doc.claim(found.cells)
                if len(found.cells) == 1 and isinstance(found.value, date):
                    doc.shared.add((found.cells[0].line, found.cells[0].index))
            return results[-1] if last else results[0]
    return None


_groups: dict[int, tuple[list[L.Label], re.Pattern[str]]] = {}


def _any_of(group: list[L.Label]) -> re.Pattern[str]:
    """One pattern matching where any label of ``group`` matches (the groups are module-level lists)."""
    known = _groups.get(id(group))
    if known is None or known[0] is not group:
        known = (group, re.compile("|".join(f"(?:{label.regex.pattern})" for label in group)))
        if len(_groups) > 64:  # only the label lists of ``labels`` come here; a bound all the same
            _groups.clear()
        _groups[id(group)] = known
    return known[1]


def _read_money(text: str) -> tuple[Any, float] | None:
    amounts = find_money(text)
    if not amounts:
        return None
    chosen = amounts[-1]  # the amount column is the rightmost one ("TVA 20 % sur 1 000,00   200,00")
    return chosen, 1.0


def _find_money(doc: _Doc, group: list[L.Label]) -> _Found | None:
    found = _find(doc, group, _read_money, last=True, joined=True, shared_labels=True)
    if found is None:
        return None
    money = found.value
    return _Found(money.value, found.confidence, found.cells, currency=money.currency,
                  ambiguous_currency=money.ambiguous_currency)


def _doc_type(doc: _Doc) -> tuple[str, float] | None:
    """From the title at the top of the page (terms further down may mention "credit notes" in passing)."""
    credit = invoice = 0.0
    top = [line for line in doc.lines if line][:_TITLE_LINES]
    for line in top:
        for cell in line:
            f = cell.folded
            if _CREDIT_TITLE.match(f):
                credit = max(credit, 0.9)
            elif _CREDIT_WORDS.search(f):
                credit = max(credit, 0.8)
            if _INVOICE_TITLE.match(f):
                invoice = max(invoice, 0.9)
            elif _INVOICE_WORDS.search(f):
                invoice = max(invoice, 0.7)
            if _AVOIR_CAPITALS.search(cell.text):  # the title in capitals; "avoir" in a sentence is the verb
                credit = max(credit, 0.85)
    if credit:
        return "credit_note", credit  # a credit note cites the invoice it cancels: it wins
    if invoice:
        return "invoice", invoice
    if any(_BILL_WORDS.search(cell.folded) for line in top for cell in line):
        return "invoice", 0.6
    return None


def _letterhead(doc: _Doc, client: str | None) -> tuple[str, float] | None:
    """The issuer when no label names it: a name-like cell at the top of the page. Of the first few, the one
    printed most often in the document (an issuer's name recurs in its address block, footer and payment slip;
    a tagline or a slogan does not); the first one on a tie."""
    candidates = list(_letterhead_candidates(doc, client))[:_LETTERHEAD_CANDIDATES]
    if not candidates:
        return None
    counts: dict[str, int] = {}
    for line in doc.lines:
        for cell in line:
            key = cell.folded.strip(_EDGE_NOISE)  # ". GIANNINOTO ASSOCIATES": OCR's specks around a name
            counts[key] = counts.get(key, 0) + 1
    name = max(candidates, key=lambda c: counts.get(fold(c).strip(_EDGE_NOISE), 0))  # the first on a tie
    return name, 0.6 if _LEGAL_FORM.search(fold(name)) else 0.45


_LETTERHEAD_CANDIDATES = 3
# A web or mail domain's top level, then the name part before it: "my.t-mobile.com" -> "t-mobile". Found from the
# dot (a scan for "." is cheap; a pattern starting at every letter of the text is not).
_TOP_LEVEL = re.compile(r"\.(?:com|net|org|fr|de|es|it|nl|be|ch|at|eu|io|co\.uk|com\.au|ca|us|lu|pt|ie)(?![a-z0-9])",
                        re.IGNORECASE)
_DOMAIN_NAME = re.compile(r"(?<![a-z0-9-])[a-z0-9](?:[a-z0-9-]{0,40}[a-z0-9])?$", re.IGNORECASE)
_FREE_MAIL = frozenset(["gmail", "yahoo", "hotmail", "outlook", "live", "orange", "free", "gmx", "web", "icloud",
                        "aol", "laposte", "wanadoo", "protonmail", "mail"])
_NAME_PUNCTUATION = str.maketrans("", "", " -&'_*|,")  # "T-MOBILE", "SCE & G": spelled as their domain


def _named_by_domain(doc: _Doc, text: str, client: str | None) -> tuple[str, float] | None:
    """The issuer when no label names it, by its web or mail domain: a cell of its own that spells the domain's
    name ("T-MOBILE" on the payment slip of a bill that prints my.t-mobile.com; the logo itself is a picture).
    The most printed domain first. A guess from the page, as the letterhead: always flagged."""
    counts: dict[str, int] = {}
    for top in _TOP_LEVEL.finditer(text, 0, _ONLY_DATE_CHARS):
        match = _DOMAIN_NAME.search(text, max(0, top.start() - 42), top.start())
        if match is None:
            continue
        key = match.group().lower().replace("-", "")
        if len(key) >= 3 and key not in _FREE_MAIL:
            counts[key] = counts.get(key, 0) + 1
    if not counts:
        return None
    longest = max(map(len, counts)) * 2 + 4
    cells: dict[str, str] = {}
    for line in doc.lines:
        for cell in line:
            if len(cell.text) > longest or "." in cell.text or "@" in cell.text:
                continue  # a sentence, the domain itself
            if (cell.line, cell.index) in doc.claimed:
                continue
            key = cell.folded.translate(_NAME_PUNCTUATION)
            if key in counts:
                cells.setdefault(key, cell.text)
    for key in sorted(cells, key=lambda k: -counts[k]):
        read = _read_text(cells[key], name_like=True)
        if read is not None and not (client and fold(read[0]) == fold(client)):
            return read[0].strip(_EDGE_NOISE), 0.55
    return None


_EDGE_NOISE = " .,:;*-_'\"`|~"


def _letterhead_candidates(doc: _Doc, client: str | None) -> Iterator[str]:
    seen = 0
    for line in doc.lines:
        if not line:
            continue
        seen += 1
        if seen > 6:
            return
        for cell in line[:2]:
            folded = cell.folded.lstrip(_EDGE_NOISE)  # "'Statement for": a label behind an OCR speck
            if (cell.line, cell.index) in doc.claimed or L.DOC_TITLES.match(folded) or ":" in cell.text:
                continue
            if L.starts_with_label(folded):
                continue
            # Without columns the title shares the line: "Dupont Conseil SARL FACTURE".
            name = _TRAILING_TITLE.sub("", cell.text)
            # "Au bon moulin SARL - 1242 chemin de l'olive - 84340 Malaucene": the name is the first part.
            name = re.split(r"\s+[-|\u2022\u25cf\u00b7]\s+", name)[0].strip(" ()[]-—*|")
            read = _read_text(name, name_like=True)
            if read is None or len(read[0]) > 80 or read[0].upper() in CURRENCIES or len(read[0]) < 3:
                continue
            if any(ch.isdigit() for ch in read[0]) and not _LEGAL_FORM.search(fold(read[0])):
                continue  # "COD.01", a reference: names seldom hold digits
            if client and fold(read[0]) == fold(client):
                continue
            yield read[0]


def extract_fields(text: str) -> Extraction:
    """Invoice fields found in ``text`` by their labels, each with ``{"source": "generic", "confidence"}``."""
    result = Extraction()
    if not text or not text.strip():
        return result
    doc = _Doc(text)

    # Claim the cells of what is not ours ("N° TVA : FR...") before any field can misread them.
    doc.claim(tuple(c for c in doc.cells() if L.ANY_IGNORED.match(c.folded)))

    def put(name: str, found: _Found | tuple[Any, ...] | None) -> None:
        if found is None:
            return
        if isinstance(found, tuple):
            result.set(name, found[0], GENERIC, found[1], found[2] if len(found) > 2 else None)
        else:
            result.set(name, found.value, GENERIC, found.confidence, found.note)

    def read_date(text: str) -> tuple[Any, float, int] | None:
        return _read_date(text, doc.month_first, doc.month_first_sure)

    put("due_date", _find(doc, L.DUE_DATE, read_date, joined=True))
    put("issue_date", _find(doc, L.ISSUE_DATE, read_date, joined=True))
    number = _find(doc, L.DOC_NUMBER, _read_number)
    put("number", number)
    if "issue_date" not in result.fields and number is not None:
        put("issue_date", _date_beside(doc, number))
    if "due_date" not in result.fields and "issue_date" in result.fields:
        put("due_date", _due_from_terms(text, result.fields["issue_date"]))
    before_amounts = (set(doc.claimed), set(doc.shared))
    amounts = {
        "net_amount": _find_money(doc, L.NET_AMOUNT),
        "tax_amount": _find_money(doc, L.TAX_AMOUNT),
        "amount": _find_money(doc, L.AMOUNT),
    }
    if all(found is None for found in amounts.values()):
        amounts["amount"] = _unlabelled_total(doc)
    if _disagree(amounts):
        amounts.update(_adding_up(doc, before_amounts, amounts) or {})
    for name, found in amounts.items():
        put(name, found)
    put("client", _find(doc, L.CLIENT, lambda t: _read_text(t, name_like=True)) or _window_address(doc)
        or _addressee(doc))
    put("issuer", _find(doc, L.ISSUER, lambda t: _read_text(t, name_like=True)))
    put("title", _find(doc, L.TITLE, lambda t: _read_text(t, name_like=False)))
    put("doc_type", _doc_type(doc))
    if "issuer" not in result.fields and result.fields.keys() & {"doc_type", "number", "amount"}:
        # Only on what reads as an invoice: the top line of a letter is a greeting, not an issuer.
        client = result.fields.get("client")
        put("issuer", _named_by_domain(doc, text, client) or _letterhead(doc, client))

    if _BUYER_PRINTED.search(fold(text[:2000])) and result.field_info.get("client", {}).get("confidence", 1) < 0.8:
        # A vendor bill printed by the buyer: its letterhead is the client, its address block the supplier.
        issuer, client = result.fields.get("client"), result.fields.get("issuer")
        result.fields.pop("issuer", None), result.fields.pop("client", None)
        put("issuer", (issuer, 0.5) if issuer else None)
        put("client", (client, 0.45) if client else None)
    if "doc_type" not in result.fields and result.fields.keys() & {"number", "amount"}:
        put("doc_type", ("invoice", 0.5))  # what comes to an invoice inbox with a number or a total, unsure
    if "issue_date" not in result.fields and "doc_type" in result.fields:
        put("issue_date", _only_date(doc, text, result.fields.get("due_date")))
    _total_by_arithmetic(doc, result, text)
    check_totals(result)
    _currency(result, [f for f in amounts.values() if f is not None], text)
    return result


_RETURN_ADDRESS = re.compile(r"\S.*(?:\s[\u2022\u00b7|-]\s.*){2,}")


_BUYER_PRINTED = re.compile(r"\b(?:vendor bill|supplier (?:bill|invoice)|purchase invoice|facture fournisseur"
                            r"|eingangsrechnung|lieferantenrechnung|factura de proveedor|fattura passiva)\b")
_ADDRESS_LINE = re.compile(r"\d+\s*[A-Za-z]|[A-Za-z].*\d{4,}")  # "31 Hong Kong street", "Taipei 106", "75001 PARIS"
_RIGHT_COLUMN = 30  # characters from the left edge where a right-hand block starts


def _addressee(doc: _Doc) -> _Found | None:
    """The addressee block of the right-hand column near the top (window-envelope position): a name-like cell
    with an address line under it. A position, not a label: always flagged."""
    seen = 0
    for line in doc.lines:
        if not line:
            continue
        seen += 1
        if seen > 15:
            return None
        for cell in line:
            if cell.start < _RIGHT_COLUMN or (cell.line, cell.index) in doc.claimed or L.starts_with_label(cell.folded):
                continue
            read = _read_text(cell.text, name_like=True)
            if read is None or L.DOC_TITLES.match(cell.folded) or ":" in cell.text:
                continue
            if not read[0][0].isalpha() or sum(ch.isalpha() for ch in read[0]) < 4:
                continue  # OCR debris ("& Mi")
            under = doc.below(cell)
            if under is not None and under.line - cell.line <= 2 and _ADDRESS_LINE.match(under.text):
                return _Found(read[0], 0.55, (cell,))
    return None


def _window_address(doc: _Doc) -> _Found | None:
    """The addressee of a window-envelope letter: the line under the sender's one-line return address
    ("Acme Ltd. • 42 Milky Way • 1234 Faraway"), near the top of the first page."""
    for no, line in enumerate(doc.lines[:30]):
        if not line or not _RETURN_ADDRESS.fullmatch(line[0].text):
            continue
        for below in doc.lines[no + 1 : no + 3]:
            if below:
                read = _read_text(below[0].text, name_like=True)
                if read is not None and (below[0].line, below[0].index) not in doc.claimed:
                    return _Found(read[0], 0.6, (below[0],))
                return None
    return None


# Payment terms: "net 30", "payable within 30 days", "30 jours fin de mois", "zahlbar innerhalb von 14 Tagen",
# "a 30 dias", "30 giorni", "binnen 14 dagen". Group 1 (or 2) is the number of days; "fin de mois" / "end of
# month" moves the date to the end of that month.
_TERMS = re.compile(
    r"\b(?:net|netto|n)\s?(\d{1,3})\b(?!\s*%|\s?\d|[.,]\d)"
    r"|(?:within|in|under|innerhalb(?: von)?|binnen|dans les|sous|a|entro|en|dentro de)\s+(\d{1,3})\s*"
    r"(?:days?|jours?|tagen?|dias|giorni|dagen)\b"
    r"|\b(\d{1,3})\s*(?:days?|jours?|tage|dias|giorni|dagen)\s*(?:net(?:to)?|fin de mois|end of month|date de facture"
    r"|from (?:the )?invoice date|nach rechnungsdatum|ab rechnungsdatum|fecha factura)")
_END_OF_MONTH = re.compile(r"fin de mois|end of (?:the )?month|monatsende|fine mese")
_TERMS_CONTEXT = re.compile(r"\b(?:pay|paie|paye|reglement|zahl|due|terms|conditions|echeance|pago|pagamento"
                            r"|betaling|betaal|faellig|fallig)")


def _due_from_terms(text: str, issued: date) -> tuple[date, float, str] | None:
    """A due date computed from written payment terms, when none is printed: unsure by nature (flagged)."""
    for raw in text.splitlines()[:MAX_LINES]:
        line = fold(clean_spaces(raw))
        if not _TERMS_CONTEXT.search(line):
            continue
        match = _TERMS.search(line)
        if match is None:
            continue
        days = int(next(g for g in match.groups() if g))
        if not 0 < days <= 180:
            continue
        due = issued + timedelta(days=days)
        if _END_OF_MONTH.search(line):
            due = date(due.year + due.month // 12, due.month % 12 + 1, 1) - timedelta(days=1)
        return due, 0.55, f"computed from the payment terms \u201c{' '.join(raw.split())[:80]}\u201d: check it"
    return None


def _date_beside(doc: _Doc, number: _Found) -> _Found | None:
    """A date without a label on the line of the invoice number ("INVOICE NO. 98765432     1/1/2000")."""
    line = number.cells[0].line
    for cell in doc.lines[line]:
        if (cell.line, cell.index) in doc.claimed:
            continue
        found = _read_date(cell.text, doc.month_first, doc.month_first_sure)
        if found is not None:
            return _Found(found[0], 0.6, (cell,))
    return None


def _only_date(doc: _Doc, text: str, due: date | None) -> tuple[date, float] | None:
    """The issue date of an invoice whose label could not be read (OCR garbles "Date" into "Daie", a
    Chinese "开票日期" into "开标日期"): the one date the whole document holds, other than its due date. A guess
    from the absence of any other date: always flagged."""
    dates = {found.value for found in find_dates(text[:_ONLY_DATE_CHARS], doc.month_first)} - {due}
    return (dates.pop(), 0.45) if len(dates) == 1 else None


_ONLY_DATE_CHARS = 20_000  # a page or two of text; a longer document with one date is not what this is for


def _unlabelled_total(doc: _Doc) -> _Found | None:
    """A total printed without a label (a typed invoice: the lines' amounts, then their sum underlined on a
    line of its own): the last line that holds nothing but an amount with its currency sign, when it is the
    largest of at least two amounts in the document. A position, not a label: always flagged."""
    seen: list[FoundMoney] = []
    last: tuple[FoundMoney, tuple[Cell, ...]] | None = None
    for line in doc.lines:
        cells = tuple(c for c in line if (c.line, c.index) not in doc.claimed)
        text = " ".join(c.text for c in cells)  # "$   350.50": the sign set apart is still the amount's
        money = find_money(text)
        seen += money
        if len(money) == 1 and money[0].currency and _LONE_AMOUNT.fullmatch(text.strip()):
            last = money[0], cells
    if last is None or len(seen) < 2 or any(m.value > last[0].value for m in seen):
        return None
    money, cells = last
    return _Found(money.value, 0.4, cells, "no total label: the amount printed alone under the others",
                  currency=money.currency, ambiguous_currency=money.ambiguous_currency)


_LONE_AMOUNT = re.compile(r"[$€£]\s*[\d.,' ]+|[\d.,' ]+\s*[$€£]")


_AMOUNT_GROUPS = (("net_amount", L.NET_AMOUNT), ("tax_amount", L.TAX_AMOUNT), ("amount", L.AMOUNT))
_MAX_OPTIONS = 40  # labelled amounts per field tried by ``_adding_up`` (a long statement lists many)


def _disagree(amounts: dict[str, _Found | None]) -> bool:
    net, tax, total = (amounts.get(name) for name, _ in _AMOUNT_GROUPS)
    return net is not None and tax is not None and total is not None and net.value + tax.value != total.value


def _adding_up(
    doc: _Doc, before: tuple[set[tuple[int, int]], set[tuple[int, int]]], picked: dict[str, _Found | None]
) -> dict[str, _Found] | None:
    """When the net, tax and total read by their labels do not add up, the labelled amounts of the whole
    document that do: a multi-page bill prints a tax line per rate after its tax total, or a yearly summary
    ("Montant total facturé en 2020 : ...") on its last page, and the last label then names the wrong amount.
    Of the triples net + tax = total (three different labelled cells, none zero), the one keeping most of
    the amounts first read, then the surest labels, then the last printed. None when no triple adds up."""
    claimed, shared = doc.claimed, doc.shared
    doc.claimed, doc.shared = set(before[0]), set(before[1])  # the cells as they were before the amounts
    try:
        options = {name: _labelled_amounts(doc, group) for name, group in _AMOUNT_GROUPS}
    finally:
        doc.claimed, doc.shared = claimed, shared
    totals: dict[Any, list[_Found]] = {}
    for total in options["amount"]:
        totals.setdefault(total.value, []).append(total)
    best: dict[str, _Found] | None = None
    best_score: tuple[int, float] = (-1, 0.0)
    for net in options["net_amount"]:
        for tax in options["tax_amount"]:
            if not net.value or not tax.value:
                continue  # a zero tax makes any net its own total
            for total in totals.get(net.value + tax.value, []):
                triple = {"net_amount": net, "tax_amount": tax, "amount": total}
                if len({found.cells[0] for found in triple.values()}) < 3 or not total.value:
                    continue
                kept = sum(1 for name, found in triple.items()
                           if (first := picked.get(name)) is not None and first.value == found.value)
                score = (kept, round(net.confidence + tax.confidence + total.confidence, 4))
                if score >= best_score:  # the later one on a tie, as a total's label is read last
                    best, best_score = triple, score
    return best


def _labelled_amounts(doc: _Doc, group: list[L.Label]) -> list[_Found]:
    """Every amount ``group``'s labels name in the document (what ``_find_money`` would read at each), nothing
    claimed."""
    starts = _any_of(group).match
    cells = [cell for cell in doc.cells() if starts(cell.folded)]
    cells += [c for line, index in sorted(doc.shared) if starts((c := doc.lines[line][index]).folded)]
    found: list[_Found] = []
    for cell in cells:
        label, match = next((label, m) for label in group if (m := label.regex.match(cell.folded)))
        rest = cell.text[match.end() :]
        for text, used, where in _candidates(doc, cell, rest, label, True):
            read = _read_money(text)
            if read is not None:
                money = read[0]
                found.append(_Found(money.value, label.confidence * where, used, currency=money.currency,
                                    ambiguous_currency=money.ambiguous_currency))
                break
        if len(found) >= _MAX_OPTIONS:
            break
    return found


def _total_by_arithmetic(doc: _Doc, result: Extraction, text: str) -> None:
    """No total read by its label, but a net and a tax: the total is the amount printed that equals their sum."""
    net, tax = result.fields.get("net_amount"), result.fields.get("tax_amount")
    if "amount" in result.fields or net is None or tax is None:
        return
    wanted = net + tax
    if any(found.value == wanted for found in find_money(text)):
        result.set("amount", wanted, GENERIC, 0.85, None)


def check_totals(result: Extraction) -> None:
    """Total = net + tax: all three agree -> high confidence; they disagree -> low, with a note."""
    amount, net, tax = (result.fields.get(n) for n in ("amount", "net_amount", "tax_amount"))
    if amount is None or net is None or tax is None:
        return
    if net + tax == amount:
        for name in ("amount", "net_amount", "tax_amount"):
            result.adjust(name, max(result.confidence(name), 0.97))
    else:
        note = f"net {net} + tax {tax} is {net + tax}, not {amount}: check the amounts"
        for name in ("amount", "net_amount", "tax_amount"):
            result.adjust(name, min(result.confidence(name), 0.4), note)


def _currency(result: Extraction, amounts: list[_Found], text: str) -> None:
    written = {f.currency for f in amounts if f.currency}
    if len(written) == 1:
        code = written.pop()
        ambiguous = all(f.ambiguous_currency for f in amounts if f.currency)
        if ambiguous and code == "USD" and _US_ADDRESS.search(text):
            ambiguous = False  # "$" on a document with a US address: US dollars
        result.set("currency", code, GENERIC, 0.6 if ambiguous else 0.9,
                   "\"$\" alone: USD assumed" if ambiguous else None)
        return
    if written or not (amounts or result.fields.keys() & {"doc_type", "number"}):
        return  # several currencies next to the totals (let a person choose), or not an invoice at all
    codes = currency_codes_in(text)
    if len(codes) == 1:
        result.set("currency", codes[0], GENERIC, 0.6)
    elif not codes and (country := _euro_country(text)):
        result.set("currency", "EUR", GENERIC, 0.5, f"no currency written: EUR inferred from a {country} "
                                                     "VAT id, IBAN or company number; check it")


_EURO_COUNTRIES = frozenset(["AT", "BE", "CY", "DE", "EE", "EL", "ES", "FI", "FR", "GR", "HR", "IE", "IT", "LT",
                             "LU", "LV", "MT", "NL", "PT", "SI", "SK"])


def _euro_country(text: str) -> str | None:
    """The euro-area country of the first checked VAT id or IBAN in ``text`` (a SIREN says France)."""
    found = identifiers.find_identifiers(text)
    for code in [*found.vat_ids, *found.ibans]:
        if code[:2] in _EURO_COUNTRIES:
            return code[:2]
    return "FR" if found.sirens else None
