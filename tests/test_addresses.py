"""Issue #8: unguessable inbound addresses and their rotation, over real SMTP sockets, the dashboard and the
API, on SQLite and PostgreSQL. Time is moved by writing ``retires_at`` in the past, never by sleeping."""

from __future__ import annotations

import math
import smtplib
from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import ValidationFailed
from core.files.storage import FileStorage
from core.inbound import addresses as addr
from core.inbound import intake
from core.models import AuditEvent, InboundAddress, InboundMessage, Role, utcnow
from core.tenancy import accounts
from mailgate.imap import route_recipients
from mailgate.smtp import REPLY_UNKNOWN_RCPT
from tests.conftest import INBOUND_DOMAIN, TenantFixture
from tests.invoicegen import make_email, make_invoice_pdf
from tests.test_dashboard import csrf_token, login, text
from tests.test_smtp import RAW, SENDER, running_server

NEW_FORMAT = accounts.ADDRESS_RE


def local_of(address: str) -> str:
    return address.partition("@")[0]


def rcpt_reply(controller, recipient: str) -> tuple[int, bytes]:
    return deliver(controller, recipient, data=False)


def deliver(controller, recipient: str, *, data: bool = True) -> tuple[int, bytes]:
    """One message to ``recipient``; the RCPT reply when refused there (or ``data`` False), else the DATA reply."""
    with smtplib.SMTP(controller.hostname, controller.port, local_hostname="client.example", timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.mail(SENDER)[0] == 250
        code, reply = smtp.rcpt(recipient)
        if code != 250 or not data:
            return code, reply
        return smtp.data(RAW.replace(b"f2024001", recipient.encode().replace(b"@", b".")))


def messages(session: Session, tenant_id: int) -> list[InboundMessage]:
    session.expire_all()
    stmt = select(InboundMessage).where(InboundMessage.tenant_id == tenant_id).order_by(InboundMessage.id)
    return list(session.scalars(stmt))


def expire(session: Session, local_part: str) -> None:
    """Move time: the address's grace period ended a second ago."""
    address = session.scalars(select(InboundAddress).where(InboundAddress.local_part == local_part)).one()
    address.retires_at = utcnow() - timedelta(seconds=1)
    session.commit()


# The address format -------------------------------------------------------------------------


def test_new_addresses_carry_65_random_bits_in_lower_case_base32() -> None:
    samples = [accounts.new_local_part() for _ in range(4000)]
    assert all(NEW_FORMAT.fullmatch(s) for s in samples), samples[:5]
    assert all(len(s) == len("inbox-") + 13 for s in samples)
    assert len(set(samples)) == len(samples)
    # 13 symbols from a 32-letter alphabet: 65 bits, at least the 64 asked for.
    assert 13 * math.log2(len(set("abcdefghijklmnopqrstuvwxyz234567"))) >= 64
    # Every position uses the whole alphabet about evenly (a stuck bit or a short alphabet would show).
    for position in range(6, 19):
        counts = Counter(s[position] for s in samples)
        assert set(counts) == set("abcdefghijklmnopqrstuvwxyz234567"), position
        assert max(counts.values()) < 4000 / 32 * 1.6 and min(counts.values()) > 4000 / 32 * 0.5, counts


def test_created_tenants_get_a_new_format_address(session: Session, tenant: TenantFixture) -> None:
    assert tenant.address.endswith("@" + INBOUND_DOMAIN)
    assert NEW_FORMAT.fullmatch(local_of(tenant.address))
    assert tenant.address == tenant.address.lower()


# Rotation over SMTP, end to end -------------------------------------------------------------


def test_rotation_end_to_end_over_smtp(settings, session: Session, tenant: TenantFixture, app: Flask) -> None:
    old = tenant.address
    rotation = addr.rotate(session, tenant.tenant.id, grace_days=30, actor=tenant.admin)
    session.commit()
    new = accounts.address_of(rotation.new, INBOUND_DOMAIN)
    assert new != old and NEW_FORMAT.fullmatch(local_of(new))
    tagged_old = local_of(old).upper() + "+factures@" + INBOUND_DOMAIN.upper()

    # Time is moved by rewriting retires_at behind the gateway's back: it must read the address at every
    # RCPT, not from its recipient cache (which keeps the end date it read; test_smtp checks that one).
    with running_server(settings, recipient_cache_seconds=0) as controller:
        assert deliver(controller, new)[0] == 250
        # During the grace period the old address still works, with +tag and in any case.
        assert deliver(controller, tagged_old)[0] == 250
        stored = messages(session, tenant.tenant.id)
        assert [m.to_retiring_address for m in stored] == [False, True]
        assert stored[0].inbound_address_id == rotation.new.id
        assert stored[1].inbound_address_id == rotation.retiring[0].id and stored[1].recipient == tagged_old

        # After the grace period: refused at RCPT exactly like an address that never existed.
        expire(session, local_of(old))
        unknown = rcpt_reply(controller, "inbox-aaaaaaaaaaaaa@" + INBOUND_DOMAIN)
        for recipient in (old, tagged_old):
            reply = rcpt_reply(controller, recipient)
            assert reply == unknown and f"{reply[0]} {reply[1].decode()}" == REPLY_UNKNOWN_RCPT
        assert deliver(controller, new)[0] == 250  # the new address is unaffected
    assert len(messages(session, tenant.tenant.id)) == 3

    # The Imports page flags the message that still went to the retiring address, naming that address.
    client = app.test_client()
    assert login(client, tenant.admin.email).status_code == 302
    html = text(client.get("/imports"))
    assert html.count('data-role="retiring-address"') == 1
    assert f"{tagged_old} — update your forwarding rule" in html


def test_old_short_addresses_keep_working(settings, session: Session, tenant: TenantFixture, app: Flask) -> None:
    session.add(InboundAddress(tenant_id=tenant.tenant.id, local_part="abc-123"))
    session.commit()
    with running_server(settings) as controller:
        assert deliver(controller, "abc-123@" + INBOUND_DOMAIN)[0] == 250
        assert deliver(controller, "ABC-123+tag@" + INBOUND_DOMAIN)[0] == 250
        assert rcpt_reply(controller, "abc-124@" + INBOUND_DOMAIN)[0] == 550
    stored = messages(session, tenant.tenant.id)
    assert len(stored) == 2 and not any(m.to_retiring_address for m in stored)
    # The short address is the current one (newest without an end): Settings shows it and advises rotating.
    client = app.test_client()
    assert login(client, tenant.admin.email).status_code == 302
    html = text(client.get("/settings"))
    assert "abc-123@" + INBOUND_DOMAIN in html and "can be guessed" in html


def test_imap_catch_all_routing_applies_the_same_rules(session: Session, storage: FileStorage,
                                                      tenant: TenantFixture) -> None:
    old = tenant.address
    rotation = addr.rotate(session, tenant.tenant.id, grace_days=10)
    session.commit()
    new = accounts.address_of(rotation.new, INBOUND_DOMAIN)
    raw = make_email(old.upper(), make_invoice_pdf())
    routed = route_recipients(session, raw, INBOUND_DOMAIN)
    assert routed == {tenant.tenant.id: old.upper()}
    message = intake.store_message(session, storage, tenant.tenant.id, raw, recipient=routed[tenant.tenant.id])
    assert message.to_retiring_address and message.inbound_address_id == rotation.retiring[0].id
    assert route_recipients(session, make_email(new, make_invoice_pdf()), INBOUND_DOMAIN) == {tenant.tenant.id: new}
    expire(session, local_of(old))
    assert route_recipients(session, raw, INBOUND_DOMAIN) == {}  # unrouted, like an unknown address


# The rotation rules -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["-1", "366", "abc", "1.5", "", None, True, 12.0, "9999"])
def test_grace_days_are_whole_days_from_0_to_365(value: object) -> None:
    if value in ("", None):
        assert addr.parse_grace_days(value) == addr.GRACE_DAYS_DEFAULT == 30
        return
    with pytest.raises(ValidationFailed):
        addr.parse_grace_days(value)


def test_grace_bounds_are_accepted(session: Session, tenant: TenantFixture) -> None:
    assert addr.parse_grace_days("0") == 0 and addr.parse_grace_days(365) == 365
    with pytest.raises(ValidationFailed):
        addr.rotate(session, tenant.tenant.id, grace_days=366)


def test_zero_grace_retires_at_once_and_rotation_never_extends_an_end(session: Session, tenant: TenantFixture,
                                                                      other_tenant: TenantFixture) -> None:
    first = addr.rotate(session, tenant.tenant.id, grace_days=0, actor=tenant.admin)
    session.commit()
    assert accounts.resolve_recipient(session, tenant.address, INBOUND_DOMAIN) is None
    second_address = accounts.address_of(first.new, INBOUND_DOMAIN)
    assert accounts.resolve_recipient(session, second_address, INBOUND_DOMAIN).id == tenant.tenant.id

    # A later rotation with a longer grace does not bring a retired address back; a shorter one shortens.
    second = addr.rotate(session, tenant.tenant.id, grace_days=60)
    third = addr.rotate(session, tenant.tenant.id, grace_days=5)
    session.commit()
    assert [a.id for a in second.retiring] == [first.new.id]
    assert {a.id for a in third.retiring} == {first.new.id, second.new.id}
    assert accounts.resolve_recipient(session, tenant.address, INBOUND_DOMAIN) is None
    views = addr.tenant_addresses(session, tenant.tenant.id, INBOUND_DOMAIN)
    assert [v.state for v in views] == ["current", "retiring", "retiring", "retired"]
    assert views[0].address == accounts.address_of(third.new, INBOUND_DOMAIN)
    assert accounts.primary_address(session, tenant.tenant.id).id == third.new.id
    assert all(v.retires_at <= utcnow() + timedelta(days=5) for v in views[1:])

    # The other tenant is untouched; every rotation is in the audit trail with who did it.
    assert accounts.resolve_recipient(session, other_tenant.address, INBOUND_DOMAIN).id == other_tenant.tenant.id
    assert [v.state for v in addr.tenant_addresses(session, other_tenant.tenant.id, INBOUND_DOMAIN)] == ["current"]
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == addr.ROTATE_ACTION)
                             .order_by(AuditEvent.id)).all()
    assert [e.tenant_id for e in events] == [tenant.tenant.id] * 3
    assert events[0].actor_email == tenant.admin.email and events[0].detail["grace_days"] == 0
    assert events[0].detail["retiring"][0]["local_part"] == local_of(tenant.address)


