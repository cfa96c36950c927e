"""Thin e-invoices completed from their page (issue 13, item 10): a field the XML (MINIMUM, BASIC WL...)
lacks is read from the PDF's text, marked as read from the page; the XML's own values stay exact and win.

Real files: the shared corpus' Factur-X / ZUGFeRD PDFs; real database and storage for the pipeline test.
"""

from __future__ import annotations

import copy
from datetime import date

import pytest

from core.einvoice import read_einvoice, to_fields
from core.einvoice.page import PAGE_CONFIDENCE, PAGE_NOTE, fill_from_page
from core.models import DocumentStatus
from tests.corpus import CORPUS, needs
from tests.test_extraction_pipeline import extract, new_document

EINVOICES = CORPUS / "einvoice"
FR_MINIMUM = EINVOICES / "zc_FNFE_Facture_FR_MINIMUM.pdf"  # prints "Date d'échéance 13/12/2017"
THIN = ["zc_FNFE_Facture_FR_MINIMUM.pdf", "zc_zugferd_2p0_MINIMUM.pdf", "zc_zugferd_2p1_MINIMUM_Rechnung.pdf",
        "zc_zugferd_2p1_BASIC-WL_Einfach.pdf"]

pytestmark = needs(EINVOICES)


def thin_fields(name: str) -> tuple[dict, bytes]:
    data = (EINVOICES / name).read_bytes()
    einv = read_einvoice(data, name)
    assert einv is not None and einv.level in ("minimum", "basicwl")
    return to_fields(einv), data


def test_minimum_due_date_is_read_from_the_page():
    fields, data = thin_fields(FR_MINIMUM.name)
    assert fields["due_date"] is None  # MINIMUM has no due date
    assert fill_from_page(fields, data) == ["due_date"]
    assert fields["due_date"] == date(2017, 12, 13)
    info = fields["field_info"]["due_date"]
    assert info["source"].startswith("page+") and info["note"] == PAGE_NOTE
    assert info["confidence"] <= PAGE_CONFIDENCE < 0.8  # shown with "check"


@pytest.mark.parametrize("name", THIN)
def test_the_xml_values_stay_exact_and_win(name: str):
    fields, data = thin_fields(name)
    before = copy.deepcopy(fields)
    filled = fill_from_page(fields, data)
    for key, value in before.items():
        if key != "field_info" and value is not None:
            assert fields[key] == value and key not in filled
    for key, info in before["field_info"].items():
        assert fields["field_info"][key] == info == {"source": "einvoice:factur-x", "confidence": 1.0}
    for key in filled:
        assert fields["field_info"][key]["source"].startswith("page+")


def test_basic_wl_keeps_its_own_due_date_over_the_page():
    # The page prints other dates ("netto bis 04.04.2020"); the XML's due date is the one kept.
    fields, data = thin_fields("zc_zugferd_2p1_BASIC-WL_Einfach.pdf")
    fill_from_page(fields, data)
    assert fields["due_date"] == date(2017, 12, 13)
    assert fields["field_info"]["due_date"]["source"] == "einvoice:factur-x"


def test_nothing_printed_nothing_invented():
    fields, data = thin_fields("zc_zugferd_2p0_MINIMUM.pdf")
    fill_from_page(fields, data)
    assert fields["due_date"] is None


def test_page_value_that_contradicts_the_xml_is_not_taken():
    fields, data = thin_fields(FR_MINIMUM.name)
    fields["issue_date"] = date(2018, 1, 1)  # after the printed due date: that due date cannot be right
    assert fill_from_page(fields, data) == []
    assert fields["due_date"] is None


def test_pipeline_fills_the_due_date_and_says_so(session, storage, tenant):
    doc = extract(session, storage, new_document(session, storage, tenant.tenant.id, FR_MINIMUM.read_bytes(),
                                                 "application/pdf", "facture.pdf"))
    assert doc.status == DocumentStatus.PENDING.value, doc.reason
    assert doc.number == "FA-2017-0010" and doc.field_info["number"]["confidence"] == 1.0
    assert doc.due_date == date(2017, 12, 13)
    assert doc.field_info["due_date"]["source"].startswith("page+")
    assert doc.extraction_details["reader"] == "einvoice" and doc.extraction_details["from_page"] == ["due_date"]
