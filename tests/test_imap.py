"""The IMAP poller against a real Dovecot, with the real database, Redis and file storage.

``IMAP_TEST_MESSAGES`` sets the size of the kill/restart/UIDVALIDITY run (default 100; 500 for the
full-size run described in docs/imap.md).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from core.config import Settings
from core.inbound import mailboxes as svc
from core.models import (
    InboundMessage,
    Mailbox,
    MailboxImport,
    MailboxImportOutcome,
    MessageSource,
    Role,
)
from core.secrets import SecretBox, SecretError
from mailgate.imap import ImapPoller, MailboxWorker, PollerConfig
from tests.conftest import INBOUND_DOMAIN, PASSWORD, make_tenant
from tests.dovecot import IMAP_PASSWORD, DovecotServer
from tests.services import process_env

REPO = Path(__file__).resolve().parents[1]
FAST = PollerConfig(
    poll_interval=0.5, idle_timeout=30, backoff_base=0.2, backoff_max=1.0, reload_interval=0.5, timeout=10,
    shutdown_grace=5,
)
FAST_ENV = {
    "IMAP_POLL_INTERVAL": "0.5",
    "IMAP_BACKOFF_BASE": "0.2",
    "IMAP_BACKOFF_MAX": "1",
    "IMAP_RELOAD_INTERVAL": "0.5",
    "IMAP_TIMEOUT": "10",
}


@pytest.fixture(autouse=True)
def _enabled_loggers() -> None:
    # The Alembic env.py of the migration fixtures disables loggers that existed before it ran.
    for name in ("mailgate", "mailgate.imap", "worker.sweep"):
        logging.getLogger(name).disabled = False


def make_raw(n: int, *, to: str = "invoices@example.test", extra: str = "", tag: str = "t") -> bytes:
    return (
        f"From: Supplier <billing@supplier.example>\r\n"
        f"To: {to}\r\n{extra}"
        f"Subject: Invoice {tag}-{n}\r\n"
        f"Message-ID: <{tag}-{n}@supplier.example>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Facture {tag}-{n}\r\n"
    ).encode()


def add_mailbox(session_factory, settings: Settings, tenant_id: int | None, server: DovecotServer, **fields) -> int:
    data = svc.MailboxInput(
        host=server.host, port=str(server.port), security="plain", username="inbox", secret=IMAP_PASSWORD,
        folder=fields.pop("folder", "INBOX"), processed_folder=fields.pop("processed_folder", ""),
    )
    with session_factory() as session:
        mailbox = svc.save_mailbox(session, SecretBox(settings.secret_key), tenant_id, data)
        for name, value in fields.items():
            setattr(mailbox, name, value)
        session.commit()
        return mailbox.id


@contextmanager
def running_poller(settings: Settings, catch_all: list[str] | None = None) -> Iterator[ImapPoller]:
    poller = ImapPoller(settings, FAST, catch_all_urls=catch_all)
    stop = threading.Event()
    thread = threading.Thread(target=poller.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield poller
    finally:
        stop.set()
        thread.join(15)
        assert not thread.is_alive(), "the poller did not stop"


def wait_for(predicate: Callable[[], object], timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def count_messages(session_factory, tenant_id: int | None = None) -> int:
    with session_factory() as session:
        stmt = select(func.count(InboundMessage.id))
        if tenant_id is not None:
            stmt = stmt.where(InboundMessage.tenant_id == tenant_id)
        return session.scalar(stmt) or 0


def message_ids_per_tenant(session_factory) -> Counter[tuple[int, str | None]]:
    with session_factory() as session:
        rows = session.execute(select(InboundMessage.tenant_id, InboundMessage.message_id_header)).all()
    return Counter((tenant_id, mid) for tenant_id, mid in rows)


def folder_flags(server: DovecotServer, folder: str) -> list[tuple[bytes, ...]]:
    with server.client() as client:
        client.select_folder(folder, readonly=True)
        uids = sorted(client.search())
        fetched = client.fetch(uids, ["FLAGS"]) if uids else {}
        return [fetched[uid][b"FLAGS"] for uid in uids]


def mailbox_row(session_factory, mailbox_id: int) -> Mailbox:
    with session_factory() as session:
        mailbox = session.get(Mailbox, mailbox_id)
        assert mailbox is not None
        session.expunge(mailbox)
        return mailbox


# Importing, flagging, moving ---------------------------------------------------------------


def test_messages_are_stored_then_flagged_seen(dovecot, settings, session_factory, tenant, caplog):
    caplog.set_level(logging.INFO, logger="mailgate.imap")
    mailbox_id = add_mailbox(session_factory, settings, tenant.tenant.id, dovecot)
    with dovecot.client() as client:
        for n in range(3):  # waiting before the poller starts
            client.append("INBOX", make_raw(n))
    with running_poller(settings):
        wait_for(lambda: count_messages(session_factory) == 3, what="3 messages")
        with dovecot.client() as client:  # delivered while it waits in IDLE
            client.append("INBOX", make_raw(3))
        wait_for(lambda: count_messages(session_factory) == 4, what="the 4th message")
        wait_for(lambda: all(b"\\Seen" in f for f in folder_flags(dovecot, "INBOX")), what="\\Seen flags")
    with session_factory() as session:
        messages = list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))
        assert {m.source for m in messages} == {MessageSource.IMAP.value}
        assert [m.message_id_header for m in messages] == [f"<t-{n}@supplier.example>" for n in range(4)]
        assert all(m.tenant_id == tenant.tenant.id for m in messages)
        raw = (settings.storage_dir / messages[0].raw_key).read_bytes()
        assert raw.replace(b"\r\n", b"\n") == make_raw(0).replace(b"\r\n", b"\n")
        imports = list(session.scalars(select(MailboxImport).where(MailboxImport.mailbox_id == mailbox_id)))
        assert len(imports) == 4 and all(i.settled and i.outcome == "stored" for i in imports)
    mailbox = mailbox_row(session_factory, mailbox_id)
    assert mailbox.last_success_at is not None and mailbox.last_error is None
    # One connection all along: IDLE woke it for the 4th message, no reconnect, no restart.
    assert caplog.text.count("connected (uidvalidity=") == 1


def test_processed_folder_receives_the_stored_messages(dovecot, settings, session_factory, tenant):
    add_mailbox(session_factory, settings, tenant.tenant.id, dovecot, processed_folder="Processed")
    with dovecot.client() as client:
        for n in range(5):
            client.append("INBOX", make_raw(n))
    with running_poller(settings):
        wait_for(lambda: count_messages(session_factory) == 5, what="5 messages")
        wait_for(lambda: len(folder_flags(dovecot, "Processed")) == 5, what="5 moved messages")
    assert folder_flags(dovecot, "INBOX") == []
    assert all(b"\\Seen" in flags for flags in folder_flags(dovecot, "Processed"))


def test_a_crash_between_store_and_flag_never_imports_twice(dovecot, settings, session_factory, tenant):
    mailbox_id = add_mailbox(session_factory, settings, tenant.tenant.id, dovecot)
    with dovecot.client() as client:
        client.append("INBOX", make_raw(1))
        uidvalidity = client.select_folder("INBOX")[b"UIDVALIDITY"]
        uid = client.search()[0]
        raw = client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
    # A previous run stored it (the same code path), then died before flagging it.
    worker = MailboxWorker(mailbox_id, None, settings, session_factory, lambda: None, FAST)  # type: ignore[arg-type]
    with session_factory() as session:
        from mailgate.imap import MailboxSpec

        spec = MailboxSpec.load(session.get(Mailbox, mailbox_id), SecretBox(settings.secret_key))
    worker._import_one(spec, uidvalidity, uid, raw, len(raw))
    assert count_messages(session_factory) == 1
    assert folder_flags(dovecot, "INBOX") == [()]
    with running_poller(settings):
        wait_for(lambda: folder_flags(dovecot, "INBOX") == [(b"\\Seen",)], what="the late \\Seen flag")
        wait_for(lambda: mailbox_row(session_factory, mailbox_id).last_success_at is not None, what="success")
    assert count_messages(session_factory) == 1
    with session_factory() as session:
        assert session.scalars(select(MailboxImport)).one().settled


def test_too_large_message_is_left_unread_with_a_reason(dovecot, settings, session_factory, tenant):
    from dataclasses import replace

    small = replace(settings, max_message_bytes=2000)
    mailbox_id = add_mailbox(session_factory, small, tenant.tenant.id, dovecot)
    with dovecot.client() as client:
        client.append("INBOX", make_raw(1, extra="X-Padding: " + "x" * 3000 + "\r\n"))
        client.append("INBOX", make_raw(2))
    with running_poller(small):
        wait_for(lambda: count_messages(session_factory) == 1, what="the small message")
        wait_for(lambda: b"\\Seen" in folder_flags(dovecot, "INBOX")[1], what="the small one flagged")
    assert folder_flags(dovecot, "INBOX")[0] == ()  # the large one: still unread, for a person
    with session_factory() as session:
        rejected = session.scalars(
            select(MailboxImport).where(MailboxImport.mailbox_id == mailbox_id, MailboxImport.outcome == "rejected")
        ).one()
        assert "too large" in (rejected.reason or "")


def test_without_idle_or_move_it_polls_and_copies_then_expunges(settings, session_factory, tenant, caplog):
    caplog.set_level(logging.INFO, logger="mailgate.imap")
    workdir = Path(tempfile.mkdtemp(prefix="inbox-dovecot-"))
    workdir.chmod(0o755)
    # The server advertises neither IDLE nor MOVE: the poller polls, and moves by COPY + UID EXPUNGE.
    server = DovecotServer(workdir, users={"inbox": IMAP_PASSWORD}, extra_conf="imap_capability = IMAP4rev1 UIDPLUS")
    server.start()
    try:
        with server.client() as client:
            assert not client.has_capability("IDLE") and not client.has_capability("MOVE")
        add_mailbox(session_factory, settings, tenant.tenant.id, server, processed_folder="Done")
        with running_poller(settings):
            with server.client() as client:
                client.append("INBOX", make_raw(1))
            wait_for(lambda: count_messages(session_factory) == 1, what="the polled message")
            with server.client() as client:
                client.append("INBOX", make_raw(2))
            wait_for(lambda: len(folder_flags(server, "Done")) == 2, what="2 messages copied to Done")
        assert folder_flags(server, "INBOX") == []
        assert count_messages(session_factory) == 2
        assert "no IDLE: polling every 0.5s" in caplog.text
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_connections_verify_the_certificate(settings, session_factory, tenant, monkeypatch, security):
    workdir = Path(tempfile.mkdtemp(prefix="inbox-dovecot-"))
    workdir.chmod(0o755)
    server = DovecotServer(workdir, users={"inbox": IMAP_PASSWORD}, tls=True)
    server.start()
    try:
        port = server.tls_port if security == "ssl" else server.port
        mailbox_id = add_mailbox(session_factory, settings, tenant.tenant.id, server)
        with session_factory() as session:
            mailbox = session.get(Mailbox, mailbox_id)
            mailbox.security, mailbox.port = security, port
            session.commit()
        with server.client() as client:
            client.append("INBOX", make_raw(1))
        # An untrusted (self-signed) certificate is refused, and says so.
        with running_poller(settings):
            wait_for(lambda: mailbox_row(session_factory, mailbox_id).last_error, what="the certificate error")
        assert "CERTIFICATE_VERIFY_FAILED" in (mailbox_row(session_factory, mailbox_id).last_error or "")
        assert count_messages(session_factory) == 0
        # Trusted through IMAP_CA_FILE: imported over TLS.
        monkeypatch.setenv("IMAP_CA_FILE", str(server.cert_path))
        with running_poller(settings):
            wait_for(lambda: count_messages(session_factory) == 1, what="the message over TLS")
            wait_for(lambda: mailbox_row(session_factory, mailbox_id).last_error is None, what="error cleared")
        assert "TLS" in server.log_path.read_text()
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


class OAuthProvider:
    """A local stand-in for Google's / Microsoft's OAuth2 server: the token endpoint (refresh grant) the
    poller calls, and the RFC 7662 introspection endpoint Dovecot checks access tokens with."""

    def __init__(self) -> None:
        import json
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs

        self.active_tokens = {"pasted-access-token-1a2b"}
        self.grants: list[dict[str, str]] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if self.path == "/token":
                    provider.grants.append(form)
                    ok = (form.get("grant_type"), form.get("refresh_token"), form.get("client_id"),
                          form.get("client_secret")) == ("refresh_token", "refresh-5e6f", "client-1", "client-secret-9")
                    status, body = (200, {"access_token": "fresh-access-7c8d", "expires_in": 3600}) if ok else (
                        400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
                    if ok:
                        provider.active_tokens.add("fresh-access-7c8d")
                else:  # /introspect, called by Dovecot
                    active = form.get("token") in provider.active_tokens
                    status, body = 200, ({"active": True, "username": "inbox"} if active else {"active": False})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def oauth_dovecot() -> Iterator[tuple[DovecotServer, OAuthProvider]]:
    provider = OAuthProvider()
    workdir = Path(tempfile.mkdtemp(prefix="inbox-dovecot-"))
    workdir.chmod(0o755)
    server = DovecotServer(
        workdir, users={"inbox": IMAP_PASSWORD}, oauth2_introspection_url=f"{provider.url}/introspect"
    )
    server.start()
    yield server, provider
    server.stop()
    provider.close()
    shutil.rmtree(workdir, ignore_errors=True)


def _oauth_mailbox(session_factory, settings, tenant_id: int, server: DovecotServer, **fields: str) -> int:
    data = svc.MailboxInput(host=server.host, port=str(server.port), security="plain", username="inbox",
                            auth="xoauth2", **fields)
    with session_factory() as session:
        mailbox = svc.save_mailbox(session, SecretBox(settings.secret_key), tenant_id, data)
        session.commit()
        return mailbox.id


def test_xoauth2_with_a_pasted_access_token(oauth_dovecot, settings, session_factory, tenant, caplog):
    caplog.set_level(logging.DEBUG)
    server, _provider = oauth_dovecot
    _oauth_mailbox(session_factory, settings, tenant.tenant.id, server, secret="pasted-access-token-1a2b")
    with server.client() as client:
        client.append("INBOX", make_raw(1))
    with running_poller(settings):
        wait_for(lambda: count_messages(session_factory) == 1, what="the message over XOAUTH2")
    assert "method=XOAUTH2" in server.log_path.read_text()
    assert "pasted-access-token-1a2b" not in caplog.text


def test_xoauth2_refresh_token_is_exchanged_at_the_token_endpoint(
    oauth_dovecot, settings, session_factory, tenant, caplog, monkeypatch
):
    caplog.set_level(logging.DEBUG)
    server, provider = oauth_dovecot
    # The provider's token endpoint is a setting (OAUTH_GOOGLE_TOKEN_URL).
    settings = replace(settings, oauth_google=replace(settings.oauth_google, token_url=f"{provider.url}/token"))
    mailbox_id = _oauth_mailbox(
        session_factory, settings, tenant.tenant.id, server, oauth_provider="google", oauth_client_id="client-1",
        oauth_client_secret="wrong-secret", oauth_refresh_token="refresh-5e6f",
    )
    with server.client() as client:
        client.append("INBOX", make_raw(1))
    # A refused exchange: the provider's answer is the mailbox's last error.
    with running_poller(settings):
        wait_for(lambda: mailbox_row(session_factory, mailbox_id).last_error, what="the refused exchange")
    assert "Token has been expired or revoked" in (mailbox_row(session_factory, mailbox_id).last_error or "")
    assert count_messages(session_factory) == 0
    with session_factory() as session:
        data = svc.MailboxInput(host=server.host, port=str(server.port), security="plain", username="inbox",
                                auth="xoauth2", oauth_provider="google", oauth_client_id="client-1",
                                oauth_client_secret="client-secret-9")
        svc.save_mailbox(session, SecretBox(settings.secret_key), tenant.tenant.id, data, mailbox_id)
        stored = session.get(Mailbox, mailbox_id)
        assert "refresh-5e6f" not in (stored.oauth_refresh_token_encrypted or "")
        assert "client-secret-9" not in (stored.oauth_client_secret_encrypted or "")
        session.commit()
    with running_poller(settings):
        wait_for(lambda: count_messages(session_factory) == 1, what="the message after the exchange")
    assert provider.grants[-1]["grant_type"] == "refresh_token"
    for secret in ("refresh-5e6f", "client-secret-9", "fresh-access-7c8d", "wrong-secret"):
        assert secret not in caplog.text


# Catch-all routing ---------------------------------------------------------------------------


def test_catch_all_routes_by_recipient_headers_once_per_tenant(dovecot, settings, session_factory, session):
    acme = make_tenant(session, "Acme", "a@acme.example")
    globex = make_tenant(session, "Globex", "a@globex.example")
    upper_acme = acme.address.upper().replace(INBOUND_DOMAIN.upper(), INBOUND_DOMAIN)
    messages = {
        "to": make_raw(1, to=acme.address, tag="to"),
        "cc": make_raw(2, to="someone@else.example", extra=f"Cc: Globex <{globex.address}>\r\n", tag="cc"),
        "delivered": make_raw(3, to="list@else.example", extra=f"Delivered-To: {upper_acme}\r\n", tag="dt"),
        "both": make_raw(4, to=f"{acme.address}, {globex.address}", extra=f"X-Original-To: {globex.address}\r\n",
                         tag="both"),
        "plus": make_raw(5, to=acme.address.replace("@", "+invoices@"), tag="plus"),
        "none": make_raw(6, to="nobody@else.example", tag="none"),
    }
    with dovecot.client() as client:
        for raw in messages.values():
            client.append("INBOX", raw)
    url = f"imap://inbox:{IMAP_PASSWORD}@{dovecot.host}:{dovecot.port}/INBOX"
    with running_poller(settings, catch_all=[url]):
        wait_for(lambda: count_messages(session_factory) == 6, what="6 stored messages")
        wait_for(lambda: len(folder_flags(dovecot, "Unrouted")) == 1, what="the unrouted message moved")
    counts = message_ids_per_tenant(session_factory)
    a, g = acme.tenant.id, globex.tenant.id
    assert counts == Counter({
        (a, "<to-1@supplier.example>"): 1,
        (g, "<cc-2@supplier.example>"): 1,
        (a, "<dt-3@supplier.example>"): 1,
        (a, "<both-4@supplier.example>"): 1,
        (g, "<both-4@supplier.example>"): 1,
        (a, "<plus-5@supplier.example>"): 1,
    })
    with session_factory() as session:
        catch_all = session.scalars(select(Mailbox).where(Mailbox.tenant_id.is_(None))).one()
        assert IMAP_PASSWORD not in (catch_all.secret_encrypted or "")
        unrouted = session.scalars(select(MailboxImport).where(MailboxImport.outcome == "unrouted")).one()
        assert unrouted.message_id_header == "<none-6@supplier.example>" and unrouted.reason
    assert all(b"\\Seen" in flags for flags in folder_flags(dovecot, "INBOX"))
    assert len(folder_flags(dovecot, "INBOX")) == 5


def test_over_the_storage_quota_the_message_stays_on_the_server_with_the_reason(
    dovecot, settings, session_factory, tenant, storage
):
    from dataclasses import replace

    from core.inbound import intake

    with session_factory() as session:  # 0.6 MB stored of the 1 MB allowed
        intake.store_message(session, storage, tenant.tenant.id,
                             b"Subject: big\r\n\r\n" + b"x" * 600_000, recipient=tenant.address)
        session.commit()
    full = replace(settings, tenant_max_storage_mb=1)
    mailbox_id = add_mailbox(session_factory, full, tenant.tenant.id, dovecot)
    with dovecot.client() as client:
        client.append("INBOX", make_raw(1, extra="X-Padding: " + "x" * 500_000 + "\r\n"))
    with running_poller(full):
        wait_for(lambda: mailbox_row(session_factory, mailbox_id).last_error, what="the quota error")
    error = mailbox_row(session_factory, mailbox_id).last_error or ""
    assert "left on the server" in error and "of its 1 MB" in error
    assert count_messages(session_factory) == 1 and folder_flags(dovecot, "INBOX") == [()]  # unread, there
    with session_factory() as session:
        assert session.scalars(select(MailboxImport)).all() == []
    # Room again (the operator raised the quota): the same message comes in, and the error clears.
    with running_poller(replace(settings, tenant_max_storage_mb=2)):
        wait_for(lambda: count_messages(session_factory) == 2, what="the message once there is room")
        wait_for(lambda: mailbox_row(session_factory, mailbox_id).last_error is None, what="error cleared")


# Failures, backoff, secrets ------------------------------------------------------------------


def test_connection_failure_is_recorded_then_recovery(dovecot, settings, session_factory, tenant, caplog):
    caplog.set_level(logging.DEBUG)
    mailbox_id = add_mailbox(session_factory, settings, tenant.tenant.id, dovecot)
    dovecot.stop()
    with running_poller(settings):
        wait_for(lambda: mailbox_row(session_factory, mailbox_id).last_error, what="last_error")
        first_error_at = mailbox_row(session_factory, mailbox_id).last_error_at
        # Retried with backoff: the error is recorded again, later.
        wait_for(lambda: mailbox_row(session_factory, mailbox_id).last_error_at != first_error_at, what="a retry")
        assert mailbox_row(session_factory, mailbox_id).last_success_at is None
        dovecot.start()  # same port
        with dovecot.client() as client:
            client.append("INBOX", make_raw(1))
        wait_for(lambda: count_messages(session_factory) == 1, what="the message after recovery")
        wait_for(lambda: mailbox_row(session_factory, mailbox_id).last_error is None, what="error cleared")
    mailbox = mailbox_row(session_factory, mailbox_id)
    assert mailbox.last_success_at is not None and mailbox.last_error_at is not None
    assert "retrying in" in caplog.text
    assert IMAP_PASSWORD not in caplog.text


def test_password_is_encrypted_at_rest_and_never_logged(dovecot, settings, session_factory, tenant, caplog):
    caplog.set_level(logging.DEBUG)
    mailbox_id = add_mailbox(session_factory, settings, tenant.tenant.id, dovecot)
    with session_factory() as session:
        stored = session.get(Mailbox, mailbox_id).secret_encrypted
    assert stored and IMAP_PASSWORD not in stored
    assert SecretBox(settings.secret_key).decrypt(stored) == IMAP_PASSWORD
    with pytest.raises(SecretError, match="key changed"):
        SecretBox("another-secret-key").decrypt(stored)
    # A wrong password: the server refuses, the error is recorded, and no password appears anywhere.
    wrong = "Wr0ng-pass-9c1e-unlogged"
    with session_factory() as session:
        mailbox = session.get(Mailbox, mailbox_id)
        mailbox.secret_encrypted = SecretBox(settings.secret_key).encrypt(wrong)
        session.commit()
    with running_poller(settings):
        wait_for(lambda: mailbox_row(session_factory, mailbox_id).last_error, what="the login error")
    error = mailbox_row(session_factory, mailbox_id).last_error or ""
    assert "auth" in error.lower()
    assert wrong not in error and wrong not in caplog.text and IMAP_PASSWORD not in caplog.text


def test_mailbox_key_takes_over_and_rotates_without_losing_secrets():
    old_box = SecretBox("the-secret-key")
    under_secret_key = old_box.encrypt("pw-1")
    with_mailbox_key = SecretBox("the-secret-key", "mailbox-key-A")
    assert with_mailbox_key.decrypt(under_secret_key) == "pw-1"  # introduced later: old secrets still readable
    under_a = with_mailbox_key.encrypt("pw-2")
    with pytest.raises(SecretError):
        old_box.decrypt(under_a)  # really encrypted under MAILBOX_KEY now
    rotated = SecretBox("the-secret-key", "mailbox-key-B,mailbox-key-A")
    assert rotated.decrypt(under_a) == "pw-2" and rotated.decrypt(under_secret_key) == "pw-1"
    assert "pw" not in repr(rotated) and "mailbox-key" not in repr(rotated)


# The real process: kill, restart, UIDVALIDITY change ---------------------------------------


def start_poller_process(settings: Settings, log_file: Path) -> subprocess.Popen[bytes]:
    env = process_env(settings) | FAST_ENV
    with log_file.open("ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "dashboard.cli", "imap"], cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT
        )


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    proc.send_signal(sig)
    return proc.wait(timeout=30)


def test_each_message_imported_exactly_once_across_kill_restart_and_uidvalidity_change(
    dovecot, settings, session_factory, tenant, tmp_path
):
    total = int(os.environ.get("IMAP_TEST_MESSAGES", "100"))
    half = total // 2
    folder = "Invoices"
    with dovecot.client() as client:
        client.create_folder(folder)
    mailbox_id = add_mailbox(session_factory, settings, tenant.tenant.id, dovecot, folder=folder)
    log_file = tmp_path / "imap.log"
    started = time.monotonic()

    def deliver(numbers: range) -> None:
        with dovecot.client() as client:
            for n in numbers:
                client.append(folder, make_raw(n))

    proc = start_poller_process(settings, log_file)
    try:
        # First half delivered while the poller runs; SIGKILL once some (not all) are stored.
        sender = threading.Thread(target=deliver, args=(range(half),))
        sender.start()
        wait_for(lambda: count_messages(session_factory) >= max(1, half // 4), 120, "a first part")
        proc.kill()
        proc.wait(timeout=30)
        sender.join(60)
        killed_at = count_messages(session_factory)
        deliver(range(half, total))  # the second half arrives while it is down
        proc = start_poller_process(settings, log_file)
        wait_for(lambda: count_messages(session_factory) == total, 300, f"{total} messages")
        wait_for(lambda: all(b"\\Seen" in f for f in folder_flags(dovecot, folder)), 60, "all flagged")
        assert stop_process(proc) == 0  # SIGTERM: a graceful stop
        first_run = time.monotonic() - started

        # UIDVALIDITY change: the folder is recreated and the same messages (plus new ones) land in it.
        with dovecot.client() as client:
            old_validity = client.select_folder(folder)[b"UIDVALIDITY"]
            client.close_folder()
            client.rename_folder(folder, "Invoices-old")
            client.create_folder(folder)
            new_validity = client.select_folder(folder)[b"UIDVALIDITY"]
        assert new_validity != old_validity
        deliver(range(total + 5))
        proc = start_poller_process(settings, log_file)
        wait_for(lambda: count_messages(session_factory) == total + 5, 300, "the 5 new messages")
        wait_for(lambda: all(b"\\Seen" in f for f in folder_flags(dovecot, folder)), 60, "all flagged again")
        assert stop_process(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)

    counts = message_ids_per_tenant(session_factory)
    assert len(counts) == total + 5
    assert set(counts.values()) == {1}, [k for k, v in counts.items() if v != 1][:5]
    assert len(folder_flags(dovecot, folder)) == total + 5
    with session_factory() as session:
        outcomes = Counter(
            session.scalars(select(MailboxImport.outcome).where(MailboxImport.mailbox_id == mailbox_id))
        )
        assert outcomes[MailboxImportOutcome.DUPLICATE.value] == total
        assert session.get(Mailbox, mailbox_id).uidvalidity == new_validity
    log_text = log_file.read_text(errors="replace")
    assert IMAP_PASSWORD not in log_text
    assert "UIDVALIDITY changed" in log_text
    print(f"\n{total} messages, killed at {killed_at}: imported in {first_run:.1f}s (before the UIDVALIDITY step)")


# Settings pages ------------------------------------------------------------------------------


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def logged_in(app, email: str) -> FlaskClient:
    client = app.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code in (302, 303)
    return client


FORM = {
    "name": "Factures", "host": "imap.example.com", "port": "993", "security": "ssl",
    "username": "factures@acme.example", "auth": "password", "secret": IMAP_PASSWORD, "folder": "INBOX",
    "processed_folder": "Imported", "enabled": "1",
}


def test_settings_page_creates_a_mailbox_with_csrf_and_never_shows_the_password(app, session, tenant, session_factory):
    client = logged_in(app, "admin@acme.example")
    assert "/settings/mailboxes" in client.get("/settings").get_data(as_text=True)
    page = client.get("/settings/mailboxes/new")
    assert page.status_code == 200
    assert client.post("/settings/mailboxes/new", data=FORM).status_code == 400  # no CSRF token
    response = client.post("/settings/mailboxes/new", data={**FORM, "csrf_token": csrf_of(page.get_data(as_text=True))})
    assert response.status_code in (302, 303)
    with session_factory() as s:
        mailbox = s.scalars(select(Mailbox)).one()
        assert mailbox.tenant_id == tenant.tenant.id and mailbox.processed_folder == "Imported"
        assert IMAP_PASSWORD not in (mailbox.secret_encrypted or "")
        stored_secret = mailbox.secret_encrypted
    edit = client.get(f"/settings/mailboxes/{mailbox.id}")
    html = edit.get_data(as_text=True)
    assert edit.status_code == 200 and "imap.example.com" in html
    assert IMAP_PASSWORD not in html and stored_secret not in html and 'placeholder="unchanged"' in html
    assert IMAP_PASSWORD not in client.get("/settings/mailboxes").get_data(as_text=True)
    # Saved again with the password left empty: the stored one is kept.
    data = {**FORM, "secret": "", "host": "imap2.example.com", "csrf_token": csrf_of(html)}
    assert client.post(f"/settings/mailboxes/{mailbox.id}", data=data).status_code in (302, 303)
    with session_factory() as s:
        mailbox = s.get(Mailbox, mailbox.id)
        assert mailbox.host == "imap2.example.com"
        assert SecretBox(app.extensions["inbox.settings"].secret_key).decrypt(mailbox.secret_encrypted) == IMAP_PASSWORD
    # Invalid input is answered with the reasons, and the password typed is not echoed back.
    bad = {**FORM, "host": "", "security": "plain", "csrf_token": csrf_of(html)}
    response = client.post(f"/settings/mailboxes/{mailbox.id}", data=bad)
    assert response.status_code == 422 and IMAP_PASSWORD not in response.get_data(as_text=True)
    assert "host name" in response.get_data(as_text=True)


def test_mailbox_settings_are_admin_only_support_read_only_and_tenant_isolated(app, session, tenant, other_tenant):
    member = make_tenant(session, "Members Co", "m@members.example")  # noqa: F841 - a tenant of its own
    from core.tenancy import accounts

    accounts.create_user(session, "member@acme.example", PASSWORD, tenant.tenant, Role.MEMBER)
    accounts.create_user(session, "support@acme.example", PASSWORD, tenant.tenant, Role.SUPPORT)
    box = SecretBox(app.extensions["inbox.settings"].secret_key)
    data = svc.MailboxInput(host="imap.example.com", port="993", username="u@acme.example", secret=IMAP_PASSWORD)
    mine = svc.save_mailbox(session, box, tenant.tenant.id, data)
    theirs = svc.save_mailbox(session, box, other_tenant.tenant.id, data)
    session.commit()

    admin = logged_in(app, "admin@acme.example")
    assert admin.get(f"/settings/mailboxes/{mine.id}").status_code == 200
    assert admin.get(f"/settings/mailboxes/{theirs.id}").status_code == 404
    token = csrf_of(admin.get("/settings/mailboxes/new").get_data(as_text=True))
    assert admin.post(f"/settings/mailboxes/{theirs.id}", data={**FORM, "csrf_token": token}).status_code == 404
    assert admin.post(f"/settings/mailboxes/{theirs.id}/delete", data={"csrf_token": token}).status_code == 404
    with app.app_context():
        from dashboard.extensions import db

        assert db.session.get(Mailbox, theirs.id).host == "imap.example.com"

    member_client = logged_in(app, "member@acme.example")
    assert member_client.get("/settings/mailboxes").status_code == 403
    assert member_client.get(f"/settings/mailboxes/{mine.id}").status_code == 403

    support = logged_in(app, "support@acme.example")
    page = support.get(f"/settings/mailboxes/{mine.id}")
    assert page.status_code == 200 and IMAP_PASSWORD not in page.get_data(as_text=True)
    token = csrf_of(page.get_data(as_text=True))
    assert support.post(f"/settings/mailboxes/{mine.id}", data={**FORM, "csrf_token": token}).status_code == 403
    assert support.post(f"/settings/mailboxes/{mine.id}/delete", data={"csrf_token": token}).status_code == 403

    token = csrf_of(admin.get("/settings/mailboxes").get_data(as_text=True))
    assert admin.post(f"/settings/mailboxes/{mine.id}/delete", data={"csrf_token": token}).status_code in (302, 303)
    assert admin.get(f"/settings/mailboxes/{mine.id}").status_code == 404


def test_settings_page_shows_the_last_error_escaped(app, session, tenant):
    box = SecretBox(app.extensions["inbox.settings"].secret_key)
    data = svc.MailboxInput(host="imap.example.com", port="993", username="u@acme.example", secret=IMAP_PASSWORD)
    mailbox = svc.save_mailbox(session, box, tenant.tenant.id, data)
    svc.record_error(session, mailbox.id, "LoginError: <script>alert(1)</script>")
    session.commit()
    html = logged_in(app, "admin@acme.example").get("/settings/mailboxes").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html


def test_api_lists_mailboxes_without_secrets_for_admins_only(app, session, tenant, other_tenant):
    from core.tenancy import accounts

    box = SecretBox(app.extensions["inbox.settings"].secret_key)
    data = svc.MailboxInput(host="imap.example.com", port="993", username="u@acme.example", secret=IMAP_PASSWORD)
    svc.save_mailbox(session, box, tenant.tenant.id, data)
    svc.save_mailbox(session, box, other_tenant.tenant.id, svc.MailboxInput(
        host="imap.globex.example", port="993", username="u@globex.example", secret=IMAP_PASSWORD))
    member = accounts.create_user(session, "member@acme.example", PASSWORD, tenant.tenant, Role.MEMBER)
    member_token = accounts.create_token(session, member, tenant.tenant)
    session.commit()
    client = app.test_client()
    response = client.get("/api/v1/mailboxes", headers={"Authorization": f"Bearer {tenant.token}"})
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert [i["host"] for i in items] == ["imap.example.com"] and items[0]["has_secret"] is True
    assert IMAP_PASSWORD not in response.get_data(as_text=True) and "encrypted" not in response.get_data(as_text=True)
    assert client.get("/api/v1/mailboxes", headers={"Authorization": f"Bearer {member_token}"}).status_code == 403
