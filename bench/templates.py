"""Per-tenant extraction templates (issue #4): what 1,000 templates of one company cost.

    .venv/bin/python bench/templates.py [--templates 1000] [--documents 40] [--rounds 5]

On a fresh SQLite database (the service and the tables the application uses):

1. validating + saving a template (``create_template``), per template;
2. compiling the company's templates the first time a worker needs them (``templates_for_extraction``,
   cold), and the per-job check when nothing changed (one aggregate query, warm);
3. per document: template matching (``apply_templates``) with the shared templates only vs with the
   company's 1,000 first; and the whole ``extract_pdf`` both ways. Documents: generated invoices of every
   layout (no company template matches them: the worst case, every candidate is looked at) and invoices
   of one company template's layout (it matches).

Prints markdown for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import io
import logging
import random
import statistics
import sys
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy.orm import Session  # noqa: E402

import core.schema  # noqa: E402,F401  (every table)
from core.db import Base, make_engine  # noqa: E402
from core.documents import templates as svc  # noqa: E402
from core.extraction import extract_pdf, warm_up  # noqa: E402
from core.extraction.templated import apply_templates, load_templates  # noqa: E402
from core.extraction.text import read_pdf  # noqa: E402
from core.models import Tenant  # noqa: E402
from tests.invoicegen import LANGUAGES, LAYOUTS, make_invoice_pdf  # noqa: E402

TEMPLATE = """issuer: Fournisseur {i}
keywords:
  - "FR {key:02d} {siren}"
  - "Fournisseur {i}"
fields:
  invoice_number: Réf\\.\\s+pièce\\s*(\\S+)
  date: Établie\\s+le\\s*(\\d{{1,2}}\\.\\d{{1,2}}\\.\\d{{4}})
  amount: Somme\\s+due\\s*(\\d[\\d .,]{{0,20}}\\d)
options:
  currency: EUR
  date_formats: ["%d.%m.%Y"]
  decimal_separator: ","
"""


def siren(i: int) -> str:
    digits = f"{100000000 + i * 7919:09d}"
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}"


def layout_pdf(i: int, number: str, total: Decimal) -> bytes:
    """An invoice of company template ``i``'s layout (see tests/test_templates.make_new_layout_pdf)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=True)
    canvas.setFont("Helvetica-Bold", 13)
    canvas.drawString(50, 800, f"Fournisseur {i}")
    canvas.setFont("Helvetica", 9)
    canvas.drawString(50, 786, f"TVA intracom. FR {i % 97:02d} {siren(i)}")
    canvas.setFont("Helvetica", 10)
    canvas.drawString(330, 740, "Réf. pièce")
    canvas.drawString(430, 740, number)
    canvas.drawString(330, 726, "Établie le")
    canvas.drawString(430, 726, "07.10.2026")
    whole, cents = f"{total:.2f}".split(".")
    canvas.drawString(330, 600, "Somme due")
    canvas.drawString(430, 600, f"{int(whole):,}".replace(",", ".") + f",{cents} EUR")
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--templates", type=int, default=1000)
    parser.add_argument("--documents", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warm_up()
    rng = random.Random(4)

    folder = tempfile.mkdtemp(prefix="bench-templates-")
    engine = make_engine(f"sqlite:///{folder}/bench.db")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        tenant = Tenant(name="Bench SAS")
        session.add(tenant)
        session.flush()
        started = time.perf_counter()
        for i in range(args.templates):
            source = TEMPLATE.format(i=i, key=i % 97, siren=siren(i))
            svc.create_template(session, tenant.id, f"Fournisseur {i}", source, None)
        session.commit()
        save_each = (time.perf_counter() - started) / args.templates

        started = time.perf_counter()
        ours = svc.templates_for_extraction(session, tenant.id)
        cold = time.perf_counter() - started
        assert ours is not None and ours.own == args.templates
        checks = []
        for _ in range(50):
            started = time.perf_counter()
            assert svc.templates_for_extraction(session, tenant.id) is ours
            checks.append(time.perf_counter() - started)

        generated = [make_invoice_pdf(number=f"FA-{n}", language=rng.choice(LANGUAGES), layout=rng.choice(LAYOUTS),
                                      net=Decimal(rng.randrange(100, 99999)) / 100)
                     for n in range(args.documents)]
        matching = [layout_pdf(rng.randrange(args.templates), f"PC-{n}", Decimal(rng.randrange(100, 999999)) / 100)
                    for n in range(args.documents)]
        shared = load_templates()
        rows = []
        for label, pdfs in (("generated invoices, no company template matches", generated),
                            ("invoices of a company template's layout", matching)):
            texts = [read_pdf(pdf).best for pdf in pdfs]
            hits = sum(1 for text in texts if (m := apply_templates(text, ours)) and m.name.startswith("tenant:"))
            timings: dict[str, list[float]] = {"shared": [], "ours": [], "extract_shared": [], "extract_ours": []}
            for _ in range(args.rounds):
                for pdf, text in zip(pdfs, texts, strict=True):
                    for key, run in (("shared", lambda t=text: apply_templates(t, shared)),
                                     ("ours", lambda t=text: apply_templates(t, ours)),
                                     ("extract_shared", lambda p=pdf: extract_pdf(p, ocr=False)),
                                     ("extract_ours", lambda p=pdf: extract_pdf(p, ocr=False, templates=ours))):
                        started = time.perf_counter()
                        run()
                        timings[key].append(time.perf_counter() - started)
            rows.append((label, len(pdfs), hits, timings))

    print(f"Company templates: {args.templates}; shared templates: {len(shared)}; "
          f"{args.documents} documents per row, {args.rounds} rounds.\n")
    print(f"- validate + save one template (`create_template`, SQLite): {ms(save_each)}")
    print(f"- first compile of the company's {args.templates} templates in a worker (cold): {ms(cold)}")
    print(f"- per-job check when nothing changed (one aggregate query + cache hit): median "
          f"{ms(statistics.median(checks))}, p95 {ms(p95(checks))}\n")
    print("| documents | company template used | matching, shared only | matching, + company's | "
          "extract_pdf, shared only | extract_pdf, + company's |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, count, hits, t in rows:
        cells = [f"{ms(statistics.median(t[k]))} (p95 {ms(p95(t[k]))})"
                 for k in ("shared", "ours", "extract_shared", "extract_ours")]
        print(f"| {label} | {hits}/{count} | " + " | ".join(cells) + " |")
    print(f"\n(date of run: {date.today().isoformat()})")


if __name__ == "__main__":
    main()