# Dashboard ----------------------------------------------------------------------------------


def test_admin_rotates_in_settings_and_sees_the_retiring_address_with_its_end(
    app: Flask, session: Session, tenant: TenantFixture
) -> None:
    client = app.test_client()
    assert login(client, tenant.admin.email).status_code == 302
    page = client.get("/settings")
    html = text(page)
    assert tenant.address in html and 'data-copy="#inbound-address"' in html and 'name="grace_days"' in html
    assert client.post("/settings/address/rotate", data={"grace_days": "12"}).status_code == 400  # no CSRF token
    bad = client.post("/settings/address/rotate", data={"grace_days": "400", "csrf_token": csrf_token(page)})
    assert bad.status_code == 302 and "from 0 to 365" in text(client.get("/settings"))
    assert len(session.scalars(select(InboundAddress)).all()) == 1  # nothing issued

    done = client.post("/settings/address/rotate", data={"grace_days": "12", "csrf_token": csrf_token(page)})
    assert done.status_code == 302 and done.headers["Location"].endswith("/settings#addresses")
    session.expire_all()
    new = accounts.primary_address(session, tenant.tenant.id)
    old = session.scalars(select(InboundAddress).where(InboundAddress.local_part == local_of(tenant.address))).one()
    html = text(client.get("/settings"))
    new_address = accounts.address_of(new, INBOUND_DOMAIN)
    assert f'<code id="inbound-address" data-role="current-address">{new_address}</code>' in html
    assert f"Your new inbound address is {new_address}" in html
    retiring_row = html.split('class="list retiring-addresses"')[1].split("</table>")[0]
    end = old.retires_at.astimezone(ZoneInfo("Europe/Paris")).strftime("%d/%m/%Y")
    assert tenant.address in retiring_row and end in retiring_row and "Retiring" in retiring_row
    assert abs(old.retires_at - (utcnow() + timedelta(days=12))) < timedelta(minutes=5)
    # The forwarding guides always show the current address.
    guides = text(client.get("/settings/forwarding"))
    assert new_address in guides and f"<code>{tenant.address}</code>" not in guides
    assert "550 5.7.520 Access denied" in guides and "On - Forwarding is enabled" in guides
    assert "No confirmation code is expected with Microsoft 365" in guides
    # The rotation is in the audit trail, with who did it.
    trail = text(client.get("/settings/audit?action=settings.rotate_address"))
    assert "<code>settings.rotate_address</code>" in trail and tenant.admin.email in trail


