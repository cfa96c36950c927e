"""Reasons as data (issue 16 step 5): every reason written on a message or document stores its catalogue
code and parameters (core/reasons.py); the dashboard renders the code in the reader's language, and rows
written before codes existed still render through the regex recognition of their English text."""

from __future__ import annotations

import ast
import io
import zipfile
from datetime import date
from email import message_from_bytes, policy
from pathlib import Path
from types import SimpleNamespace

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.banking import transactions as bank
from core.documents import processing
from core.files.storage import FileStorage
from core.inbound import intake, senders
from core.mail.unpack import EMPTY_ARCHIVE_NOTE, LEFT_OUT_REASON, NO_ATTACHMENT_NOTES_REASON, NO_ATTACHMENT_REASON
from core.models import Document, DocumentStatus, InboundMessage, MessageStatus, User
from core.reasons import Reason, reason, render, set_reason
from dashboard.i18n import reason_text
from tests.bankhelpers import ACCOUNT, csv_row, statement_csv
from tests.conftest import TenantFixture
from tests.invoicegen import make_email, make_invoice_pdf
from tests.test_dashboard import login

FRENCH_PDF = "Le PDF n'a pas pu être lu (il est peut-être endommagé ou chiffré)\u00a0: "
ROOT = Path(__file__).resolve().parent.parent
WRITERS = ("core", "worker", "mailgate", "dashboard")
REASON_COLUMNS = {"reason", "reason_code", "reason_params"}


def _store(session: Session, storage: FileStorage, tenant: TenantFixture, raw: bytes) -> InboundMessage:
    message = intake.store_message(session, storage, tenant.tenant.id, raw, recipient=tenant.address)
    session.flush()
    return message


def test_reason_value_keeps_template_and_params() -> None:
    found = reason(processing.UNREADABLE_PDF, detail="EOF marker not found")
    assert isinstance(found, str) and found == found.text  # usable wherever a sentence was
    assert found.text == "The PDF could not be read (it may be damaged or encrypted): EOF marker not found"
    assert found.template == processing.UNREADABLE_PDF and found.params == {"detail": "EOF marker not found"}
    row = SimpleNamespace(reason=None, reason_code=None, reason_params=None)
    set_reason(row, found)
    assert (row.reason, row.reason_code, row.reason_params) == (found.text, processing.UNREADABLE_PDF,
                                                                {"detail": "EOF marker not found"})
    set_reason(row, processing.RAW_MISSING)  # a constant: its own code, no parameters
    assert (row.reason, row.reason_code, row.reason_params) == (processing.RAW_MISSING,) * 2 + (None,)
    set_reason(row, None)
    assert (row.reason, row.reason_code, row.reason_params) == (None, None, None)
    assert Reason("{x} braces kept", {}).text == "{x} braces kept"  # a constant is never .format-ed


