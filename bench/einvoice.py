"""Accuracy and speed of ``core.einvoice.read_einvoice`` over the einvoice/ rows of the corpus manifest.

    .venv/bin/python bench/einvoice.py [--rounds N]

Prints markdown tables: per-field accuracy over the positive files (each field compared as the tests do,
amounts and the VAT breakdown as Decimals), the outcome of the negative files, and files per second
(reading the bytes from memory, PDF attachment extraction and XML parsing included).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.einvoice import EInvoice, EInvoiceError, read_einvoice  # noqa: E402
from tests.test_einvoice import COMPARED, MANIFEST, Row, field_matches, load_rows  # noqa: E402


def read(row: Row, data: bytes) -> EInvoice | EInvoiceError | None:
    try:
        return read_einvoice(data, row.path.name)
    except EInvoiceError as exc:
        return exc


def outcome_ok(row: Row, result: EInvoice | EInvoiceError | None) -> bool:
    if row.kind == "error":
        return isinstance(result, EInvoiceError)
    if row.kind == "none":
        return result is None
    return isinstance(result, EInvoice)


def accuracy(rows: list[Row], results: dict[str, EInvoice | EInvoiceError | None]) -> tuple[Counter, Counter]:
    """Per manifest column: files right, files compared (positive files only)."""
    right: Counter = Counter()
    total: Counter = Counter()
    for row in rows:
        if row.kind != "ok":
            continue
        result = results[row.file]
        for column in COMPARED:
            total[column] += 1
            right[column] += isinstance(result, EInvoice) and field_matches(result, row, column)
    return right, total


def speed(rows: list[Row], blobs: dict[str, bytes], rounds: int) -> tuple[float, float, float]:
    """Files per second over all files, over the PDFs and over the XML files."""
    timings: dict[str, float] = {"all": 0.0, "pdf": 0.0, "xml": 0.0}
    counts: Counter = Counter()
    for _ in range(rounds):
        for row in rows:
            started = time.perf_counter()
            read(row, blobs[row.file])
            elapsed = time.perf_counter() - started
            kind = "pdf" if row.file.endswith(".pdf") else "xml"
            timings["all"] += elapsed
            timings[kind] += elapsed
            counts["all"] += 1
            counts[kind] += 1
    rate = {k: counts[k] / timings[k] if timings[k] else 0.0 for k in timings}
    return rate["all"], rate["pdf"], rate["xml"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="passes over the corpus for the speed figure")
    args = parser.parse_args()
    if not MANIFEST.is_file():
        print(f"corpus manifest not found at {MANIFEST} (set INVOICE_CORPUS)", file=sys.stderr)
        return 2
    rows = load_rows()
    blobs = {row.file: row.path.read_bytes() for row in rows}
    results = {row.file: read(row, blobs[row.file]) for row in rows}
    right, total = accuracy(rows, results)
    positives = sum(row.kind == "ok" for row in rows)

    print(f"### E-invoice reader: {len(rows)} files ({positives} e-invoices, {len(rows) - positives} negatives)\n")
    print("The PDF with two invoice XMLs counts as an e-invoice: the manifest expects its factur-x.xml values.\n")
    print("| field | correct | accuracy |")
    print("| --- | ---: | ---: |")
    for column in COMPARED:
        print(f"| {column} | {right[column]}/{total[column]} | {100 * right[column] / total[column]:.1f}% |")
    all_right = sum(
        all(isinstance(results[r.file], EInvoice) and field_matches(results[r.file], r, c) for c in COMPARED)
        for r in rows
        if r.kind == "ok"
    )
    print(f"| **every field of the file** | {all_right}/{positives} | {100 * all_right / positives:.1f}% |\n")

    print("| negative file | expected | got |")
    print("| --- | --- | --- |")
    for row in rows:
        if row.kind != "ok":
            result = results[row.file]
            got = "EInvoiceError" if isinstance(result, EInvoiceError) else ("None" if result is None else "EInvoice")
            expected = "EInvoiceError" if row.kind == "error" else "None"
            print(f"| {row.path.name} | {expected} | {got}{'' if outcome_ok(row, result) else ' (WRONG)'} |")

    overall, pdfs, xmls = speed(rows, blobs, args.rounds)
    print(f"\n| speed ({args.rounds} rounds) | files/s |")
    print("| --- | ---: |")
    print(f"| all files | {overall:.0f} |\n| PDF (embedded XML) | {pdfs:.0f} |\n| standalone XML | {xmls:.0f} |")
    wrong = sum(right[c] != total[c] for c in COMPARED) + sum(
        not outcome_ok(r, results[r.file]) for r in rows if r.kind != "ok"
    )
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
