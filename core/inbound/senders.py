"""Sender control: an optional per-tenant allow-list, and the quarantine for mail from anyone else.

The allow-list is off while it is empty. Once a tenant adds an address (``alice@example.com``) or a domain
(``@example.com``), mail whose ``From`` address matches none of them is held as ``quarantined``: visible on
the Quarantine page with the reason, never dropped. A person then releases it (it is processed as if it
had been allowed) or deletes it (it ends ``ignored`` with who deleted it; the raw message is kept).

The header ``From`` is what is matched (the envelope sender is recorded beside it): mail forwarded by a
colleague comes *from the colleague*, who is who the allow-list names. ``From`` can be forged, so a match
counts only when the message proves its From domain (``senderauth.authenticates``: DMARC pass, or SPF or
DKIM aligned with it); a listed address that cannot be proven is held like an unlisted one, with a reason
saying so (a person can still release it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.utils import getaddresses
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import NotFound, ValidationFailed
from core.i18n import N_
from core.inbound import intake
from core.mail.parsed import ReceivedEmail
from core.models import Document, InboundMessage, MessageSource, MessageStatus, SenderRule, User, utcnow
from core.reasons import reason, set_reason
from core.tenancy import audit

MAX_RULES = 500  # per tenant; a longer list is a job for a mail filter upstream
MAX_PATTERN_CHARS = 254
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
_LOCAL = re.compile(r"^[^\s@\"<>(),;:\\\[\]]{1,64}$")

NOT_ALLOWED_REASON = N_("The sender {sender} is not on your list of allowed senders: release or delete it.")
NO_SENDER_REASON = N_("This email has no readable sender address, and your company accepts only listed senders.")
UNAUTHENTICATED_REASON = N_(
    "The sender {sender} is on your list of allowed senders, but this email could not be proven to come from "
    "{domain} (DMARC {dmarc}, no aligned SPF or DKIM pass): anyone can write that address; release or delete it."
)
DELETED_REASON = N_("Deleted from quarantine by {actor}")


def normalize_pattern(text: str) -> str:
    """``alice@example.com`` or ``@example.com``, lower-case; ``ValidationFailed`` when it is neither."""
    value = (text or "").strip().lower()
    if value.startswith("*@"):
        value = value[1:]
    if len(value) > MAX_PATTERN_CHARS or "@" not in value:
        raise ValidationFailed({"pattern": N_("Enter an email address (name@example.com) or a domain (@example.com).")})
    local, _, domain = value.rpartition("@")
    domain = domain.rstrip(".")
    if not _DOMAIN.match(domain) or (local and not _LOCAL.match(local)):
        raise ValidationFailed({"pattern": N_("Enter an email address (name@example.com) or a domain (@example.com).")})
    return f"{local}@{domain}"


def sender_address(from_header: str | None) -> str | None:
    """The single address of a ``From`` header, lower-case; None when there is none (or several)."""
    try:
        pairs = [addr for _name, addr in getaddresses([from_header or ""]) if addr and "@" in addr]
    except Exception:
        return None
    if len(pairs) != 1:  # several From addresses: no single sender to match, be conservative
        return None
    return pairs[0].strip().lower()[:MAX_PATTERN_CHARS]


def rules_query(tenant_id: int) -> Select[Any]:
    return select(SenderRule).where(SenderRule.tenant_id == tenant_id).order_by(SenderRule.pattern)


def list_rules(session: Session, tenant_id: int) -> list[SenderRule]:
    return list(session.scalars(rules_query(tenant_id)))


def add_rule(session: Session, tenant_id: int, text: str, actor: User | None = None) -> SenderRule:
    pattern = normalize_pattern(text)
    existing = session.scalars(
        select(SenderRule).where(SenderRule.tenant_id == tenant_id, SenderRule.pattern == pattern)
    ).first()
    if existing is not None:
        return existing
    count = len(session.scalars(select(SenderRule.id).where(SenderRule.tenant_id == tenant_id)).all())
    if count >= MAX_RULES:
        raise ValidationFailed({"pattern": N_("At most {limit} allowed senders per company.").format(limit=MAX_RULES)})
    rule = SenderRule(tenant_id=tenant_id, pattern=pattern, created_by=actor.email if actor else "")
    try:
        with session.begin_nested():
            session.add(rule)
            session.flush()
    except IntegrityError:  # the same pattern added at the same moment by someone else
        return session.scalars(
            select(SenderRule).where(SenderRule.tenant_id == tenant_id, SenderRule.pattern == pattern)
        ).one()
    audit.record(session, tenant_id, "senders.allow", actor=actor, target=f"sender_rule:{rule.id}",
                 detail={"pattern": pattern})
    return rule


def remove_rule(session: Session, tenant_id: int, rule_id: int, actor: User | None = None) -> None:
    rule = session.get(SenderRule, rule_id)
    if rule is None or rule.tenant_id != tenant_id:
        raise NotFound("No such allowed sender.")
    audit.record(session, tenant_id, "senders.remove", actor=actor, target=f"sender_rule:{rule.id}",
                 detail={"pattern": rule.pattern})
    session.delete(rule)
    session.flush()


def matches_any(address: str | None, patterns: Iterable[str]) -> bool:
    """True when ``address`` or its ``@domain`` is one of ``patterns`` (as ``normalize_pattern`` makes them)."""
    if not address or "@" not in address:
        return False
    address = address.lower()
    wanted = set(patterns)
    return address in wanted or "@" + address.rpartition("@")[2] in wanted


def is_allowed(session: Session, tenant_id: int, address: str | None) -> bool:
    """True while the allow-list is empty, or when ``address`` or its domain is on it."""
    patterns = set(session.scalars(select(SenderRule.pattern).where(SenderRule.tenant_id == tenant_id)))
    if not patterns:
        return True
    return matches_any(address, patterns)


def quarantine_reason(session: Session, message: InboundMessage) -> str | None:
    """Why ``message`` must be held (None: let it through). A released message is never held again."""
    if message.released_by:  # type: ignore[attr-defined]
        return None
    if message.source == MessageSource.UPLOAD.value:  # a signed-in person uploaded it: no sender to judge
        return None
    from core.inbound import senderauth

    patterns = set(session.scalars(select(SenderRule.pattern).where(SenderRule.tenant_id == message.tenant_id)))
    if not patterns:  # the allow-list is off
        return None
    address = sender_address(message.sender)
    if address is None:
        return NO_SENDER_REASON
    if not matches_any(address, patterns):
        return reason(NOT_ALLOWED_REASON, sender=address)
    verdicts = senderauth.stored_verdicts(message)
    if senderauth.authenticates(verdicts, address):
        return None
    return reason(UNAUTHENTICATED_REASON, sender=address, domain=address.rpartition("@")[2],
                                         dmarc=verdicts.dmarc if verdicts else "not checked")


# The quarantine ----------------------------------------------------------------------------------


def quarantine_query(tenant_id: int) -> Select[Any]:
    return (
        select(InboundMessage)
        .where(InboundMessage.tenant_id == tenant_id, InboundMessage.status == MessageStatus.QUARANTINED.value)
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
    )


def _quarantined(session: Session, tenant_id: int, message_id: int) -> InboundMessage:
    message = session.get(InboundMessage, message_id)
    if message is None or message.tenant_id != tenant_id:
        raise NotFound("No such message.")
    if message.status != MessageStatus.QUARANTINED.value:
        raise ValidationFailed({"message": N_("This message is no longer in quarantine.")})
    return message


def release(session: Session, tenant_id: int, message_id: int, actor: User | None = None) -> InboundMessage:
    """Let a held message through: it goes back to ``queued``; the caller enqueues its ingest job."""
    message = _quarantined(session, tenant_id, message_id)
    who = actor.email if actor else "system"
    message.released_by = who  # type: ignore[attr-defined]
    message.status, message.queued_at = MessageStatus.QUEUED.value, utcnow()
    set_reason(message, None)
    audit.record(session, tenant_id, "quarantine.release", actor=actor, target=f"message:{message.id}",
                 detail={"sender": message.sender[:320]})
    session.flush()
    return message


def delete(session: Session, tenant_id: int, message_id: int, actor: User | None = None) -> InboundMessage:
    """Drop a held message from the quarantine: ``ignored`` with who did it; the raw message is kept."""
    message = _quarantined(session, tenant_id, message_id)
    who = actor.email if actor else "system"
    message.status, message.processed_at = MessageStatus.IGNORED.value, utcnow()
    set_reason(message, DELETED_REASON, actor=who)
    audit.record(session, tenant_id, "quarantine.delete", actor=actor, target=f"message:{message.id}",
                 detail={"sender": message.sender[:320]})
    session.flush()
    return message


# Message-level decisions, taken by ingest before unpacking --------------------------------------

DUPLICATE_REASON = N_("Already received (same Message-ID as message {id})")
DUPLICATE_RAW_REASON = N_("Already received (identical to message {id})")


def record_headers(message: InboundMessage, raw: bytes | ReceivedEmail) -> None:
    """Note the upstream Authentication-Results and the envelope sender (Return-Path) on the message."""
    from core.mail.authresults import authentication_results

    try:
        headers = ReceivedEmail.of(raw).headers
    except Exception:  # the header block is beyond reading: nothing to note
        return
    message.auth_results = authentication_results(headers)  # type: ignore[attr-defined]
    if not message.envelope_sender:  # type: ignore[attr-defined]
        return_path = sender_address(str(headers.get("Return-Path") or ""))
        if return_path:
            message.envelope_sender = return_path  # type: ignore[attr-defined]


def earlier_copy(session: Session, message: InboundMessage) -> tuple[InboundMessage, str] | None:
    """The first message of the same tenant that this one repeats (``intake.earlier_copy``: the one rule
    for every transport), with the reason to show; None if new."""
    found = intake.earlier_copy(session, message.tenant_id, raw_sha256=message.raw_sha256,
                                message_id_header=message.message_id_header, sender=message.sender,
                                before_id=message.id)
    if found is None:
        return None
    copy, same_bytes = found
    return copy, reason(DUPLICATE_RAW_REASON if same_bytes else DUPLICATE_REASON, id=copy.id)


def screen(session: Session, message: InboundMessage, raw: bytes | ReceivedEmail) -> tuple[MessageStatus, str] | None:
    """Record the headers, then say whether the message stops here: a repeat (``ignored``) or a sender
    who is not allowed (``quarantined``); None lets it be unpacked."""
    record_headers(message, raw)
    # Already unpacked by an earlier run: a re-run only refreshes its documents. (A query, not the
    # relationship, which would stay cached empty in this session once ingest adds the documents.)
    if session.scalar(select(Document.id).where(Document.message_id == message.id).limit(1)) is not None:
        return None
    copy = earlier_copy(session, message)
    if copy is not None:
        message.duplicate_of_message_id = copy[0].id  # type: ignore[attr-defined]
        return MessageStatus.IGNORED, copy[1]
    reason = quarantine_reason(session, message)
    if reason is not None:
        return MessageStatus.QUARANTINED, reason
    return None
