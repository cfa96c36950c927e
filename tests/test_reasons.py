"""Reasons as data (issue 16 step 5): every reason written on a message or document stores its catalogue
code and parameters (core/reasons.py); the dashboard renders the code in the reader's language, and rows
written before codes existed still render through the regex recognition of their English text."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.documents import processing
from core.files.storage import FileStorage
from core.inbound import intake, senders
from core.mail.unpack import NO_ATTACHMENT_REASON
from core.models import Document, DocumentStatus, InboundMessage, MessageStatus, User
from core.reasons import Reason, reason, set_reason
from dashboard.i18n import reason_text
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
        assert row.reason == (row.reason_code.format(**row.reason_params) if row.reason_params else row.reason_code)


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
    assert shown[message.id]["reason"] == message.reason
    assert (shown[old.id]["reason_code"], shown[old.id]["reason_params"]) == (None, None)
