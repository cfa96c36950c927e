"""Extraction on real PDFs (generated with reportlab, and invoice2data's own samples) and on texts."""

from __future__ import annotations

import io
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas

from core.extraction import PdfUnreadable, extract_fields, extract_pdf, extract_text_fields, load_templates, read_pdf
from core.extraction.templated import apply_templates
from tests.corpus import CORPUS as SHARED
from tests.invoicegen import LANGUAGES, LAYOUTS, corrupt_pdf, make_image, make_invoice_pdf

I2D_CORPUS = SHARED / "invoice2data"

DEFAULTS = {
    "doc_type": "invoice",
    "number": "FA-2026-0042",
    "issuer": "Dupont Conseil SARL",
    "client": "Acme SAS",
    "issue_date": date(2026, 11, 23),
    "due_date": date(2026, 12, 23),
    "net_amount": Decimal("1000.00"),
    "tax_amount": Decimal("200.00"),
    "amount": Decimal("1200.00"),
    "currency": "EUR",
}
TITLES = {"fr": "Mission de conseil", "en": "Consulting services", "de": "Beratungsleistungen"}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_generated_invoice_gives_every_field_exactly(language: str, layout: int):
    found = extract_pdf(make_invoice_pdf(language=language, layout=layout))
    assert found.has_text and found.pages == 1
    assert found.extraction.fields == {**DEFAULTS, "title": TITLES[language]}
    assert found.extraction.source == "generic"
    for name, info in found.extraction.field_info.items():
        assert info["source"] == "generic" and 0 < info["confidence"] <= 1, name
    # net + tax = total: the three amounts back each other up.
    assert all(found.extraction.field_info[n]["confidence"] >= 0.95 for n in ("amount", "net_amount", "tax_amount"))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_generated_credit_note(language: str, layout: int):
    found = extract_pdf(make_invoice_pdf(language=language, layout=layout, credit_note=True, number="AV-2026-0003"))
    assert found.extraction.fields == {**DEFAULTS, "doc_type": "credit_note", "number": "AV-2026-0003",
                                       "title": TITLES[language]}


@pytest.mark.parametrize("language", LANGUAGES)
def test_other_values_and_currencies(language: str):
    pdf = make_invoice_pdf(
        number="2026/118", issuer="Studio Lumière EURL", client="Globex Corporation", issue_date=date(2026, 2, 3),
        due_date=date(2026, 3, 5), net=Decimal("12345.60"), tax=Decimal("2469.12"), currency="USD",
        language=language,
    )
    fields = extract_pdf(pdf).extraction.fields
    assert fields["number"] == "2026/118"
    assert (fields["issuer"], fields["client"]) == ("Studio Lumière EURL", "Globex Corporation")
    # 03/02/2026 could be read either way: the European day-first reading is the one taken.
    assert (fields["issue_date"], fields["due_date"]) == (date(2026, 2, 3), date(2026, 3, 5))
    assert (fields["net_amount"], fields["tax_amount"], fields["amount"]) == (
        Decimal("12345.60"), Decimal("2469.12"), Decimal("14814.72"))
    assert fields["currency"] == "USD"


def test_text_without_any_known_field_gives_nothing():
    text = (
        "Bonjour Marie,\n\nVoici le compte rendu de notre réunion de mardi. Nous avons parlé du planning\n"
        "et des 3 nouvelles recrues. Rendez-vous au 12 rue des Lilas à 14 h 30.\n\nBonne journée,\nPaul\n"
    )
    assert extract_fields(text).fields == {}
    assert extract_fields("").fields == {} and extract_fields("   \n\n").fields == {}


def test_labels_without_readable_values_give_nothing():
    text = "Facture N° :\nDate : à convenir\nTotal TTC : voir annexe\nClient :\n"
    fields = extract_fields(text).fields
    assert set(fields) <= {"doc_type"}


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("23/11/2026", date(2026, 11, 23)),
        ("2026-11-23", date(2026, 11, 23)),
        ("23 novembre 2026", date(2026, 11, 23)),
        ("1er décembre 2026", date(2026, 12, 1)),
        ("November 23, 2026", date(2026, 11, 23)),
        ("23 Nov. 2026", date(2026, 11, 23)),
        ("11/23/2026", date(2026, 11, 23)),
        ("23.11.26", date(2026, 11, 23)),
        ("23.11.2026", date(2026, 11, 23)),
        ("23. November 2026", date(2026, 11, 23)),
        ("3. März 2026", date(2026, 3, 3)),
        ("1. Dezember 2026", date(2026, 12, 1)),
        ("15. Okt. 2026", date(2026, 10, 15)),
    ],
)
def test_date_formats(written: str, expected: date):
    assert extract_fields(f"Date de facture : {written}").fields["issue_date"] == expected


