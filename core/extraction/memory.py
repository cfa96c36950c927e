"""Learning an issuer's layout from validated documents, and reading its next document with it.

Pure functions over text (the layout text the extractor reads, see ``core.extraction.text``): no database.

``learn`` takes a document's text and the fields a person validated, finds where each value is printed
and remembers how to get there again: the label before it on its line ("Invoice No:  #INV03051"), the
heading above it ("BILL TO" / "Christopher Rodriguez"), the label it shares a cell with ("Invoice For:
Contoso"), or only its place on the page. It also keeps the issuer's usual currency, payment terms (days
from issue to due date), usual client, the order of its numeric dates (3/5/2018: March or May?) and what
the person had to correct. ``apply`` reads a new document of the same issuer at those places FIRST, with
the value readers of ``core.extraction.values``; what it finds replaces the generic reading (source
``memory``). A profile is a small JSON-ready dict whose size is bounded whatever the documents hold.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from core.extraction import labels as L
from core.extraction.result import Extraction
from core.extraction.values import clean_spaces, find_dates, fold, parse_number

MEMORY = "memory"
VERSION = 1
MAX_LINES = 3000  # lines of a document examined (the first pages hold every field)
MAX_ANCHORS = 3  # places remembered per field
MAX_LABEL = 80  # characters of a label kept
MAX_DOCUMENTS = 20  # documents a profile remembers having learned from (idempotence)
MAX_CORRECTIONS = 20  # remembered "read X, the person wrote Y" per field
MAX_ABOVE = 4  # non-empty lines looked at above a value for its heading

# How each field's value is found in a cell and read back.
KINDS = {
    "number": "code",
    "issue_date": "date",
    "due_date": "date",
    "amount": "money",
    "net_amount": "money",
    "tax_amount": "money",
    "client": "name",
    "issuer": "name",
    "title": "name",
}
# The generic extractor's labels of each field: a remembered label that is also one of them is preferred,
# one of another field's is avoided (19.00 printed as "Subtotal", "Total" and "Amount due").
_LEXICON: dict[str, list[str]] = {
    "number": ["DOC_NUMBER"],
    "issue_date": ["ISSUE_DATE"],
    "due_date": ["DUE_DATE"],
    "amount": ["AMOUNT"],
    "net_amount": ["NET_AMOUNT"],
    "tax_amount": ["TAX_AMOUNT"],
    "client": ["CLIENT"],
    "issuer": ["ISSUER"],
    "title": ["TITLE"],
}

_CELL = re.compile(r"\S+(?: \S+)*")
_DIGIT = re.compile(r"\d")
# Amounts as printed, with or without decimals or thousands groups ("1436", "1,536.52", "1 241,03").
_AMOUNT = re.compile(r"(?<![\w.,])(-\s?)?(\d{1,3}(?:[ .,'\u00a0\u202f]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?)"
                     r"(?![\d]|[.,]\d)")
_NUMERIC_DATE = re.compile(r"(?<![\d/.-])(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?![\d/.-]?\d)")
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-_/.]*")
_NAME_JUNK = re.compile(r"^[\s:#=.\-]+|[\s:]+$")


# The page as cells ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    line: int  # index among the non-empty lines
    index: int  # index in its line
    start: int
    end: int
    text: str
    key: str  # folded, digits as "#": a label compared across documents


def label_key(text: str) -> str:
    return _DIGIT.sub("#", fold(text))[:MAX_LABEL]


def _bare(key: str) -> str:
    return key.strip(" :.-#=")


class Page:
    """The non-empty lines of a text, each cut into cells (runs separated by two spaces or more)."""

    def __init__(self, text: str) -> None:
        self.lines: list[list[Cell]] = []
        for raw in text.splitlines()[:MAX_LINES]:
            line = clean_spaces(raw)
            cells = [Cell(len(self.lines), i, m.start(), m.end(), m.group(), label_key(m.group()))
                     for i, m in enumerate(_CELL.finditer(line))]
            if cells:
                self.lines.append(cells)
        self.by_label: dict[str, list[Cell]] = {}
        for cell in self.cells():
            self.by_label.setdefault(_bare(cell.key), []).append(cell)

    def cells(self) -> Iterator[Cell]:
        for line in self.lines:
            yield from line

    def labelled(self, label: str) -> list[Cell]:
        return self.by_label.get(label, [])

    def starting_with(self, prefix: str) -> list[Cell]:
        return [cell for cell in self.cells() if cell.key.startswith(prefix)]


def _has_letters(text: str) -> bool:
    return sum(ch.isalpha() for ch in text) >= 2


# Values in a cell ----------------------------------------------------------------------------------


def amount_spans(text: str) -> list[tuple[int, int, Decimal, bool]]:
    """Every amount-like number in ``text``: (start, end, value, bare), bare = printed without decimals."""
    found = []
    for m in _AMOUNT.finditer(text):
        num = m.group(2)
        if re.fullmatch(r"\d{1,3}(?:[ \u00a0\u202f]\d{3})+", num):
            num = num.replace(" ", "").replace("\u00a0", "").replace("\u202f", "")
        value = parse_number(num)
        if value is None:
            continue
        if m.group(1):
            value = -value
        found.append((m.start(), m.end(), value, re.search(r"[.,]\d{1,2}$", m.group(2)) is None))
    return found


def _numeric_dates(text: str) -> Iterator[tuple[int, int, date | None, date | None]]:
    """Numeric dates: (start, end, read day first, read month first)."""
    for m in _NUMERIC_DATE.finditer(text):
        first, second, year = int(m[1]), int(m[3]), int(m[4])
        yield m.start(), m.end(), _date(year, second, first), _date(year, first, second)


def _date(year: int, month: int, day: int) -> date | None:
    year = year + 2000 if year < 100 else year
    try:
        return date(year, month, day) if 1950 <= year <= 2100 else None
    except ValueError:
        return None


def date_spans(text: str, order: str | None) -> list[tuple[int, int, date]]:
    """Dates in ``text``; numeric ones read in the issuer's ``order`` ("dmy" | "mdy") when it is known."""
    spans: list[tuple[int, int, date]] = []
    for start, end, dmy, mdy in _numeric_dates(text):
        chosen = mdy if order == "mdy" else dmy if order == "dmy" else (dmy or mdy)
        chosen = chosen or dmy or mdy
        if chosen is not None:
            spans.append((start, end, chosen))
    for found in find_dates(text):  # written months, ISO dates
        if not any(s < found.end and found.start < e for s, e, _ in spans):
            spans.append((found.start, found.end, found.value))
    return sorted(spans)


