"""Extraction on the real invoices of ``realworld/`` (issue 13): floors under what bench/realworld.py measures.

The floors sit a little under the measured values (docs/benchmarks.md): they catch a regression, they are not
the goals. The bench's own reading and scoring are used (imported, not copied): every file goes through the
worker's path, OCR included for the images and scans.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from bench import realworld
from core.extraction.result import CHECK_BELOW, needs_check, with_check_flags
from tests.corpus import needs

# Right answers per field at the last measurement minus one (OCR may move a field on another machine).
FLOORS = {"number": 25, "issue_date": 28, "amount": 28, "currency": 25, "type": 30, "due_date": 18,
          "issuer": 23, "client": 23}
KEY_FLOOR = 0.95  # measured 110/114 = 96.5 %: see docs/benchmarks.md (the issue's goal, 95 %, met)
ALL_FLOOR = 0.93  # measured 208/219 = 95.0 %
TEXT_PDF_FLOOR = 0.98  # the 21 text PDFs (no OCR): key fields measured 79/79, all fields 150/150
UNFLAGGED_FLOOR = 0.97  # the issue's goal, met: among fields shown without a "check" flag


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return realworld.run()


@needs(realworld.REALWORLD)
def test_every_real_invoice_is_read_without_error(report: dict[str, Any]) -> None:
    assert report["files"] == 31
    assert report["errors"] == {}


@needs(realworld.REALWORLD)
@pytest.mark.parametrize("name", sorted(FLOORS))
def test_field_accuracy_stays_above_its_floor(report: dict[str, Any], name: str) -> None:
    counts = report["per_field"][name]
    misses = [m for m in report["misses"] if m["field"] == name]
    assert counts["right"] >= FLOORS[name], f"{name}: {counts['right']}/{counts['scored']}; misses: {misses}"


@needs(realworld.REALWORLD)
def test_key_and_all_fields_stay_above_their_floors(report: dict[str, Any]) -> None:
    key_right, key_scored = report["key"]
    all_right, all_scored = report["all"]
    assert key_scored == 114 and all_scored == 219  # every truth cell of the manifest is scored
    assert key_right / key_scored >= KEY_FLOOR
    assert all_right / all_scored >= ALL_FLOOR


@needs(realworld.REALWORLD)
def test_text_pdfs_meet_the_issue_goals(report: dict[str, Any]) -> None:
    # The extractor's own share, free of OCR quality: the issue's goals (key >= 95 %, all >= 90 %) are met there.
    for share in (report["text_pdf_key"], report["text_pdf_all"]):
        assert share[0] / share[1] >= TEXT_PDF_FLOOR, share


@needs(realworld.REALWORLD)
def test_fields_shown_without_a_check_flag_are_right(report: dict[str, Any]) -> None:
    right, shown = report["unflagged"]
    assert shown >= 100  # most fields are shown unflagged: flagging everything would be no answer
    assert right / shown >= UNFLAGGED_FLOOR, [m for m in report["misses"] if m["got"]]


def test_scoring_follows_the_corpus_readme() -> None:
    assert realworld.is_right("amount", Decimal("1436"), "1436.00")
    assert realworld.is_right("amount", Decimal("24918.42"), "-24918.42 || 24918.42")
    assert not realworld.is_right("amount", Decimal("1436.01"), "1436.00")
    assert realworld.is_right("number", "#INV03051", "INV03051")
    assert realworld.is_right("number", "No. 001", "001")
    assert not realworld.is_right("number", "INV0305", "INV03051")
    assert realworld.is_right("issuer", "Gandi S.A.S.", "Gandi SAS")
    assert realworld.is_right("client", "Societe Generale", "Société Générale")
    assert not realworld.is_right("client", "Qty", "Squilik")
    assert realworld.is_right("issue_date", date(2022, 3, 2), "2022-03-02")
    assert realworld.is_right("issuer_vat", "FR81423093459", "FR 81 423.093-459")
    assert realworld.is_right("currency", "eur", "EUR")


def test_check_flag_is_set_under_the_domain_threshold() -> None:
    info = {"amount": {"source": "generic", "confidence": 0.97}, "issuer": {"source": "generic", "confidence": 0.45},
            "_document": {"source": "none", "note": "no text layer"}}
    flagged = with_check_flags(info)
    assert flagged["amount"]["check"] is False and flagged["issuer"]["check"] is True
    assert "check" not in flagged["_document"]  # a note on the whole document, not a field
    assert needs_check(CHECK_BELOW - 0.01) and not needs_check(CHECK_BELOW) and needs_check(None)
