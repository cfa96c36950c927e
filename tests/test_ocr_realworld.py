"""OCR on what phones and scanners really send (issue 13, item 6): pages turned by EXIF or by 90 degrees,
tilted, multi-page TIFF, HEIC, a scan whose text layer is another engine's garbage.

Every input is made in the test from a real corpus page (rwd20.jpg, a 782 x 1104 JPEG invoice; rwd16.pdf,
a scan with a ScanSoft text layer) with Pillow or reportlab, and read by the real Tesseract.
"""

from __future__ import annotations

import io
import os
import re
from datetime import date
from decimal import Decimal

import pillow_heif  # noqa: F401 - a declared dependency (pyproject): its absence fails, never skips
import pytest
from PIL import Image
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas

from core.extraction import GARBAGE_LAYER_NOTE, ImageRefused, extract_image, extract_pdf
from core.extraction.ocr import (
    OCR_CONFIDENCE,
    OcrWord,
    confidence_factor,
    field_confidence,
    installed_languages,
    open_image,
    read_image,
    tesseract_binary,
)
from core.extraction.textquality import is_suspect, word_like_share
from tests.corpus import CORPUS, needs

PAGE = CORPUS / "realworld" / "rwd20.jpg"
GARBAGE_SCAN = CORPUS / "realworld" / "rwd16.pdf"

pytestmark = [
    pytest.mark.skipif(tesseract_binary() is None and not os.environ.get("CI"),
                       reason="tesseract-ocr is not installed"),
    needs(PAGE),
]


def page() -> Image.Image:
    return Image.open(PAGE).convert("RGB")


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def assert_rwd20(fields: dict[str, object]) -> None:
    """The fields of rwd20 as its MANIFEST.tsv row states them."""
    assert fields.get("number") == "INT-001"
    assert fields.get("issue_date") == date(2019, 2, 11)
    assert fields.get("amount") == Decimal("204.75")


def test_upright_page_reads_without_turning():
    found = read_image(page())
    assert found.rotated == 0 and found.skew == 0.0
    assert found.confidence > 0.8 and len(found.words) > 50


def test_exif_rotated_jpeg_is_turned_by_its_tag():
    # A phone stores the pixels sideways and says so: orientation 6 = turn 90 degrees clockwise to display.
    sideways = page().rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encoded(sideways, "JPEG", quality=92, exif=exif.tobytes())
    assert open_image(data).size == page().size  # upright once decoded
    found = extract_image(data)
    assert found.ocr
    assert_rwd20(found.extraction.fields)
    assert not any("turned" in note for note in found.notes)  # the tag did it, not OSD


def test_scan_turned_90_degrees_is_turned_upright_by_osd():
    # A sheet fed sideways: an image-only PDF page (no /Rotate) whose text runs bottom to top.
    scan = encoded(page().rotate(90, expand=True), "PDF", resolution=100.0)
    found = extract_pdf(scan)
    assert found.ocr
    assert_rwd20(found.extraction.fields)
    assert "page 1 was turned 90 degrees to be read" in found.notes


@pytest.mark.parametrize("angle", [4.0, -3.0])
def test_tilted_photo_is_straightened(angle: float):
    tilted = page().rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255))
    reading = read_image(tilted)
    assert abs(reading.skew + angle) <= 0.5  # turned back by about the angle it was tilted
    found = extract_image(encoded(tilted, "PNG"))
    assert_rwd20(found.extraction.fields)


def test_multi_page_tiff_reads_its_frames():
    first = page().convert("L")
    blank = Image.new("L", first.size, 255)
    data = encoded(first, "TIFF", save_all=True, append_images=[blank, blank, blank], compression="tiff_lzw")
    found = extract_image(data)
    assert found.pages == 3  # OCR_MAX_PAGES frames of 4
    assert "OCR read the first 3 of 4 pages" in found.notes
    assert_rwd20(found.extraction.fields)


def test_tiff_with_an_oversized_frame_is_refused():
    from core.extraction.ocr import MAX_PIXELS

    side = int(MAX_PIXELS**0.5) + 100
    data = encoded(Image.new("1", (200, 200), 1), "TIFF", save_all=True, append_images=[Image.new("1", (side, side))])
    with pytest.raises(ImageRefused) as caught:
        extract_image(data)
    assert "too many pixels" in caught.value.detail


def test_heic_photo_is_read():
    data = encoded(page(), "HEIF", quality=90)
    assert data[4:12] == b"ftypheic"
    found = extract_image(data)
    assert_rwd20(found.extraction.fields)


def test_heic_attachment_is_taken_from_an_email():
    from core.mail.unpack import classify

    assert classify(encoded(page(), "HEIF", quality=90), "application/octet-stream", "IMG_0042.HEIC") == "image/heic"


