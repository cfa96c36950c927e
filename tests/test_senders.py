"""Sender control: the allow-list (address and domain), the quarantine and its dashboard actions."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq.job import Job
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.config import Settings
from core.documents import processing
from core.errors import NotFound, ValidationFailed
from core.files.storage import FileStorage
from core.inbound import intake
from core.inbound import senders as svc
from core.models import AuditEvent, InboundMessage, MessageStatus, Role, SenderRule
from tests.conftest import PASSWORD, TenantFixture
from tests.invoicegen import make_email, make_invoice_pdf
from tests.mailauth import authenticated
from worker.queue import connect

PDF_BYTES = make_invoice_pdf()


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def login(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    return client


def receive(session: Session, storage: FileStorage, fixture: TenantFixture, sender: str,
            subject: str = "Facture 42") -> InboundMessage:
    """A mail from ``sender``, DKIM-signed by its domain: an allow-list match counts only for proven senders."""
    raw, verdicts = authenticated(make_email(fixture.address, PDF_BYTES, sender=sender, subject=subject),
                                  svc.sender_address(sender).rpartition("@")[2])
    message = intake.store_message(session, storage, fixture.tenant.id, raw, recipient=fixture.address,
                                   sender_auth=verdicts)
    session.commit()
    processing.ingest_message(session, storage, message.id)
    session.commit()
    session.refresh(message)
    return message


# The allow-list -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("Compta@Dupont.Example", "compta@dupont.example"),
    ("  @dupont.example ", "@dupont.example"),
    ("*@dupont.example", "@dupont.example"),
    ("@dupont.example.", "@dupont.example"),
])
def test_patterns_are_normalised(text: str, expected: str):
    assert svc.normalize_pattern(text) == expected


@pytest.mark.parametrize("text", ["", "dupont.example", "@", "a@b", "a b@c.example", "x@-bad-.example",
                                  "<a@b.example>", "a@" + "x" * 300 + ".example"])
def test_invalid_patterns_are_refused(text: str):
    with pytest.raises(ValidationFailed):
        svc.normalize_pattern(text)


def test_matching_by_address_and_by_domain(session: Session, tenant: TenantFixture, other_tenant: TenantFixture):
    tid = tenant.tenant.id
    assert svc.is_allowed(session, tid, "anyone@anywhere.example")  # empty list: the filter is off
    svc.add_rule(session, tid, "Marie.Martin@Client.example")
    svc.add_rule(session, tid, "@dupont.example")
    svc.add_rule(session, tid, "@dupont.example")  # twice: one rule
    session.commit()
    assert [r.pattern for r in svc.list_rules(session, tid)] == ["@dupont.example", "marie.martin@client.example"]
    assert svc.is_allowed(session, tid, "marie.martin@client.example")
    assert svc.is_allowed(session, tid, "facturation@dupont.example")
    assert not svc.is_allowed(session, tid, "paul@client.example")  # the address, not its domain
    assert not svc.is_allowed(session, tid, "x@sub.dupont.example")  # the domain exactly
    assert not svc.is_allowed(session, tid, "x@dupont.example.evil.example")
    assert not svc.is_allowed(session, tid, None)
    assert svc.is_allowed(session, other_tenant.tenant.id, "paul@client.example")  # another tenant's list is its own
    assert svc.sender_address('"Dupont, Compta" <Compta@Dupont.example>') == "compta@dupont.example"
    assert svc.sender_address("a@x.example, b@y.example") is None
    with pytest.raises(NotFound):
        svc.remove_rule(session, other_tenant.tenant.id, svc.list_rules(session, tid)[0].id)


def test_forwarded_mail_is_matched_on_the_forwarding_person(session: Session, storage: FileStorage,
                                                            tenant: TenantFixture):
    svc.add_rule(session, tenant.tenant.id, "claire@acme.example")
    session.commit()
    supplier = make_email(tenant.address, PDF_BYTES, sender="compta@supplier.example")
    from email import policy
    from email.message import EmailMessage
    from email.parser import BytesParser

    forward = EmailMessage()
    forward["From"], forward["To"], forward["Subject"] = "Claire <claire@acme.example>", tenant.address, "Fwd: Facture"
    forward.set_content("Pour info")
    forward.add_attachment(BytesParser(policy=policy.default).parsebytes(supplier))
    raw, verdicts = authenticated(forward.as_bytes(), "acme.example")
    message = intake.store_message(session, storage, tenant.tenant.id, raw, recipient=tenant.address,
                                   sender_auth=verdicts)
    session.commit()
    processing.ingest_message(session, storage, message.id)
    session.commit()
    assert message.status == MessageStatus.PROCESSED.value and len(message.documents) == 1


# The quarantine ----------------------------------------------------------------------------------


def test_unlisted_sender_is_quarantined_and_released_from_the_dashboard(
    app: Flask, session: Session, storage: FileStorage, settings: Settings, tenant: TenantFixture
):
    svc.add_rule(session, tenant.tenant.id, "@dupont.example")
    session.commit()
    allowed = receive(session, storage, tenant, "Compta <compta@dupont.example>")
    held = receive(session, storage, tenant, "Spam <promo@newsletter.example>", subject="Offre <b>spéciale</b>")
    assert allowed.status == MessageStatus.PROCESSED.value
    assert held.status == MessageStatus.QUARANTINED.value and held.documents == []
    assert held.reason == svc.NOT_ALLOWED_REASON.format(sender="promo@newsletter.example")
    # Running the job again keeps it held (idempotent), and the sweep does not pick it up.
    processing.ingest_message(session, storage, held.id)
    session.commit()
    assert held.status == MessageStatus.QUARANTINED.value
    assert held.id not in intake.messages_to_requeue(session, __import__("datetime").timedelta(0))

    client = login(app, tenant.admin.email)
    page = client.get("/quarantine")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "promo@newsletter.example" in html and "Offre &lt;b&gt;spéciale&lt;/b&gt;" in html
    assert "not on your list of allowed senders" in html and "compta@dupont.example" not in html
    assert "In quarantine" in client.get("/imports").get_data(as_text=True)

    assert client.post(f"/quarantine/{held.id}/release", data={"csrf_token": "forged"}).status_code == 400
    session.refresh(held)
    assert held.status == MessageStatus.QUARANTINED.value

    response = client.post(f"/quarantine/{held.id}/release", data={"csrf_token": csrf_token(html)})
    assert response.status_code == 302
    session.refresh(held)
    assert held.status == MessageStatus.QUEUED.value and held.released_by == tenant.admin.email
    job = Job.fetch(f"ingest-message-{held.id}", connection=connect(settings))
    assert job.args == (held.id,)
    # The worker's step: the released message is now processed like any other.
    processing.ingest_message(session, storage, held.id)
    session.commit()
    session.refresh(held)
    assert held.status == MessageStatus.PROCESSED.value and len(held.documents) == 1
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == tenant.tenant.id)).all()
    assert "quarantine.release" in actions


def test_delete_from_quarantine_keeps_the_raw_message(app: Flask, session: Session, storage: FileStorage,
                                                      tenant: TenantFixture):
    svc.add_rule(session, tenant.tenant.id, "compta@dupont.example")
    session.commit()
    held = receive(session, storage, tenant, "someone@else.example")
    client = login(app, tenant.admin.email)
    token = csrf_token(client.get("/quarantine").get_data(as_text=True))
    assert client.post(f"/quarantine/{held.id}/delete", data={}).status_code == 400  # no CSRF token
    assert client.post(f"/quarantine/{held.id}/delete", data={"csrf_token": token}).status_code == 302
    session.refresh(held)
    assert held.status == MessageStatus.IGNORED.value
    assert held.reason == f"Deleted from quarantine by {tenant.admin.email}"
    assert storage.exists(held.raw_key)
    # Deleted twice or released after deletion: refused with a message, nothing changes.
    response = client.post(f"/quarantine/{held.id}/release", data={"csrf_token": token}, follow_redirects=True)
    assert "no longer in quarantine" in response.get_data(as_text=True)
    session.refresh(held)
    assert held.status == MessageStatus.IGNORED.value
    assert "Nothing in quarantine" in client.get("/quarantine").get_data(as_text=True)


def test_another_tenants_quarantine_is_not_found(app: Flask, session: Session, storage: FileStorage,
                                                 tenant: TenantFixture, other_tenant: TenantFixture):
    svc.add_rule(session, other_tenant.tenant.id, "@globex.example")
    session.commit()
    held = receive(session, storage, other_tenant, "stranger@else.example")
    assert held.status == MessageStatus.QUARANTINED.value
    client = login(app, tenant.admin.email)
    token = csrf_token(client.get("/quarantine").get_data(as_text=True))
    assert "stranger@else.example" not in client.get("/quarantine").get_data(as_text=True)
    for action in ("release", "delete"):
        assert client.post(f"/quarantine/{held.id}/{action}", data={"csrf_token": token}).status_code == 404
    session.refresh(held)
    assert held.status == MessageStatus.QUARANTINED.value


def test_settings_page_is_for_admins_and_uses_csrf(app: Flask, session: Session, tenant: TenantFixture):
    client = login(app, tenant.admin.email)
    page = client.get("/settings/senders")
    assert page.status_code == 200 and "No sender listed" in page.get_data(as_text=True)
    assert "/settings/senders" in client.get("/settings").get_data(as_text=True)
    token = csrf_token(page.get_data(as_text=True))
    assert client.post("/settings/senders", data={"pattern": "@dupont.example"}).status_code == 400
    assert session.scalars(select(SenderRule)).all() == []
    bad = client.post("/settings/senders", data={"pattern": "<script>x", "csrf_token": token})
    assert bad.status_code == 400 and "Enter an email address" in bad.get_data(as_text=True)
    assert "<script>x" not in bad.get_data(as_text=True)
    assert client.post("/settings/senders", data={"pattern": "@Dupont.example", "csrf_token": token}).status_code == 302
    [rule] = session.scalars(select(SenderRule)).all()
    assert (rule.tenant_id, rule.pattern, rule.created_by) == (tenant.tenant.id, "@dupont.example", tenant.admin.email)
    assert "@dupont.example" in client.get("/settings/senders").get_data(as_text=True)
    assert client.post(f"/settings/senders/{rule.id}/remove", data={"csrf_token": token}).status_code == 302
    session.expire_all()
    assert session.scalars(select(SenderRule)).all() == []


def test_member_cannot_change_the_list(app: Flask, session: Session, tenant: TenantFixture):
    from core.tenancy import accounts

    accounts.create_user(session, "clerk@acme.example", PASSWORD, tenant.tenant, Role.MEMBER)
    session.commit()
    client = login(app, "clerk@acme.example")
    assert client.get("/settings/senders").status_code == 403
    token = csrf_token(client.get("/quarantine").get_data(as_text=True))
    assert client.post("/settings/senders", data={"pattern": "@x.example", "csrf_token": token}).status_code == 403
    assert session.scalars(select(SenderRule)).all() == []


def test_authentication_results_shown_on_imports_and_review(app: Flask, session: Session, storage: FileStorage,
                                                            tenant: TenantFixture):
    raw = (b"Authentication-Results: mx.google.com; spf=softfail smtp.mailfrom=x.example; dkim=pass;"
           b" dmarc=fail header.from=x.example\r\n" + make_email(tenant.address, PDF_BYTES))
    message = intake.store_message(session, storage, tenant.tenant.id, raw, recipient=tenant.address)
    session.commit()
    processing.ingest_message(session, storage, message.id)
    session.commit()
    [doc] = message.documents
    client = login(app, tenant.admin.email)
    imports = client.get("/imports").get_data(as_text=True)
    assert "SPF softfail" in imports and "DKIM pass" in imports and "DMARC fail" in imports
    review = client.get(f"/documents/{doc.id}").get_data(as_text=True)
    assert "Sender checks upstream" in review and "DMARC fail" in review


def test_rerunning_an_imported_message_after_the_list_changed_keeps_it(session: Session, storage: FileStorage,
                                                                       tenant: TenantFixture):
    message = receive(session, storage, tenant, "someone@else.example")
    assert message.status == MessageStatus.PROCESSED.value
    svc.add_rule(session, tenant.tenant.id, "@dupont.example")
    session.commit()
    processing.ingest_message(session, storage, message.id)
    session.commit()
    assert message.status == MessageStatus.PROCESSED.value and len(message.documents) == 1
