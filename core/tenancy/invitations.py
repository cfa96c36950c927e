"""Invitations (issue 17, item 1): an admin invites a person by e-mail; the link (single use, expiring)
lets them set a password (new account) or confirm theirs (an accountant already using invoice-inbox for
other companies) and join the company with the role chosen.

Bad links are refused with a reason a person can act on (expired, already used, withdrawn) and change
nothing; accepting is one transaction, guarded so that two clicks on one link make one membership.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session, selectinload

from core.errors import NotFound, ServiceError, ValidationFailed
from core.i18n import N_
from core.models import Membership, Role, Tenant, User, utcnow
from core.outbound import mail
from core.outbound.models import OutboxMessage
from core.tenancy import accounts, audit
from core.tenancy.people_models import Invitation
from core.tenancy.tokens import hash_link_token, new_link_token, plausible

INVITATION_DAYS = 7
INVITABLE_ROLES = (Role.ADMIN.value, Role.ACCOUNTANT.value, Role.MEMBER.value)  # support: the operator's, never invited
Translate = Callable[[str], str]

SUBJECT = N_("You are invited to {company} on invoice-inbox")
BODY = N_("{inviter} invites you to work on {company} on invoice-inbox as {role}.\n\n"
          "Open this link to choose your password and join (it works once, until {expires}):\n{link}\n\n"
          "If you did not expect this invitation, ignore this message.")


@dataclass(frozen=True)
class Sent:
    invitation: Invitation
    token: str
    outbox: OutboxMessage


def state_of(invitation: Invitation) -> str:
    """``accepted``, ``revoked``, ``expired`` or ``pending``."""
    if invitation.accepted_at is not None:
        return "accepted"
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.expires_at <= utcnow():
        return "expired"
    return "pending"


def invitations_query(tenant_id: int) -> Select[Any]:
    return (select(Invitation).where(Invitation.tenant_id == tenant_id)
            .options(selectinload(Invitation.invited_by))
            .order_by(Invitation.created_at.desc(), Invitation.id.desc()))


def _check_role(role: str) -> str:
    if role not in INVITABLE_ROLES:
        raise ValidationFailed({"role": N_("choose admin, accountant or member")})
    return role


def invite(session: Session, tenant_id: int, actor: User, email: str, role: str, *, link_for: Callable[[str], str],
           config: mail.MailConfig, tr: Translate = str, ip: str | None = None) -> Sent:
    """Invite ``email`` to the tenant with ``role`` and send the link; an earlier pending invitation of the
    same address is withdrawn (the new mail replaces it). ValidationFailed when the address is not one or
    is already a member."""
    address = accounts.normalize_email(email)
    if address is None:
        raise ValidationFailed({"email": N_("not an e-mail address")})
    _check_role(role)
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("no such company")
    existing = accounts.user_by_email(session, address)
    if existing is not None and accounts.membership(session, existing.id, tenant_id) is not None:
        raise ValidationFailed({"email": N_("{email} is already a member of this company").format(email=address)})
    now = utcnow()
    session.execute(update(Invitation).where(
        Invitation.tenant_id == tenant_id, Invitation.email == address, Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None)).values(revoked_at=now))
    token, token_hash = new_link_token()
    invitation = Invitation(tenant_id=tenant_id, email=address, role=role, token_hash=token_hash,
                            invited_by_id=actor.id, created_at=now, expires_at=now + timedelta(days=INVITATION_DAYS))
    session.add(invitation)
    session.flush()
    values = {"company": tenant.name, "inviter": actor.email, "role": tr(role),
              "expires": invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC"), "link": link_for(token)}
    outbox = mail.send(session, config, recipient=address, subject=tr(SUBJECT).format(**values),
                       body=tr(BODY).format(**values), kind="invitation", tenant_id=tenant_id)
    audit.record(session, tenant_id, "members.invite", actor=actor, target=f"email:{address}",
                 detail={"role": role, "invitation_id": invitation.id, "mail": outbox.state}, ip=ip)
    return Sent(invitation, token, outbox)


def revoke(session: Session, tenant_id: int, invitation_id: int, actor: User, ip: str | None = None) -> Invitation:
    """Withdraw a pending invitation of the tenant (another tenant's: NotFound)."""
    invitation = session.scalars(select(Invitation).where(
        Invitation.id == invitation_id, Invitation.tenant_id == tenant_id)).first()
    if invitation is None:
        raise NotFound("no such invitation")
    if invitation.accepted_at is not None:
        raise ServiceError(N_("This invitation was already accepted: remove the member instead."))
    if invitation.revoked_at is None:
        invitation.revoked_at = utcnow()
        audit.record(session, tenant_id, "members.invitation_revoked", actor=actor, target=f"email:{invitation.email}",
                     detail={"invitation_id": invitation.id}, ip=ip)
    session.flush()
    return invitation


def find_usable(session: Session, token: str | None) -> Invitation:
    """The pending invitation of a link; ServiceError saying why a link cannot be used."""
    invitation = None
    if plausible(token):
        invitation = session.scalars(select(Invitation).where(
            Invitation.token_hash == hash_link_token(token or ""))).first()
    if invitation is None:
        raise ServiceError(N_("This invitation link is not valid. Check that you opened the whole link, "
                              "or ask an admin of the company for a new invitation."))
    state = state_of(invitation)
    if state == "accepted":
        raise ServiceError(N_("This invitation link was already used. Log in with your e-mail and password."))
    if state == "revoked":
        raise ServiceError(N_("This invitation was withdrawn. Ask an admin of the company for a new one."))
    if state == "expired":
        raise ServiceError(N_("This invitation link has expired. Ask an admin of the company for a new one."))
    return invitation


def needs_existing_password(session: Session, invitation: Invitation) -> bool:
    """True when the invited address already has an account: the invitee confirms its password."""
    return accounts.user_by_email(session, invitation.email) is not None


def accept(session: Session, token: str | None, password: str, ip: str | None = None) -> tuple[User, Tenant]:
    """Join the invitation's company: a new account with ``password``, or the existing account of that address
    when ``password`` is its password. Nothing is created when anything is refused."""
    invitation = find_usable(session, token)
    user = accounts.user_by_email(session, invitation.email)
    if user is None:
        if (problem := accounts.password_problem(password)) is not None:
            raise ValidationFailed({"password": problem})
        user = User(email=invitation.email, password_hash=accounts.hash_password(password))
        session.add(user)
        session.flush()
    elif not user.is_active or not accounts.verify_password(user, password):
        raise ValidationFailed({"password": N_("this e-mail already has an account: enter its password")})
    # Single use even under two simultaneous clicks: only the request that flips accepted_at goes on.
    flipped = session.execute(update(Invitation).where(
        Invitation.id == invitation.id, Invitation.accepted_at.is_(None)).values(accepted_at=utcnow()))
    if flipped.rowcount != 1:  # type: ignore[attr-defined]
        raise ServiceError(N_("This invitation link was already used. Log in with your e-mail and password."))
    if accounts.membership(session, user.id, invitation.tenant_id) is None:
        session.add(Membership(user_id=user.id, tenant_id=invitation.tenant_id, role=invitation.role))
    session.flush()
    audit.record(session, invitation.tenant_id, "members.join", actor=user, target=f"user:{user.id}",
                 detail={"role": invitation.role, "invitation_id": invitation.id}, ip=ip)
    session.expire(user, ["memberships"])
    tenant = session.get(Tenant, invitation.tenant_id)
    assert tenant is not None
    return user, tenant
