"""The SMTP gateway over real sockets, with the real database, Redis, file storage and swaks."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import os
import select as select_module
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job
from sqlalchemy import event, select, text

from core.config import Settings
from core.files.storage import FileStorage, StorageError, sha256_hex
from core.inbound.addresses import AddressMatch
from core.models import InboundAddress, InboundMessage, utcnow
from core.tenancy import accounts
from mailgate.smtp import InboxController, KnownRecipient, Limits, RecipientCache, build_controller
from tests.conftest import INBOUND_DOMAIN
from tests.services import free_port
from worker.queue import get_queue
from worker.sweep import sweep_once

REPO = Path(__file__).resolve().parents[1]
SENDER = "billing@supplier.example"
BODY_MARKER = b"BODY-MARKER-7f3a"
# CRLF line ends (as on the wire), 8-bit text, and lines that need dot-stuffing on the wire.
RAW = (
    b"From: Supplier Billing <billing@supplier.example>\r\n"
    b"To: invoices\r\n"
    b"Subject: Invoice F-2024-001\r\n"
    b"Message-ID: <f2024001@supplier.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Montant d\xc3\xbb : 1 200,00 \xe2\x82\xac\r\n"
    b".a line that starts with a dot\r\n"
    b"..and one with two\r\n" + BODY_MARKER + b"\r\n"
)


# Helpers (also used by test_sweep) ---------------------------------------------------------


@contextmanager
def running_server(settings: Settings, **limits: float) -> Iterator[InboxController]:
    """A started server on a free port; the periodic sweep only runs at start-up unless asked."""
    limits.setdefault("sweep_interval", 3600)
    controller = build_controller(settings, port=free_port(), limits=Limits(**limits))  # type: ignore[arg-type]
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture(autouse=True)
def _enabled_loggers() -> None:
    # The Alembic env.py of the migration fixtures calls fileConfig(), which disables loggers that
    # existed before it ran, ours and aiosmtpd's included; the log assertions need them.
    for name in ("mailgate", "mailgate.smtp", "worker.sweep", "mail.log"):
        logging.getLogger(name).disabled = False


@pytest.fixture
def server(settings: Settings) -> Iterator[InboxController]:
    with running_server(settings) as controller:
        yield controller


def connect(controller: InboxController) -> smtplib.SMTP:
    return smtplib.SMTP(controller.hostname, controller.port, local_hostname="client.example", timeout=10)


def send(smtp: smtplib.SMTP, recipients: list[str], raw: bytes = RAW) -> tuple[int, bytes]:
    """MAIL, RCPT..., DATA step by step; returns the DATA reply (smtplib.data dot-stuffs)."""
    smtp.ehlo_or_helo_if_needed()
    assert smtp.mail(SENDER)[0] == 250
    for recipient in recipients:
        assert smtp.rcpt(recipient)[0] == 250, recipient
    return smtp.data(raw)


def settle(controller: InboxController) -> None:
    """Wait for the background queueing of accepted messages."""
    assert controller.handler.in_flight.wait_idle(10)


def stored_messages(session_factory) -> list[InboundMessage]:
    with session_factory() as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def job_exists(redis_url: str, message_id: int) -> bool:
    with Redis.from_url(redis_url) as connection:
        return Job.exists(f"ingest-message-{message_id}", connection=connection)


@contextmanager
def open_queue(settings: Settings) -> Iterator[Queue]:
    queue = get_queue(settings)
    try:
        yield queue
    finally:
        queue.connection.close()


# Accepting ---------------------------------------------------------------------------------


def test_accepted_message_is_committed_before_250_then_queued(server, tenant, settings, session_factory, redis_url):
    with connect(server) as smtp:
        code, reply = send(smtp, [tenant.address])
        # Right after the 250, before any waiting: the row is already committed.
        assert code == 250 and reply.startswith(b"2.0.0"), reply
        assert len(stored_messages(session_factory)) == 1
    settle(server)
    [message] = stored_messages(session_factory)
    assert message.tenant_id == tenant.tenant.id
    assert message.status == "queued" and message.queued_at is not None
    assert message.peer == "127.0.0.1" and message.recipient == tenant.address and message.source == "smtp"
    assert message.subject == "Invoice F-2024-001" and message.message_id_header == "<f2024001@supplier.example>"
    stored = FileStorage(settings.storage_dir).read(message.raw_key)
    assert stored == RAW  # the bytes as sent: dot-unstuffed, 8-bit intact, nothing added
    assert message.raw_sha256 == sha256_hex(RAW) and message.raw_size == len(RAW)
    assert job_exists(redis_url, message.id)


def test_banner_and_ehlo_advertise_size_smtputf8_and_8bitmime(server):
    with connect(server) as smtp:
        code, _ = smtp.ehlo()
        assert code == 250
        assert smtp.esmtp_features["size"] == str(25 * 1024 * 1024)
        assert {"smtputf8", "8bitmime"} <= set(smtp.esmtp_features)
        assert "auth" not in smtp.esmtp_features and "starttls" not in smtp.esmtp_features
    with socket.create_connection((server.hostname, server.port), timeout=5) as sock:
        banner = sock.recv(200)
    assert banner.startswith(f"220 {INBOUND_DOMAIN} ".encode()) and b"Python" not in banner


def test_null_sender_is_accepted(server, tenant, session_factory):
    with connect(server) as smtp:
        smtp.ehlo()
        assert smtp.mail("<>")[0] == 250
        assert smtp.rcpt(tenant.address)[0] == 250
        assert smtp.data(RAW)[0] == 250
    assert len(stored_messages(session_factory)) == 1


def test_smtputf8_sender_is_accepted_and_recorded_without_from_header(server, tenant, session_factory):
    sender = "comptabilité@fournisseur.example"
    with connect(server) as smtp:
        smtp.ehlo()
        assert smtp.mail(sender, ["SMTPUTF8"])[0] == 250
        assert smtp.rcpt(tenant.address)[0] == 250
        assert smtp.data(b"Subject: sans From\r\n\r\nbonjour\r\n")[0] == 250
    [message] = stored_messages(session_factory)
    assert message.sender == sender  # no From: header, so the envelope sender is what we know


# Recipients --------------------------------------------------------------------------------


def test_unknown_recipient_is_refused_at_rcpt_with_550_511(server, tenant, session_factory):
    unknown = f"zzz-zzz@{INBOUND_DOMAIN}"
    with connect(server) as smtp, pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        smtp.sendmail(SENDER, [unknown], RAW)
    code, reply = refused.value.recipients[unknown]
    assert code == 550 and reply.startswith(b"5.1.1")
    assert stored_messages(session_factory) == []


def test_other_domains_are_refused_never_relayed(server, tenant, session_factory):
    local = tenant.address.split("@")[0]
    others = [f"{local}@other.example", "someone@gmail.com", f"{local}@sub.{INBOUND_DOMAIN}"]
    with connect(server) as smtp:
        smtp.ehlo()
        assert smtp.mail(SENDER)[0] == 250
        for address in others:
            code, reply = smtp.rcpt(address)
            assert code == 550 and reply.startswith(b"5.7.1"), (address, reply)
    assert stored_messages(session_factory) == []


def test_tagged_and_upper_case_addresses_are_accepted_as_given(server, tenant, session_factory):
    local, domain = tenant.address.split("@")
    given = f"{local.upper()}+Factures@{domain.upper()}"
    with connect(server) as smtp:
        assert smtp.sendmail(SENDER, [given], RAW) == {}
    [message] = stored_messages(session_factory)
    assert message.tenant_id == tenant.tenant.id and message.recipient == given


def test_good_and_bad_recipients_mixed_stores_for_the_good_one(server, tenant, session_factory):
    unknown = f"nop-nop@{INBOUND_DOMAIN}"
    with connect(server) as smtp:
        refused = smtp.sendmail(SENDER, [unknown, tenant.address], RAW)
    assert refused == {unknown: (550, b"5.1.1 No such recipient here")}
    [message] = stored_messages(session_factory)
    assert message.recipient == tenant.address


def test_recipients_per_message_are_capped_with_452(settings, tenant, session_factory):
    local, domain = tenant.address.split("@")
    recipients = [f"{local}+{n}@{domain}" for n in range(3)]
    with running_server(settings, max_recipients=2) as server, connect(server) as smtp:
        refused = smtp.sendmail(SENDER, recipients, RAW)
    assert refused == {recipients[2]: (452, b"4.5.3 Too many recipients")}
    [message] = stored_messages(session_factory)  # one tenant: stored once
    assert message.recipient == recipients[0]


def test_message_to_two_tenants_is_stored_once_per_tenant(
    server, tenant, other_tenant, settings, session_factory, redis_url
):
    local, domain = tenant.address.split("@")
    recipients = [tenant.address, other_tenant.address, f"{local}+again@{domain}"]
    with connect(server) as smtp:
        assert send(smtp, recipients)[0] == 250
    settle(server)
    messages = stored_messages(session_factory)
    assert [(m.tenant_id, m.recipient) for m in messages] == [
        (tenant.tenant.id, tenant.address),
        (other_tenant.tenant.id, other_tenant.address),
    ]
    storage = FileStorage(settings.storage_dir)
    assert messages[0].raw_key != messages[1].raw_key
    assert all(storage.read(m.raw_key) == RAW for m in messages)
    assert all(m.status == "queued" and job_exists(redis_url, m.id) for m in messages)


# Limits ------------------------------------------------------------------------------------


def test_size_limit_refuses_with_552_at_mail_and_at_data(settings, tenant, session_factory):
    small = replace(settings, max_message_bytes=1024)
    big = RAW + (b"x" * 70 + b"\r\n") * 30  # over 1024 bytes in lines of legal length
    with running_server(small) as server, connect(server) as smtp:
        smtp.ehlo()
        assert smtp.esmtp_features["size"] == "1024"
        # smtplib declares SIZE= itself: refused at MAIL FROM.
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            smtp.sendmail(SENDER, [tenant.address], big)
        assert refused.value.smtp_code == 552
        smtp.rset()
        assert smtp.mail(SENDER, ["SIZE=1025"])[0] == 552
        smtp.rset()
        # Without SIZE=: refused once the data went over the limit.
        assert send(smtp, [tenant.address], big)[0] == 552
        assert stored_messages(session_factory) == []
        # The session goes on.
        assert send(smtp, [tenant.address])[0] == 250
    assert len(stored_messages(session_factory)) == 1


def test_connections_over_the_cap_get_421(settings, tenant):
    with running_server(settings, max_connections=1) as server:
        _wait_for(lambda: server.handler.connections == 0)  # the controller's start-up probe
        with connect(server) as first:
            with pytest.raises(smtplib.SMTPConnectError) as refused:
                connect(server)
            assert refused.value.smtp_code == 421 and b"4.7.0" in refused.value.smtp_error
            assert first.noop()[0] == 250
        _wait_for(lambda: server.handler.connections == 0)
        with connect(server) as again:
            assert again.noop()[0] == 250


def test_idle_connection_is_closed_after_the_command_timeout(settings):
    with running_server(settings, command_timeout=0.5) as server, connect(server) as smtp:
        time.sleep(1.5)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            smtp.noop()


# Failures ----------------------------------------------------------------------------------


def test_redis_down_still_accepts_fast_and_the_sweep_queues_later(
    server, tenant, settings, session_factory, redis_proc, redis_url
):
    redis_proc.stop()
    try:
        started = time.monotonic()
        with connect(server) as smtp:
            code, _ = send(smtp, [tenant.address])
        assert code == 250 and time.monotonic() - started < 3
        settle(server)  # the queueing attempt has failed by now
        [message] = stored_messages(session_factory)
        assert message.status == "received"
    finally:
        redis_proc.start()
    assert not job_exists(redis_url, message.id)
    # The sweep leaves messages younger than a minute to the handler's own queueing; skip ahead.
    with open_queue(settings) as queue:
        assert sweep_once(settings, session_factory, queue, received_grace=timedelta(0)) == 1
    [message] = stored_messages(session_factory)
    assert message.status == "queued" and job_exists(redis_url, message.id)


def test_storage_failure_answers_451_stores_nothing_and_the_server_recovers(
    settings, tenant, session_factory, tmp_path
):
    blocker = tmp_path / "afile"  # a file where a directory should be: mkdir fails, even as root
    blocker.write_text("not a directory")
    broken = replace(settings, storage_dir=blocker / "storage")
    with running_server(broken) as server, connect(server) as smtp:
        code, reply = send(smtp, [tenant.address])
        assert code == 451 and reply.startswith(b"4.3.0"), reply
        assert stored_messages(session_factory) == []
        blocker.unlink()  # the disk is back: the same session goes on
        assert send(smtp, [tenant.address])[0] == 250
    [message] = stored_messages(session_factory)
    assert FileStorage(broken.storage_dir).read(message.raw_key) == RAW


def test_failure_for_one_tenant_stores_for_no_tenant(settings, tenant, other_tenant, session_factory, tmp_path):
    # The second tenant's directory cannot be created; the first tenant's row must not stay either.
    storage_dir = tmp_path / "storage"
    (storage_dir / "raw").mkdir(parents=True)
    (storage_dir / "raw" / str(other_tenant.tenant.id)).write_text("not a directory")
    with running_server(replace(settings, storage_dir=storage_dir)) as server, connect(server) as smtp:
        code, _ = send(smtp, [tenant.address, other_tenant.address])
    assert code == 451
    assert stored_messages(session_factory) == []


def test_database_failure_answers_451(server, tenant, session_factory):
    # A real database error: the messages table is away while the message arrives.
    with session_factory.kw["bind"].begin() as conn:
        conn.execute(text("ALTER TABLE messages RENAME TO messages_away"))
    try:
        with connect(server) as smtp:
            code, reply = send(smtp, [tenant.address])
            assert code == 451 and reply.startswith(b"4.3.0")
    finally:
        with session_factory.kw["bind"].begin() as conn:
            conn.execute(text("ALTER TABLE messages_away RENAME TO messages"))
    assert stored_messages(session_factory) == []
    with connect(server) as smtp:  # and it keeps answering
        assert send(smtp, [tenant.address])[0] == 250


# Logging, swaks, lifecycle -----------------------------------------------------------------


def test_log_has_peer_and_envelope_but_never_the_body(settings, tenant, caplog):
    logging.getLogger("mail.log").setLevel(logging.NOTSET)  # as in a fresh process logging at DEBUG
    caplog.set_level(logging.DEBUG)
    with running_server(settings) as server, connect(server) as smtp:
        assert send(smtp, [tenant.address])[0] == 250
        smtp.mail(SENDER)
        assert smtp.rcpt(f"zzz-zzz@{INBOUND_DOMAIN}")[0] == 550
        settle(server)
    assert "peer=127.0.0.1" in caplog.text and SENDER in caplog.text and tenant.address in caplog.text
    assert "zzz-zzz" in caplog.text  # refusals are logged too
    assert BODY_MARKER.decode() not in caplog.text and "Montant" not in caplog.text


def test_swaks_sends_an_attachment(server, tenant, settings, session_factory, tmp_path):
    pdf = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
    (tmp_path / "facture-42.pdf").write_bytes(pdf)
    result = subprocess.run(
        ["swaks", "--server", server.hostname, "--port", str(server.port), "--helo", "supplier.example",
         "--from", SENDER, "--to", tenant.address, "--header", "Subject: Facture 42",
         "--attach-type", "application/pdf", "--attach", f"@{tmp_path / 'facture-42.pdf'}"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "<-  250 2.0.0" in result.stdout, result.stdout
    [message] = stored_messages(session_factory)
    assert message.subject == "Facture 42" and message.tenant_id == tenant.tenant.id
    raw = FileStorage(settings.storage_dir).read(message.raw_key)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_filename() == "facture-42.pdf" and attachment.get_content() == pdf


def test_stop_finishes_the_message_in_flight_and_refuses_new_connections(settings, tenant, session_factory):
    raw = b"Subject: in flight\r\n\r\nhello\r\n"
    controller = build_controller(settings, port=free_port(), limits=Limits(sweep_interval=3600))
    controller.start()
    stopper = threading.Thread(target=controller.stop)
    try:
        with connect(controller) as smtp:
            assert send_start(smtp, tenant.address) == 354
            smtp.send(raw[:10])  # half of the message, then the server is told to stop
            stopper.start()
            time.sleep(0.5)
            assert stopper.is_alive()  # waiting for the message in flight
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((controller.hostname, controller.port), timeout=2)
            smtp.send(raw[10:] + b".\r\n")
            code, reply = smtp.getreply()
            assert code == 250, reply
    finally:
        if stopper.ident is None:  # failed before asking the server to stop
            controller.stop()
        else:
            stopper.join(15)
    assert not stopper.is_alive()
    [message] = stored_messages(session_factory)
    assert message.subject == "in flight" and message.status == "queued"


def send_start(smtp: smtplib.SMTP, recipient: str) -> int:
    smtp.ehlo()
    assert smtp.mail(SENDER)[0] == 250 and smtp.rcpt(recipient)[0] == 250
    return smtp.docmd("DATA")[0]


def test_main_serves_until_sigterm(settings, tenant, session_factory, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "VAR_DIR": str(tmp_path / "main-var"),
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "STORAGE_DIR": str(settings.storage_dir),
        "INBOUND_DOMAIN": settings.inbound_domain,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "QUEUE_NAME": settings.queue_name,
        "SECRET_KEY": "test",
    }
    code = "from core.config import Settings; from mailgate.smtp import main; main(Settings.from_env())"
    with subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True) as proc:
        try:
            _wait_for(lambda: _accepts(port), timeout=20)
            with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=10) as smtp:
                assert send(smtp, [tenant.address])[0] == 250
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, stderr
    assert f"SMTP listening on 127.0.0.1:{port}" in stderr and "SMTP stopped" in stderr
    [message] = stored_messages(session_factory)
    assert message.status == "queued"


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _wait_for(condition, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# Group commit --------------------------------------------------------------------------------


@contextmanager
def write_lock(session_factory, *, delete_tenant: int | None = None) -> Iterator[None]:
    """Hold the database's write lock on messages (a real lock, from another connection) until the block ends.

    ``delete_tenant``: that tenant is deleted in the same transaction, committed when the lock is released.
    """
    raw = session_factory.kw["bind"].raw_connection()
    try:
        cursor = raw.cursor()
        if session_factory.kw["bind"].dialect.name == "sqlite":
            cursor.execute("BEGIN IMMEDIATE")  # the single writer's lock; WAL readers go on
        else:
            cursor.execute("LOCK TABLE messages IN SHARE ROW EXCLUSIVE MODE")  # INSERTs wait, SELECTs do not
        if delete_tenant is not None:
            cursor.execute(f"DELETE FROM tenants WHERE id = {int(delete_tenant)}")
        yield
        raw.commit()
    finally:
        raw.close()


def start_data(controller: InboxController, recipient: str) -> smtplib.SMTP:
    smtp = connect(controller)
    assert send_start(smtp, recipient) == 354
    return smtp


def raw_numbered(n: int) -> bytes:
    return RAW.replace(b"<f2024001@supplier.example>", f"<batch-{n}@supplier.example>".encode())


def has_reply(smtp: smtplib.SMTP) -> bool:
    assert smtp.sock is not None
    return bool(select_module.select([smtp.sock], [], [], 0)[0])


def row_exists(session_factory, n: int) -> bool:
    with session_factory() as session:
        stmt = select(InboundMessage.id).where(InboundMessage.message_id_header == f"<batch-{n}@supplier.example>")
        return session.scalar(stmt) is not None


def one_then_two_together(server, session_factory, recipients: list[str], *, delete_tenant: int | None = None
                          ) -> list[int]:
    """Three messages (``raw_numbered(0..2)``): the first committed alone while the write lock holds its
    commit, the other two waiting meanwhile and then committed in one batch; returns the DATA reply codes."""
    committer = server.handler._committer
    sessions = [start_data(server, recipient) for recipient in recipients]
    try:
        with write_lock(session_factory, delete_tenant=delete_tenant):
            sessions[0].send(raw_numbered(0) + b".\r\n")
            _wait_for(lambda: committer.busy, timeout=20)
            sessions[1].send(raw_numbered(1) + b".\r\n")
            sessions[2].send(raw_numbered(2) + b".\r\n")
            _wait_for(lambda: committer.waiting == 2, timeout=20)
        return [smtp.getreply()[0] for smtp in sessions]
    finally:
        for smtp in sessions:
            smtp.close()


def test_concurrent_sessions_are_committed_in_one_batch_each_answered_after_its_row(
    server, tenant, session_factory
):
    committer = server.handler._committer
    sessions = [start_data(server, tenant.address) for _ in range(4)]
    try:
        with write_lock(session_factory):
            sessions[0].send(raw_numbered(0) + b".\r\n")
            _wait_for(lambda: committer.busy, timeout=20)  # its commit waits for the lock
            for n, smtp in enumerate(sessions[1:], start=1):
                smtp.send(raw_numbered(n) + b".\r\n")
            _wait_for(lambda: committer.waiting == 3, timeout=20)  # received, waiting together for the next commit
            time.sleep(0.3)
            # Nobody has been answered, and no row exists: durable first, 250 after.
            assert not any(has_reply(smtp) for smtp in sessions)
            assert not any(row_exists(session_factory, n) for n in range(4))
        for n, smtp in enumerate(sessions):
            code, reply = smtp.getreply()
            assert code == 250, reply
            assert row_exists(session_factory, n)  # committed before its 250 was sent
    finally:
        for smtp in sessions:
            smtp.close()
    # One commit for the first message, ONE for the three that waited meanwhile.
    assert (committer.batches, committer.deliveries, committer.largest) == (2, 4, 3)
    settle(server)
    messages = stored_messages(session_factory)
    assert len(messages) == 4 and all(m.status == "queued" for m in messages)


def test_a_delivery_that_cannot_be_committed_fails_alone(server, tenant, session, session_factory):
    doomed, address = accounts.create_tenant(session, "Doomed SAS")
    session.commit()
    doomed_address = accounts.address_of(address, INBOUND_DOMAIN)
    # The doomed company is deleted between its RCPT and the commit of its message: its row cannot be
    # inserted (foreign key), which fails the batch it is in; the others are committed one by one.
    recipients = [tenant.address, tenant.address, doomed_address]
    codes = one_then_two_together(server, session_factory, recipients, delete_tenant=doomed.id)
    assert codes == [250, 250, 451]
    assert [row_exists(session_factory, n) for n in range(3)] == [True, True, False]
    assert server.handler._committer.largest == 2


def test_queued_marks_ride_in_the_next_commit_of_deliveries(server, tenant, session_factory):
    committer = server.handler._committer
    with connect(server) as smtp:
        assert send(smtp, [tenant.address])[0] == 250
    settle(server)
    [first] = stored_messages(session_factory)
    with session_factory() as session:  # as the queueing task leaves it: its job enqueued, not marked yet
        session.execute(text("UPDATE messages SET status = 'received', queued_at = NULL WHERE id = :id"),
                        {"id": first.id})
        session.commit()
    sessions = [start_data(server, tenant.address) for _ in range(2)]
    try:
        with write_lock(session_factory):
            sessions[0].send(raw_numbered(0) + b".\r\n")
            _wait_for(lambda: committer.busy, timeout=20)
            marked = asyncio.run_coroutine_threadsafe(committer.mark_queued([first.id]), server.loop)
            sessions[1].send(raw_numbered(1) + b".\r\n")
            _wait_for(lambda: committer.waiting == 1 and committer.marks_waiting == 1, timeout=20)
            carried_before = committer.marks_with_deliveries
        assert [smtp.getreply()[0] for smtp in sessions] == [250, 250]
        marked.result(timeout=20)
    finally:
        for smtp in sessions:
            smtp.close()
    # The mark went in the same transaction as the delivery that waited with it: no commit of its own.
    assert committer.marks_with_deliveries > carried_before
    settle(server)
    messages = stored_messages(session_factory)
    assert [m.status for m in messages] == ["queued"] * 3 and messages[0].queued_at is not None


def test_a_nul_in_a_header_is_dropped_not_refused(server, tenant, session_factory):
    # PostgreSQL text cannot hold NUL: storing it as is would refuse the message with 451 forever.
    raw = RAW.replace(b"Subject: Invoice F-2024-001", b"Subject: Invoice\x00 F-2024-001")
    with connect(server) as smtp:
        assert send(smtp, [tenant.address], raw)[0] == 250
    [message] = stored_messages(session_factory)
    assert message.subject == "Invoice F-2024-001"


def test_file_names_are_durable_per_batch_and_new_directories_too(tmp_path):
    storage = FileStorage(tmp_path / "storage")
    keys = [FileStorage.raw_message_key(7, f"{n:064x}") for n in range(3)]
    for key in keys:
        storage.write(key, b"x", sync_dir=False)  # creates raw/7/YYYY/MM, each new level fsynced in its parent
    storage.sync_dirs(keys)  # one directory: one fsync
    assert all(storage.read(key) == b"x" for key in keys)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    with pytest.raises(StorageError):
        FileStorage(blocker).sync_dirs(["raw/1/x.eml"])


def test_a_delivery_whose_file_cannot_be_written_fails_alone(server, tenant, session, session_factory, settings):
    # The commit thread writes the files of the batch it is about to commit: one that cannot be written
    # (its company's directory is blocked by a file) is refused alone; the others of its batch are stored.
    blocked, address = accounts.create_tenant(session, "Blocked SAS")
    session.commit()
    (Path(settings.storage_dir) / "raw").mkdir(parents=True, exist_ok=True)
    (Path(settings.storage_dir) / "raw" / str(blocked.id)).write_text("a file where a directory should be")
    recipients = [tenant.address, accounts.address_of(address, INBOUND_DOMAIN), tenant.address]
    codes = one_then_two_together(server, session_factory, recipients)
    assert codes == [250, 451, 250]
    assert [row_exists(session_factory, n) for n in range(3)] == [True, False, True]
    assert server.handler._committer.largest == 2
    storage = FileStorage(settings.storage_dir)
    for n, message in zip((0, 2), stored_messages(session_factory), strict=True):
        stored = storage.read(message.raw_key)
        assert f"<batch-{n}@supplier.example>".encode() in stored and sha256_hex(stored) == message.raw_sha256


def test_a_message_over_a_megabyte_is_written_before_its_batch_and_stored_whole(server, tenant, settings,
                                                                                session_factory):
    # Big files are written in the store pool first, so that they do not hold up the batch's commit.
    big = RAW + (b"x" * 998 + b"\r\n") * 1600  # 1.6 MB, lines of 1000 octets (RFC 5321's limit)
    with connect(server) as smtp:
        assert send(smtp, [tenant.address], big)[0] == 250
        assert send(smtp, [tenant.address])[0] == 250
    storage = FileStorage(settings.storage_dir)
    stored = stored_messages(session_factory)
    assert [storage.read(m.raw_key) for m in stored] == [big, RAW]
    assert [m.raw_sha256 for m in stored] == [sha256_hex(big), sha256_hex(RAW)]


# Recipient cache -----------------------------------------------------------------------------


@contextmanager
def address_lookups(controller: InboxController) -> Iterator[list[str]]:
    """The SELECTs on inbound addresses that the gateway's own engine runs in the block."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if statement.lstrip().upper().startswith("SELECT") and "inbound_addresses" in statement:
            seen.append(statement)

    engine = controller.handler._engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def rcpt_code(controller: InboxController, recipient: str) -> int:
    with connect(controller) as smtp:
        smtp.ehlo()
        assert smtp.mail(SENDER)[0] == 250
        return smtp.rcpt(recipient)[0]