@pytest.mark.parametrize(
    ("written", "amount", "currency"),
    [
        ("1 234,56 €", "1234.56", "EUR"),
        ("1.234,56 EUR", "1234.56", "EUR"),
        ("1,234.56 USD", "1234.56", "USD"),
        ("$1,234.56", "1234.56", "USD"),
        ("€ 99,90", "99.90", "EUR"),
        ("CHF 1'234.50", "1234.50", "CHF"),
        ("1\u202f234,56\u00a0€", "1234.56", "EUR"),
        ("EUR 1 234,56", "1234.56", "EUR"),
        ("1.234.567,89 €", "1234567.89", "EUR"),
        ("£1,234.56", "1234.56", "GBP"),
    ],
)
def test_amount_formats(written: str, amount: str, currency: str):
    result = extract_fields(f"Total TTC : {written}")
    assert result.fields["amount"] == Decimal(amount)
    assert result.fields["currency"] == currency


def test_labels_that_are_not_ours_are_not_misread():
    text = "\n".join([
        "N° TVA intracommunautaire : FR12 345678901",
        "N° client : C-2026-77",
        "Date de livraison : 20/11/2026",
        "Facture N° FA-9",
        "Date : 23/11/2026",
        "TVA (20 %)        200,00 €",
        "Adresse de livraison :",
        "Entrepôt Nord",
    ])
    fields = extract_fields(text).fields
    assert fields["number"] == "FA-9"
    assert fields["issue_date"] == date(2026, 11, 23)
    assert fields["tax_amount"] == Decimal("200.00")  # not the 20 % rate
    assert "client" not in fields  # the delivery address is not the client


def test_total_label_in_a_table_heading_is_not_the_total():
    text = "\n".join([
        "Description              Qté      Prix unitaire      Total",
        "Audit                    2        500,00             1 000,00",
        "Formation                1        300,00               300,00",
        "",
        "                                  Total HT        1 300,00 €",
        "                                  TVA 20 %          260,00 €",
        "                                  Net à payer     1 560,00 €",
    ])
    fields = extract_fields(text).fields
    assert (fields["net_amount"], fields["tax_amount"], fields["amount"]) == (
        Decimal("1300.00"), Decimal("260.00"), Decimal("1560.00"))


def test_inconsistent_totals_get_a_low_confidence_and_a_note():
    result = extract_fields("Total HT : 100,00 €\nTVA : 20,00 €\nTotal TTC : 130,00 €")
    assert result.fields["amount"] == Decimal("130.00")  # read as printed, never corrected
    info = result.field_info["amount"]
    assert info["confidence"] <= 0.4 and "not 130.00" in info["note"]


def test_credit_note_words():
    assert extract_fields("AVOIR\nAvoir N° AV-12").fields["doc_type"] == "credit_note"
    assert extract_fields("Credit note number: CN-7").fields == {"number": "CN-7", "doc_type": "credit_note"}
    # "avoir" the verb is not a credit note, nor are the terms that mention credit notes.
    assert extract_fields("Facture N° F-1\nMerci de nous avoir choisis.").fields["doc_type"] == "invoice"
    terms = "\n".join(["INVOICE", "Invoice number: 12", *["-"] * 30, "Returns are refunded by a credit note."])
    assert extract_fields(terms).fields["doc_type"] == "invoice"


# PDFs that cannot be read ---------------------------------------------------------------------


def test_corrupt_pdf_is_unreadable_with_a_short_detail():
    with pytest.raises(PdfUnreadable) as caught:
        extract_pdf(corrupt_pdf())
    assert 0 < len(caught.value.detail) <= 160


def test_encrypted_pdf_is_unreadable():
    from reportlab.lib import pdfencrypt

    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, encrypt=pdfencrypt.StandardEncryption("secret", canPrint=0))
    canvas.drawString(50, 800, "Facture N° FA-1")
    canvas.showPage()
    canvas.save()
    with pytest.raises(PdfUnreadable) as caught:
        extract_pdf(buffer.getvalue())
    assert "password" in caught.value.detail.lower()


def test_scanned_pdf_has_no_text_layer():
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4)
    canvas.drawImage(ImageReader(io.BytesIO(make_image(300, 400))), 50, 300, 300, 400)
    canvas.showPage()
    canvas.save()
    found = extract_pdf(buffer.getvalue())
    assert not found.has_text and found.extraction.fields == {}


