"""Accuracy and speed of splitting PDFs that hold several invoices (issue 4, ``core.extraction.split``).

    .venv/bin/python bench/split.py [--batches 50] [--scanned 5] [--singles 30] [--seed 4]

Generated with tests/invoicegen.py (fr/en/de, the four layouts, random numbers and amounts):

- ``--batches`` text batches of 1 to 5 invoices, each 1 to 3 pages long; a page after the first carries
  "<number> - page k/N" (the generator's continuation page), or, for one invoice in four, no marker at
  all (a terms-and-conditions page), which only the "no header, no new number" rule keeps in place;
- ``--scanned`` batches of 2 to 3 one-page invoices rasterised at 200 dpi (no text layer: Tesseract), with
  random issuers, and as many again from a single issuer (the issuer rule cannot help there);
- ``--singles`` single invoices of 1 to 4 pages (must stay one group: the cost of a false split).

Prints markdown (paste into docs/benchmarks.md): batches split exactly right, boundary precision and
recall, and the time per page.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reportlab.lib.pagesizes import A4  # noqa: E402
from reportlab.lib.utils import ImageReader  # noqa: E402
from reportlab.pdfgen.canvas import Canvas  # noqa: E402

from core.extraction.split import split_pdf  # noqa: E402
from tests.invoicegen import LANGUAGES, LAYOUTS, concat_pdfs, make_invoice_pdf, render_png  # noqa: E402

ISSUERS = ["Dupont Conseil SARL", "Martin & Fils SA", "Nordwind GmbH", "Blue Ocean Ltd"]
TERMS = ["Conditions générales de vente", "Article 1 - Objet. Les présentes conditions s'appliquent à toute facture.",
         "Article 2 - Paiement. Pénalités de retard : 3 fois le taux d'intérêt légal.",
         "General terms: payment within 30 days of the invoice date."]


def terms_page() -> bytes:
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=True)
    canvas.setFont("Helvetica", 9)
    for i, line in enumerate(TERMS):
        canvas.drawString(50, 800 - 14 * i, line)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def random_invoice(rng: random.Random, index: int, pages: int, issuer: str | None = None) -> bytes:
    day = date(2026, 1, 1) + timedelta(days=rng.randint(0, 330))
    net = Decimal(rng.randint(1_000, 900_000)) / 100
    return make_invoice_pdf(
        number=f"{rng.choice(['FA', 'INV', 'RE', 'F'])}-{rng.randint(2020, 2026)}-{rng.randint(1, 99999):05d}-{index}",
        issuer=issuer or rng.choice(ISSUERS),
        client=rng.choice(["Acme SAS", "Globex SARL", "Initech"]),
        issue_date=day, due_date=day + timedelta(days=30), net=net,
        tax=(net * Decimal("0.2")).quantize(Decimal("0.01")),
        language=rng.choice(LANGUAGES), layout=rng.choice(LAYOUTS), pages=pages,
        credit_note=rng.random() < 0.1,
    )


def text_batch(rng: random.Random, count: int) -> tuple[bytes, list[list[int]]]:
    pdfs, groups, start = [], [], 0
    for index in range(count):
        pages = rng.choice([1, 1, 2, 3])
        if pages > 1 and rng.random() < 0.25:  # a continuation page without any marker
            pdf = concat_pdfs([random_invoice(rng, index, 1)] + [terms_page()] * (pages - 1))
        else:
            pdf = random_invoice(rng, index, pages)
        pdfs.append(pdf)
        groups.append(list(range(start, start + pages)))
        start += pages
    return concat_pdfs(pdfs), groups


def scanned(pdf: bytes, pages: int) -> bytes:
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=True)
    width, height = A4
    for page in range(pages):
        canvas.drawImage(ImageReader(io.BytesIO(render_png(pdf, page=page, dpi=200))), 0, 0, width, height)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def boundaries(groups: list[list[int]]) -> set[int]:
    return {group[0] for group in groups[1:]}


def run(cases: list[tuple[bytes, list[list[int]]]]) -> dict[str, float]:
    exact = tp = fp = fn = pages = 0
    seconds: list[float] = []
    for pdf, expected in cases:
        started = time.perf_counter()
        found = split_pdf(pdf)
        seconds.append(time.perf_counter() - started)
        pages += found.pages
        exact += found.groups == expected
        want, got = boundaries(expected), boundaries(found.groups)
        tp, fp, fn = tp + len(want & got), fp + len(got - want), fn + len(want - got)
    return {
        "cases": len(cases), "exact": exact, "tp": tp, "fp": fp, "fn": fn, "pages": pages,
        "precision": tp / (tp + fp) if tp + fp else 1.0, "recall": tp / (tp + fn) if tp + fn else 1.0,
        "ms_per_page": 1000 * sum(seconds) / max(pages, 1), "median_ms": 1000 * statistics.median(seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--scanned", type=int, default=5)
    parser.add_argument("--singles", type=int, default=30)
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    text_cases = [text_batch(rng, rng.randint(1, 5)) for _ in range(args.batches)]
    single_cases = []
    for index in range(args.singles):
        pages = rng.randint(1, 4)
        single_cases.append((random_invoice(rng, index, pages), [list(range(pages))]))
    scan_cases, same_issuer_cases = [], []
    for _ in range(args.scanned):
        count = rng.randint(2, 3)
        pdf = concat_pdfs([random_invoice(rng, i, 1) for i in range(count)])
        scan_cases.append((scanned(pdf, count), [[i] for i in range(count)]))
        issuer = rng.choice(ISSUERS)  # a month of one supplier's invoices: the issuer tells nothing
        pdf = concat_pdfs([random_invoice(rng, i, 1, issuer) for i in range(count)])
        same_issuer_cases.append((scanned(pdf, count), [[i] for i in range(count)]))

    split_pdf(text_cases[0][0])  # warm up (imports, label tables)
    print("| set | PDFs | split exactly right | boundaries: precision | recall | pages | ms / page | median ms / PDF |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, cases in (("text batches (1-5 invoices)", text_cases), ("single invoices (1-4 pages)", single_cases),
                        ("scanned batches (OCR)", scan_cases),
                        ("scanned batches, one issuer (OCR)", same_issuer_cases)):
        if not cases:
            continue
        r = run(cases)
        print(f"| {name} | {r['cases']} | {r['exact']} / {r['cases']} | {r['precision']:.3f} ({r['fp']} false) | "
              f"{r['recall']:.3f} ({r['fn']} missed) | {r['pages']} | {r['ms_per_page']:.0f} | {r['median_ms']:.0f} |")


if __name__ == "__main__":
    main()
