"""Finding 7 of issue #14: the sender allow-list trusted ``From:``, which anyone can write.

A listed sender counts only when the mail proves its From domain (DMARC pass, or aligned SPF or DKIM).
Real SMTP over a socket and the real worker; DNS from a local server (tests/dnsserver.py).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.config import Settings
from core.inbound import senders
from core.models import Document, MessageStatus
from tests.conftest import TenantFixture
from tests.dnsserver import LocalDns
from tests.services import run_worker_burst
from tests.test_senderauth import key, letter, local_dns, messages, sign, smtp_send  # noqa: F401 (fixtures)
from tests.test_smtp import running_server
from worker.queue import enqueue_ingest, get_queue


def test_a_listed_sender_counts_only_when_the_mail_proves_its_domain(
    key, local_dns: LocalDns, settings: Settings, session: Session, tenant: TenantFixture,  # noqa: F811
    session_factory,
) -> None:
    senders.add_rule(session, tenant.tenant.id, "@supplier.example")
    session.commit()
    forged = letter(to=tenant.address)  # From: billing@supplier.example, unsigned, sent from anywhere
    genuine = sign(letter(to=tenant.address, body="Signed this time."), key[0], "supplier.example")
    with running_server(settings) as controller:
        for raw in (forged, genuine):
            assert smtp_send(controller, [tenant.address], raw)[0] == 250
        assert controller.handler.in_flight.wait_idle(10)
    for message in messages(session_factory):
        enqueue_ingest(get_queue(settings), message.id)
    run_worker_burst(settings)
    held, passed = messages(session_factory)
    assert held.status == MessageStatus.QUARANTINED.value
    assert "could not be proven to come from supplier.example" in held.reason and "DMARC fail" in held.reason
    assert passed.status == MessageStatus.PROCESSED.value and passed.sender_auth["dmarc"] == "pass"
    assert session.scalar(select(func.count()).select_from(Document).where(Document.message_id == passed.id)) == 1
