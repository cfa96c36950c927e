"""Sender authentication on receipt (issue 8, items 3 and 4): SPF, DKIM and DMARC verdicts, the tenant's
choice for mail failing DMARC (accept, quarantine, refuse with 550 5.7.1), and forwarding codes verified
only by a DKIM signature of the provider.

Messages are signed in the tests with a key generated here; DNS answers come from an injected lookup or
from a local DNS server (tests/dnsserver.py) that the real dnspython resolver is pointed at: no network.
"""

from __future__ import annotations

import base64
import re
import smtplib
import time
from collections.abc import Iterator

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.config import Settings
from core.documents import processing
from core.errors import ValidationFailed
from core.files.storage import FileStorage
from core.inbound import forwarding, intake, senders
from core.inbound import senderauth as svc
from core.mail import senderauth as sa
from core.models import AuditEvent, ForwardingConfirmation, InboundMessage, MessageStatus, Role, Tenant
from core.tenancy import accounts
from mailgate.smtp import InboxController
from tests.conftest import TenantFixture, make_tenant
from tests.dnsserver import LocalDns
from tests.invoicegen import make_email, make_invoice_pdf
from tests.services import run_worker_burst
from tests.test_forwarding import CODE, REQUESTER, SENT, VF, gmail_email
from tests.test_senders import csrf_token, login
from tests.test_smtp import running_server
from worker.queue import enqueue_ingest, get_queue

PDF = make_invoice_pdf(number="F-AUTH-1")


# Keys, signatures, DNS ----------------------------------------------------------------------------