def test_damaged_heic_is_refused_with_a_reason():
    data = encoded(page(), "HEIF", quality=90)
    with pytest.raises(ImageRefused) as caught:
        extract_image(data[: len(data) // 3])
    assert "cannot be decoded" in caught.value.detail


def scan_with_text_layer(words: str) -> bytes:
    """rwd20 as a full-page scan carrying an invisible text layer of ``words`` (what a scanner's OCR writes)."""
    image = page()
    buffer = io.BytesIO()
    width, height = image.width * 72 / 100, image.height * 72 / 100
    canvas = Canvas(buffer, pagesize=(width, height), invariant=True)
    canvas.drawImage(ImageReader(image), 0, 0, width, height)
    text = canvas.beginText(20, height - 30)
    text.setTextRenderMode(3)  # invisible, as OCR layers are
    text.setFont("Helvetica", 9)
    line: list[str] = []
    for word in words.split():
        line.append(word)
        if len(line) == 8:
            text.textLine(" ".join(line))
            line = []
    text.textLine(" ".join(line))
    canvas.drawText(text)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


GARBAGE = ("nTSo 1NCOaron lYX%%8 1XXEx8 TEBT PRODDCT_ ~ aLpEC tNSUF WdIJSa IS 5¢E eUANTITY BaANO DUANTDY Tsrsxcasss "
           "OFfhDEX WPPS cXcd0051 NqpEYA11HX5 AMOUNTSUeJECT OUE JnvOICe dAtE tOtAl fRoM bIlL 2}0 [6tl ") * 2
GOOD = ("Invoice number INT-001 issued on 11 February 2019 to Jessie Horne, due on 26 February 2019. Total amount "
        "due 204.75 USD including tax. Thank you for your business, payment by bank transfer within fifteen days "
        "of the invoice date. Questions about this invoice: contact John Smith.")


def test_garbage_text_layer_is_measured():
    assert word_like_share(GARBAGE) < 0.5 and is_suspect(GARBAGE)
    assert word_like_share(GOOD) > 0.9 and not is_suspect(GOOD)


def test_scan_with_a_garbage_text_layer_is_read_by_ocr():
    found = extract_pdf(scan_with_text_layer(GARBAGE))
    assert found.ocr and GARBAGE_LAYER_NOTE in found.notes
    assert_rwd20(found.extraction.fields)


def test_scan_with_a_good_text_layer_keeps_it():
    found = extract_pdf(scan_with_text_layer(GOOD))
    assert not found.ocr and GARBAGE_LAYER_NOTE not in found.notes
    assert found.extraction.fields.get("number") == "INT-001"


@needs(GARBAGE_SCAN)
def test_real_scansoft_layer_is_replaced():
    found = extract_pdf(GARBAGE_SCAN.read_bytes())
    assert found.ocr and GARBAGE_LAYER_NOTE in found.notes
    assert "PHILIP MORRIS" in found.text and "Philip Morris Valued Customer" in found.text


def test_word_confidence_lowers_field_confidence():
    words = [OcrWord("Total", 0.96), OcrWord("204,75", 0.45), OcrWord("INT-001", 0.95), OcrWord("John", 0.9),
             OcrWord("Smith", 0.7)]
    assert field_confidence(Decimal("204.75"), words, 0.8) == 0.45  # the amount's own word
    assert field_confidence("INT-001", words, 0.8) == 0.95
    assert field_confidence("John Smith", words, 0.8) == pytest.approx(0.8)  # the mean of its two words
    assert field_confidence("Nowhere", words, 0.8) == 0.8  # not found: the page's mean
    assert confidence_factor(0.95) == OCR_CONFIDENCE
    assert confidence_factor(0.45) == pytest.approx(OCR_CONFIDENCE * 0.5)


def test_ocr_fields_carry_their_word_confidence():
    found = extract_image(encoded(page(), "PNG"))
    info = found.extraction.field_info["amount"]
    assert info["source"].startswith("ocr+")
    assert 0.0 < info["ocr_confidence"] <= 1.0
    assert info["confidence"] <= OCR_CONFIDENCE


def test_page_language_decides_the_second_reading():
    from core.extraction.ocr import guess_language

    def words(text: str) -> list[OcrWord]:
        return [OcrWord(w, 0.9) for w in text.split()]

    assert guess_language(words("Facture N° 12 de la société, montant TTC à régler")) == "fra"
    assert guess_language(words("Rechnung Nr. 12 der Firma, Betrag zahlbar bitte bis")) == "deu"
    assert guess_language(words("Invoice 12 from the company, amount due")) == "eng"
    assert guess_language(words("4711 0815 XYZ")) == "eng"  # nothing to go by: the first reading stands
    # The other three: words they share with French ("de", "la") do not decide, their own words do.
    assert guess_language(words("Factura N° 12 de la empresa, importe total con IVA, fecha de vencimiento")) == "spa"
    assert guess_language(words("Fattura n. 12 della ditta, importo totale, data di scadenza del pagamento")) == "ita"
    assert guess_language(words("Factuur 12 van de firma, het bedrag met btw, vervaldatum en betaling")) == "nld"
    assert guess_language(words("Facture N° 12 de la société, montant TTC à régler")) == "fra"


REALWORLD_DUTCH = CORPUS / "realworld" / "rwd26.jpg"  # a Dutch invoice rendered as an image


@needs(REALWORLD_DUTCH)
def test_dutch_page_is_read_again_with_the_dutch_model():
    found = read_image(open_image(REALWORLD_DUTCH.read_bytes()))
    assert found.language == "nld"
    assert "Vervaldatum" in found.text and "oktober" in found.text
    fields = extract_image(REALWORLD_DUTCH.read_bytes()).extraction.fields  # what the worker reads of it
    assert (fields.get("issue_date"), fields.get("due_date")) == (date(2023, 10, 1), date(2023, 10, 15))


REALWORLD_SPANISH = CORPUS / "realworld" / "rwd29.pdf"  # an Argentine "Factura A" (a text PDF)


@needs(REALWORLD_SPANISH)
def test_spanish_page_scanned_is_read_again_with_the_spanish_model():
    import pypdfium2

    document = pypdfium2.PdfDocument(REALWORLD_SPANISH.read_bytes())
    try:
        scan = document[0].render(scale=200 / 72, grayscale=True).to_pil()  # as a 200 dpi scanner gives it
    finally:
        document.close()
    found = read_image(scan)
    assert found.language == "spa"
    assert "Factura" in found.text and "Empresa de Prueba" in found.text


# Through the pipeline: stored file -> document pending (fields read) or failed (with a reason) -------------


def pipeline(session, storage, tenant, data: bytes, content_type: str, filename: str):
    from tests.test_extraction_pipeline import extract, new_document

    return extract(session, storage, new_document(session, storage, tenant.tenant.id, data, content_type, filename))


def test_heic_photo_through_the_pipeline(session, storage, tenant):
    from core.models import DocumentStatus

    doc = pipeline(session, storage, tenant, encoded(page(), "HEIF", quality=90), "image/heic", "IMG_0042.HEIC")
    assert doc.status == DocumentStatus.PENDING.value, doc.reason
    assert (doc.number, doc.amount) == ("INT-001", Decimal("204.75"))
    assert doc.extraction_details["reader"] == "ocr"
    assert doc.field_info["number"]["confidence"] < 0.8  # OCR: always a check


@pytest.mark.parametrize("make, content_type, detail", [
    (lambda: encoded(page(), "HEIF", quality=90)[:20000], "image/heic", "cannot be decoded"),
    (lambda: encoded(Image.new("1", (200, 200), 1), "TIFF", save_all=True,
                     append_images=[Image.new("1", (7200, 7200))]), "image/tiff", "too many pixels"),
])
def test_refused_images_end_failed_with_a_reason(session, storage, tenant, make, content_type, detail):
    from core.models import DocumentStatus

    doc = pipeline(session, storage, tenant, make(), content_type, "scan")
    assert doc.status == DocumentStatus.FAILED.value
    assert doc.reason.startswith("The image could not be read:") and detail in doc.reason


def test_unreadable_photo_stays_reviewable_by_hand(session, storage, tenant):
    from core.documents.processing import NO_TEXT_REASON
    from core.models import DocumentStatus

    noise = Image.effect_noise((1200, 1600), 90).convert("L")  # no text, in no orientation
    doc = pipeline(session, storage, tenant, encoded(noise, "PNG"), "image/png", "photo.png")
    assert doc.status == DocumentStatus.PENDING.value and doc.reason == NO_TEXT_REASON
    assert doc.number is None and doc.amount is None


def test_tesseract_words_are_laid_out_like_a_text_pdf():
    from core.extraction.ocr import words_layout

    header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext"
    rows = [  # two blocks on the same row (label left, value far right), then a line below, slightly tilted
        "5\t1\t1\t1\t1\t1\t100\t100\t120\t30\t96.5\tInvoice",
        "5\t1\t1\t1\t1\t2\t235\t102\t60\t30\t91.0\tNo.",
        "5\t1\t2\t1\t1\t1\t1200\t104\t160\t30\t88.0\tINT-001",
        "5\t1\t3\t1\t1\t1\t100\t160\t80\t30\t95.0\tTotal",
        "5\t1\t3\t1\t1\t2\t1200\t166\t120\t30\t45.0\t204.75",
        "4\t1\t3\t1\t1\t0\t100\t160\t1220\t36\t-1\t",
    ]
    text, words, sideways = words_layout("\n".join([header, *rows]))
    lines = [line for line in text.splitlines() if line.strip()]
    assert [line.split() for line in lines] == [["Invoice", "No.", "INT-001"], ["Total", "204.75"]]
    assert lines[0].index("INT-001") == lines[1].index("204.75")  # one column, as pdftotext -layout prints it
    assert lines[0].index("No.") - lines[0].index("Invoice") == len("Invoice ")  # one cell: a single space
    assert [(w.text, w.confidence) for w in words][-1] == ("204.75", 0.45)
    assert sideways == 0.0


def test_ideographs_of_one_cell_are_not_split_by_spaces():
    from core.extraction.ocr import words_layout

    header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext"
    rows = [  # Tesseract's chi_sim makes a word of each ideograph or two
        "5\t1\t1\t1\t1\t1\t100\t100\t60\t30\t96.0\t发票",
        "5\t1\t1\t1\t1\t2\t165\t100\t60\t30\t95.0\t号码",
        "5\t1\t1\t1\t1\t3\t230\t100\t15\t30\t90.0\t:",
        "5\t1\t1\t1\t1\t4\t250\t100\t150\t30\t93.0\t07007198",
    ]
    text, _words, _sideways = words_layout("\n".join([header, *rows]))
    assert text.strip() == "发票号码 : 07007198"


CHINESE = CORPUS / "realworld" / "rwd22.png"


@needs(CHINESE)
@pytest.mark.skipif("chi_sim" not in installed_languages() and not os.environ.get("CI"),
                    reason="tesseract-ocr-chi-sim is not installed")
def test_a_page_in_chinese_is_read_with_the_data_of_its_script():
    from core.extraction.ocr import script_language

    assert script_language("Han") == "chi_sim"
    assert script_language("Latin") is None and script_language(None) is None
    found = extract_image(CHINESE.read_bytes())
    assert "发票" in found.text  # read with chi_sim, not as garbled Latin
    fields = found.extraction.fields
    assert fields["number"] == "07007198"
    assert fields["issue_date"] == date(2018, 3, 23)
    assert fields["amount"] == Decimal("294.82") and fields["currency"] == "CNY"
    assert all(found.extraction.confidence(name) < 0.8 for name in fields)  # shaky OCR: every field flagged


def test_a_digit_read_as_its_lookalike_letter_is_restored():
    from core.extraction.ocr import _digits_restored

    assert [_digits_restored(w) for w in ("i979", "!979,", "2O23", "l500.")] == ["1979", "1979,", "2023", "1500."]
    # Words, short tokens and codes with several letters stay as read.
    assert [_digits_restored(w) for w in ("Inc.", "i4,", "l00", "A1B2", "1979")] == ["Inc.", "i4,", "l00", "A1B2",
                                                                                    "1979"]


def test_text_in_a_light_brand_colour_is_kept_as_ink():
    from core.extraction.ocr import _grayscale

    tan, black, paper = (205, 150, 110), (20, 20, 20), (255, 255, 255)
    image = Image.new("RGB", (3, 1))
    image.putdata([tan, black, paper])
    gray = _grayscale(image)
    assert [gray.getpixel((x, 0)) for x in range(3)] == [110, 20, 255]  # tan is ink once binarised, paper stays paper


COLOURED_TITLE = CORPUS / "realworld" / "rwd19.png"  # "SHIPPING INVOICE 10112" and the issuer's name in tan


@needs(COLOURED_TITLE)
def test_a_title_and_number_printed_in_colour_are_read():
    found = extract_image(COLOURED_TITLE.read_bytes())
    assert "SHIPPING INVOICE" in found.text and "ZESTADO EXPRESS" in found.text
    assert found.extraction.fields["number"] == "10112"


def test_table_rules_read_as_bars_separate_cells():
    from core.extraction.ocr import _rules_as_gaps

    line = "CientN° | FactureN° | Date de Facture | Date de retrait"
    assert re.split(r"\s{2,}", _rules_as_gaps(line)) == ["CientN°", "FactureN°", "Date de Facture", "Date de retrait"]
    assert len(_rules_as_gaps(line)) == len(line)  # columns keep their place
    assert _rules_as_gaps("[om |ooszo0s01351] 17022020").split() == ["om", "ooszo0s01351", "17022020"]