def _code_spans(text: str, value: str) -> list[tuple[int, int]]:
    wanted = fold(value.strip())
    if not wanted:
        return []
    folded = fold(text)
    spans = []
    for m in re.finditer(re.escape(wanted), folded):
        before = folded[m.start() - 1] if m.start() else " "
        after = folded[m.end()] if m.end() < len(folded) else " "
        if not before.isalnum() and not after.isalnum():
            spans.append((m.start(), m.end()))
    return spans


def _name_key(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z\u0080-\uffff]+", " ", fold(text)).split())


def _name_spans(text: str, value: str) -> list[tuple[int, int]]:
    wanted = fold(" ".join(value.split()))
    if len(wanted) < 2:
        return []
    folded = fold(text)
    at = folded.find(wanted)
    if at >= 0:
        return [(at, at + len(wanted))]
    if _name_key(text) and _name_key(text) == _name_key(value):
        return [(0, len(text))]
    return []


def value_spans(kind: str, text: str, value: Any, order: str | None = None) -> list[tuple[int, int]]:
    """Where ``value`` is printed in ``text`` (one cell)."""
    if kind == "date":
        return [(s, e) for s, e, found in date_spans(text, order) if found == value]
    if kind == "money":
        wanted = abs(Decimal(value))
        return [(s, e) for s, e, found, _bare_ in amount_spans(text) if abs(found) == wanted]
    if kind == "code":
        return _code_spans(text, str(value))
    return _name_spans(text, str(value))


