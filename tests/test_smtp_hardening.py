"""SMTP hardening over real sockets: STARTTLS, open-relay attempts, enumeration limit, DATA timeouts.

Real clients only: smtplib and the swaks binary, against the real gateway, database and Redis.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import smtplib
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.config import Settings
from mailgate.smtp import InboxController, Limits, RefusalLimiter, build_controller, make_tls_context
from tests.conftest import INBOUND_DOMAIN
from tests.services import free_port
from tests.test_smtp import (  # noqa: F401 (_enabled_loggers is an autouse fixture)
    RAW,
    SENDER,
    _enabled_loggers,
    _wait_for,
    connect,
    running_server,
    send,
    stored_messages,
)


@pytest.fixture
def gateway(settings: Settings) -> Iterator[InboxController]:
    """The gateway with default limits and no certificate."""
    with running_server(settings) as controller:
        yield controller


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throw-away self-signed certificate for 127.0.0.1 and the inbound domain: (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, INBOUND_DOMAIN)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(INBOUND_DOMAIN), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def tls_settings(settings: Settings, tls_files: tuple[Path, Path]) -> Settings:
    cert, key = tls_files
    return replace(settings, smtp_tls_cert=cert, smtp_tls_key=key)


def client_tls_context(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))  # verifies the chain and the host name


def swaks(controller: InboxController, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["swaks", "--server", controller.hostname, "--port", str(controller.port), "--helo", "supplier.example",
         "--from", SENDER, "--timeout", "10", *args],
        capture_output=True, text=True, timeout=60,
    )


# STARTTLS ----------------------------------------------------------------------------------


def test_starttls_is_offered_with_a_certificate_and_carries_the_message(
    tls_settings, tls_files, tenant, session_factory
):
    with running_server(tls_settings) as server, connect(server) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        code, _ = smtp.starttls(context=client_tls_context(tls_files[0]))
        assert code == 220
        assert isinstance(smtp.sock, ssl.SSLSocket) and smtp.sock.version() in {"TLSv1.2", "TLSv1.3"}
        smtp.ehlo()
        assert not smtp.has_extn("starttls")  # not offered twice
        assert send(smtp, [tenant.address])[0] == 250
    [message] = stored_messages(session_factory)
    assert message.recipient == tenant.address and message.peer == "127.0.0.1"


def test_starttls_is_not_offered_without_a_certificate(gateway):
    with connect(gateway) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("starttls")
        assert smtp.docmd("STARTTLS")[0] in {454, 500, 502}


def test_required_tls_refuses_mail_before_starttls(tls_settings, tls_files, tenant, session_factory):
    with running_server(replace(tls_settings, smtp_require_tls=True)) as server, connect(server) as smtp:
        smtp.ehlo()
        code, reply = smtp.mail(SENDER)
        assert code == 530 and b"STARTTLS" in reply
        smtp.starttls(context=client_tls_context(tls_files[0]))
        assert send(smtp, [tenant.address])[0] == 250
    assert len(stored_messages(session_factory)) == 1


def test_tls_context_refuses_versions_before_1_2(tls_settings):
    context = make_tls_context(tls_settings)
    assert context is not None and context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert make_tls_context(replace(tls_settings, smtp_tls_cert=None, smtp_tls_key=None)) is None


def test_swaks_sends_over_starttls(tls_settings, tenant, session_factory):
    with running_server(tls_settings) as server:
        result = swaks(server, "--to", tenant.address, "--tls", "--header", "Subject: over TLS")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "TLS started" in result.stdout and "<~  250 2.0.0" in result.stdout, result.stdout  # <~ : encrypted
    [message] = stored_messages(session_factory)
    assert message.subject == "over TLS"


def test_swaks_requiring_tls_fails_when_it_is_not_offered(gateway, tenant, session_factory):
    result = swaks(gateway, "--to", tenant.address, "--tls")
    assert result.returncode != 0
    assert "STARTTLS" in result.stdout + result.stderr
    assert stored_messages(session_factory) == []


def test_require_tls_without_certificate_fails_at_start(settings):
    with pytest.raises(ValueError, match="SMTP_TLS_CERT"):
        build_controller(replace(settings, smtp_require_tls=True), port=free_port())


def test_tls_settings_come_from_the_environment(monkeypatch, tmp_path, tls_files):
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    monkeypatch.setenv("SECRET_KEY", "x")
    monkeypatch.setenv("SMTP_TLS_CERT", str(tls_files[0]))
    monkeypatch.setenv("SMTP_TLS_KEY", str(tls_files[1]))
    monkeypatch.setenv("SMTP_REQUIRE_TLS", "true")
    loaded = Settings.from_env()
    assert (loaded.smtp_tls_cert, loaded.smtp_tls_key, loaded.smtp_require_tls) == (*tls_files, True)
    monkeypatch.delenv("SMTP_TLS_CERT")
    monkeypatch.delenv("SMTP_TLS_KEY")
    monkeypatch.delenv("SMTP_REQUIRE_TLS")
    assert Settings.from_env().smtp_tls_cert is None and not Settings.from_env().smtp_require_tls


# Never an open relay -----------------------------------------------------------------------


def relay_attempts(local: str) -> list[tuple[str, int, bytes]]:
    """(RCPT argument as sent, expected code, expected reply start)."""
    d = INBOUND_DOMAIN
    return [
        (f"<{local}@other.example>", 550, b"5.7.1"),
        ("<postmaster@gmail.com>", 550, b"5.7.1"),
        (f"<{local}@sub.{d}>", 550, b"5.7.1"),
        (f"<{local}@{d}.evil.example>", 550, b"5.7.1"),
        (f"<@{d}:victim@evil.example>", 550, b"5.7.1"),  # source route: the final address is foreign
        (f"<@{d},@relay.example:victim@evil.example>", 550, b"5.7.1"),
        (f"<victim%evil.example@{d}>", 550, b"5.1.1"),  # percent hack
        (f"<{local}%evil.example@{d}>", 550, b"5.1.1"),
        (f'<"victim@evil.example"@{d}>', 550, b"5.1.1"),  # quoted local part hiding an address
        (f'<"{local}@evil.example"@{d}>', 550, b"5.1.1"),
        (f"<evil.example!victim@{d}>", 550, b"5.1.1"),  # bang path
        (f"<{local}@[127.0.0.1]>", 550, b"5.7.1"),  # IP literals
        (f"<{local}@[IPv6:::1]>", 550, b"5.7.1"),
        (f"<victim@evil.example@{d}>", 553, b"5.1.3"),  # not an address at all
        (f"<{local}@{d}>,<victim@evil.example>", 501, b""),
    ]


def test_relay_attempts_are_refused_and_nothing_is_stored(settings, tenant, session_factory):
    local = tenant.address.split("@")[0]
    attempts = relay_attempts(local)
    with running_server(settings, max_refused_recipients=100) as server, connect(server) as smtp:
        smtp.ehlo()
        for mail_from in (SENDER, f"{local}@{INBOUND_DOMAIN}", "<>"):  # even "from" ourselves
            assert smtp.mail(mail_from)[0] == 250
            for rcpt, expected_code, expected_start in attempts:
                code, reply = smtp.docmd(f"RCPT TO:{rcpt}")
                assert code == expected_code and reply.startswith(expected_start), (rcpt, code, reply)
            assert smtp.docmd("DATA")[0] == 503  # no recipient was taken
            smtp.rset()
    assert stored_messages(session_factory) == []


def test_source_route_to_our_domain_is_delivered_locally_without_the_route(gateway, tenant, session_factory):
    # RFC 5321 3.6.1: the route is ignored; the final address is ours, so this is local delivery.
    with connect(gateway) as smtp:
        smtp.ehlo()
        assert smtp.mail(SENDER)[0] == 250
        assert smtp.docmd(f"RCPT TO:<@relay.example:{tenant.address}>")[0] == 250
        assert smtp.data(RAW)[0] == 250
    [message] = stored_messages(session_factory)
    assert message.recipient == tenant.address and message.tenant_id == tenant.tenant.id


def test_quoted_plain_local_part_is_the_same_address(gateway, tenant, session_factory):
    local = tenant.address.split("@")[0]
    with connect(gateway) as smtp:
        smtp.ehlo()
        assert smtp.mail(SENDER)[0] == 250
        assert smtp.docmd(f'RCPT TO:<"{local}"@{INBOUND_DOMAIN}>')[0] == 250
        assert smtp.data(RAW)[0] == 250
    assert [m.tenant_id for m in stored_messages(session_factory)] == [tenant.tenant.id]


def test_swaks_relay_attempt_is_refused(gateway, tenant, session_factory):
    result = swaks(gateway, "--to", "victim@evil.example")
    assert result.returncode != 0
    assert "<** 550 5.7.1 Relay access denied" in result.stdout, result.stdout
    result = swaks(gateway, "--to", f"victim%evil.example@{INBOUND_DOMAIN}")
    assert "<** 550 5.1.1" in result.stdout, result.stdout
    assert stored_messages(session_factory) == []


# Address enumeration -----------------------------------------------------------------------


def _rcpt(smtp: smtplib.SMTP, address: str) -> tuple[int, bytes]:
    return smtp.docmd(f"RCPT TO:<{address}>")


def connect_from(controller: InboxController, source_ip: str) -> smtplib.SMTP:
    return smtplib.SMTP(
        controller.hostname, controller.port, local_hostname="client.example", timeout=10,
        source_address=(source_ip, 0),
    )


def test_enumeration_is_cut_off_after_the_refusal_limit(settings, tenant, session_factory):
    unknown = [f"guess{n}@{INBOUND_DOMAIN}" for n in range(3)]
    with running_server(settings, max_refused_recipients=3, refused_window=600) as server:
        with connect(server) as smtp:
            smtp.ehlo()
            smtp.mail(SENDER)
            assert _rcpt(smtp, unknown[0])[0] == 550
            assert _rcpt(smtp, "victim@evil.example")[0] == 550  # relay refusals count too
            assert _rcpt(smtp, unknown[1])[0] == 550
            # Over the limit: even a real address gets 421 (a 250 would answer the enumeration).
            code, reply = _rcpt(smtp, tenant.address)
            assert code == 421 and reply.startswith(b"4.7.0"), reply
            with pytest.raises(smtplib.SMTPServerDisconnected):
                smtp.noop()
        with connect(server) as smtp:  # a new connection from the same address
            smtp.ehlo()
            smtp.mail(SENDER)
            assert _rcpt(smtp, tenant.address)[0] == 421
        # Another client address is not affected.
        with connect_from(server, "127.0.0.2") as other:
            assert send(other, [tenant.address])[0] == 250
    [message] = stored_messages(session_factory)
    assert message.peer == "127.0.0.2"


def test_enumeration_limit_expires_after_the_window(settings, tenant, session_factory):
    with running_server(settings, max_refused_recipients=2, refused_window=1.0) as server:
        with connect(server) as smtp:
            smtp.ehlo()
            smtp.mail(SENDER)
            assert _rcpt(smtp, f"a1@{INBOUND_DOMAIN}")[0] == 550
            assert _rcpt(smtp, f"a2@{INBOUND_DOMAIN}")[0] == 550
            assert _rcpt(smtp, tenant.address)[0] == 421
        time.sleep(1.1)
        with connect(server) as smtp:
            assert send(smtp, [tenant.address])[0] == 250
    assert len(stored_messages(session_factory)) == 1


def test_swaks_sees_the_421_and_the_connection_closed(settings, tenant):
    with running_server(settings, max_refused_recipients=1) as server:
        first = swaks(server, "--to", f"nobody@{INBOUND_DOMAIN}")
        assert "<** 550 5.1.1" in first.stdout, first.stdout
        second = swaks(server, "--to", tenant.address)
    assert second.returncode != 0
    assert "<** 421 4.7.0 Too many refused recipients" in second.stdout, second.stdout


def test_one_client_cannot_take_every_connection_slot(settings, tenant, session_factory):
    with running_server(settings, max_connections_per_client=2) as server:
        _wait_for(lambda: server.handler.connections == 0)  # the controller's start-up probe
        with connect(server) as first, connect(server) as second:
            with pytest.raises(smtplib.SMTPConnectError) as refused:
                connect(server)
            assert refused.value.smtp_code == 421 and b"from your address" in refused.value.smtp_error
            with connect_from(server, "127.0.0.2") as other:  # another client still gets in
                assert send(other, [tenant.address])[0] == 250
            assert first.noop()[0] == 250 and second.noop()[0] == 250
        _wait_for(lambda: server.handler.connections == 0)
        assert server.handler.connections_by_client == {}  # nothing kept for clients that left
        with connect(server) as again:
            assert send(again, [tenant.address])[0] == 250
    assert len(stored_messages(session_factory)) == 2


def test_an_exempt_relay_is_not_limited_per_client_but_others_are(settings, tenant, session_factory):
    limits = {"max_refused_recipients": 1, "max_connections_per_client": 1, "exempt_networks": ("127.0.0.1/32",)}
    with running_server(settings, **limits) as server:  # type: ignore[arg-type]
        _wait_for(lambda: server.handler.connections == 0)
        with connect(server) as relay, connect(server) as relay_again:  # two connections: over the cap
            relay.ehlo()
            relay.mail(SENDER)
            for n in range(3):
                assert _rcpt(relay, f"nobody{n}@{INBOUND_DOMAIN}")[0] == 550  # never 421
            assert send(relay_again, [tenant.address])[0] == 250
        with connect_from(server, "127.0.0.2") as other:
            other.ehlo()
            other.mail(SENDER)
            assert _rcpt(other, f"nobody@{INBOUND_DOMAIN}")[0] == 550
            assert _rcpt(other, tenant.address)[0] == 421
    assert len(stored_messages(session_factory)) == 1


def test_exempt_networks_come_from_the_environment_and_typos_fail(settings):
    configured = replace(settings, extra={"SMTP_LIMIT_EXEMPT": "10.0.0.5, 2001:db8::/48"})
    limits = Limits.from_settings(configured)
    assert limits.exempt_networks == ("10.0.0.5/32", "2001:db8::/48")
    assert limits.exempt("10.0.0.5") and limits.exempt("2001:db8::1") and not limits.exempt("10.0.0.6")
    with pytest.raises(ValueError):
        Limits.from_settings(replace(settings, extra={"SMTP_LIMIT_EXEMPT": "10.0.0.300"}))


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_refusal_limiter_is_a_sliding_window():
    clock = _Clock()
    limiter = RefusalLimiter(3, 60, clock=clock)
    for _ in range(3):
        assert not limiter.blocked("192.0.2.1")
        limiter.record("192.0.2.1")
        clock.now += 10
    assert limiter.blocked("192.0.2.1") and not limiter.blocked("192.0.2.2")
    clock.now = 1000.0 + 60  # the first refusal left the window: two in it
    assert not limiter.blocked("192.0.2.1")


def test_refusal_limiter_memory_is_bounded_and_ipv6_counts_per_64():
    limiter = RefusalLimiter(2, 60, max_clients=100)
    for n in range(1000):
        limiter.record(f"10.0.{n // 256}.{n % 256}")
    assert len(limiter) == 100
    assert limiter.blocked("10.0.3.231") is False  # one refusal each
    # One IPv6 host rotating addresses inside its /64 is one client.
    limiter.record("2001:db8:1:2::1")
    limiter.record("2001:db8:1:2:ffff::9")
    assert limiter.blocked("2001:db8:1:2::abcd") and not limiter.blocked("2001:db8:1:3::1")
    assert RefusalLimiter.client_key("::ffff:192.0.2.7") == "192.0.2.7"


# DATA timeouts -----------------------------------------------------------------------------


def _start_data(smtp: smtplib.SMTP, recipient: str, *mail_options: str) -> None:
    smtp.ehlo()
    assert smtp.mail(SENDER, list(mail_options))[0] == 250
    assert smtp.rcpt(recipient)[0] == 250
    assert smtp.docmd("DATA")[0] == 354


def test_a_steady_upload_outlasts_the_command_timeout(settings, tenant, session_factory):
    # Command timeout 0.5 s; the upload takes ~1.5 s but bytes keep coming.
    with running_server(settings, command_timeout=0.5, data_idle_timeout=0.5) as server, connect(server) as smtp:
        _start_data(smtp, tenant.address)
        smtp.send(b"Subject: slow\r\n\r\n")
        for n in range(8):
            time.sleep(0.2)
            smtp.send(b"line %d\r\n" % n)
        smtp.send(b".\r\n")
        assert smtp.getreply()[0] == 250
        assert smtp.noop()[0] == 250  # and the session goes on
    [message] = stored_messages(session_factory)
    assert message.subject == "slow"


def test_a_stalled_upload_is_dropped_after_the_idle_timeout(settings, tenant, session_factory):
    with running_server(settings, command_timeout=30, data_idle_timeout=0.5) as server, connect(server) as smtp:
        _start_data(smtp, tenant.address)
        smtp.send(b"Subject: stalled\r\n\r\nhalf")
        time.sleep(1.2)
        with pytest.raises((smtplib.SMTPServerDisconnected, OSError)):
            smtp.send(b" more\r\n.\r\n")
            smtp.getreply()
    assert stored_messages(session_factory) == []


def test_a_trickling_upload_is_cut_at_the_size_scaled_deadline(settings, tenant, session_factory):
    # SIZE=1000 at 1000 B/s: 0.4 s + 1 s to send it; a byte every 0.1 s never idles but never finishes.
    small = replace(settings, max_message_bytes=1_000_000)
    limits = {"command_timeout": 0.4, "data_idle_timeout": 5, "data_min_rate": 1000}
    with running_server(small, **limits) as server, connect(server) as smtp:
        _start_data(smtp, tenant.address, "SIZE=1000")
        started = time.monotonic()
        with pytest.raises((smtplib.SMTPServerDisconnected, OSError)):
            while time.monotonic() - started < 5:
                smtp.send(b"x\r\n")
                time.sleep(0.1)
        elapsed = time.monotonic() - started
    assert 1.2 < elapsed < 3, elapsed
    assert stored_messages(session_factory) == []


def test_the_data_deadline_scales_with_the_size_limit_without_size_declared(settings, tenant, session_factory):
    # No SIZE=: the budget is for the size limit, 0.4 s + 2000 B / 1000 B/s = 2.4 s.
    small = replace(settings, max_message_bytes=2000)
    limits = {"command_timeout": 0.4, "data_idle_timeout": 5, "data_min_rate": 1000}
    with running_server(small, **limits) as server, connect(server) as smtp:
        _start_data(smtp, tenant.address)
        started = time.monotonic()
        smtp.send(b"Subject: paced\r\n\r\n")
        while time.monotonic() - started < 1.5:  # well within 2.4 s
            smtp.send(b"y\r\n")
            time.sleep(0.1)
        smtp.send(b".\r\n")
        assert smtp.getreply()[0] == 250
    assert len(stored_messages(session_factory)) == 1


def test_after_data_the_command_timeout_applies_again(settings, tenant):
    with running_server(settings, command_timeout=0.5, data_idle_timeout=5) as server, connect(server) as smtp:
        assert send(smtp, [tenant.address])[0] == 250
        time.sleep(1.2)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            smtp.noop()


def test_raw_socket_session_cannot_hold_a_slot_past_the_command_timeout(settings):
    with (
        running_server(settings, command_timeout=0.5) as server,
        socket.create_connection((server.hostname, server.port), timeout=5) as sock,
    ):
        assert sock.recv(100).startswith(b"220")
        sock.sendall(b"EHLO x\r\n")
        time.sleep(1.2)
        data = b""
        while chunk := sock.recv(4096):  # replies, then EOF when the server hangs up
            data += chunk
        assert data.startswith(b"250")
