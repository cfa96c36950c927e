"""Time per page of ``core.extraction.ocr.read_image`` on the real-world corpus' images and scans (issue 13).

    .venv/bin/python bench/ocr.py [--rounds 1] [--quality]

Pages: every image of ``realworld/`` (PNG/JPEG photos, screenshots, renders) and every page of its scanned
PDFs (``form`` = pdf-scan in MANIFEST.tsv), rendered at 300 dpi as extraction renders them. Each page is
read as extraction reads it (grayscale, resized, straightened, turned by OSD when it reads poorly) with one
Tesseract thread. Reported per page: wall time (the machine is shared: see the load average printed), and
the CPU time of Tesseract plus this process (what the page costs on an idle core), the words read, their
mean confidence, the skew / rotation applied and the language model kept. Then the median and the maximum per page.

``--quality`` prints, for every PDF of the shared corpora that has a text layer, the share of word-like
tokens of that layer (``core.extraction.textquality``) and whether its pages are scans.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.extraction.ocr import OcrPage, open_image, read_image, read_page, scanned_pages  # noqa: E402
from core.extraction.text import open_pdf, read_pdf  # noqa: E402
from tests.corpus import CORPUS  # noqa: E402

REALWORLD = CORPUS / "realworld"


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(read: object) -> tuple[OcrPage, float, float]:
    wall, cpu = time.perf_counter(), _cpu()
    page = read()  # type: ignore[operator]
    return page, time.perf_counter() - wall, _cpu() - cpu


def pages() -> list[tuple[str, object]]:
    """(label, a callable that reads the page) for every image and scanned PDF page of the corpus."""
    with (REALWORLD / "MANIFEST.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    found: list[tuple[str, object]] = []
    for row in rows:
        path = REALWORLD / row["file"]
        if row["form"] == "image":
            found.append((row["file"], lambda p=path: read_image(open_image(p.read_bytes()))))
        elif row["form"] == "pdf-scan":
            for index in range(int(row["pages"])):
                found.append((f"{row['file']} p{index + 1}", lambda p=path, i=index: _read_pdf_page(p, i)))
    return found


def _read_pdf_page(path: Path, index: int) -> OcrPage:
    document = open_pdf(path.read_bytes())
    try:
        page = document[index]
        try:
            return read_page(page)
        finally:
            page.close()
    finally:
        document.close()


def timing(rounds: int) -> None:
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| page | wall s | CPU s | words | mean word confidence | skew ° | turned ° | language |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    walls: list[float] = []
    cpus: list[float] = []
    for label, read in pages():
        best: tuple[OcrPage, float, float] | None = None
        for _ in range(rounds):
            result = _timed(read)
            if best is None or result[1] < best[1]:
                best = result
        assert best is not None
        page, wall, cpu = best
        walls.append(wall)
        cpus.append(cpu)
        print(f"| {label} | {wall:.2f} | {cpu:.2f} | {len(page.words)} | {page.confidence:.2f} | {page.skew:g} "
              f"| {page.rotated} | {page.language} |")
    print(f"\n{len(walls)} pages: wall median {statistics.median(walls):.2f} s, max {max(walls):.2f} s; "
          f"CPU median {statistics.median(cpus):.2f} s, max {max(cpus):.2f} s")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def quality() -> None:
    from core.extraction.textquality import word_like_share

    print("| file | word-like share of the text layer | scanned pages |")
    print("|---|---:|---:|")
    rows = []
    for path in sorted(CORPUS.rglob("*.pdf")):
        try:
            pdf = read_pdf(path.read_bytes())
        except Exception:  # damaged and encrypted samples: nothing to measure
            continue
        if not pdf.has_text:
            continue
        document = open_pdf(path.read_bytes())
        try:
            scans = scanned_pages(document)
        finally:
            document.close()
        share = word_like_share(pdf.text)
        rows.append((share if share is not None else 2.0, path.relative_to(CORPUS), scans))
    for share, name, scans in sorted(rows):
        print(f"| {name} | {'-' if share > 1 else f'{share:.2f}'} | {scans} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="reads per page, the fastest kept")
    parser.add_argument("--quality", action="store_true", help="word-like shares of the corpora's text layers")
    args = parser.parse_args()
    if args.quality:
        quality()
    else:
        timing(args.rounds)


if __name__ == "__main__":
    main()
