"""Extraction on real invoices (issue 13): ``realworld/`` of the shared corpus, scored as its README says.

    .venv/bin/python bench/realworld.py [--json] [--text-only] [--rounds N]

Every file goes through the worker's own path: a PDF through ``read_pdf_file`` (the e-invoice reader, then
``extract_pdf``), an image through ``extract_image``, then ``text_fields`` (what ``_finish_text`` keeps
before the tenant's client matching). Per field right/scored, the key fields (number, issue date, total,
currency) and all fields (the issue's eight: type, number, issue and due date, total, currency, issuer,
client), the misses, the confidence reliability table, the share right among fields shown without a "check"
flag, and the time per one-page text PDF against bare pypdfium2 text extraction in the same run.
``--json`` prints the same as JSON (``tests/test_realworld.py`` imports ``run`` instead).
"""

from __future__ import annotations

import argparse
import csv
import difflib
import json
import re
import statistics
import sys
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core import extraction  # noqa: E402
from core.documents.processing import read_pdf_file, text_fields  # noqa: E402
from core.einvoice import EInvoice, to_fields  # noqa: E402
from core.extraction.result import needs_check  # noqa: E402
from tests.corpus import CORPUS  # noqa: E402

REALWORLD = CORPUS / "realworld"
KEY_FIELDS = ("number", "issue_date", "amount", "currency")
# The "all fields"; net, tax and the issuer's VAT id are scored too, and reported apart.
MAIN_FIELDS = ("type", "number", "issue_date", "due_date", "amount", "currency", "issuer", "client")
EXTRA_FIELDS = ("net_amount", "tax_amount", "issuer_vat")
FIELDS = MAIN_FIELDS + EXTRA_FIELDS
PRODUCT_NAME = {"type": "doc_type"}  # truth column -> extraction field
BUCKETS = ((0.0, 0.5), (0.5, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 0.95), (0.95, 1.01))
SIMILAR = 0.85
_LEADING_LABEL = re.compile(r"^(?:#|no\.?|nr\.?|n°|nº)\s*", re.IGNORECASE)


# Scoring (the corpus README's rules) ------------------------------------------------------------------


def normalized_name(text: str) -> str:
    folded = "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]|_", " ", folded).split())


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def matches(name: str, got: Any, expected: str) -> bool:
    """``got`` (a typed extracted value) against one truth alternative."""
    if got is None or got == "":
        return False
    if name in ("amount", "net_amount", "tax_amount"):
        value, truth = (got if isinstance(got, Decimal) else _decimal(str(got))), _decimal(expected)
        return value is not None and truth is not None and value == truth
    if name in ("issue_date", "due_date"):
        return (got.isoformat() if isinstance(got, date) else str(got)) == expected
    if name in ("type", "currency"):
        return str(got).strip().upper() == expected.strip().upper()
    if name == "number":
        value = str(got).strip()
        return expected.strip() in (value, _LEADING_LABEL.sub("", value).strip())
    if name in ("issuer", "client"):
        a, b = normalized_name(str(got)), normalized_name(expected)
        return bool(a and b) and difflib.SequenceMatcher(None, a, b).ratio() >= SIMILAR
    if name == "issuer_vat":
        return re.sub(r"[\s.\-]", "", str(got)).upper() == re.sub(r"[\s.\-]", "", expected).upper()
    raise ValueError(name)


def is_right(name: str, got: Any, truth: str) -> bool:
    return any(matches(name, got, alternative.strip()) for alternative in truth.split("||"))


# Reading ----------------------------------------------------------------------------------------------


@dataclass
class Read:
    file: str
    form: str
    pages: int
    fields: dict[str, Any] = field(default_factory=dict)
    info: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None


def read_file(path: Path) -> Read:
    """One corpus file through the worker's path (no database: client matching is the tenant's, not ours)."""
    data = path.read_bytes()
    read = Read(path.name, "", 1)
    started = time.perf_counter()
    try:
        found = read_pdf_file(data, path.name) if path.suffix.lower() == ".pdf" else extraction.extract_image(data)
    except Exception as exc:  # a file the worker would fail with a reason: scored as nothing found
        read.error = f"{type(exc).__name__}: {exc}"[:200]
        return read
    read.seconds = time.perf_counter() - started
    if isinstance(found, EInvoice):
        fields = to_fields(found)
        read.info = fields.pop("field_info")
        read.fields = fields
        return read
    read.pages = found.pages
    if found.has_text:
        read.fields, read.info, ids = text_fields(found)
        vat = issuer_vat(read.fields, ids.vat_ids)
        if vat:
            read.fields["issuer_vat"] = vat
    return read


def issuer_vat(fields: dict[str, Any], vat_ids: list[str]) -> str | None:
    """The issuer's VAT id as the product would show it: the first checked VAT id (letterheads come first)."""
    return fields.get("issuer_vat") or (vat_ids[0] if vat_ids else None)