def test_no_reason_is_written_outside_set_reason() -> None:
    """Static guard: a message's or document's reason columns are assigned only in core/reasons.py, so a
    new failure path cannot store an English sentence without its code."""
    offenders = []
    for top in WRITERS:
        for path in sorted((ROOT / top).rglob("*.py")):
            if path == ROOT / "core" / "reasons.py" or "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                targets: list[ast.expr] = []
                if isinstance(node, ast.Assign):
                    targets = [t for target in node.targets for t in (target.elts if isinstance(target, ast.Tuple)
                                                                      else [target])]
                elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                    targets = [node.target]
                for target in targets:
                    if (isinstance(target, ast.Attribute) and target.attr in REASON_COLUMNS
                            and not (isinstance(target.value, ast.Name) and target.value.id == "self")):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                if (isinstance(node, ast.Call) and getattr(node.func, "id", None) in {"InboundMessage", "Document"}
                        and any(k.arg in REASON_COLUMNS for k in node.keywords)):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_pipeline_failure_paths_store_codes(session: Session, storage: FileStorage, tenant: TenantFixture) -> None:
    # The stored e-mail is gone: a constant reason.
    gone = _store(session, storage, tenant, make_email(tenant.address, make_invoice_pdf(number="R-1")))
    storage.delete(gone.raw_key)
    processing.ingest_message(session, storage, gone.id)
    # No attachment: ignored, with unpack's reason.
    bare = _store(session, storage, tenant, make_email(tenant.address, None, subject="Bonjour"))
    processing.ingest_message(session, storage, bare.id)
    # A broken PDF: the reader's detail is kept as a parameter.
    broken = _store(session, storage, tenant, make_email(tenant.address, b"%PDF-1.4\n" + b"\x00garbage" * 200,
                                                         filename="broken.pdf"))
    [document_id] = processing.ingest_message(session, storage, broken.id)
    processing.extract_document(session, storage, document_id, ())
    # The job's last retry failed (worker/jobs.py): the exception's type is a parameter.
    retried = _store(session, storage, tenant, make_email(tenant.address, make_invoice_pdf(number="R-2")))
    processing.record_message_failure(session, retried.id, processing.transient_reason(ConnectionError(), "this email"))
    # A sender not on the allow-list: quarantined, then deleted from the quarantine by a person.
    senders.add_rule(session, tenant.tenant.id, "only@allowed.example")
    held = _store(session, storage, tenant, make_email(tenant.address, make_invoice_pdf(number="R-3"),
                                                       sender="Someone <someone@else.example>"))
    processing.ingest_message(session, storage, held.id)
    assert held.status == MessageStatus.QUARANTINED.value
    assert held.reason_code == senders.NOT_ALLOWED_REASON and held.reason_params == {"sender": "someone@else.example"}
    senders.delete(session, tenant.tenant.id, held.id, actor=tenant.admin)
    session.commit()
    session.expire_all()

    assert session.get(InboundMessage, gone.id).reason_code == processing.RAW_MISSING
    assert (session.get(InboundMessage, bare.id).status, session.get(InboundMessage, bare.id).reason_code) == (
        MessageStatus.IGNORED.value, NO_ATTACHMENT_REASON)
    doc = session.get(Document, document_id)
    assert doc.status == DocumentStatus.FAILED.value and doc.reason_code == processing.UNREADABLE_PDF
    assert doc.reason == processing.UNREADABLE_PDF.format(**doc.reason_params)  # English text unchanged
    failed = session.get(InboundMessage, retried.id)
    assert (failed.reason_code, failed.reason_params) == (processing.TRANSIENT_REASONS["this email"],
                                                          {"error": "ConnectionError"})
    deleted = session.get(InboundMessage, held.id)
    assert (deleted.reason_code, deleted.reason_params) == (senders.DELETED_REASON, {"actor": tenant.admin.email})
    # Whatever path wrote a reason, it wrote its code (and the English text is the code filled in).
    rows = [*session.scalars(select(InboundMessage).where(InboundMessage.reason.is_not(None))),
            *session.scalars(select(Document).where(Document.reason.is_not(None)))]
    assert len(rows) >= 5
    for row in rows:
        assert row.reason_code, row.reason
        assert row.reason == render(row.reason_code, row.reason_params, str)


