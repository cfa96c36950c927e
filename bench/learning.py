"""Learning from validations (issue 13 item 8): fields of an issuer's SECOND document, before and after the
first one was validated.

    .venv/bin/python bench/learning.py [--verbose]

Pairs (first -> second), on ``realworld/`` of the shared corpus, truth from its MANIFEST.tsv:

- real, same issuer: rwd09, rwd10, rwd11 (one plumber), every ordered pair;
- real, same layout, another issuer: rwd01-03 (Stripe-hosted), rwd24-25 (Form Recognizer template). The
  product would not use one issuer's profile for another (profiles are per issuer), so these only say how
  well a learned layout transfers; the issuer is read where the first document printed its own;
- generated, one per corpus document, in its real layout: the first document's text (its text layer, or
  Tesseract's reading of a scan or photo) with the values rewritten in place as that document prints them:
  another number (each digit + 3), dates one year later on another day, amounts x3 (net + tax = total kept),
  another client name of at most the same width. Issuer, currency and type stay (same issuer). A field
  whose value could not be located in the text (so could not be rewritten) is not scored for that pair.

"Before" is the product's reading without memory (templates, then the generic extractor); "after" applies
the profile learned from the first document and its truth (``core.extraction.memory.learn`` / ``apply``,
what the worker does through ``core.documents.issuer_profiles``). For same-issuer pairs "after" is only
counted as read with memory when the product would recognise the issuer from the second text (a VAT id or
IBAN of the first, or its name printed); otherwise the generic reading is scored. Scoring follows the
corpus README (exact type/currency/number/dates, decimal amounts, names by normalised similarity >= 0.85,
empty truth cells not scored, ``||`` alternatives accepted). ``issuer_vat`` is not an extracted field.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import re
import statistics
import sys
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.documents.issuer_profiles import confirmed  # noqa: E402
from core.extraction import extract_image, extract_pdf, extract_text_fields, memory  # noqa: E402
from core.extraction.identifiers import find_identifiers  # noqa: E402
from core.receivables.clients import normalize_name  # noqa: E402
from tests.corpus import CORPUS  # noqa: E402

REAL = CORPUS / "realworld"
UNSURE_BELOW = 0.8  # the review page's mark (dashboard/blueprints/review.py): under it a field shows "check"
FIELDS = ("doc_type", "number", "issue_date", "due_date", "amount", "net_amount", "tax_amount", "currency",
          "issuer", "client")
SAME_ISSUER = ("rwd09", "rwd10", "rwd11")
SAME_LAYOUT = (("rwd01", "rwd02", "rwd03"), ("rwd24", "rwd25"))
NUMERIC_DATE = re.compile(r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}")
FACTOR = 3  # amounts x3: integers stay integers, cents stay cents, net + tax = total still holds
CLIENTS = ("Northwind Traders", "Fabrikam Ltd", "Wayne Enterprises", "Tyrell Corporation", "Initech",
           "Umbrella Holdings", "Stark Industries", "Cyberdyne Systems", "Soylent Foods", "Acme Widgets")


# Truth and scoring (the corpus README) ----------------------------------------------------------------


def load_truth() -> dict[str, dict[str, list[Any]]]:
    rows = csv.DictReader((REAL / "MANIFEST.tsv").open(encoding="utf-8"), delimiter="\t")
    truth: dict[str, dict[str, list[Any]]] = {}
    for row in rows:
        name = row["file"].rsplit(".", 1)[0]
        fields: dict[str, list[Any]] = {}
        for f in FIELDS:
            cell = row["type" if f == "doc_type" else f].strip()
            if cell:
                fields[f] = [_typed(f, alt.strip()) for alt in cell.split("||")]
        truth[name] = fields | {"_file": [row["file"]]}
    return truth


def _typed(name: str, text: str) -> Any:
    if name.endswith("date"):
        return date.fromisoformat(text)
    if name.endswith("amount"):
        return Decimal(text)
    return text


def _norm(text: str) -> str:
    text = "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^0-9a-z\u0080-\uffff]+", " ", text).split())


def right(name: str, got: Any, wanted: list[Any]) -> bool:
    if got is None:
        return False
    for want in wanted:
        if name in ("doc_type", "currency") and str(got).upper() == str(want).upper():
            return True
        if name == "number":
            text = re.sub(r"^(?:#|no\.?|nr\.?|n°)\s*", "", str(got).strip(), flags=re.IGNORECASE)
            if str(got).strip() == want or text == want:
                return True
        if name.endswith("date") and got == want:
            return True
        if name.endswith("amount") and Decimal(got) == Decimal(want):
            return True
        similar = difflib.SequenceMatcher(None, _norm(str(got)), _norm(str(want))).ratio()
        if name in ("issuer", "client") and similar >= 0.85:
            return True
    return False


# Texts -------------------------------------------------------------------------------------------


def read_text(file: str) -> str:
    data = (REAL / file).read_bytes()
    found = extract_pdf(data) if file.endswith(".pdf") else extract_image(data)
    return found.text


# Generated second documents ------------------------------------------------------------------------


def _later(value: date, numeric: bool) -> date:
    """A year later on another day of the same month (its name, when written, stays right). A numeric date
    whose day equals its month (1/1/2000) keeps that property: it does not tell day-first from month-first."""
    if numeric and value.day == value.month:
        return date(value.year + 1, value.month % 12 + 1, value.month % 12 + 1)
    day = value.day % 28 + 1
    if day == value.month:
        day = day % 28 + 1
    return date(value.year + 1, value.month, day)


def _format_date(printed: str, old: date, new: date) -> str | None:
    numeric = re.fullmatch(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})", printed)
    if numeric:
        a, sep, b, year = numeric.groups()
        month_first = int(a) == old.month and int(b) == old.day and not (int(a) == old.day and int(b) == old.month)
        first, second = (new.month, new.day) if month_first else (new.day, new.month)
        y = str(new.year) if len(year) == 4 else f"{new.year % 100:02d}"
        return f"{first:0{len(a)}d}{sep}{second:0{len(b)}d}{sep}{y}"
    iso = re.fullmatch(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})", printed)
    if iso:
        _y, sep, m, d = iso.groups()
        return f"{new.year}{sep}{new.month:0{len(m)}d}{sep}{new.day:0{len(d)}d}"
    # A written month (the same month: only the day and the year change).
    year = re.search(rf"{old.year}", printed)
    day = re.search(rf"(?<!\d)0?{old.day}(?!\d)", printed.replace(str(old.year), "#" * 4))
    if not year or not day:
        return None
    text = printed[: year.start()] + str(new.year) + printed[year.end():]
    width = len(day.group())
    return text[: day.start()] + f"{new.day:0{width}d}" + text[day.end():]


def _format_amount(printed: str, new: Decimal) -> str:
    sign = "-" if printed.lstrip().startswith("-") else ""
    digits = printed.lstrip("- ")
    decimals = re.search(r"([.,])(\d{1,2})$", digits)
    whole = int(abs(new))
    cents = abs(new) - whole
    groups = re.search(r"\d([ .,'\u00a0\u202f])\d{3}(?:\D|$)", digits if not decimals else digits[: decimals.start()])
    text = f"{whole:,}".replace(",", groups.group(1)) if groups else str(whole)
    if decimals:
        text += decimals.group(1) + f"{int(cents * 10 ** len(decimals.group(2))):0{len(decimals.group(2))}d}"
    return sign + text


def _fit(line: str, start: int, end: int, new: str, right_aligned: bool) -> str:
    """``line`` with [start:end) replaced by ``new``, padded or spaces eaten so that what follows stays in
    place: on the left of an amount (right-aligned columns), on the right of anything else."""
    grow = len(new) - (end - start)
    if grow > 0 and right_aligned:
        room = len(line[:start]) - len(line[:start].rstrip(" "))
        eat = min(grow, max(0, room - 2))
        return line[: start - eat] + new + line[end:]
    if grow > 0:
        room = len(line[end:]) - len(line[end:].lstrip(" "))
        eat = min(grow, max(0, room - 2))
        return line[:start] + new + line[end + eat:]
    if right_aligned:
        return line[:start] + " " * (-grow) + new + line[end:]
    return line[:start] + new + " " * (-grow) + line[end:]


def generate_second(text: str, truth: dict[str, list[Any]], index: int) -> tuple[str, dict[str, list[Any]], set[str]]:
    """The text with the first document's values rewritten; the new truth; the fields actually rewritten."""
    first = {f: truth[f][0] for f in FIELDS if f in truth}
    new: dict[str, Any] = {}
    if "number" in first:
        new["number"] = "".join(str((int(c) + 3) % 10) if c.isdigit() else c for c in first["number"])
    for f in ("issue_date", "due_date"):
        if f in first:
            numeric = any(d == first[f] and NUMERIC_DATE.fullmatch(line[s:e]) for line in text.splitlines()
                          for order in ("dmy", "mdy") for s, e, d in memory.date_spans(line, order))
            new[f] = _later(first[f], numeric)
    amounts = {f: first[f] for f in ("amount", "net_amount", "tax_amount") if f in first}
    new.update({f: v * FACTOR for f, v in amounts.items()})
    if "client" in first:
        candidate = CLIENTS[index % len(CLIENTS)]
        width = len(first["client"])
        while len(candidate) > width and " " in candidate:
            candidate = candidate.rsplit(" ", 1)[0]
        new["client"] = candidate[:width].strip()
    # Where each value is printed, per line; replaced right to left so that the spans stay valid.
    lines = text.splitlines()
    written: set[str] = set()
    for no, line in enumerate(lines):
        spans: list[tuple[int, int, str, str]] = []
        for f, value in first.items():
            if f not in new:
                continue
            kind = memory.KINDS[f]
            found: list[tuple[int, int]] = []
            if kind == "date":
                for order in ("dmy", "mdy"):
                    found += [(s, e) for s, e, d in memory.date_spans(line, order) if d == value]
            else:
                found = memory.value_spans(kind, line, value)
            for s, e in found:
                printed = line[s:e]
                if kind == "date":
                    replacement = _format_date(printed, value, new[f])
                elif kind == "money":
                    replacement = _format_amount(printed, new[f] if value >= 0 else -abs(new[f]))
                elif kind == "code":
                    replacement = new[f]
                else:
                    replacement = new[f]
                if replacement is not None:
                    spans.append((s, e, replacement, f))
        taken: list[tuple[int, int]] = []
        for s, e, replacement, f in sorted(set(spans), key=lambda x: (-x[0], x[1] - x[0])):
            if any(s < te and ts < e for ts, te in taken):
                continue
            taken.append((s, e))
            line = _fit(line, s, e, replacement, memory.KINDS[f] == "money")
            written.add(f)
        lines[no] = line
    second = {f: list(v) for f, v in truth.items() if f in FIELDS}
    for f, value in new.items():
        if f in second:
            second[f] = [value] if not f.endswith("amount") else [value, -value]
    return "\n".join(lines), second, written