def read_value(kind: str, text: str, anchor: dict[str, Any], order: str | None) -> Any:
    """The value of ``kind`` at the start of ``text`` (what follows a remembered label), or None."""
    text = text.strip()
    if not text:
        return None
    if kind == "date":
        dates = date_spans(text[:80], order)
        return dates[0][2] if dates and dates[0][0] <= 20 else None
    if kind == "money":
        amounts = [a for a in amount_spans(text) if anchor.get("bare") or not a[3]]
        if not amounts:
            return None
        pick = int(anchor.get("pick", -1))
        return amounts[pick][2] if -len(amounts) <= pick < len(amounts) else amounts[-1][2]
    if kind == "code":
        offset = int(anchor.get("offset", 0))
        if 0 < offset < len(text) and (at := _CODE.match(text, offset)) and any(ch.isdigit() for ch in at.group()):
            return at.group().rstrip("./-_")[:60]
        for match in _CODE.finditer(text[:80]):  # "#INV03051", "l . 99999999" (an OCR speck before it)
            if match.start() > 6:
                break
            token = match.group().rstrip("./-_")
            if any(ch.isdigit() for ch in token) and len(token) <= 60:
                return token
        return None
    prefix = anchor.get("prefix") or ""
    if prefix and anchor.get("rel") != "inline" and label_key(text).startswith(prefix):
        text = text[len(prefix):]
    name = _NAME_JUNK.sub("", text)
    suffix = anchor.get("suffix") or ""
    if suffix and label_key(name).endswith(suffix):
        name = name[: len(name) - len(suffix)].strip()
    if not _has_letters(name) or len(name) > 300:
        return None
    return name


# Learning -----------------------------------------------------------------------------------------


def _lexicon_score(field: str, label: str) -> float:
    """+2 for one of the field's own labels, -1 for another field's."""
    if not label:
        return 0.0
    score = 0.0
    for other, groups in _LEXICON.items():
        for group_name in groups:
            group = getattr(L, group_name, None) or []
            if any(lab.regex.match(label) for lab in group):
                if other == field:
                    score += 2.0
                elif KINDS.get(other) == KINDS.get(field):
                    score -= 1.0
    return score


def _anchors_at(page: Page, cell: Cell, start: int, end: int, field: str,
                avoid: tuple[str, ...] = ()) -> list[tuple[float, dict[str, Any]]]:
    """Ways back to the value at ``cell.text[start:end]``, each with a score (higher: more dependable).

    ``avoid``: folded values that change from one document to the next (the client's name): a cell holding
    one is no label."""

    def stable(c: Cell) -> bool:
        return _has_letters(c.text) and bool(_bare(c.key)) and not any(v in fold(c.text) for v in avoid)

    kind = KINDS[field]
    found: list[tuple[float, dict[str, Any]]] = []
    base: dict[str, Any] = {}
    if kind == "money":
        amounts = amount_spans(cell.text[start:])
        base["bare"] = bool(amounts and amounts[0][3])
        # Which amount of the text after the label it is, counted from the end (the column is rightmost).
        after_label = amount_spans(cell.text)
        index = next((i for i, a in enumerate(after_label) if a[0] <= start < a[1] or a[0] == start), None)
        base["pick"] = (index - len(after_label)) if index is not None else -1
    if kind == "code" and start and not _has_letters(cell.text[:start]):
        base["offset"] = start  # "#55: 07007198": the number is not the first token of its cell
    if kind == "name" and end < len(cell.text):
        base["suffix"] = label_key(cell.text[end:].strip())
    prefix = cell.text[:start]
    if _has_letters(prefix):  # "Invoice For: Contoso": the label shares the value's cell
        key = label_key(prefix)
        same = page.starting_with(key)
        nth = same.index(cell) if cell in same else 0
        score = 3.0 + _lexicon_score(field, fold(prefix).strip(" :#"))
        found.append((score + 1.0, {**base, "rel": "inline", "label": key, "nth": nth}))
        if kind != "name":
            return found
        base = {**base, "prefix": key}  # read through another anchor, the cell still starts with the label
    line = page.lines[cell.line]
    if not _has_letters(prefix) or kind == "name":  # "#INV03051", "$1,536.52": the label is further left
        for left in reversed(line[: cell.index]):  # the nearest cell on its left that reads as a label
            if stable(left):
                label = _bare(left.key)
                same = page.labelled(label)
                distance = cell.index - left.index
                score = 3.0 - 0.3 * (distance - 1) + _lexicon_score(field, fold(left.text).strip(" :#"))
                score += 0.5 if len(same) == 1 else 0.0
                found.append((score, {**base, "rel": "right", "label": label, "nth": same.index(left),
                                      "k": distance}))
                break
        for up in range(1, MAX_ABOVE + 1):  # the heading above it, in its column
            if cell.line - up < 0:
                break
            near = [c for c in page.lines[cell.line - up] if c.start - 12 <= cell.end and cell.start <= c.end + 12]
            if not near:
                continue
            head = min(near, key=lambda c: (c.end < cell.start or c.start > cell.end, abs(c.start - cell.start)))
            if not stable(head):
                continue  # a value of the same column (a table's earlier row): its heading is higher
            label = _bare(head.key)
            same = page.labelled(label)
            score = 2.2 - 0.4 * (up - 1) + _lexicon_score(field, fold(head.text).strip(" :#"))
            score += 0.3 if len(same) == 1 else 0.0
            found.append((score, {**base, "rel": "below", "label": label, "nth": same.index(head), "d": up,
                                  "col": cell.start - head.start}))
            break
    if kind == "name":
        found.append((0.5, {**base, "rel": "at", "line": cell.line, "col": cell.start}))
    return found


