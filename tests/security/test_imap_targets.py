"""Finding 5 of issue #14: a tenant's IMAP settings reached the internal network, and the remote server's
greeting came back in ``last_error`` (a port scanner with banners).

Hosts resolving to private, loopback, link-local, metadata or other non-global addresses are refused at
save time and again at connect time unless the operator lists them in IMAP_ALLOWED_NETWORKS (the suite
allows loopback for its Dovecot: tests/conftest.py); ``last_error`` never holds what the server said.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from core.config import Settings
from core.errors import ValidationFailed
from core.inbound import mailboxes as svc
from core.models import Mailbox
from core.secrets import SecretBox
from tests.conftest import TenantFixture
from tests.dovecot import DovecotServer
from tests.test_imap import csrf_of, logged_in, mailbox_row, running_poller, wait_for

INTERNAL = ["127.0.0.1", "localhost", "[::1]", "10.0.0.5", "192.168.1.10", "172.16.0.1", "169.254.169.254",
            "100.100.100.200", "[fd00:ec2::254]", "0.0.0.0", "224.0.0.1", "[::ffff:127.0.0.1]"]
BANNER = b"SSH-2.0-OpenSSH_9.6 internal-build-host-7\r\n"


def mailbox_input(host: str, port: int = 993, security: str = "ssl") -> svc.MailboxInput:
    return svc.MailboxInput(host=host, port=str(port), security=security, username="inbox", secret="pw-12345678")


@pytest.mark.parametrize("host", INTERNAL)
def test_internal_hosts_are_refused_when_saved(
    host: str, session: Session, settings: Settings, tenant: TenantFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(svc.ALLOWED_NETWORKS_ENV, raising=False)
    with pytest.raises(ValidationFailed) as refused:
        svc.save_mailbox(session, SecretBox(settings.secret_key), tenant.tenant.id, mailbox_input(host))
    assert refused.value.errors["host"] == svc.TARGET_REFUSED


def test_the_operator_allow_list_and_the_settings_page(
    app: Flask, session: Session, settings: Settings, tenant: TenantFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(svc.ALLOWED_NETWORKS_ENV, "10.0.0.0/24")
    box = SecretBox(settings.secret_key)
    assert svc.save_mailbox(session, box, tenant.tenant.id, mailbox_input("10.0.0.5")).host == "10.0.0.5"
    with pytest.raises(ValidationFailed):
        svc.save_mailbox(session, box, tenant.tenant.id, mailbox_input("10.0.1.5"))
    session.rollback()
    # The operator's own catch-all mailboxes (no tenant) are not limited.
    assert svc.save_mailbox(session, box, None, mailbox_input("192.168.1.10")).tenant_id is None
    session.rollback()
    client = logged_in(app, tenant.admin.email)
    page = client.get("/settings/mailboxes/new").get_data(as_text=True)
    form = {"host": "169.254.169.254", "port": "993", "security": "ssl", "username": "inbox",
            "auth": "password", "secret": "pw-12345678", "folder": "INBOX", "csrf_token": csrf_of(page)}
    response = client.post("/settings/mailboxes/new", data=form)
    assert response.status_code == 422 and "internal network" in response.get_data(as_text=True)


@pytest.fixture
def banner_server() -> Iterator[int]:
    """Not an IMAP server: a service on loopback that greets with its banner, as SSH does."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _addr = listener.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(BANNER)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    listener.close()


def test_the_remote_banner_never_reaches_last_error(
    banner_server: int, session_factory, settings: Settings, tenant: TenantFixture  # noqa: ANN001
) -> None:
    with session_factory() as session:  # loopback is allowed for the suite: the connection is made
        mailbox = svc.save_mailbox(session, SecretBox(settings.secret_key), tenant.tenant.id,
                                   mailbox_input("127.0.0.1", banner_server, "plain"))
        session.commit()
        mailbox_id = mailbox.id
    with running_poller(settings):
        wait_for(lambda: mailbox_row(session_factory, mailbox_id).last_error, what="the failed connection")
    error = mailbox_row(session_factory, mailbox_id).last_error
    assert "OpenSSH" not in error and "internal-build-host" not in error and "SSH" not in error
    assert error == "The server did not answer as an IMAP server: check the host and the port."


def test_an_allowed_host_that_becomes_internal_is_refused_at_connect_time(
    dovecot: DovecotServer, session_factory, settings: Settings, tenant: TenantFixture,  # noqa: ANN001
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with session_factory() as session:  # saved while loopback was allowed (or resolved elsewhere)
        mailbox = svc.save_mailbox(session, SecretBox(settings.secret_key), tenant.tenant.id,
                                   mailbox_input("localhost", dovecot.port, "plain"))
        session.commit()
        mailbox_id = mailbox.id
    monkeypatch.setenv(svc.ALLOWED_NETWORKS_ENV, "192.0.2.0/24")  # no longer allowed
    log_before = dovecot.log_path.read_text() if dovecot.log_path.exists() else ""
    with running_poller(settings):
        wait_for(lambda: mailbox_row(session_factory, mailbox_id).last_error, what="the refusal")
    assert mailbox_row(session_factory, mailbox_id).last_error == svc.TARGET_REFUSED
    log_after = dovecot.log_path.read_text() if dovecot.log_path.exists() else ""
    assert "Login" not in log_after[len(log_before):]  # no credentials were ever sent
    with session_factory() as session:
        assert session.get(Mailbox, mailbox_id).last_success_at is None