# Pairs ----------------------------------------------------------------------------------------------


@dataclass
class Pair:
    kind: str
    first: str
    second: str
    text1: str
    truth1: dict[str, list[Any]]
    text2: str
    truth2: dict[str, list[Any]]
    scored: set[str]
    same_issuer: bool
    results: dict[str, dict[str, bool]] = field(default_factory=dict)
    got: dict[str, Any] = field(default_factory=dict)


def recognised(text1: str, truth1: dict[str, list[Any]], text2: str) -> bool:
    """Would the worker find the first document's profile for the second (by its text alone)?"""
    ids1, ids2 = find_identifiers(text1), find_identifiers(text2)
    if set(ids1.vat_ids) & set(ids2.vat_ids) or set(ids1.ibans) & set(ids2.ibans):
        return True
    issuer = truth1.get("issuer", [""])[0]
    key = normalize_name(str(issuer))
    return len(key) >= 3 and f" {key} " in f" {normalize_name(text2)} "


def run_pair(pair: Pair) -> None:
    truth_first = {f: pair.truth1[f][0] for f in FIELDS if f in pair.truth1}
    profile = memory.learn(pair.text1, truth_first, document=pair.first)
    before, _template = extract_text_fields([pair.text2])
    after, _template = extract_text_fields([pair.text2])
    keep = {n for n, i in after.field_info.items() if "invoice2data" in str(i.get("source", ""))}
    # As the worker: a profile found by a key is used only when the page confirms it (name or labels).
    if confirmed(profile, pair.text2, "domain") or not pair.same_issuer:
        memory.apply(profile, pair.text2, after, issuer_known=pair.same_issuer, keep=keep)
    use = recognised(pair.text1, pair.truth1, pair.text2) if pair.same_issuer else True
    # Recognised by the text alone: memory applies; otherwise only a sender domain would find the profile.
    by_text = after if use else before
    for stage, result in (("before", before), ("after", by_text), ("after_mail", after)):
        pair.results[stage] = {f: right(f, result.fields.get(f), pair.truth2[f]) for f in pair.scored}
    pair.results["recognised"] = {"yes": use}
    # Calibration: the fields memory gave, shown without a "check" flag (confidence >= 0.8) or flagged.
    pair.results["memory_unflagged"] = {f: pair.results["after_mail"][f] for f in pair.scored
                                        if after.field_info.get(f, {}).get("source") == memory.MEMORY
                                        and after.confidence(f) >= UNSURE_BELOW}
    pair.results["memory_flagged"] = {f: pair.results["after_mail"][f] for f in pair.scored
                                      if after.field_info.get(f, {}).get("source") == memory.MEMORY
                                      and after.confidence(f) < UNSURE_BELOW}
    pair.got = {f: after.fields.get(f) for f in pair.scored}


