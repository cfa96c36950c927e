"""Outgoing mail through a configurable SMTP relay, every message also recorded in the outbox table.

``MAIL_RELAY_URL``: ``smtp://[user:pass@]host[:port]`` (STARTTLS when the relay offers it, port 25 by
default) or ``smtps://...`` (TLS from the first byte, port 465). Empty: nothing leaves the machine and the
message is only kept in the outbox, which the company's admins read on the dashboard (``make start``).
A relay that refuses or cannot be reached never fails the action that sent the mail: the row says
``failed`` with the reason, and the person is told.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from core.config import env
from core.models import utcnow
from core.outbound.models import OutboxMessage

RELAY_TIMEOUT = 15.0  # seconds: a request waits at most this for the relay
KEPT, SENT, FAILED = "kept", "sent", "failed"


@dataclass(frozen=True)
class MailConfig:
    """What a domain operation needs to send mail: ``Settings.mail_relay_url`` and ``mail_from``."""

    relay_url: str = ""
    sender: str = "invoice-inbox <no-reply@localhost>"


@dataclass(frozen=True)
class Relay:
    host: str
    port: int
    implicit_tls: bool
    username: str | None
    password: str | None


def parse_relay(url: str) -> Relay | None:
    """The relay of ``MAIL_RELAY_URL``; None when empty. ValueError when it is not one we can use."""
    url = url.strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("MAIL_RELAY_URL must look like smtp://host:port or smtps://user:pass@host:port")
    implicit = parts.scheme == "smtps"
    return Relay(
        host=parts.hostname,
        port=parts.port or (465 if implicit else 25),
        implicit_tls=implicit,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def build_message(sender: str, recipient: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("<> ") or "localhost")
    message.set_content(body)
    return message


def deliver(relay: Relay, message: EmailMessage, tls_context: ssl.SSLContext | None = None) -> None:
    """Hand the message to the relay; smtplib/OSError when it cannot be done. The relay's certificate is
    verified (the system's CAs, or ``MAIL_RELAY_CA_FILE`` for a private CA)."""
    context = tls_context or ssl.create_default_context(cafile=env("MAIL_RELAY_CA_FILE") or None)
    client: smtplib.SMTP
    if relay.implicit_tls:
        client = smtplib.SMTP_SSL(relay.host, relay.port, timeout=RELAY_TIMEOUT, context=context)
    else:
        client = smtplib.SMTP(relay.host, relay.port, timeout=RELAY_TIMEOUT)
    with client:
        client.ehlo()
        if not relay.implicit_tls and client.has_extn("starttls"):
            client.starttls(context=context)
            client.ehlo()
        if relay.username is not None:
            client.login(relay.username, relay.password or "")
        client.send_message(message)


def send(session: Session, config: MailConfig, *, recipient: str, subject: str, body: str, kind: str,
         tenant_id: int | None) -> OutboxMessage:
    """Record the message in the outbox and, with a relay, send it; the row's state says what happened."""
    row = OutboxMessage(tenant_id=tenant_id, recipient=recipient, subject=subject[:300], body=body, kind=kind,
                        state=KEPT)
    session.add(row)
    session.flush()
    try:
        relay = parse_relay(config.relay_url)
        if relay is not None:
            deliver(relay, build_message(config.sender, recipient, subject, body))
            row.state, row.sent_at = SENT, utcnow()
    except (ValueError, OSError, smtplib.SMTPException) as exc:
        row.state, row.error = FAILED, f"{type(exc).__name__}: {exc}"[:1000]
    session.flush()
    return row


def outbox_query(tenant_id: int) -> Select[Any]:
    """The company's outbox, newest first (mail addressed by the company: invitations)."""
    return (select(OutboxMessage).where(OutboxMessage.tenant_id == tenant_id)
            .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc()))
