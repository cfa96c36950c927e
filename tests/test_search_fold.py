"""Search folds accents and case alike on SQLite and PostgreSQL (issue 17 item 6): "ecole" finds "École
SARL", "É" finds "é", in every list that searches text; and the database's ``inbox_fold`` is the same
function as ``core.textsearch.fold`` (SQLite runs the Python one; PostgreSQL has its SQL twin)."""

from __future__ import annotations

import unicodedata

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import listing
from core.accounting import listing as entry_listing
from core.files.storage import FileStorage
from core.models import Direction, DocumentStatus
from core.models_profiles import DocumentReading
from core.payables import suppliers
from core.receivables.invoices import client_balances
from core.textsearch import fold
from tests.conftest import TenantFixture
from tests.test_accounting import validate
from tests.test_clients import TODAY, admin_viewer, confirm
from tests.test_dashboard import login, make_document
from tests.test_dashboard import text as page_text
from tests.test_listing import run

# Latin-1 Supplement, Latin Extended-A and -B, Greek and Coptic, Cyrillic, Latin Extended Additional.
LETTER_BLOCKS = ((0x00C0, 0x0250), (0x0370, 0x0530), (0x1E00, 0x1F00))


def letters() -> list[str]:
    return [chr(code) for start, end in LETTER_BLOCKS for code in range(start, end)
            if unicodedata.category(chr(code)).startswith("L")]


def in_database(session: Session, texts: list[str]) -> list[str]:
    """``inbox_fold`` of each text, by the database, in one statement."""
    joined = session.scalar(select(func.inbox_fold("|".join(texts))))
    return joined.split("|")


def test_the_fold_is_one_function_on_both_databases(session: Session) -> None:
    assert fold("École SARL") == "ecole sarl" and fold("É") == fold("é") == "e"
    assert fold("Œuvres STRAßE Øresund Łódź") == "oeuvres strasse oresund lodz"
    assert fold("e\u0301cole") == "ecole"  # an accent typed (or extracted) as a separate mark
    samples = ["École SARL", "ÉCOLE", "e\u0301cole", "ΟΔΟΣ Σ", "İstanbul", "Ǿ", "plain ascii 42 %_\\", "", "ĳ"]
    assert in_database(session, samples) == [fold(s) for s in samples]
    chars = letters()
    database = in_database(session, chars)
    differ = [(c, f"U+{ord(c):04X}", d, fold(c)) for c, d in zip(chars, database, strict=True) if d != fold(c)]
    assert differ == []
    assert session.scalar(select(func.inbox_fold(None))) is None


def test_search_folds_accents_and_case_in_every_list(app: Flask, session: Session, storage: FileStorage,
                                                     tenant: TenantFixture) -> None:
    confirm(session, storage, tenant.tenant.id, tenant.admin, "F-1", "École SARL", "100.00")
    confirm(session, storage, tenant.tenant.id, tenant.admin, "F-2", "éditions Dupont", "200.00")
    confirm(session, storage, tenant.tenant.id, tenant.admin, "F-3", "Ecolab", "300.00")
    # Invoices (the client's name): accents and case folded both ways.
    assert run(session, tenant, q="ecole") == ["F-1"]
    assert run(session, tenant, q="ÉCOLE sarl") == ["F-1"]
    # "É" finds the "é" of "éditions" (the only "e" of that name), and any "e": it is an "e" with an accent.
    assert run(session, tenant, q="É", sort="number") == ["F-1", "F-2", "F-3"]
    assert run(session, tenant, q="EDITIONS") == ["F-2"]
    assert run(session, tenant, q="écol", sort="number") == ["F-1", "F-3"]
    # Clients.
    viewer = admin_viewer(session, tenant)
    found = client_balances(session, viewer, currency="EUR", today=TODAY, search="ecole")
    assert [c.name for c in found.items] == ["École SARL"] and found.total == 1
    # Documents under review: their fields and the text they were read from.
    doc = make_document(session, storage, tenant.tenant.id, filename="relevé.pdf", status=DocumentStatus.PENDING)
    doc.client = "Électricité Générale"
    session.add(DocumentReading(document_id=doc.id, tenant_id=tenant.tenant.id, text="Réfection de la TOITURE"))
    session.commit()
    dialect = listing.dialect_of(session)

    def pending(q: str) -> list[int]:
        filters = listing.parse_filters({"q": q}, listing.DOCUMENT_SORTS, listing.DOCUMENT_DEFAULT_SORT)
        return [d.id for d in session.scalars(listing.document_list(viewer, ("pending",), filters, dialect))]

    assert pending("electricite generale") == [doc.id]
    assert pending("refection de la toiture") == [doc.id]
    assert pending("RELEVE") == [doc.id]
    # Suppliers and journal entries.
    validate(session, storage, tenant, "P-1", "60.00", client="Société Fournitures", net="50.00", tax="10.00",
             direction=Direction.PAYABLE.value)
    filters = listing.parse_filters({"q": "SOCIETE"}, suppliers.SUPPLIER_SORTS, "-amount_due")
    stmt = suppliers.supplier_list(viewer, currency="EUR", today=TODAY, filters=filters, dialect=dialect)
    assert [row[1] for row in session.execute(stmt)] == ["Société Fournitures"]
    filters = listing.parse_filters({"q": "societe"}, entry_listing.ENTRY_SORTS, entry_listing.ENTRY_DEFAULT_SORT)
    entries = session.scalars(entry_listing.entry_list(viewer, None, None, filters, dialect))
    assert [e.piece_ref for e in entries] == ["P-1"]
    # The page and its API twin go through the same query.
    web = app.test_client()
    assert login(web, tenant.admin.email).status_code == 302
    page = page_text(web.get("/invoices?q=ecole"))
    assert "École SARL" in page and "Ecolab" not in page
    api = web.get("/api/v1/invoices?q=ecole", headers={"Authorization": f"Bearer {tenant.token}"}).get_json()
    assert [i["number"] for i in api["items"]] == ["F-1"]