def build_pairs(truth: dict[str, dict[str, list[Any]]], texts: dict[str, str]) -> list[Pair]:
    def scored(t: dict[str, list[Any]], written: set[str] | None = None) -> set[str]:
        fields = {f for f in FIELDS if f in t}
        changed = {"number", "issue_date", "due_date", "amount", "net_amount", "tax_amount", "client"}
        return fields if written is None else {f for f in fields if f not in changed or f in written}

    pairs: list[Pair] = []
    for a in SAME_ISSUER:
        for b in SAME_ISSUER:
            if a != b:
                pairs.append(Pair("real, same issuer", a, b, texts[a], truth[a], texts[b], truth[b], scored(truth[b]),
                                  True))
    for family in SAME_LAYOUT:
        for a in family:
            for b in family:
                if a != b:
                    pairs.append(Pair("real, same layout, other issuer", a, b, texts[a], truth[a], texts[b],
                                      truth[b], scored(truth[b]) - {"issuer", "client"}, False))
    for index, name in enumerate(sorted(texts)):
        text2, truth2, written = generate_second(texts[name], truth[name], index)
        pairs.append(Pair("generated, same issuer and layout", name, f"{name}'", texts[name], truth[name], text2,
                          truth2, scored(truth2, written), True))
    return pairs


