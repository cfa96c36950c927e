"""Sender authentication: the verdicts stored on each message, and the tenant's choice for mail failing DMARC.

Where the verdicts come from (``verdicts_for``):
- SMTP from a relay declared in ``TRUSTED_RELAYS``: its ``Authentication-Results`` (the topmost one, or the
  topmost one from an id in ``TRUSTED_AUTHSERV_IDS`` when that is set); evaluated by us when it wrote none.
- SMTP from anyone else: evaluated by us (SPF of the client, DKIM, DMARC); headers claiming anything are
  ignored, since the sender could have written them.
- IMAP: the mailbox provider received the mail: its header when its authserv-id is trusted, else DKIM and
  DMARC evaluated by us (no SPF: the SMTP client is unknown).
- Uploads: nothing to check, a signed-in person put the file here.

The tenant's ``dmarc_action`` (Settings → Sender authentication) says what becomes of mail failing DMARC:
``accept`` (shown with its verdicts), ``quarantine`` (held in the quarantine: visible, releasable), or
``refuse``: answered ``550 5.7.1`` by the gateway when the domain's own policy is ``p=reject``, and held in
the quarantine otherwise (the domain owner did not ask for refusal, and the quarantine loses nothing). A
DMARC ``temperror`` (DNS trouble) never counts as a failure.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.errors import NotFound, ValidationFailed
from core.i18n import N_
from core.inbound.forwarding import trusted_authserv_ids
from core.mail import senderauth
from core.mail.parsed import ReceivedEmail
from core.mail.senderauth import Lookup, Verdicts
from core.models import InboundMessage, MessageSource, MessageStatus, Tenant, User
from core.reasons import reason
from core.tenancy import audit

ACCEPT, QUARANTINE, REFUSE = "accept", "quarantine", "refuse"
ACTIONS = (ACCEPT, QUARANTINE, REFUSE)
QUARANTINE_REASON = N_("Failed DMARC for {domain}: the sender could not be authenticated (SPF {spf}, DKIM {dkim}).")
REFUSED_REASON = N_(
    "Failed DMARC for {domain} (its policy is reject); held here because it was sent to other companies "
    "too, which the gateway cannot refuse separately."
)
SMTP_REFUSAL = "550 5.7.1 Message rejected: failed DMARC authentication for {domain}"


# The tenant's choice -------------------------------------------------------------------------------


def tenant_action(session: Session, tenant_id: int) -> str:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("No such company.")
    action = tenant.dmarc_action or ACCEPT
    return action if action in ACTIONS else ACCEPT


def set_tenant_action(session: Session, tenant_id: int, action: str, actor: User | None = None) -> str:
    if action not in ACTIONS:
        raise ValidationFailed({"dmarc_action": N_("Choose accept, quarantine or refuse.")})
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("No such company.")
    before = tenant.dmarc_action
    if before != action:
        tenant.dmarc_action = action
        audit.record(session, tenant_id, "settings.dmarc_action", actor=actor, target=f"tenant:{tenant_id}",
                     detail={"from": before, "to": action})
        session.flush()
    return action


def decide(verdicts: Verdicts | None, action: str) -> str:
    """ACCEPT, QUARANTINE or REFUSE for a message with ``verdicts`` at a tenant whose choice is ``action``."""
    if verdicts is None or verdicts.dmarc != "fail" or action not in (QUARANTINE, REFUSE):
        return ACCEPT
    if action == REFUSE and verdicts.dmarc_policy == "reject":
        return REFUSE
    return QUARANTINE


# The verdicts --------------------------------------------------------------------------------------


def verdicts_for(
    raw: bytes | ReceivedEmail,
    *,
    source: str,
    peer: str | None,
    mail_from: str | None,
    helo: str | None,
    lookup: Lookup | None = None,
    budget: float | None = None,
) -> Verdicts | None:
    """The verdicts for a message received from ``peer`` (see the module's docstring); None for uploads."""
    if source == MessageSource.UPLOAD.value:
        return None
    smtp_client = source == MessageSource.SMTP.value and bool(peer)  # no peer: one we know nothing of, as IMAP
    if smtp_client and not senderauth.trusted_relay(peer):
        return senderauth.evaluate(raw, ip=peer, mail_from=mail_from, helo=helo, lookup=lookup, budget=budget)
    trusted_ids = trusted_authserv_ids()
    if smtp_client:  # a trusted relay: its topmost header, or the topmost from a trusted id when those are set
        upstream = senderauth.from_upstream(raw, trusted_ids or None)
    else:
        upstream = senderauth.from_upstream(raw, trusted_ids) if trusted_ids else None
    if upstream is not None:
        return upstream
    return senderauth.evaluate(raw, ip=None, mail_from=None, helo=None, lookup=lookup, budget=budget)


def authenticates(verdicts: Verdicts | None, address: str | None, *, dkim_only: bool = False) -> bool:
    """True when ``verdicts`` prove the domain of ``address`` (the message's From): DMARC pass, or a pass
    aligned with it (SPF or DKIM; only DKIM with ``dkim_only``, since SPF proves the relay, not the content).

    A From address that is not the one the verdicts were made for proves nothing.
    """
    if verdicts is None or not address or "@" not in address:
        return False
    domain = address.rpartition("@")[2].lower().rstrip(".")
    if (verdicts.from_domain or "").lower().rstrip(".") != domain:
        return False
    if verdicts.dmarc == "pass":
        return True
    if dkim_only:
        return verdicts.dkim_pass_for([senderauth.organizational_domain(domain)])
    return verdicts.aligned


def stored_verdicts(message: InboundMessage) -> Verdicts | None:
    return Verdicts.from_json(message.sender_auth)


def ensure_verdicts(message: InboundMessage, raw: bytes | ReceivedEmail, *,
                    lookup: Lookup | None = None) -> Verdicts | None:
    """The message's verdicts: those stored (by the gateway, or an earlier run), else evaluated now."""
    existing = stored_verdicts(message)
    if existing is not None or message.source == MessageSource.UPLOAD.value:
        return existing
    found = verdicts_for(
        raw, source=message.source, peer=message.peer, mail_from=message.envelope_sender or "",
        helo=message.helo, lookup=lookup,
    )
    if found is not None:
        message.sender_auth = found.as_json()
    return found


def screen(session: Session, message: InboundMessage) -> tuple[MessageStatus, str] | None:
    """Hold a message that fails DMARC when the tenant asks for it; None lets it through.

    A message released from the quarantine is never held again.
    """
    if message.released_by:
        return None
    verdicts = stored_verdicts(message)
    if verdicts is None or verdicts.dmarc != "fail":  # accepted whatever the tenant chose: no need to ask
        return None
    decision = decide(verdicts, tenant_action(session, message.tenant_id))
    if decision == ACCEPT:
        return None
    domain = verdicts.from_domain or "the sender's domain"
    if decision == REFUSE:  # it reached us anyway (several companies in one delivery): hold it
        return MessageStatus.QUARANTINED, reason(REFUSED_REASON, domain=domain)
    return MessageStatus.QUARANTINED, reason(QUARANTINE_REASON,
        domain=domain, spf=verdicts.spf or "not checked", dkim=verdicts.dkim)


def gateway_decision(verdicts: Verdicts | None, actions: dict[int, str]) -> str | None:
    """The SMTP refusal when every recipient company refuses this message, else None (accept).

    One DATA gets one answer: when some recipients' companies accept it, it is accepted for all, and the
    worker holds the refusing companies' copies in their quarantine.
    """
    if not actions or verdicts is None:
        return None
    if all(decide(verdicts, action) == REFUSE for action in actions.values()):
        return SMTP_REFUSAL.format(domain=verdicts.from_domain or "the sender's domain")
    return None