def test_page_cap():
    pdf = make_invoice_pdf(pages=4)
    assert "page 4/4" in read_pdf(pdf).text
    capped = read_pdf(pdf, max_pages=2)
    assert capped.pages == 4 and "page 2/4" in capped.text and "page 3/4" not in capped.text
    assert "page 3/4" not in (capped.layout or "")


# invoice2data ---------------------------------------------------------------------------------


def test_templates_are_loaded_once_per_process():
    first = load_templates()
    assert len(first) > 100 and load_templates() is first


def test_our_template_wins_and_the_generic_extractor_fills_the_rest(tmp_path: Path):
    (tmp_path / "fr.dupont-conseil.yml").write_text(
        "issuer: Dupont Conseil SARL\n"
        "keywords: ['SIRET 123 456 789 00012']\n"
        "fields:\n"
        "  invoice_number: 'Facture N° : (\\S+)'\n"
        "  amount: 'Total TTC\\s+([\\d\\s]+,\\d{2})'\n"
        "  date: 'Date : (\\d{2}/\\d{2}/\\d{4})'\n"
        "options:\n"
        "  currency: EUR\n"
        "  decimal_separator: ','\n"
        "  date_formats: ['%d/%m/%Y']\n",
        encoding="utf-8",
    )
    templates = load_templates([tmp_path])
    names = [t["template_name"] for t in templates]
    ours = names.index("fr.dupont-conseil.yml")
    assert all(i > ours for i, t in enumerate(templates) if t.get("priority", 5) == 5 and i != ours)
    pdf = read_pdf(make_invoice_pdf())
    extraction, name = extract_text_fields([pdf.best, pdf.text], templates)
    assert name == "fr.dupont-conseil.yml"
    assert extraction.fields == {**DEFAULTS, "title": "Mission de conseil"}
    source = "invoice2data:Dupont Conseil SARL"
    assert extraction.source == source
    assert {n for n, i in extraction.field_info.items() if i["source"] == source} == {
        "number", "amount", "issue_date", "issuer", "currency"}
    assert extraction.field_info["client"]["source"] == "generic"


def test_template_without_currency_does_not_default_to_eur(tmp_path: Path):
    (tmp_path / "t.yml").write_text(
        "issuer: Globex\nkeywords: ['GLOBEX-TEMPLATE-TEST']\nfields:\n"
        "  invoice_number: Invoice (\\d+)\n  amount: Amount (\\d+\\.\\d{2})\n  date: Date (\\d{4}-\\d{2}-\\d{2})\n",
        encoding="utf-8",
    )
    text = "GLOBEX-TEMPLATE-TEST\nInvoice 77\nDate 2026-01-05\nAmount 10.00\n"
    match = apply_templates(text, load_templates([tmp_path]))
    assert match is not None and match.issuer == "Globex"
    assert match.extraction.fields == {"number": "77", "issue_date": date(2026, 1, 5), "amount": Decimal("10.00"),
                                       "issuer": "Globex"}


I2D_SAMPLES = sorted(p for p in I2D_CORPUS.glob("*.pdf") if p.name != "saeco.pdf") if I2D_CORPUS.is_dir() else []


@pytest.mark.skipif(not I2D_SAMPLES, reason="the shared corpus is not mounted")
@pytest.mark.parametrize("path", I2D_SAMPLES, ids=lambda p: p.name)
def test_invoice2data_samples_match_their_bundled_template(path: Path):
    expected = json.loads(path.with_suffix(".json").read_text())
    expected = expected[0] if isinstance(expected, list) else expected
    found = extract_pdf(path.read_bytes())
    fields = found.extraction.fields
    assert found.template is not None
    assert fields["number"] == expected["invoice_number"]
    assert fields["issue_date"].isoformat() == expected["date"]
    if "amount" in expected:
        assert fields["amount"] == Decimal(str(expected["amount"])).quantize(Decimal("0.01"))
    assert fields["currency"] == expected["currency"]


def _plain(value):
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "template_name"}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


I2D_ALL = sorted(I2D_CORPUS.glob("*.json")) if I2D_CORPUS.is_dir() else []


@pytest.mark.skipif(not I2D_ALL, reason="the shared corpus is not mounted")
@pytest.mark.parametrize("expected_path", [p for p in I2D_ALL if p.stem != "saeco"], ids=lambda p: p.stem)
def test_invoice2data_output_equals_the_expected_json(expected_path: Path):
    """What invoice2data's own command line gives (area fields included: NetpresseInvoice's date)."""
    expected = _plain(json.loads(expected_path.read_text())[0])
    pdf, txt = expected_path.with_suffix(".pdf"), expected_path.with_suffix(".txt")
    if pdf.exists():
        output = extract_pdf(pdf.read_bytes()).template_output
    else:
        from core.extraction.templated import OUR_TEMPLATES

        match = apply_templates(txt.read_text(), load_templates([OUR_TEMPLATES, I2D_CORPUS / "templates"]))
        output = match.output if match else None
    assert _plain(dict(output or {})) == expected