def make_key() -> tuple[bytes, str]:
    """(private key PEM, the DKIM TXT record publishing its public half)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()


@pytest.fixture(scope="module")
def key() -> tuple[bytes, str]:
    return make_key()


def sign(raw: bytes, private: bytes, domain: str, selector: str = "sel1") -> bytes:
    signature = dkim.sign(raw, selector.encode(), domain.encode(), private,
                          canonicalize=(b"relaxed", b"relaxed"),
                          include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    return signature + raw


def static(records: dict[tuple[str, str], list[str]], temp: set[str] = frozenset()):  # noqa: ANN201
    """An injected lookup: answers from ``records``; names in ``temp`` fail temporarily."""
    asked: list[tuple[str, str]] = []

    def lookup(name: str, rdtype: str, timeout: float) -> list[str]:
        asked.append((name, rdtype))
        if name in temp:
            raise sa.DnsTempError("SERVFAIL")
        return records.get((name, rdtype), [])

    lookup.asked = asked  # type: ignore[attr-defined]
    return lookup


def letter(sender: str = "Billing <billing@supplier.example>", to: str = "x@in.example.test",
           body: str = "Please find our invoice attached.") -> bytes:
    return make_email(to, PDF, sender=sender, subject="Invoice F-AUTH-1", body=body)


def zone(key_record: str, *, dmarc: str | None = "v=DMARC1; p=reject", spf: str | None = "v=spf1 ip4:192.0.2.0/24 -all",
         domain: str = "supplier.example") -> dict[tuple[str, str], list[str]]:
    records = {(f"sel1._domainkey.{domain}", "TXT"): [key_record]}
    if dmarc:
        records[(f"_dmarc.{domain}", "TXT")] = [dmarc]
    if spf:
        records[(domain, "TXT")] = [spf, "google-site-verification=abc"]
    return records


# DKIM --------------------------------------------------------------------------------------------


def test_dkim_pass_fail_none_and_missing_key(key) -> None:
    private, record = key
    records = zone(record)
    signed = sign(letter(), private, "supplier.example")

    passed = sa.evaluate(signed, ip=None, mail_from=None, helo=None, lookup=static(records))
    assert passed.dkim == "pass" and passed.dkim_domains == ["supplier.example"]
    assert passed.signatures == [{"d": "supplier.example", "s": "sel1", "result": "pass"}]

    tampered = signed.replace(b"Please find our invoice", b"Please pay to IBAN FR76 our invoice")
    assert sa.evaluate(tampered, ip=None, mail_from=None, helo=None, lookup=static(records)).dkim == "fail"

    unsigned = sa.evaluate(letter(), ip=None, mail_from=None, helo=None, lookup=static(records))
    assert unsigned.dkim == "none" and unsigned.signatures == [] and unsigned.dkim_domains == []

    no_key = sa.evaluate(signed, ip=None, mail_from=None, helo=None, lookup=static({}))
    assert no_key.dkim == "permerror" and no_key.dkim_domains == []


def test_another_key_does_not_verify(key) -> None:
    private, _record = key
    _other_private, other_record = make_key()
    signed = sign(letter(), private, "supplier.example")
    verdicts = sa.evaluate(signed, ip=None, mail_from=None, helo=None, lookup=static(zone(other_record)))
    assert verdicts.dkim == "fail" and verdicts.dmarc == "fail"


# SPF ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("record", "ip", "expected"), [
    ("v=spf1 ip4:192.0.2.0/24 -all", "192.0.2.10", "pass"),
    ("v=spf1 ip4:192.0.2.0/24 -all", "198.51.100.7", "fail"),
    ("v=spf1 ip4:192.0.2.0/24 ~all", "198.51.100.7", "softfail"),
    ("v=spf1 ip4:192.0.2.0/24 ?all", "198.51.100.7", "neutral"),
    ("v=spf1 include:_spf.mailer.example -all", "203.0.113.5", "pass"),
    (None, "192.0.2.10", "none"),
])
def test_spf_results(key, record: str | None, ip: str, expected: str) -> None:
    records = zone(key[1], spf=record)
    records[("_spf.mailer.example", "TXT")] = ["v=spf1 ip4:203.0.113.0/24 -all"]
    verdicts = sa.evaluate(letter(), ip=ip, mail_from="bounces@supplier.example", helo="mx.supplier.example",
                           lookup=static(records))
    assert (verdicts.spf, verdicts.spf_domain) == (expected, "supplier.example")


def test_spf_of_the_null_sender_checks_the_helo_name(key) -> None:
    records = {("mx.supplier.example", "TXT"): ["v=spf1 ip4:192.0.2.10 -all"]}
    verdicts = sa.evaluate(letter(), ip="192.0.2.10", mail_from="", helo="mx.supplier.example",
                           lookup=static(records))
    assert (verdicts.spf, verdicts.spf_domain) == ("pass", "mx.supplier.example")


# DMARC -------------------------------------------------------------------------------------------


def test_dmarc_pass_by_aligned_spf_or_dkim_and_fail_by_neither(key) -> None:
    private, record = key
    records = zone(record)
    by_spf = sa.evaluate(letter(), ip="192.0.2.10", mail_from="bounces@supplier.example", helo="h",
                         lookup=static(records))
    assert (by_spf.dmarc, by_spf.aligned, by_spf.dmarc_policy) == ("pass", True, "reject")
    by_dkim = sa.evaluate(sign(letter(), private, "supplier.example"), ip="198.51.100.7",
                          mail_from="bounces@esp.example", helo="h", lookup=static(records))
    assert (by_dkim.spf, by_dkim.dkim, by_dkim.dmarc) == ("none", "pass", "pass")
    spoofed = sa.evaluate(letter(), ip="198.51.100.7", mail_from="x@attacker.example", helo="h",
                          lookup=static(records))
    assert (spoofed.dmarc, spoofed.aligned, spoofed.from_domain, spoofed.dmarc_policy) == (
        "fail", False, "supplier.example", "reject")


def test_dmarc_signature_of_another_domain_is_not_aligned(key) -> None:
    private, record = key
    records = zone(record) | {("sel1._domainkey.attacker.example", "TXT"): [record]}
    verdicts = sa.evaluate(sign(letter(), private, "attacker.example"), ip=None, mail_from=None, helo=None,
                           lookup=static(records))
    assert verdicts.dkim == "pass" and verdicts.dkim_domains == ["attacker.example"]
    assert verdicts.dmarc == "fail" and not verdicts.aligned


def test_dmarc_relaxed_and_strict_alignment_and_the_organizational_domain(key) -> None:
    private, record = key
    # Mail from a subdomain, signed by the parent: the record is found at the organizational domain.
    records = zone(record, dmarc="v=DMARC1; p=quarantine; sp=reject")
    raw = sign(letter(sender="billing@eu.supplier.example"), private, "supplier.example")
    relaxed = sa.evaluate(raw, ip=None, mail_from=None, helo=None, lookup=static(records))
    assert (relaxed.dmarc, relaxed.dmarc_policy) == ("pass", "reject")  # sp= applies to subdomains
    strict = zone(record, dmarc="v=DMARC1; p=reject; adkim=s")
    verdicts = sa.evaluate(raw, ip=None, mail_from=None, helo=None, lookup=static(strict))
    assert verdicts.dmarc == "fail"
    assert sa.organizational_domain("mail.example.co.uk") == "example.co.uk"


def test_dmarc_none_without_a_record_and_pct_lowers_the_policy(key) -> None:
    no_record = sa.evaluate(letter(), ip="198.51.100.7", mail_from="x@attacker.example", helo="h",
                            lookup=static(zone(key[1], dmarc=None)))
    assert (no_record.dmarc, no_record.dmarc_policy) == ("none", None)
    sampled = sa.evaluate(letter(), ip="198.51.100.7", mail_from="x@attacker.example", helo="h",
                          lookup=static(zone(key[1], dmarc="v=DMARC1; p=reject; pct=50")))
    assert (sampled.dmarc, sampled.dmarc_policy) == ("fail", "quarantine")


def test_several_from_addresses_are_not_a_dmarc_pass(key) -> None:
    raw = letter().replace(b"From: ", b"From: a@supplier.example, ", 1)
    verdicts = sa.evaluate(raw, ip=None, mail_from=None, helo=None, lookup=static(zone(key[1])))
    assert verdicts.dmarc == "permerror" and verdicts.from_domain is None


# DNS trouble -------------------------------------------------------------------------------------


def test_temporary_dns_errors_give_temperror_never_a_fail(key) -> None:
    private, record = key
    signed = sign(letter(), private, "supplier.example")
    broken = static(zone(record), temp={"sel1._domainkey.supplier.example", "supplier.example"})
    verdicts = sa.evaluate(signed, ip="198.51.100.7", mail_from="b@supplier.example", helo="h", lookup=broken)
    assert (verdicts.spf, verdicts.dkim, verdicts.dmarc) == ("temperror", "temperror", "temperror")
    dmarc_down = static(zone(record), temp={"_dmarc.supplier.example"})
    assert sa.evaluate(letter(), ip=None, mail_from=None, helo=None, lookup=dmarc_down).dmarc == "temperror"


def test_the_time_budget_bounds_a_slow_dns_server(key) -> None:
    private, record = key
    calls = []

    def slow(name: str, rdtype: str, timeout: float) -> list[str]:
        calls.append(timeout)
        time.sleep(min(timeout, 0.2))
        return zone(record).get((name, rdtype), [])

    started = time.monotonic()
    verdicts = sa.evaluate(sign(letter(), private, "supplier.example"), ip="198.51.100.7",
                           mail_from="b@supplier.example", helo="h", lookup=slow, budget=0.3)
    assert time.monotonic() - started < 1.5
    assert "temperror" in (verdicts.spf, verdicts.dkim, verdicts.dmarc)
    assert all(t <= 0.3 for t in calls)  # every question got at most what was left of the budget


def test_the_real_resolver_against_a_local_dns_server(key) -> None:
    private, record = key
    with LocalDns(zone(record), servfail={"_dmarc.broken.example"}) as server:
        lookup = sa.SystemLookup([server.address])
        verdicts = sa.evaluate(sign(letter(), private, "supplier.example"), ip="192.0.2.10",
                               mail_from="b@supplier.example", helo="h", lookup=lookup)
        assert (verdicts.spf, verdicts.dkim, verdicts.dmarc) == ("pass", "pass", "pass")  # a 2-chunk TXT key too
        asked = len(server.queries)
        sa.evaluate(sign(letter(), private, "supplier.example"), ip="192.0.2.10", mail_from="b@supplier.example",
                    helo="h", lookup=lookup)
        assert len(server.queries) == asked  # the second message is answered from the TTL cache
        broken = sa.evaluate(letter(sender="a@broken.example"), ip=None, mail_from=None, helo=None, lookup=lookup)
        assert broken.dmarc == "temperror"


# Upstream Authentication-Results ---------------------------------------------------------------

UPSTREAM = ("mx.relay.example; spf=pass smtp.mailfrom=b@supplier.example; dkim=pass header.d=supplier.example "
            "header.s=sel1; dmarc=pass (p=REJECT) header.from=supplier.example")
FORGED = ("mx.relay.example; spf=pass smtp.mailfrom=x@attacker.example; dkim=pass header.d=supplier.example; "
          "dmarc=pass header.from=supplier.example")


def with_header(raw: bytes, value: str) -> bytes:
    return f"Authentication-Results: {value}\r\n".encode() + raw


def test_upstream_verdicts_only_from_a_trusted_server() -> None:
    raw = with_header(letter(), UPSTREAM)
    found = sa.from_upstream(raw, {"mx.relay.example"})
    assert found is not None and (found.source, found.authserv_id) == ("upstream", "mx.relay.example")
    assert (found.spf, found.dkim, found.dmarc, found.dkim_domains) == ("pass", "pass", "pass", ["supplier.example"])
    assert (found.spf_domain, found.from_domain, found.dmarc_policy) == ("supplier.example", "supplier.example",
                                                                         "reject")
    assert sa.from_upstream(raw, {"mx.other.example"}) is None
    assert sa.from_upstream(letter(), None) is None


def test_trusted_relay_by_ip_is_believed_and_anyone_else_is_checked(
    key, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sa.TRUSTED_RELAYS_ENV, "10.0.0.0/24, 2001:db8::1")
    monkeypatch.setenv(forwarding.TRUSTED_AUTHSERV_ENV, "")
    raw = with_header(letter(), FORGED)
    lookup = static(zone(key[1]))
    relayed = svc.verdicts_for(raw, source="smtp", peer="10.0.0.7", mail_from="b@supplier.example", helo="h",
                               lookup=lookup)
    assert relayed is not None and relayed.source == "upstream" and relayed.dmarc == "pass"
    # The same header from an untrusted client is ignored: we check, and the spoof fails.
    direct = svc.verdicts_for(raw, source="smtp", peer="198.51.100.7", mail_from="x@attacker.example", helo="h",
                              lookup=lookup)
    assert direct is not None and direct.source == "evaluated" and direct.dmarc == "fail"
    assert svc.verdicts_for(raw, source="upload", peer=None, mail_from=None, helo=None, lookup=lookup) is None
    # IMAP: the provider's header counts only when its authserv-id is trusted.
    assert svc.verdicts_for(raw, source="imap", peer=None, mail_from=None, helo=None,
                            lookup=lookup).source == "evaluated"
    monkeypatch.setenv(forwarding.TRUSTED_AUTHSERV_ENV, "mx.relay.example")
    assert svc.verdicts_for(raw, source="imap", peer=None, mail_from=None, helo=None,
                            lookup=lookup).source == "upstream"


# The tenant's choice, in the worker --------------------------------------------------------------


def test_decision_table() -> None:
    fail = sa.Verdicts(source="evaluated", dmarc="fail", dmarc_policy="reject", from_domain="x.example")
    soft = sa.Verdicts(source="evaluated", dmarc="fail", dmarc_policy="none", from_domain="x.example")
    temp = sa.Verdicts(source="evaluated", dmarc="temperror", dmarc_policy="reject")
    assert [svc.decide(fail, a) for a in svc.ACTIONS] == ["accept", "quarantine", "refuse"]
    assert [svc.decide(soft, a) for a in svc.ACTIONS] == ["accept", "quarantine", "quarantine"]
    assert [svc.decide(temp, a) for a in svc.ACTIONS] == ["accept", "accept", "accept"]
    assert svc.gateway_decision(fail, {1: "refuse", 2: "refuse"}).startswith("550 5.7.1")
    assert svc.gateway_decision(fail, {1: "refuse", 2: "accept"}) is None


def _verdicts(key, raw: bytes, **kw) -> dict:  # noqa: ANN001
    return sa.evaluate(raw, ip="198.51.100.7", mail_from="x@attacker.example", helo="h",
                       lookup=static(zone(key[1])), **kw).as_json()


def test_quarantine_release_and_accept_in_the_worker(
    key, session: Session, storage: FileStorage, tenant: TenantFixture, other_tenant: TenantFixture
) -> None:
    svc.set_tenant_action(session, tenant.tenant.id, svc.QUARANTINE, tenant.admin)
    session.commit()
    raw = letter(to=tenant.address)
    held = intake.store_message(session, storage, tenant.tenant.id, raw, recipient=tenant.address,
                                peer="198.51.100.7", sender_auth=_verdicts(key, raw))
    kept = intake.store_message(session, storage, other_tenant.tenant.id, raw, recipient=other_tenant.address,
                                peer="198.51.100.7", sender_auth=_verdicts(key, raw))
    session.commit()
    for message in (held, kept):
        processing.ingest_message(session, storage, message.id)
        session.commit()
        session.refresh(message)
    assert held.status == MessageStatus.QUARANTINED.value
    assert held.reason.startswith("Failed DMARC for supplier.example")
    assert held in session.scalars(senders.quarantine_query(tenant.tenant.id)).all()
    assert kept.status == MessageStatus.PROCESSED.value and kept.sender_auth["dmarc"] == "fail"  # accept
    senders.release(session, tenant.tenant.id, held.id, tenant.admin)
    session.commit()
    processing.ingest_message(session, storage, held.id)
    session.commit()
    session.refresh(held)
    assert held.status == MessageStatus.PROCESSED.value and len(held.documents) == 1
    audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "settings.dmarc_action")).one()
    assert (audit.tenant_id, audit.detail) == (tenant.tenant.id, {"from": "accept", "to": "quarantine"})


def test_invalid_action_is_refused(session: Session, tenant: TenantFixture) -> None:
    with pytest.raises(ValidationFailed):
        svc.set_tenant_action(session, tenant.tenant.id, "drop")


# Over SMTP, with the real resolver pointed at a local DNS server -------------------------------


@pytest.fixture
def local_dns(key, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalDns]:
    records = zone(key[1], spf="v=spf1 ip4:192.0.2.0/24 -all")
    records |= zone(key[1], domain="lenient.example", dmarc="v=DMARC1; p=quarantine")
    records |= {("20230601._domainkey.google.com", "TXT"): [key[1]]}
    with LocalDns(records) as server:
        # The worker processes inherit the variable; this process's default lookup is made again from it.
        monkeypatch.setenv(sa.DNS_ENV, server.address)
        monkeypatch.setattr(sa, "_default", None)
        yield server


def smtp_send(controller: InboxController, recipients: list[str], raw: bytes,
              mail_from: str = "bounces@attacker.example") -> tuple[int, bytes]:
    with smtplib.SMTP(controller.hostname, controller.port, local_hostname="mx.attacker.example", timeout=20) as smtp:
        smtp.ehlo()
        assert smtp.mail(mail_from)[0] == 250
        for recipient in recipients:
            assert smtp.rcpt(recipient)[0] == 250
        return smtp.data(raw)


def messages(session_factory) -> list[InboundMessage]:  # noqa: ANN001
    with session_factory() as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def test_refuse_answers_550_571_for_a_dmarc_reject_failure_and_accepts_the_genuine(
    key, local_dns: LocalDns, settings: Settings, session: Session, tenant: TenantFixture, session_factory
) -> None:
    svc.set_tenant_action(session, tenant.tenant.id, svc.REFUSE)
    session.commit()
    with running_server(settings) as controller:
        code, reply = smtp_send(controller, [tenant.address], letter(to=tenant.address))
        assert (code, reply.split(b" ")[0]) == (550, b"5.7.1") and b"supplier.example" in reply
        assert messages(session_factory) == []  # refused: nothing stored
        genuine = sign(letter(to=tenant.address), key[0], "supplier.example")
        assert smtp_send(controller, [tenant.address], genuine)[0] == 250
        # p=quarantine: the domain did not ask for refusal; accepted, held by the worker.
        lenient = letter(sender="billing@lenient.example", to=tenant.address)
        assert smtp_send(controller, [tenant.address], lenient)[0] == 250
    stored = messages(session_factory)
    assert len(stored) == 2
    assert stored[0].sender_auth["dmarc"] == "pass" and stored[0].sender_auth["dkim_domains"] == ["supplier.example"]
    assert stored[0].helo == "mx.attacker.example" and stored[0].sender_auth["source"] == "evaluated"
    assert stored[1].sender_auth["dmarc"] == "fail" and stored[1].sender_auth["dmarc_policy"] == "quarantine"
    for message in stored:
        enqueue_ingest(get_queue(settings), message.id)
    run_worker_burst(settings)
    final = {m.id: m for m in messages(session_factory)}
    assert final[stored[0].id].status == MessageStatus.PROCESSED.value
    assert final[stored[1].id].status == MessageStatus.QUARANTINED.value


@pytest.mark.parametrize(("action", "status"), [
    (svc.QUARANTINE, MessageStatus.QUARANTINED), (svc.ACCEPT, MessageStatus.PROCESSED),
])
def test_quarantine_and_accept_over_smtp_through_the_real_worker(
    local_dns: LocalDns, settings: Settings, session: Session, tenant: TenantFixture, session_factory,
    action: str, status: MessageStatus,
) -> None:
    svc.set_tenant_action(session, tenant.tenant.id, action)
    session.commit()
    with running_server(settings) as controller:
        assert smtp_send(controller, [tenant.address], letter(to=tenant.address))[0] == 250
        assert controller.handler.in_flight.wait_idle(10)
    [message] = messages(session_factory)
    assert message.sender_auth is None  # not checked before the 250: nobody refuses
    enqueue_ingest(get_queue(settings), message.id)
    run_worker_burst(settings)
    [message] = messages(session_factory)
    assert message.status == status.value
    auth = message.sender_auth
    assert (auth["dmarc"], auth["spf"], auth["spf_domain"]) == ("fail", "none", "attacker.example")
    assert message.helo == "mx.attacker.example" and message.envelope_sender == "bounces@attacker.example"


def test_one_delivery_to_a_refusing_and_an_accepting_company(
    local_dns: LocalDns, settings: Settings, session: Session, tenant: TenantFixture,
    other_tenant: TenantFixture, storage: FileStorage, session_factory,
) -> None:
    svc.set_tenant_action(session, tenant.tenant.id, svc.REFUSE)
    session.commit()
    with running_server(settings) as controller:
        assert smtp_send(controller, [tenant.address, other_tenant.address], letter(to=tenant.address))[0] == 250
    by_tenant = {m.tenant_id: m for m in messages(session_factory)}
    for message in by_tenant.values():
        processing.ingest_message(session, storage, message.id)
        session.commit()
    by_tenant = {m.tenant_id: m for m in messages(session_factory)}
    assert by_tenant[tenant.tenant.id].status == MessageStatus.QUARANTINED.value
    assert "policy is reject" in by_tenant[tenant.tenant.id].reason
    assert by_tenant[other_tenant.tenant.id].status == MessageStatus.PROCESSED.value


# Forwarding codes: verified only by the provider's DKIM signature ------------------------------


def gmail(to: str, private: bytes | None, *, subject: str | None = None, auth_results: list[str] = ()) -> bytes:
    raw = gmail_email(to, subject=subject, auth_results=auth_results).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return sign(raw, private, "google.com", "20230601") if private else raw


def _code_page(app: Flask, fixture: TenantFixture) -> str:
    client = login(app, fixture.admin.email)
    page = client.get("/settings/forwarding")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def _api_codes(app: Flask, fixture: TenantFixture) -> list[dict]:
    response = app.test_client().get("/api/v1/forwarding-codes", headers={"Authorization": f"Bearer {fixture.token}"})
    assert response.status_code == 200
    return response.get_json()["items"]


def test_forged_gmail_confirmation_is_unverified_and_its_link_is_not_clickable(
    key, local_dns: LocalDns, settings: Settings, app: Flask, tenant: TenantFixture, session_factory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Even a header claiming a DKIM pass from a "trusted" id is not believed from an untrusted client.
    monkeypatch.setenv(forwarding.TRUSTED_AUTHSERV_ENV, "mx.operator.example")
    forged_claim = "mx.operator.example; dkim=pass header.i=@google.com header.s=20230601"
    raw = gmail(tenant.address, None, auth_results=[forged_claim])
    with running_server(settings) as controller:
        reply = smtp_send(controller, [tenant.address], raw, mail_from="forwarding-noreply@google.com")
        assert reply[0] == 250, reply
    [message] = messages(session_factory)
    enqueue_ingest(get_queue(settings), message.id)
    run_worker_burst(settings)
    with session_factory() as session:
        row = session.scalars(select(ForwardingConfirmation)).one()
        assert (row.code, row.link, row.authenticated) == (CODE, VF, False)
    html = _code_page(app, tenant)
    assert CODE in html and "Unverified sender" in html and "may be forged" in html
    assert VF in html  # shown as text, to be copied by hand if the admin trusts it
    assert not re.search(r'<a[^>]+href="' + re.escape(VF), html)
    [item] = _api_codes(app, tenant)
    assert (item["verified"], item["link"], item["unverified_link"]) == (False, None, VF)
    # The support console: the same warning, the link as text; the message's verdicts are shown.
    with session_factory() as session:
        tenant_row = session.get(Tenant, tenant.tenant.id)
        accounts.create_user(session, "support@operator.example", tenant.password, tenant_row, Role.SUPPORT)
        session.commit()
    support = login(app, "support@operator.example")
    codes = support.get(f"/support/tenants/{tenant.tenant.id}/codes").get_data(as_text=True)
    assert CODE in codes and "Unverified sender" in codes and VF in codes
    assert not re.search(r'<a[^>]+href="' + re.escape(VF), codes)
    trail = support.get(f"/support/tenants/{tenant.tenant.id}/messages/{message.id}").get_data(as_text=True)
    assert "DKIM none" in trail and "HELO mx.attacker.example" in trail


def test_genuine_signed_gmail_confirmation_is_verified(
    key, local_dns: LocalDns, settings: Settings, app: Flask, tenant: TenantFixture, session_factory,
    storage: FileStorage,
) -> None:
    subject = f"(n° {CODE}) Confirmation de transfert Gmail - Recevoir des messages de {REQUESTER}"
    with running_server(settings) as controller:
        raw = gmail(tenant.address, key[0], subject=subject)
        reply = smtp_send(controller, [tenant.address], raw, mail_from="forwarding-noreply@google.com")
        assert reply[0] == 250, reply
    [message] = messages(session_factory)
    with session_factory() as session:
        processing.ingest_message(session, storage, message.id)
        session.commit()
        row = session.scalars(select(ForwardingConfirmation)).one()
        assert (row.code, row.requester, row.authenticated, row.sent_at) == (CODE, REQUESTER, True, SENT)
        assert row.message.sender_auth["dkim_domains"] == ["google.com"]
    html = _code_page(app, tenant)
    assert re.search(r'<a[^>]+href="' + re.escape(VF) + '"', html) and "Verified sender" in html
    [item] = _api_codes(app, tenant)
    assert (item["verified"], item["link"]) == (True, VF)


@pytest.mark.parametrize("subject", [
    f"(#{CODE}) Gmail-Weiterleitungsbestätigung - E-Mails von {REQUESTER} empfangen",
    f"(n.º {CODE}) Confirmación de reenvío de Gmail - Recibir correo de {REQUESTER}",
    f"(n. {CODE}) Conferma di inoltro Gmail - Ricevi posta da {REQUESTER}",
    f"(nr. {CODE}) Gmail-doorstuurbevestiging - E-mail ontvangen van {REQUESTER}",
    f"(n.º {CODE}) Confirmação de encaminhamento do Gmail - Receber e-mails de {REQUESTER}",
])
def test_localized_gmail_subjects(key, subject: str) -> None:
    from core.mail.verification import recognize

    found = recognize(gmail_email("x@in.example.test", subject=subject,
                                  body="Klicken Sie auf den Link:\n" + VF + "\n"))
    assert found is not None and (found.code, found.requester, found.link) == (CODE, REQUESTER, VF)


def test_dkim_pass_for_matches_the_provider_domain_only() -> None:
    # The DKIM domain is what counts for "verified": a google.com signature does not vouch for Microsoft.
    verdicts = sa.Verdicts(source="evaluated", dkim="pass", dkim_domains=["google.com"])
    assert verdicts.dkim_pass_for(("google.com",)) and not verdicts.dkim_pass_for(("microsoft.com", "outlook.com"))
    assert sa.Verdicts(source="evaluated", dkim_domains=["notgoogle.com"]).dkim_pass_for(("google.com",)) is False


# The dashboard -----------------------------------------------------------------------------------


def test_settings_page_admin_only_with_csrf(
    app: Flask, session: Session, tenant: TenantFixture
) -> None:
    member = make_tenant(session, "Member Co", "member@acme.example", Role.MEMBER)
    assert login(app, member.admin.email).get("/settings/sender-authentication").status_code == 403
    client = login(app, tenant.admin.email)
    page = client.get("/settings/sender-authentication")
    assert page.status_code == 200 and 'value="accept" checked' in page.get_data(as_text=True)
    assert client.post("/settings/sender-authentication", data={"dmarc_action": "refuse"}).status_code == 400  # CSRF
    token = csrf_token(page.get_data(as_text=True))
    response = client.post("/settings/sender-authentication", data={"dmarc_action": "refuse", "csrf_token": token})
    assert response.status_code == 302
    session.expire_all()
    assert svc.tenant_action(session, tenant.tenant.id) == svc.REFUSE
    bad = client.post("/settings/sender-authentication", data={"dmarc_action": "drop", "csrf_token": token})
    assert bad.status_code == 400


def test_verdicts_are_shown_on_the_imports_and_review_pages_escaped(
    key, app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    raw = letter(to=tenant.address)
    verdicts = _verdicts(key, raw)
    verdicts["from_domain"] = "<b>supplier.example</b>"  # whatever is stored is text, never markup
    message = intake.store_message(session, storage, tenant.tenant.id, raw, recipient=tenant.address,
                                   peer="198.51.100.7", sender_auth=verdicts)
    session.commit()
    processing.ingest_message(session, storage, message.id)
    session.commit()
    session.refresh(message)
    client = login(app, tenant.admin.email)
    imports = client.get("/imports").get_data(as_text=True)
    assert "DMARC fail" in imports and "SPF none (attacker.example)" in imports and "DKIM none" in imports
    assert "&lt;b&gt;supplier.example&lt;/b&gt;" in imports and "<b>supplier.example" not in imports
    review = client.get(f"/documents/{message.documents[0].id}").get_data(as_text=True)
    assert "DMARC fail" in review and "p=reject" in review


def test_microsoft_code_is_verified_only_by_a_microsoft_signature(key) -> None:
    from core.mail.verification import recognize
    from tests.test_forwarding import microsoft_email

    raw = microsoft_email("x@in.example.test").replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    found = recognize(raw)
    assert found is not None
    records = {("sel1._domainkey.accountprotection.microsoft.com", "TXT"): [key[1]],
               ("sel1._domainkey.google.com", "TXT"): [key[1]]}
    by_microsoft = sa.evaluate(sign(raw, key[0], "accountprotection.microsoft.com"), ip=None, mail_from=None,
                               helo=None, lookup=static(records))
    by_google = sa.evaluate(sign(raw, key[0], "google.com"), ip=None, mail_from=None, helo=None,
                            lookup=static(records))
    assert forwarding.authenticated(found, (), by_microsoft) is True
    assert forwarding.authenticated(found, (), by_google) is False  # a real signature, of the wrong provider