def test_only_admins_rotate(app: Flask, session: Session, tenant: TenantFixture) -> None:
    for email, role in (("member@acme.example", Role.MEMBER), ("support@operator.example", Role.SUPPORT)):
        accounts.create_user(session, email, tenant.password, tenant.tenant, role)
        session.commit()
        client = app.test_client()
        assert login(client, email).status_code == 302
        page = client.get("/settings")
        assert tenant.address in text(page) and 'name="grace_days"' not in text(page)
        token = csrf_token(page)  # base.html carries one on every page
        assert client.post("/settings/address/rotate", data={"grace_days": "1", "csrf_token": token}).status_code == 403
    assert accounts.primary_address(session, tenant.tenant.id).local_part == local_of(tenant.address)


# API ----------------------------------------------------------------------------------------


def test_api_lists_and_rotates_addresses(app: Flask, session: Session, tenant: TenantFixture,
                                         other_tenant: TenantFixture) -> None:
    client = app.test_client()
    auth = {"Authorization": f"Bearer {tenant.token}"}
    listing = client.get("/api/v1/addresses", headers=auth).get_json()
    assert listing["current"] == tenant.address and [i["state"] for i in listing["items"]] == ["current"]

    member = accounts.create_user(session, "member@acme.example", tenant.password, tenant.tenant, Role.MEMBER)
    member_token = accounts.create_token(session, member, tenant.tenant)
    session.commit()
    member_auth = {"Authorization": f"Bearer {member_token}"}
    assert client.get("/api/v1/addresses", headers=member_auth).status_code == 200
    assert client.post("/api/v1/addresses/rotate", headers=member_auth, json={}).status_code == 403
    refused = client.post("/api/v1/addresses/rotate", headers=auth, json={"grace_days": 400})
    assert refused.status_code == 422 and "grace_days" in refused.get_json()["fields"]

    rotated = client.post("/api/v1/addresses/rotate", headers=auth, json={"grace_days": 7})
    assert rotated.status_code == 201
    body = rotated.get_json()
    assert body["new"] == body["current"] != tenant.address and NEW_FORMAT.fullmatch(local_of(body["new"]))
    retiring = [i for i in body["items"] if i["state"] == "retiring"]
    assert [i["address"] for i in retiring] == [tenant.address] and retiring[0]["retires_at"]
    # Default grace when the body is empty: 30 days.
    again = client.post("/api/v1/addresses/rotate", headers=auth).get_json()
    ends = {i["address"]: i["retires_at"] for i in again["items"] if i["state"] == "retiring"}
    assert set(ends) == {tenant.address, body["new"]}
    # The other tenant's token sees only its own address.
    theirs = client.get("/api/v1/addresses", headers={"Authorization": f"Bearer {other_tenant.token}"}).get_json()
    assert [i["address"] for i in theirs["items"]] == [other_tenant.address]