@pytest.mark.skipif(not (I2D_CORPUS / "saeco.pdf").exists(), reason="the shared corpus is not mounted")
def test_saeco_text_in_an_image_is_read_by_ocr_and_matches_its_template():
    found = extract_pdf((I2D_CORPUS / "saeco.pdf").read_bytes())
    assert found.ocr and found.template == "nl.saeco.philips.eluscious.yml"
    assert found.extraction.fields["number"] == "VF1005193039"
    assert found.extraction.fields["amount"] == Decimal("49.99")
    assert found.extraction.fields["issue_date"] == date(2022, 9, 8)
    assert found.extraction.field_info["number"]["source"].startswith("ocr+invoice2data:")


# German, identifiers, the template index ------------------------------------------------------------

GERMAN = """Müller & Söhne GmbH                                              RECHNUNG
Hauptstraße 5, 10115 Berlin
USt-IdNr.: DE136695976          Steuernummer: 27/123/45678

Rechnungsempfänger:
Acme SAS

Rechnungsnummer: RE-2026-0042
Kundennummer: 10023
Rechnungsdatum: 23. November 2026
Lieferdatum: 20.11.2026
Zahlungsziel: 23.12.2026

Nettobetrag                      1.000,00 €
zzgl. 19 % MwSt.                   190,00 €
Gesamtbetrag                     1.190,00 €
"""


def test_german_labels():
    fields = extract_fields(GERMAN).fields
    assert fields == {
        "doc_type": "invoice", "number": "RE-2026-0042", "issuer": "Müller & Söhne GmbH", "client": "Acme SAS",
        "issue_date": date(2026, 11, 23), "due_date": date(2026, 12, 23), "net_amount": Decimal("1000.00"),
        "tax_amount": Decimal("190.00"), "amount": Decimal("1190.00"), "currency": "EUR",
    }


def test_gutschrift_is_a_credit_note():
    text = GERMAN.replace("RECHNUNG", "GUTSCHRIFT").replace("Rechnungsnummer", "Gutschriftsnummer")
    fields = extract_fields(text).fields
    assert (fields["doc_type"], fields["number"]) == ("credit_note", "RE-2026-0042")


def test_identifiers_are_kept_only_with_right_check_digits():
    from core.extraction.identifiers import find_identifiers

    text = ("TVA FR40303265045 / FR41303265045 (wrong key) - USt-IdNr. DE136695976 - BTW NL815254295B01\n"
            "SIRET 732 829 320 00074 - SIRET 732 829 320 00075 (wrong) - SIREN 552 100 554\n"
            "IBAN FR76 3000 6000 0112 3456 7890 189 - BIC AGRIFRPP - IBAN FR76 3000 6000 0112 3456 7890 188\n")
    found = find_identifiers(text)
    assert found.vat_ids == ["FR40303265045", "DE136695976", "NL815254295B01"]
    assert found.sirets == ["73282932000074"]
    assert "552100554" in found.sirens and "732829320" in found.sirens
    assert found.ibans == ["FR7630006000011234567890189"]


def test_template_index_gives_the_same_match_as_a_full_scan(tmp_path: Path):
    from core.extraction.templated import TemplateIndex

    folder = tmp_path / "templates"
    folder.mkdir()
    for i in range(300):
        (folder / f"t{i}.yml").write_text(
            f"issuer: Vendor {i}\nkeywords:\n  - Vendor{i:04d} Ltd\n  - Invoice\nfields:\n"
            f"  amount: Total\\s+(\\d+\\.\\d\\d)\n  invoice_number: Number\\s+(\\S+)\n  date: Date\\s+(\\S+)\n"
            "options:\n  currency: EUR\n  date_formats:\n    - '%Y-%m-%d'\n")
    templates = load_templates([folder])
    text = "Vendor0123 Ltd\nInvoice\nNumber V-123\nDate 2026-11-23\nTotal 99.00\n"
    index = TemplateIndex(templates)
    candidates = index.candidates(text)
    assert [t["issuer"] for t in candidates if t.matches_input(text)] == [
        t["issuer"] for t in templates if t.matches_input(text)] == ["Vendor 123"]
    assert len(candidates) < 20  # most templates are never tested
    match = apply_templates(text, templates)
    assert match is not None and match.issuer == "Vendor 123" and match.extraction.fields["amount"] == Decimal("99.00")