def test_an_accepted_address_is_looked_up_once_then_served_from_the_cache(settings, session, tenant,
                                                                          session_factory):
    tagged = tenant.address.upper().replace("@", "+factures@")
    with running_server(settings) as server, address_lookups(server) as lookups:
        with connect(server) as smtp:
            for recipient in (tenant.address, tagged, tenant.address):
                assert send(smtp, [recipient])[0] == 250
        assert len(lookups) == 1  # the same address, any case and +tag: one database lookup
        unknown = "inbox-aaaaaaaaaaaaa@" + INBOUND_DOMAIN
        assert rcpt_code(server, unknown) == 550 and rcpt_code(server, unknown) == 550
        assert len(lookups) == 3  # an unknown address is looked up every time: it may be created any moment
    stored = stored_messages(session_factory)
    address_id = session.scalars(select(InboundAddress.id).where(InboundAddress.tenant_id == tenant.tenant.id)).one()
    assert [m.inbound_address_id for m in stored] == [address_id] * 3
    assert not any(m.to_retiring_address for m in stored)


def test_a_cached_retiring_address_is_refused_at_its_end_without_asking_again(
    settings, session, tenant, session_factory
):
    retiring = InboundAddress(tenant_id=tenant.tenant.id, local_part="inbox-retiringsoon22",
                              retires_at=utcnow() + timedelta(seconds=1.5))
    session.add(retiring)
    session.commit()
    recipient = "inbox-retiringsoon22@" + INBOUND_DOMAIN
    with running_server(settings) as server, address_lookups(server) as lookups:
        with connect(server) as smtp:
            assert send(smtp, [recipient])[0] == 250
        _wait_for(lambda: utcnow() > retiring.retires_at, timeout=5)
        assert rcpt_code(server, recipient) == 550  # from the cached end date
        assert len(lookups) == 1
    [message] = stored_messages(session_factory)
    assert message.to_retiring_address and message.inbound_address_id == retiring.id


