"""The security suite: what an attacker tries, each on the real app, the real gateway and a real worker.

Checks that live elsewhere (one place per concern, listed in docs/reliability.md):
route isolation and authentication of every route (tests/test_route_isolation.py), login throttling and
the CSP (tests/test_dashboard.py), argon2 and hashed tokens (tests/test_accounts.py), XXE, zip and image
bombs (tests/test_real_world_email.py, tests/test_extraction_pipeline.py, tests/test_ocr.py), open relay and
recipient enumeration (tests/test_smtp.py, tests/test_smtp_hardening.py), fuzzing (tests/fuzz/).
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest
from flask import Flask
from markupsafe import escape
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core.files.storage import FileStorage
from core.inbound import mailboxes as mailbox_service
from core.models import ApiToken, Document, DocumentStatus, Mailbox
from core.secrets import SecretBox
from dashboard.app import create_app
from tests.conftest import TenantFixture
from tests.invoicegen import make_invoice_pdf
from tests.services import run_worker_burst
from tests.test_dashboard import csrf_token, login
from tests.test_route_isolation import build_world, methods, url_for_rule

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}

XSS_ISSUER = "<script>alert('issuer')</script> SARL"
XSS_CLIENT = "\"><img src=x onerror=alert('client')>"
XSS_NUMBER = "FA-<svg/onload=alert(1)>"
XSS_FILENAME = "<img src=x onerror=alert('file')>.pdf"
PAYLOADS = ["<script>alert('issuer')</script>", "<img src=x onerror=alert('client')>", "<svg/onload=alert(1)>",
            "<img src=x onerror=alert('file')>"]


def test_every_state_changing_form_needs_its_csrf_token(
    app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    world = build_world(session, storage, tenant)
    client = app.test_client()
    assert login(client, tenant.admin.email, tenant.password).status_code == 302
    checked, failures = 0, []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.rule.startswith("/api/") or rule.endpoint == "static":
            continue  # the API authenticates by bearer token only, never by cookie (tested below)
        for method in set(methods(rule)) & STATE_CHANGING:
            url = url_for_rule(rule, world)
            response = client.open(url, method=method, data={"anything": "1"})
            checked += 1
            if response.status_code != 400:
                failures.append(f"{method} {url} ({rule.endpoint}) without a CSRF token: {response.status_code}")
    assert checked > 30
    assert not failures, "\n".join(failures)


def test_the_api_never_authenticates_by_cookie(app: Flask, tenant: TenantFixture) -> None:
    client = app.test_client()
    assert login(client, tenant.admin.email, tenant.password).status_code == 302
    assert client.get("/imports").status_code == 200  # the session works for pages...
    assert client.get("/api/v1/tenant").status_code == 401  # ...and is nothing to the API
    assert client.get("/api/v1/tenant", headers={"Authorization": f"Bearer {tenant.token}"}).status_code == 200


def _cookie_flags(app: Flask, tenant: TenantFixture) -> str:
    client = app.test_client()
    token = csrf_token(client.get("/login"))
    response = client.post("/login", data={"email": tenant.admin.email, "password": tenant.password,
                                           "csrf_token": token})
    assert response.status_code == 302
    return "; ".join(response.headers.getlist("Set-Cookie"))


def test_session_cookie_is_httponly_samesite_and_secure_behind_tls(
    app: Flask, settings, tenant: TenantFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    flags = _cookie_flags(app, tenant)
    assert "HttpOnly" in flags and "SameSite=Lax" in flags
    monkeypatch.setenv("COOKIE_SECURE", "1")
    secure_app = create_app(settings)
    with secure_app.app_context():
        flags = _cookie_flags(secure_app, tenant)
    assert "Secure" in flags and "HttpOnly" in flags and "SameSite=Lax" in flags


def _hostile_email(to: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Mallory <mallory@evil.example>"
    message["To"] = to
    message["Subject"] = "Facture <script>alert('subject')</script>"
    message["Message-ID"] = "<xss-1@evil.example>"
    message.set_content("<script>alert('body')</script>")
    pdf = make_invoice_pdf(number=XSS_NUMBER, issuer=XSS_ISSUER, client=XSS_CLIENT)
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename=XSS_FILENAME)
    return message.as_bytes(policy=SMTP)


def test_attacker_text_in_a_pdf_and_its_name_is_escaped_on_every_page(
    app: Flask, settings, session: Session, tenant: TenantFixture, smtp_port: int
) -> None:
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as smtp:
        assert smtp.sendmail("mallory@evil.example", [tenant.address], _hostile_email(tenant.address)) == {}
    run_worker_burst(settings)
    doc = session.scalars(select(Document).where(Document.tenant_id == tenant.tenant.id)).one()
    assert doc.status == DocumentStatus.PENDING.value
    # The attacker's strings did reach the data (else this test would prove nothing)...
    stored = " ".join(str(v) for v in (doc.filename, doc.number, doc.client, doc.issuer, doc.title))
    assert "onerror" in stored and "alert" in stored, stored

    client = app.test_client()
    assert login(client, tenant.admin.email, tenant.password).status_code == 302
    pages = ["/pending", f"/documents/{doc.id}", "/imports", "/imports/status", "/invoices", "/clients"]
    seen_escaped = 0
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        body = response.get_data(as_text=True)
        for payload in PAYLOADS:
            assert payload not in body, f"{page} renders {payload!r} unescaped"
            seen_escaped += str(escape(payload)) in body
    assert seen_escaped >= 2  # the review page at least shows them, escaped
    # The API returns them as JSON data, never as HTML.
    api = client.get(f"/api/v1/documents/{doc.id}", headers={"Authorization": f"Bearer {tenant.token}"})
    assert api.status_code == 200 and api.mimetype == "application/json"


def test_traversal_in_attachment_names_stays_inside_storage(
    settings, session: Session, tenant: TenantFixture, smtp_port: int, tmp_path: Path
) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@b.example", tenant.address, "Facture"
    message.set_content("ci-joint")
    pdf = make_invoice_pdf(number="TRAV-1")
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename="../../../../../../tmp/evil.pdf")
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as smtp:
        smtp.sendmail("a@b.example", [tenant.address], message.as_bytes(policy=SMTP))
    run_worker_burst(settings)
    doc = session.scalars(select(Document).where(Document.tenant_id == tenant.tenant.id)).one()
    assert "/" not in doc.filename and ".." not in doc.filename
    root = Path(settings.storage_dir).resolve()
    written = [p.resolve() for p in root.rglob("*") if p.is_file()]
    assert written and all(root in p.parents for p in written)
    assert not Path("/tmp/evil.pdf").exists()


def test_secrets_are_encrypted_or_hashed_at_rest_and_never_logged(
    settings, session: Session, tenant: TenantFixture, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = "Imap-pa55word-that-must-not-leak"
    mailbox_service.save_mailbox(session, SecretBox(settings.secret_key), tenant.tenant.id,
                                 mailbox_service.MailboxInput(host="imap.example.com", port="993",
                                                              security="ssl", username="u", secret=password,
                                                              folder="INBOX", processed_folder=""))
    session.commit()
    row = session.scalars(select(Mailbox).where(Mailbox.tenant_id == tenant.tenant.id)).one()
    assert row.secret_encrypted and password not in row.secret_encrypted
    assert SecretBox(settings.secret_key).decrypt(row.secret_encrypted) == password
    # Neither secret appears anywhere in the database, in any table, nor in the logs.
    dump = " ".join(
        str(value)
        for table in ("mailboxes", "api_tokens", "users")
        for row_ in session.execute(text(f"SELECT * FROM {table}"))  # noqa: S608 - fixed names
        for value in row_
    )
    assert password not in dump and tenant.token not in dump and tenant.password not in dump
    assert session.scalars(select(ApiToken)).first() is not None
    assert password not in caplog.text and tenant.token not in caplog.text