def test_french_reader_sees_stored_code_old_rows_by_regex(app: Flask, session: Session, storage: FileStorage,
                                                          tenant: TenantFixture) -> None:
    message = _store(session, storage, tenant, make_email(tenant.address, None))
    processing.record_message_failure(session, message.id, reason(processing.UNREADABLE_PDF, detail="<b>bad</b> xref"))
    old = _store(session, storage, tenant, make_email(tenant.address, None, subject="old"))
    processing.record_message_failure(session, old.id, processing.UNREADABLE_PDF.format(detail="old xref"))
    old.reason_code = old.reason_params = None  # as written before the migration
    session.get(User, tenant.admin.id).locale = "fr"
    session.commit()

    with app.test_request_context(headers={"Accept-Language": "fr"}):
        assert reason_text(message) == FRENCH_PDF + "<b>bad</b> xref"
        assert reason_text(old) == FRENCH_PDF + "old xref"
        # English text changed after it was stored: the code still finds the sentence
        assert reason_text(SimpleNamespace(reason="stale English", reason_code=processing.RAW_MISSING,
                                           reason_params=None)) != "stale English"
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert reason_text(message) == message.reason

    client = app.test_client()
    assert login(client, tenant.admin.email, tenant.password).status_code == 302
    page = client.get("/imports/failed").get_data(as_text=True)
    # The French sentence with its parameter, escaped like any value.
    escaped = FRENCH_PDF.replace("'", "&#39;")
    assert escaped + "&lt;b&gt;bad&lt;/b&gt; xref" in page
    assert escaped + "old xref" in page  # the old row, through the regex path
    assert "<b>bad</b>" not in page

    api = client.get("/api/v1/messages?status=failed", headers={"Authorization": f"Bearer {tenant.token}"})
    shown = {item["id"]: item for item in api.get_json()["items"]}
    # The message's JSON carries the code and its values beside the English text; an old row has nulls.
    assert (shown[message.id]["reason_code"], shown[message.id]["reason_params"]) == (
        processing.UNREADABLE_PDF, {"detail": "<b>bad</b> xref"})
    assert shown[message.id]["reason"] == FRENCH_PDF + "<b>bad</b> xref"  # the French reader's language
    assert (shown[old.id]["reason_code"], shown[old.id]["reason_params"]) == (None, None)


# Composed reasons (a summary with notes, a list of files left out) -----------------------------------------

FRENCH_LEFT_OUT = ("Certains fichiers ont été écartés\u00a0: l’archive notes.zip ne contient aucun PDF, image ou "
                   "facture électronique.")
FRENCH_NO_ATTACHMENT = ("Aucune pièce jointe PDF ou image dans cet e-mail (l’archive notes.zip ne contient aucun PDF, "
                        "image ou facture électronique)")


def _zip_of_text() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "nothing to import")
    return buffer.getvalue()


def _with_zip(raw: bytes) -> bytes:
    """``raw`` with a zip attachment holding no document added."""
    message = message_from_bytes(raw, policy=policy.default)
    message.add_attachment(_zip_of_text(), maintype="application", subtype="zip", filename="notes.zip")
    return message.as_bytes(policy=policy.SMTP)


def test_nested_reasons_store_each_part_as_code_and_params() -> None:
    note = reason(EMPTY_ARCHIVE_NOTE, archive="a.zip")
    both = reason(LEFT_OUT_REASON, notes=[note, "free text kept as written"])
    assert both.text == ("Some files were left out: the archive a.zip holds no PDF, image or e-invoice; "
                         "free text kept as written.")
    assert both.params == {"notes": [{"code": EMPTY_ARCHIVE_NOTE, "params": {"archive": "a.zip"}},
                                     {"code": "free text kept as written", "params": {}}]}
    assert render(both.template, both.params, str) == both.text
    one = reason(NO_ATTACHMENT_NOTES_REASON, notes=[note])
    assert one.params == {"notes": [{"code": EMPTY_ARCHIVE_NOTE, "params": {"archive": "a.zip"}}]}