def _date_order(text: str, value: date) -> str | None:
    for _s, _e, dmy, mdy in _numeric_dates(text):
        if dmy == value and mdy != value:
            return "dmy"
        if mdy == value and dmy != value:
            return "mdy"
    return None


def _anchors_for(page: Page, field: str, value: Any, order: str | None,
                 avoid: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    kind = KINDS[field]
    scored: list[tuple[float, dict[str, Any]]] = []
    for cell in page.cells():
        for start, end in value_spans(kind, cell.text, value, order):
            scored.extend(_anchors_at(page, cell, start, end, field, avoid))
    scored.sort(key=lambda pair: -pair[0])
    anchors: list[dict[str, Any]] = []
    for score, anchor in scored:
        if anchor not in anchors:
            anchors.append({**anchor, "score": round(score, 2)})
        if len(anchors) >= MAX_ANCHORS:
            break
    return anchors


def _same_place(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("rel", "label", "k", "d", "line")
    return all(a.get(k) == b.get(k) for k in keys)


def _as_text(value: Any) -> str:
    return "" if value is None else str(value)


def learn(text: str, truth: dict[str, Any], extracted: dict[str, Any] | None = None,
          previous: dict[str, Any] | None = None, document: str | None = None) -> dict[str, Any]:
    """The profile ``previous`` updated with one validated document (``truth``: typed field values).

    The most recent document wins where it shows a field; what it does not show is kept from before.
    Learning twice from the same ``document`` gives the same profile.
    """
    profile: dict[str, Any] = dict(previous or {})
    profile["version"] = VERSION
    documents = list(profile.get("documents", []))
    repeat = document is not None and document in documents
    page = Page(text or "")
    order = profile.get("date_order")
    for name in ("issue_date", "due_date"):
        if isinstance(truth.get(name), date):
            order = _date_order(text or "", truth[name]) or order
    profile["date_order"] = order

    fields = {k: dict(v) for k, v in (profile.get("fields") or {}).items()}
    avoid = tuple(fold(str(truth[n])) for n in ("client", "title") if truth.get(n) and len(str(truth[n])) >= 3)
    for name, kind in KINDS.items():
        value = truth.get(name)
        if value in (None, ""):
            continue
        anchors = _anchors_for(page, name, value, order, avoid if kind != "name" else ())
        old = fields.get(name, {})
        # "seen": how many validations in a row found the field at the same place (the confidence grows).
        seen = int(old.get("seen", 0))
        old_first = (old.get("anchors") or [None])[0]
        if anchors and old_first and _same_place(anchors[0], old_first):
            seen = seen if repeat else seen + 1
        elif anchors and not repeat:
            seen = 1  # a new place: the most recent document wins
        entry = {"anchors": anchors or old.get("anchors", []), "seen": max(seen, 1) if anchors else seen}
        corrections = dict(old.get("corrections", {}))
        wrong = (extracted or {}).get(name)
        if wrong not in (None, "") and _as_text(wrong) != _as_text(value) and kind == "name":
            corrections[fold(_as_text(wrong))[:MAX_LABEL]] = _as_text(value)[:300]
            while len(corrections) > MAX_CORRECTIONS:
                corrections.pop(next(iter(corrections)))
        if corrections:
            entry["corrections"] = corrections
        fields[name] = entry
    profile["fields"] = fields

    if truth.get("issuer"):
        profile["issuer"] = str(truth["issuer"])[:300]
    if truth.get("currency"):
        profile["currency"] = str(truth["currency"])
    if truth.get("client"):
        profile["client"] = str(truth["client"])[:300]
    if truth.get("doc_type"):
        profile["doc_type"] = str(truth["doc_type"])
    issued, due = truth.get("issue_date"), truth.get("due_date")
    if isinstance(issued, date) and isinstance(due, date) and 0 <= (due - issued).days <= 366:
        profile["terms_days"] = (due - issued).days
    if document is not None and not repeat:
        documents.append(document)
    profile["documents"] = documents[-MAX_DOCUMENTS:]
    return profile


# Reading with a profile ------------------------------------------------------------------------------


def _target(page: Page, anchor: dict[str, Any]) -> str | None:
    """The text where a remembered anchor says the value is, in this page; None if the anchor is absent."""
    rel = anchor.get("rel")
    if rel == "at":
        line_no = int(anchor.get("line", -1))
        if not 0 <= line_no < len(page.lines):
            return None
        col = int(anchor.get("col", 0))
        cell = min(page.lines[line_no], key=lambda c: abs(c.start - col))
        return cell.text if abs(cell.start - col) <= 8 else None
    label = str(anchor.get("label", ""))
    if not label:
        return None
    nth = int(anchor.get("nth", 0))
    if rel == "inline":
        cells = page.starting_with(label)
        if not cells:
            return None
        cell = cells[nth] if nth < len(cells) else cells[0]
        return cell.text[len(label):]
    cells = page.labelled(label)
    if not cells:
        return None
    head = cells[nth] if nth < len(cells) else cells[-1]
    if rel == "right":
        line = page.lines[head.line]
        at = head.index + int(anchor.get("k", 1))
        return line[at].text if at < len(line) else None
    if rel == "below":
        line_no = head.line + int(anchor.get("d", 1))
        if line_no >= len(page.lines):
            return None
        expected = head.start + int(anchor.get("col", 0))
        cell = min(page.lines[line_no], key=lambda c: min(abs(c.start - expected), abs(c.end - expected)))
        near = min(abs(cell.start - expected), abs(cell.end - expected))
        return cell.text if near <= 12 or (cell.start <= expected <= cell.end) else None
    return None


def agreement(profile: dict[str, Any], text: str) -> float | None:
    """The share of the profile's labels (each field's first) found in ``text``: 1.0 for its usual layout,
    near 0 for another issuer's; None when the profile has no label (an unreadable first scan). Recognition
    keys can mislead (the tenant's own VAT number printed on every supplier's invoice, a domain that forwards
    for several issuers); the page itself confirms."""
    page = Page(text or "")
    labels = []
    for entry in (profile.get("fields") or {}).values():
        first = next((a for a in entry.get("anchors", []) if a.get("rel") != "at" and a.get("label")), None)
        if first is not None:
            labels.append(first)
    if not labels:
        return None
    found = sum(bool(page.starting_with(a["label"]) if a["rel"] == "inline" else page.labelled(a["label"]))
                for a in labels)
    return found / len(labels)


def issuer_printed(profile: dict[str, Any], text: str) -> bool:
    name = profile.get("issuer")
    return bool(name) and bool(_name_spans(text, str(name)))


def _confidence(anchor: dict[str, Any], seen: int) -> float:
    """Found where this issuer puts it: high, higher with each validation that confirmed the place."""
    if anchor.get("rel") == "at":
        return 0.7  # only its place on the page, no label: a person is asked to check it
    score = float(anchor.get("score", 0.0))
    base = 0.9 if score >= 2.5 else 0.85
    return min(0.98, base + 0.03 * max(0, seen - 1))


def apply(profile: dict[str, Any], text: str, result: Extraction, *, issuer_known: bool = True,
          keep: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """Read ``text`` with ``profile`` and put what it finds into ``result`` (source ``memory``).

    ``keep``: fields a template gave (they win). ``issuer_known``: the profile was chosen because this
    document carries the issuer's identifiers, so its name is the issuer. Returns the fields set.
    """
    page = Page(text or "")
    order = profile.get("date_order")
    changed: list[str] = []
    for name, entry in (profile.get("fields") or {}).items():
        kind = KINDS.get(name)
        if kind is None or name in keep or (name == "issuer" and issuer_known):
            continue
        seen = int(entry.get("seen", 1))
        for anchor in entry.get("anchors", [])[:MAX_ANCHORS]:
            where = _target(page, anchor)
            value = read_value(kind, where, anchor, order) if where is not None else None
            if value is None:
                continue
            if kind == "money" and result.fields.get(name) is not None and abs(value) == abs(result.fields[name]):
                value = result.fields[name]  # keep the generic reading's sign (a credit note's)
            result.set(name, value, MEMORY, _confidence(anchor, seen),
                       "found where this issuer always prints it")
            changed.append(name)
            break
        else:
            wrong = result.fields.get(name)
            fixed = (entry.get("corrections") or {}).get(fold(_as_text(wrong))[:MAX_LABEL]) if wrong else None
            if fixed and name not in keep:
                result.set(name, fixed, MEMORY, 0.75, "corrected as a person corrected it before")
                changed.append(name)
    changed += _infer(profile, text, result, issuer_known=issuer_known, keep=keep)
    return changed


INFERRED = 0.75  # below the review page's 0.8 mark: a person is asked to check what was not read


def _inferred(result: Extraction, name: str, value: Any, confidence: float, note: str) -> None:
    result.set(name, value, MEMORY, confidence, note)
    result.field_info[name]["inferred"] = True


def _infer(profile: dict[str, Any], text: str, result: Extraction, *, issuer_known: bool,
           keep: frozenset[str] | set[str]) -> list[str]:
    """What the text does not give, from what this issuer usually does (flagged as inferred)."""
    changed: list[str] = []
    name = profile.get("issuer")
    if issuer_known and name and "issuer" not in keep:
        if _name_spans(text, name):
            result.set("issuer", name, MEMORY, 0.95, "recognised: this issuer's identifiers and name")
        else:
            _inferred(result, "issuer", name, INFERRED, "inferred: the issuer recognised by its identifiers")
        changed.append("issuer")
    if not issuer_known:
        return changed  # a layout shared with another issuer says nothing of its currency or clients
    currency = profile.get("currency")
    if currency and "currency" not in keep and result.confidence("currency") < 0.9:
        if result.fields.get("currency") == currency:  # "$" alone, and this issuer bills in USD
            result.set("currency", currency, MEMORY, 0.9, "the symbol printed, and this issuer's usual currency")
        else:
            _inferred(result, "currency", currency, INFERRED, "inferred: this issuer's usual currency")
        changed.append("currency")
    client = profile.get("client")
    if client and "client" not in result.fields:
        _inferred(result, "client", client, 0.6, "inferred: this issuer's usual client")
        changed.append("client")
    terms = profile.get("terms_days")
    issued = result.fields.get("issue_date")
    if terms is not None and "due_date" not in result.fields and isinstance(issued, date):
        _inferred(result, "due_date", issued + timedelta(days=int(terms)), 0.6,
                  f"computed: this issuer's usual terms ({int(terms)} days)")
        changed.append("due_date")
    if profile.get("doc_type") and "doc_type" not in result.fields:
        _inferred(result, "doc_type", profile["doc_type"], INFERRED, "inferred: this issuer's usual document type")
        changed.append("doc_type")
    return changed


__all__ = ["KINDS", "MEMORY", "Page", "agreement", "amount_spans", "apply", "date_spans", "issuer_printed", "label_key",
           "learn", "value_spans"]