def _share(count: int, n: int) -> str:
    return f"{count}/{n} = {100 * count / max(n, 1):.1f} %"


def table(pairs: list[Pair]) -> str:
    out = ["| pairs | n | fields scored | before (generic) | after: issuer recognised from the text "
           "| after: also by the sender's domain | recognised from the text |", "|---|---:|---:|---:|---:|---:|---:|"]
    kinds = list(dict.fromkeys(p.kind for p in pairs))
    for kind in [*kinds, "all same-issuer pairs"]:
        chosen = [p for p in pairs if p.kind == kind or (kind == "all same-issuer pairs" and p.same_issuer)]
        n = sum(len(p.scored) for p in chosen)
        before = sum(sum(p.results["before"].values()) for p in chosen)
        after = sum(sum(p.results["after"].values()) for p in chosen)
        mail = sum(sum(p.results["after_mail"].values()) for p in chosen)
        rec = sum(p.results["recognised"]["yes"] for p in chosen)
        out.append(f"| {kind} | {len(chosen)} | {n} | {_share(before, n)} | {_share(after, n)} | {_share(mail, n)} "
                   f"| {rec}/{len(chosen)} |")
    per_field: Counter[str] = Counter()
    per_field_after: Counter[str] = Counter()
    per_field_before: Counter[str] = Counter()
    per_field_mail: Counter[str] = Counter()
    for p in pairs:
        if not p.same_issuer:
            continue
        for f in p.scored:
            per_field[f] += 1
            per_field_before[f] += p.results["before"][f]
            per_field_after[f] += p.results["after"][f]
            per_field_mail[f] += p.results["after_mail"][f]
    out += ["", "| field (same-issuer pairs) | before | after (text) | after (text or sender) |",
            "|---|---:|---:|---:|"]
    for f in FIELDS:
        if per_field[f]:
            n = per_field[f]
            out.append(f"| {f} | {per_field_before[f]}/{n} | {per_field_after[f]}/{n} | {per_field_mail[f]}/{n} |")
    same = [p for p in pairs if p.same_issuer]
    out.append("")
    for key, what in (("memory_unflagged", "shown without a check flag"), ("memory_flagged", "flagged for a check")):
        n = sum(len(p.results[key]) for p in same)
        ok = sum(sum(p.results[key].values()) for p in same)
        out.append(f"Fields read or inferred from memory on same-issuer pairs, {what}: {_share(ok, n)} right")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verbose", action="store_true", help="print every field still wrong after learning")
    args = parser.parse_args()
    truth = load_truth()
    started = time.perf_counter()
    texts = {name: read_text(t["_file"][0]) for name, t in sorted(truth.items())}
    read_s = time.perf_counter() - started
    pairs = build_pairs(truth, texts)
    started = time.perf_counter()
    for pair in pairs:
        run_pair(pair)
    run_s = time.perf_counter() - started
    print(table(pairs))
    print(f"\n{len(texts)} documents read in {read_s:.1f} s; {len(pairs)} pairs learned and read in {run_s:.2f} s "
          f"({1000 * run_s / max(len(pairs), 1):.1f} ms a pair, both readings)")
    learn_ms, apply_ms = [], []
    for pair in pairs:  # the cost memory adds to a validation and to an extraction
        truth_first = {f: pair.truth1[f][0] for f in FIELDS if f in pair.truth1}
        started = time.perf_counter()
        profile = memory.learn(pair.text1, truth_first, document=pair.first)
        learn_ms.append(1000 * (time.perf_counter() - started))
        result, _template = extract_text_fields([pair.text2])
        started = time.perf_counter()
        memory.apply(profile, pair.text2, result, issuer_known=pair.same_issuer)
        apply_ms.append(1000 * (time.perf_counter() - started))
    print(f"memory.learn: median {statistics.median(learn_ms):.2f} ms, max {max(learn_ms):.2f} ms; "
          f"memory.apply: median {statistics.median(apply_ms):.2f} ms, max {max(apply_ms):.2f} ms")
    if args.verbose:
        for p in pairs:
            for f in sorted(p.scored):
                if not p.results["after_mail"][f]:
                    print(f"  {p.kind}: {p.first} -> {p.second} {f}: got {p.got[f]!r}, wanted {p.truth2[f]}")


if __name__ == "__main__":
    main()
