"""``inbox tenant export`` and ``inbox tenant delete`` through the real command line, two companies side by side."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from core.documents import processing
from core.files.storage import FileStorage
from core.inbound import intake
from core.models import Document, InboundMessage, MessageStatus, Role, StoredFile, Tenant, User, utcnow
from core.tenancy import accounts
from tests.conftest import PASSWORD, make_tenant
from tests.invoicegen import make_email, make_invoice_pdf
from tests.services import process_env
from tests.test_dashboard import csrf_token, login


def inbox(settings, *args: str, answer: str | None = None) -> subprocess.CompletedProcess[str]:  # noqa: ANN001
    return subprocess.run([sys.executable, "-m", "dashboard.cli", *args], env=process_env(settings), input=answer,
                          capture_output=True, text=True, timeout=120, check=False)


def received_invoice(session, storage: FileStorage, tenant, number: str) -> tuple[int, bytes]:  # noqa: ANN001
    """An e-mail with an invoice PDF, stored and processed by the real services (unpacked, extracted)."""
    pdf = make_invoice_pdf(number=number)
    message = intake.store_message(session, storage, tenant.tenant.id, make_email(tenant.address, pdf),
                                   recipient=tenant.address)
    session.flush()
    for document_id in processing.ingest_message(session, storage, message.id):
        processing.extract_document(session, storage, document_id)
    session.commit()
    return message.id, pdf


def test_export_holds_the_companys_data_and_nothing_else(settings, session, storage, tenant, other_tenant, tmp_path):
    message_id, pdf = received_invoice(session, storage, tenant, "EXP-1")
    received_invoice(session, storage, other_tenant, "OTHER-9")
    archive_path = tmp_path / "export.zip"
    done = inbox(settings, "tenant", "export", str(tenant.tenant.id), "-o", str(archive_path))
    assert done.returncode == 0, done.stderr
    assert "stored files" in done.stdout
    with zipfile.ZipFile(archive_path) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        messages = [json.loads(line) for line in archive.read("tables/messages.jsonl").splitlines()]
        documents = [json.loads(line) for line in archive.read("tables/documents.jsonl").splitlines()]
        message = session.get(InboundMessage, message_id)
        stored = session.scalars(select(StoredFile).where(StoredFile.tenant_id == tenant.tenant.id)).all()
        assert archive.read(message.raw_key) == storage.read(message.raw_key)  # the e-mail as received
        assert any(archive.read(f.storage_key) == pdf for f in stored)  # the invoice PDF itself
        everything = b"".join(archive.read(name) for name in names)
    assert manifest["format"] == "invoice-inbox-tenant-export" and manifest["version"] == 1
    assert manifest["tenant"]["id"] == tenant.tenant.id and manifest["files"] == 1 + len(stored)
    assert [m["id"] for m in messages] == [message_id]
    assert [d["number"] for d in documents] == ["EXP-1"]
    assert {"tables/invoices.jsonl", "tables/clients.jsonl", "tables/inbound_addresses.jsonl",
            "tables/members.jsonl", "tables/bank_transactions.jsonl"} <= names
    assert b"OTHER-9" not in everything and other_tenant.tenant.name.encode() not in everything
    assert b"password_hash" not in everything and b"token_hash" not in everything
    assert inbox(settings, "tenant", "export", str(tenant.tenant.id), "-o", str(archive_path)).returncode != 0


def test_delete_asks_then_removes_everything_of_the_company_only(settings, session, storage, tenant, other_tenant):
    tenant_id, admin_email = tenant.tenant.id, tenant.admin.email  # read before the rows go
    message_id, _ = received_invoice(session, storage, tenant, "DEL-1")
    other_message_id, _ = received_invoice(session, storage, other_tenant, "KEEP-1")
    keys = [session.get(InboundMessage, message_id).raw_key] + list(
        session.scalars(select(StoredFile.storage_key).where(StoredFile.tenant_id == tenant_id)))
    assert all(storage.exists(key) for key in keys)

    refused = inbox(settings, "tenant", "delete", str(tenant_id), answer="n\n")
    assert refused.returncode != 0 and "Aborted" in refused.stderr + refused.stdout
    session.expire_all()
    assert session.get(Tenant, tenant_id) is not None and all(storage.exists(key) for key in keys)

    done = inbox(settings, "tenant", "delete", str(tenant_id), answer="y\n")
    assert done.returncode == 0, done.stderr
    assert "stored files: 2" in done.stdout and "messages: 1" in done.stdout and "accounts: 1" in done.stdout
    session.expire_all()
    assert session.get(Tenant, tenant_id) is None
    for model in (InboundMessage, Document, StoredFile):
        count = session.scalar(select(func.count()).select_from(model).where(model.tenant_id == tenant_id))
        assert count == 0, model
    assert not any(storage.exists(key) for key in keys)
    assert session.scalar(select(func.count()).select_from(User).where(User.email == admin_email)) == 0
    # The other company is untouched.
    other = session.get(InboundMessage, other_message_id)
    assert other is not None and storage.exists(other.raw_key)
    assert session.scalar(select(func.count()).select_from(User).where(User.email == other_tenant.admin.email)) == 1


def test_export_of_an_unknown_tenant_fails_clearly(settings, tmp_path: Path):
    done = inbox(settings, "tenant", "export", "999999", "-o", str(tmp_path / "x.zip"))
    assert done.returncode != 0 and "no tenant" in done.stderr


def test_admins_download_their_companys_export_from_the_dashboard(app, session, storage, tenant, other_tenant):
    received_invoice(session, storage, tenant, "DASH-1")
    received_invoice(session, storage, other_tenant, "OTHER-2")
    third = make_tenant(session, "Troisieme SAS", "third@example.test")  # another company; then a plain member of ours
    accounts.create_user(session, "clerk@example.test", PASSWORD, tenant.tenant, Role.MEMBER)
    session.commit()
    client = app.test_client()
    assert login(client, tenant.admin.email).status_code == 302
    assert client.post("/settings/export").status_code == 400  # no CSRF token
    page = client.get("/settings")
    assert b"/settings/export" in page.data
    response = client.post("/settings/export", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert "attachment" in response.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(response.get_data())) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        everything = b"".join(archive.read(name) for name in archive.namelist())
    assert manifest["tenant"]["id"] == tenant.tenant.id and b"DASH-1" in everything
    assert b"OTHER-2" not in everything and third.tenant.name.encode() not in everything

    clerk = app.test_client()
    assert login(clerk, "clerk@example.test").status_code == 302
    page = clerk.get("/settings")
    assert b"/settings/export" not in page.data
    assert clerk.post("/settings/export", data={"csrf_token": csrf_token(page)}).status_code == 403


def test_retention_deletes_old_raw_emails_and_keeps_their_files(settings, session, storage, tenant):
    old_id, pdf = received_invoice(session, storage, tenant, "OLD-1")
    recent_id, _ = received_invoice(session, storage, tenant, "NEW-1")
    failed_id, _ = received_invoice(session, storage, tenant, "FAIL-1")
    old, failed = session.get(InboundMessage, old_id), session.get(InboundMessage, failed_id)
    old.received_at = failed.received_at = utcnow() - timedelta(days=40)
    failed.status = MessageStatus.FAILED.value  # a retry needs its e-mail: kept
    session.commit()
    raw_keys = {i: session.get(InboundMessage, i).raw_key for i in (old_id, recent_id, failed_id)}

    assert "kept" in inbox(settings, "purge-raw").stdout  # RAW_RETENTION_DAYS unset: nothing deleted
    assert storage.exists(raw_keys[old_id])
    done = inbox(settings, "purge-raw", "--days", "30")
    assert done.returncode == 0 and done.stdout.startswith("1 raw e-mail(s)"), done.stdout + done.stderr
    session.expire_all()
    assert not storage.exists(raw_keys[old_id]) and session.get(InboundMessage, old_id).raw_purged_at is not None
    assert storage.exists(raw_keys[recent_id]) and storage.exists(raw_keys[failed_id])
    [document] = session.scalars(select(Document).where(Document.message_id == old_id)).all()
    assert document.number == "OLD-1" and storage.read(document.file.storage_key) == pdf  # the file is kept
    assert inbox(settings, "purge-raw", "--days", "30").stdout.startswith("0 raw")  # a second run: nothing left

    assert processing.ingest_message(session, storage, old_id) == []  # a re-run says why it cannot
    message = session.get(InboundMessage, old_id)
    assert message.status == MessageStatus.FAILED.value and message.reason == processing.RAW_PURGED
