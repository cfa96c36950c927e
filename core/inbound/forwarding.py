"""Forwarding confirmations: keep the code a provider sent to a tenant's address, never make it an invoice.

``capture_confirmation`` is called by the worker for every stored message before unpacking it; the
dashboard's settings page, the support console and the API read the stored codes through the queries
below. Nothing here commits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from core.config import env
from core.mail.parsed import ReceivedEmail
from core.mail.senderauth import Verdicts
from core.mail.verification import DKIM_DOMAINS, GMAIL, MICROSOFT, Confirmation, recognize
from core.models import ForwardingConfirmation, InboundMessage

logger = logging.getLogger(__name__)

# The receiving servers (their Authentication-Results authserv-id) whose DKIM verdicts we believe, e.g.
# the relay in front of the mail gateway: "mx.example.com". Comma-separated; empty means "trust none".
TRUSTED_AUTHSERV_ENV = "TRUSTED_AUTHSERV_IDS"

REASONS = {
    GMAIL: "Gmail forwarding confirmation (code stored for support and admins)",
    MICROSOFT: "Microsoft verification email (code stored for support and admins)",
}


def trusted_authserv_ids() -> frozenset[str]:
    raw = (env(TRUSTED_AUTHSERV_ENV) or "")
    return frozenset(part.strip().lower() for part in raw.split(",") if part.strip())


def capture_confirmation(
    session: Session, message: InboundMessage, raw: bytes | ReceivedEmail, *, trusted: Iterable[str] | None = None,
    verdicts: Verdicts | None = None,
) -> ForwardingConfirmation | None:
    """The stored confirmation for ``message`` when ``raw`` is one (created once per message), else None.

    ``verdicts``: the message's sender authentication (core.mail.senderauth). A DKIM pass for the
    provider's domain there (our own check, or a trusted relay's) makes the code verified; our own check
    without one makes it unverified, whatever the headers in the message claim.
    """
    existing = session.scalars(
        select(ForwardingConfirmation).where(ForwardingConfirmation.message_id == message.id)
    ).first()
    if existing is not None:
        return existing  # a job that runs twice stores nothing twice
    found = recognize(raw)
    if found is None:
        return None
    trusted_ids = trusted_authserv_ids() if trusted is None else frozenset(t.lower() for t in trusted)
    row = ForwardingConfirmation(
        tenant_id=message.tenant_id,
        message_id=message.id,
        provider=found.provider,
        code=found.code,
        link=found.link,
        requester=found.requester,
        sender=found.sender,
        subject=found.subject,
        sent_at=found.sent_at,
        authenticated=authenticated(found, trusted_ids, verdicts),
        auth_results=found.auth_results_raw,
    )
    session.add(row)
    session.flush()
    # The code itself is a secret of sorts: it is not logged.
    logger.info("message %s: %s confirmation stored (authenticated=%s)", message.id, found.provider,
                row.authenticated)
    return row


def authenticated(found: Confirmation, trusted_ids: Iterable[str], verdicts: Verdicts | None) -> bool | None:
    """True only on a DKIM pass for the provider's domain (``DKIM_DOMAINS``); False when checked without one."""
    if verdicts is not None:
        if verdicts.dkim_pass_for(DKIM_DOMAINS.get(found.provider, ())):
            return True
        if verdicts.source == "evaluated":
            return False  # we verified the signatures ourselves: headers in the message cannot override that
    return found.authenticated(trusted_ids)


def reason_for(confirmation: ForwardingConfirmation) -> str:
    return REASONS.get(confirmation.provider, REASONS[GMAIL])


def codes_query(tenant_id: int) -> Select[Any]:
    """The tenant's confirmations, newest first."""
    return (
        select(ForwardingConfirmation)
        .where(ForwardingConfirmation.tenant_id == tenant_id)
        .order_by(ForwardingConfirmation.received_at.desc(), ForwardingConfirmation.id.desc())
    )


def latest_by_provider(session: Session, tenant_id: int) -> dict[str, ForwardingConfirmation]:
    """The newest confirmation per provider (for "has Gmail's email arrived yet?")."""
    latest: dict[str, ForwardingConfirmation] = {}
    for provider in (GMAIL, MICROSOFT):
        row = session.scalars(codes_query(tenant_id).where(ForwardingConfirmation.provider == provider)).first()
        if row is not None:
            latest[provider] = row
    return latest


def confirmation_for_message(session: Session, tenant_id: int, message_id: int) -> ForwardingConfirmation | None:
    return session.scalars(
        select(ForwardingConfirmation).where(
            ForwardingConfirmation.tenant_id == tenant_id, ForwardingConfirmation.message_id == message_id
        )
    ).first()


def confirmation_json(row: ForwardingConfirmation) -> dict[str, Any]:
    """The API's and the console's view of a code; the link is given only when authenticated."""
    return {
        "id": row.id,
        "provider": row.provider,
        "code": row.code,
        "link": row.link if row.authenticated else None,
        "unverified_link": None if row.authenticated else row.link,
        "requester": row.requester,
        "sender": row.sender,
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
        "received_at": row.received_at.isoformat() if row.received_at else None,
        "authenticated": row.authenticated,
        "verified": bool(row.authenticated),  # only a DKIM pass for the provider's domain makes a code verified
        "auth_results": row.auth_results,
        "message_id": row.message_id,
    }


__all__ = ["Confirmation", "capture_confirmation", "codes_query", "confirmation_json", "latest_by_provider",
           "reason_for", "trusted_authserv_ids"]