def test_the_cache_forgets_after_its_ttl_and_can_be_turned_off(settings, session, tenant):
    with running_server(settings, recipient_cache_seconds=0.3) as server, address_lookups(server) as lookups:
        assert rcpt_code(server, tenant.address) == 250
        assert rcpt_code(server, tenant.address) == 250
        assert len(lookups) == 1
        time.sleep(0.4)
        assert rcpt_code(server, tenant.address) == 250
        assert len(lookups) == 2
    with running_server(settings, recipient_cache_seconds=0) as server, address_lookups(server) as lookups:
        for _ in range(3):
            assert rcpt_code(server, tenant.address) == 250
        assert len(lookups) == 3


def test_the_recipient_cache_is_bounded_and_expires_by_its_clock():
    now = [100.0]
    cache = RecipientCache(10, max_entries=2, clock=lambda: now[0])
    known = [KnownRecipient(n, AddressMatch(n, False), None) for n in range(3)]
    cache.put("a", known[0])
    cache.put("b", known[1])
    assert cache.get("a") == known[0]  # "a" is now the most recently used
    cache.put("c", known[2])
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == (known[0], None, known[2], 2)
    now[0] += 10
    assert cache.get("a") is None and cache.get("c") is None and len(cache) == 0
    off = RecipientCache(0)
    off.put("a", known[0])
    assert off.get("a") is None