def test_composed_reasons_are_stored_as_codes_and_shown_in_french(app: Flask, session: Session, storage: FileStorage,
                                                                  tenant: TenantFixture) -> None:
    # An invoice and an archive with no document in it: the invoice is taken, the archive noted.
    partly = _store(session, storage, tenant, _with_zip(make_email(tenant.address, make_invoice_pdf(number="Z-1"))))
    processing.ingest_message(session, storage, partly.id)
    # Only the archive: nothing to import, with the note.
    bare = _store(session, storage, tenant, _with_zip(make_email(tenant.address, None, subject="Archive")))
    processing.ingest_message(session, storage, bare.id)
    # A mailed bank statement from a sender not declared for the bank: the summary with the "unverified" note.
    bank.find_or_create_account(session, tenant.tenant.id, ACCOUNT)
    statement = _store(session, storage, tenant, make_email(
        tenant.address, statement_csv(csv_row(date(2026, 2, 3), "Virement", "10,00", "Someone")), "releve.csv",
        subject="Releve", content_type="text/csv"))
    processing.ingest_message(session, storage, statement.id)
    session.get(User, tenant.admin.id).locale = "fr"
    session.commit()
    session.expire_all()

    partly, bare, statement = (session.get(InboundMessage, m.id) for m in (partly, bare, statement))
    note = {"code": EMPTY_ARCHIVE_NOTE, "params": {"archive": "notes.zip"}}
    assert (partly.reason_code, partly.reason_params) == (LEFT_OUT_REASON, {"notes": [note]})
    assert partly.reason == "Some files were left out: the archive notes.zip holds no PDF, image or e-invoice."
    assert (bare.status, bare.reason_code, bare.reason_params) == (
        MessageStatus.IGNORED.value, NO_ATTACHMENT_NOTES_REASON, {"notes": [note]})
    assert statement.reason_code == bank.STATEMENTS_NOTES_REASON
    assert statement.reason_params == {"found": "1", "created": "1", "duplicates": "0", "applied": "0",
                                       "suggested": "0", "notes": [{"code": bank.UNVERIFIED_REASON, "params": {}}]}
    assert statement.reason.startswith("1 bank statement(s): 1 new transaction(s), 0 already imported")

    client = app.test_client()
    assert login(client, tenant.admin.email, tenant.password).status_code == 302
    page = client.get("/imports").get_data(as_text=True)
    assert FRENCH_LEFT_OUT in page and FRENCH_NO_ATTACHMENT in page
    assert ("1 relevé(s) bancaire(s)\u00a0: 1 nouvelle(s) opération(s), 0 déjà importée(s), 0 rapprochée(s) "
            "automatiquement, 0 suggestion(s)\u00a0; non vérifié") in page
    assert "Some files were left out" not in page and "bank statement(s)" not in page


def test_failed_documents_and_api_show_the_reason_in_the_reader_language(
        app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture) -> None:
    broken = _store(session, storage, tenant, make_email(tenant.address, b"%PDF-1.4\n" + b"\x00garbage" * 200,
                                                         filename="broken.pdf"))
    [document_id] = processing.ingest_message(session, storage, broken.id)
    processing.extract_document(session, storage, document_id, ())
    doc = session.get(Document, document_id)
    left_out = reason(LEFT_OUT_REASON, notes=[reason(EMPTY_ARCHIVE_NOTE, archive="notes.zip")])
    processing.record_message_failure(session, broken.id, left_out)
    session.commit()
    assert doc.status == DocumentStatus.FAILED.value
    detail = doc.reason_params["detail"]

    client = app.test_client()
    assert login(client, tenant.admin.email, tenant.password).status_code == 302
    # The list of files that could not be read (templates/pending.html) renders the code, not the English text.
    page = client.get("/pending?show=failed", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Le PDF n&#39;a pas pu être lu" in page and "The PDF could not be read" not in page

    token = {"Authorization": f"Bearer {tenant.token}"}
    for headers, expected_doc, expected_message in (
            ({"Accept-Language": "fr"}, FRENCH_PDF + detail, FRENCH_LEFT_OUT),
            ({}, doc.reason, "Some files were left out: the archive notes.zip holds no PDF, image or e-invoice.")):
        api = app.test_client()
        failed = {item["id"]: item for item in api.get("/api/v1/failed", headers=token | headers).get_json()["items"]}
        assert failed[document_id]["reason"] == expected_doc
        assert (failed[document_id]["reason_code"], failed[document_id]["reason_params"]) == (
            processing.UNREADABLE_PDF, {"detail": detail})
        message = api.get(f"/api/v1/messages/{broken.id}", headers=token | headers).get_json()
        assert message["reason"] == expected_message and message["reason_code"] == LEFT_OUT_REASON
        assert message["reason_params"] == {"notes": [{"code": EMPTY_ARCHIVE_NOTE, "params": {"archive": "notes.zip"}}]}
        assert message["documents"][0]["reason"] == expected_doc