def test_the_retiring_badge_escapes_the_recipient_as_given(app: Flask, session: Session, storage: FileStorage,
                                                           tenant: TenantFixture) -> None:
    addr.rotate(session, tenant.tenant.id, grace_days=3)
    local = local_of(tenant.address)
    hostile = f'{local}+"><script>alert(1)</script>@{INBOUND_DOMAIN}'  # a +tag is whatever the sender wrote
    message = intake.store_message(session, storage, tenant.tenant.id, make_email(hostile, make_invoice_pdf()),
                                   recipient=hostile)
    session.commit()
    assert message.to_retiring_address
    client = app.test_client()
    assert login(client, tenant.admin.email).status_code == 302
    html = text(client.get("/imports"))
    assert 'data-role="retiring-address"' in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # Settings counts the mail still sent to the retiring address; the API flags the message too.
    assert "1 message, the last on" in text(client.get("/settings"))
    listed = client.get("/api/v1/messages", headers={"Authorization": f"Bearer {tenant.token}"}).get_json()
    assert [(m["recipient"], m["to_retiring_address"]) for m in listed["items"]] == [(hostile, True)]


def test_operator_rotates_from_the_command_line(app: Flask, session: Session, tenant: TenantFixture) -> None:
    from dashboard.cli import tenant_rotate_address

    runner = app.test_cli_runner()
    assert runner.invoke(tenant_rotate_address, [tenant.address, "--grace-days", "366"]).exit_code == 2
    result = runner.invoke(tenant_rotate_address, [tenant.address, "--grace-days", "0"])
    assert result.exit_code == 0, result.output
    new = result.output.strip().splitlines()[-1]
    assert NEW_FORMAT.fullmatch(local_of(new)) and new.endswith("@" + INBOUND_DOMAIN)
    session.expire_all()
    assert accounts.resolve_recipient(session, tenant.address, INBOUND_DOMAIN) is None
    assert accounts.resolve_recipient(session, new, INBOUND_DOMAIN).id == tenant.tenant.id
    # The old address is unknown now: it cannot name the tenant on the command line either.
    assert runner.invoke(tenant_rotate_address, [tenant.address]).exit_code == 1