def manifest() -> list[dict[str, str]]:
    with (REALWORLD / "MANIFEST.tsv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


# Report -----------------------------------------------------------------------------------------------


@dataclass
class Score:
    right: dict[str, int] = field(default_factory=dict)
    scored: dict[str, int] = field(default_factory=dict)
    misses: list[dict[str, str]] = field(default_factory=list)
    # (field, confidence, right) for every scored field that has a value
    judged: list[tuple[str, float, bool]] = field(default_factory=list)

    def share(self, names: Iterable[str]) -> tuple[int, int]:
        names = list(names)
        return sum(self.right.get(n, 0) for n in names), sum(self.scored.get(n, 0) for n in names)


def score(rows: list[dict[str, str]], reads: dict[str, Read]) -> Score:
    result = Score()
    for row in rows:
        read = reads[row["file"]]
        for name in FIELDS:
            truth = (row.get(name) or "").strip()
            if not truth:
                continue
            product = PRODUCT_NAME.get(name, name)
            got = read.fields.get(product)
            right = is_right(name, got, truth)
            result.scored[name] = result.scored.get(name, 0) + 1
            result.right[name] = result.right.get(name, 0) + int(right)
            if got is not None and got != "":
                confidence = float(read.info.get(product, {}).get("confidence", 1.0 if name == "issuer_vat" else 0.0))
                result.judged.append((name, confidence, right))
            if not right:
                result.misses.append({"file": row["file"], "field": name, "got": "" if got is None else str(got),
                                      "expected": truth, "note": row.get("note", "")[:90]})
    return result


def reliability(judged: list[tuple[str, float, bool]]) -> list[dict[str, Any]]:
    table = []
    for low, high in BUCKETS:
        inside = [right for _name, conf, right in judged if low <= conf < high]
        table.append({"bucket": f"[{low:.2f}, {min(high, 1.0):.2f}{']' if high > 1 else ')'}",
                      "fields": len(inside), "right": sum(inside)})
    return table


def unflagged(judged: list[tuple[str, float, bool]]) -> tuple[int, int]:
    shown = [right for name, conf, right in judged if name != "issuer_vat" and not needs_check(conf)]
    return sum(shown), len(shown)


# Speed ------------------------------------------------------------------------------------------------


def speed(rows: list[dict[str, str]], rounds: int) -> dict[str, Any]:
    """Per one-page text PDF: the worker's reading (e-invoice check + ``extract_pdf``), ``extract_pdf`` alone,
    and bare pypdfium2 text (``get_text_range``), interleaved file by file and round by round so that a change
    of load on the shared machine hits all three alike; the best wall and CPU time of ``rounds`` each."""
    import pypdfium2

    def bare(data: bytes, _name: str) -> None:
        document = pypdfium2.PdfDocument(data)
        for page in document:
            textpage = page.get_textpage()
            textpage.get_text_range()
            textpage.close()
            page.close()
        document.close()

    readers = {"worker": lambda data, name: read_pdf_file(data, name),
               "extract": lambda data, _name: extraction.extract_pdf(data), "bare": bare}
    files = {r["file"]: (REALWORLD / r["file"]).read_bytes() for r in rows
             if r["form"] == "pdf-text" and r["pages"] == "1"}
    best: dict[tuple[str, str, str], float] = {}
    for round_no in range(rounds + 1):  # round 0 warms up (templates, checkers, dateparser)
        for name, data in files.items():
            for reader, func in readers.items():
                wall, cpu = time.perf_counter(), time.process_time()
                func(data, name)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                if round_no:
                    for clock, value in (("wall", wall), ("cpu", cpu)):
                        key = (name, reader, clock)
                        best[key] = min(best.get(key, value), value)
    per_file = {name: {f"{reader}_{clock}_ms": best[(name, reader, clock)] * 1000
                       for reader in readers for clock in ("wall", "cpu")} for name in files}

    def median_ratio(reader: str, clock: str) -> float:
        return statistics.median(best[(n, reader, clock)] / max(best[(n, "bare", clock)], 1e-6) for n in files)

    return {
        "files": len(files), "rounds": rounds, "per_file": per_file,
        **{f"{reader}_{clock}_ratio": median_ratio(reader, clock) for reader in ("worker", "extract")
           for clock in ("wall", "cpu")},
        **{f"{reader}_{clock}_ms": statistics.median(v[f"{reader}_{clock}_ms"] for v in per_file.values())
           for reader in readers for clock in ("wall", "cpu")},
    }


def run(text_only: bool = False) -> dict[str, Any]:
    """Read and score the corpus; ``text_only`` leaves out the files that need OCR (images and scans)."""
    extraction.warm_up()
    rows = [r for r in manifest() if not text_only or r["form"] == "pdf-text"]
    reads = {r["file"]: read_file(REALWORLD / r["file"]) for r in rows}
    result = score(rows, reads)
    per_field = {n: {"right": result.right.get(n, 0), "scored": result.scored.get(n, 0)} for n in FIELDS}
    right_unflagged, shown = unflagged(result.judged)
    text_pdfs = score([r for r in rows if r["form"] == "pdf-text"], reads)  # no OCR: what the extractor alone does
    return {
        "files": len(rows),
        "text_pdf_key": text_pdfs.share(KEY_FIELDS),
        "text_pdf_all": text_pdfs.share(MAIN_FIELDS),
        "per_field": per_field,
        "key": result.share(KEY_FIELDS),
        "all": result.share(MAIN_FIELDS),
        "all_with_extras": result.share(FIELDS),
        "unflagged": (right_unflagged, shown),
        "reliability": reliability(result.judged),
        "misses": result.misses,
        "errors": {f: r.error for f, r in reads.items() if r.error},
        "seconds": {f: round(r.seconds, 3) for f, r in reads.items()},
    }


def _pct(pair: tuple[int, int] | list[int]) -> str:
    right, total = pair
    return f"{right}/{total} = {100 * right / total:.1f} %" if total else "0/0"


def markdown(report: dict[str, Any], timing: dict[str, Any] | None) -> str:
    out = [f"{report['files']} files of `realworld/`.", "", "| field | right |", "|---|---|"]
    for name, counts in report["per_field"].items():
        out.append(f"| {name} | {_pct((counts['right'], counts['scored']))} |")
    out += [f"| **key fields** (number, issue date, total, currency) | **{_pct(report['key'])}** |",
            f"| **all fields** (the issue's eight) | **{_pct(report['all'])}** |",
            f"| all eleven (with net, tax, issuer VAT) | {_pct(report['all_with_extras'])} |",
            f"| key fields, the 21 text PDFs only (no OCR) | {_pct(report['text_pdf_key'])} |",
            f"| all fields, the 21 text PDFs only (no OCR) | {_pct(report['text_pdf_all'])} |",
            f"| **right among fields shown without a check flag** | **{_pct(report['unflagged'])}** |", "",
            "Confidence reliability (every scored field that has a value):", "",
            "| confidence | fields | right |", "|---|---:|---|"]
    for row in report["reliability"]:
        out.append(f"| {row['bucket']} | {row['fields']} | {_pct((row['right'], row['fields']))} |")
    out += ["", f"Misses ({len(report['misses'])}):", "", "| file | field | got | expected |", "|---|---|---|---|"]
    for miss in report["misses"]:
        got = miss["got"].replace("|", "\\|")[:60]
        out.append(f"| {miss['file']} | {miss['field']} | {got} | {miss['expected'].replace('|', '/')} |")
    if report["errors"]:
        out += ["", "Errors: " + ", ".join(f"{f}: {e}" for f, e in report["errors"].items())]
    slow = sorted(report["seconds"].items(), key=lambda kv: -kv[1])[:5]
    out += ["", "Slowest files (first reading, s): " + ", ".join(f"{f} {s:.2f}" for f, s in slow)]
    if timing:
        out += ["", f"Speed, {timing['files']} one-page text PDFs, best of {timing['rounds']} interleaved rounds per "
                "file, medians over the files:", "",
                "| reader | wall per file | CPU per file | wall ratio | CPU ratio |", "|---|---:|---:|---:|---:|"]
        for reader, title in (("worker", "worker's reading (e-invoice check + `extract_pdf`)"),
                              ("extract", "`extract_pdf` alone"), ("bare", "bare pypdfium2 `get_text_range`")):
            ratios = ("1.00×", "1.00×") if reader == "bare" else (
                f"{timing[reader + '_wall_ratio']:.2f}×", f"{timing[reader + '_cpu_ratio']:.2f}×")
            out.append(f"| {title} | {timing[reader + '_wall_ms']:.1f} ms | {timing[reader + '_cpu_ms']:.1f} ms "
                       f"| {ratios[0]} | {ratios[1]} |")
        out += ["", "Per file, wall ms (worker / extract_pdf / bare): " + ", ".join(
            f"{name} {v['worker_wall_ms']:.1f}/{v['extract_wall_ms']:.1f}/{v['bare_wall_ms']:.1f}"
            for name, v in timing["per_file"].items())]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    parser.add_argument("--text-only", action="store_true", help="leave out images and scans (no OCR)")
    parser.add_argument("--rounds", type=int, default=7, help="speed runs per file (0: no speed section)")
    args = parser.parse_args()
    if not REALWORLD.is_dir():
        print(f"the real-world corpus is not at {REALWORLD} (set INBOX_CORPUS)", file=sys.stderr)
        return 2
    report = run(args.text_only)
    timing = speed(manifest(), args.rounds) if args.rounds > 0 else None
    if args.json:
        print(json.dumps({**report, "speed": timing}, indent=1, default=str))
    else:
        print(markdown(report, timing))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
