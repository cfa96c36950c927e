"""Splitting never cuts an invoice (issue 13, item 9): the corpus' real multi-page invoices stay one document,
page-continuity signals keep a multi-page invoice whole, and batches that must be split still are.

Real components: the corpus PDFs, pdftotext, pypdf to put real invoices together into a batch.
"""

from __future__ import annotations

import csv

import pytest

from core.extraction.split import detect, page_info, split_pdf
from tests.corpus import CORPUS, needs
from tests.invoicegen import concat_pdfs

REALWORLD = CORPUS / "realworld"


def multi_page_files() -> list[str]:
    if not (REALWORLD / "MANIFEST.tsv").exists():
        return []
    with (REALWORLD / "MANIFEST.tsv").open(encoding="utf-8") as handle:
        return [row["file"] for row in csv.DictReader(handle, delimiter="\t")
                if row["file"].endswith(".pdf") and int(row["pages"]) > 1]


@needs(REALWORLD)
def test_corpus_has_the_multi_page_invoices():
    assert {"rwd04.pdf", "rwd05.pdf", "rwd29.pdf"} <= set(multi_page_files())


@needs(REALWORLD)
@pytest.mark.parametrize("name", multi_page_files())
def test_real_multi_page_invoice_is_one_document(name: str):
    found = split_pdf((REALWORLD / name).read_bytes())
    assert found.groups == [list(range(found.pages))], found.boundaries
    assert found.pages > 1


@needs(REALWORLD)
def test_three_copies_of_one_invoice_are_one_document_but_other_invoices_after_them_are_not():
    # rwd29: Original, Duplicado, Triplicado, each "Pagina 1 de 1"; then two real one-page invoices.
    batch = concat_pdfs([(REALWORLD / name).read_bytes() for name in ("rwd29.pdf", "rwd01.pdf", "rwd02.pdf")])
    found = split_pdf(batch)
    assert found.groups == [[0, 1, 2], [3], [4]]
    assert all("B172FB37" in b.reason or "5340DF53" in b.reason or "marker" in b.reason for b in found.boundaries)


@needs(REALWORLD)
def test_two_page_invoice_stays_whole_between_other_invoices():
    batch = concat_pdfs([(REALWORLD / name).read_bytes() for name in ("rwd01.pdf", "rwd04.pdf", "rwd03.pdf")])
    assert split_pdf(batch).groups == [[0], [1, 2], [3]]


FIRST = """                                         Factura
Empresa Ejemplo SA                                   Pagina 1 de 1
                                                     Nº: 0001-00000042
                                                     Fecha: 27/03/2011
Total:                                               121,00
"""


def test_copy_pages_with_the_same_number_stay_one_document():
    texts = [FIRST, FIRST.replace("Factura", "Factura   Duplicado"), FIRST.replace("Factura", "Factura   Triplicado")]
    assert detect(texts).groups == [[0, 1, 2]]


def test_copy_mark_keeps_a_copy_whose_number_was_misread():
    copy = FIRST.replace("Factura", "Factura   Duplicado").replace("Nº: 0001-00000042", "Nº: 0OO1-OOOOOO4Z")
    assert page_info(1, copy).copy
    assert detect([FIRST, copy]).groups == [[0, 1]]


def test_different_invoices_each_page_1_of_1_are_split():
    other = FIRST.replace("0001-00000042", "0001-00000043")
    found = detect([FIRST, other])
    assert found.groups == [[0], [1]]


def test_carried_total_continues_the_invoice():
    second = """Facture                                       Report : 1 250,00
Désignation            Quantité     Prix
Total TTC                                      1 500,00
"""
    info = page_info(1, second)
    assert info.carried and info.title
    assert detect([FIRST.replace("Factura", "Facture"), second]).groups == [[0, 1]]


def test_footer_page_numbered_alone_continues_the_invoice():
    footer = "RCS Paris B 423 093 459 - SIRET 423 093 459 00042 - capital de 630 000 euros\n" + " " * 80 + "2/2\n"
    assert page_info(1, footer).marker == (2, 2)
    assert detect([FIRST, footer]).groups == [[0, 1]]


@needs(REALWORLD)
def test_scan_with_a_garbage_text_layer_is_read_by_ocr_to_find_its_invoice():
    # rwd16: a scan whose ScanSoft text layer is nonsense; rwd01: a text PDF (never OCRed).
    found = split_pdf(concat_pdfs([(REALWORLD / name).read_bytes() for name in ("rwd01.pdf", "rwd16.pdf")]))
    assert found.ocr_pages == 1
    assert found.groups == [[0], [1]]
