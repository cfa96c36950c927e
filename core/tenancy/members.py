"""A company's people (issue 17, item 1): list them, change a role, remove someone; never the last admin,
so a company always keeps someone who can manage it. Every change is on the audit trail."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.orm import Session, selectinload

from core.errors import NotFound, ServiceError, ValidationFailed
from core.i18n import N_
from core.models import ApiToken, ClientAssignment, Membership, Role, User, utcnow
from core.tenancy import audit

ASSIGNABLE_ROLES = (Role.ADMIN.value, Role.ACCOUNTANT.value, Role.MEMBER.value)  # support: the operator grants it
# What the people actions of issue 17 mean on the admins' audit page.
ACTION_LABELS = {
    "members.invite": N_("An admin invited someone"),
    "members.invitation_revoked": N_("An admin withdrew an invitation"),
    "members.join": N_("Someone joined through an invitation"),
    "members.role_changed": N_("An admin changed someone's role"),
    "members.removed": N_("An admin removed someone from the company"),
    "account.password_reset": N_("Someone reset their password through an e-mailed link"),
    "account.2fa_enabled": N_("Someone turned on two-factor authentication"),
    "account.2fa_disabled": N_("Someone turned off two-factor authentication"),
    "settings.require_2fa": N_("An admin changed whether two-factor authentication is required"),
    "company.created": N_("The company was created"),
}


def members_query(tenant_id: int) -> Select[Any]:
    return (select(Membership).where(Membership.tenant_id == tenant_id)
            .options(selectinload(Membership.user)).order_by(Membership.id))


def _member(session: Session, tenant_id: int, user_id: int) -> Membership:
    found = session.scalars(select(Membership).where(
        Membership.tenant_id == tenant_id, Membership.user_id == user_id)).first()
    if found is None:
        raise NotFound("no such member")
    return found


def _admins(session: Session, tenant_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Membership).where(
        Membership.tenant_id == tenant_id, Membership.role == Role.ADMIN.value)) or 0


def change_role(session: Session, tenant_id: int, user_id: int, role: str, actor: User,
                ip: str | None = None) -> Membership:
    member = _member(session, tenant_id, user_id)  # first: another company's person is NotFound, whatever the role
    if role not in ASSIGNABLE_ROLES:
        raise ValidationFailed({"role": N_("choose admin, accountant or member")})
    if member.role == Role.SUPPORT.value:
        raise ServiceError(N_("The operator's support access is managed by the operator."))
    before = member.role
    if before == role:
        return member
    if before == Role.ADMIN.value and _admins(session, tenant_id) <= 1:
        raise ServiceError(N_("This is the company's last admin: make someone else admin first."))
    member.role = role
    session.flush()
    audit.record(session, tenant_id, "members.role_changed", actor=actor, target=f"user:{user_id}",
                 detail={"email": member.user.email, "from": before, "to": role}, ip=ip)
    return member


def remove(session: Session, tenant_id: int, user_id: int, actor: User, ip: str | None = None) -> str:
    """Remove a member: their membership, client assignments and API tokens of this company go; their
    account stays (they may belong to other companies). Returns the e-mail removed."""
    member = _member(session, tenant_id, user_id)
    if member.role == Role.SUPPORT.value:
        raise ServiceError(N_("The operator's support access is managed by the operator."))
    if member.role == Role.ADMIN.value and _admins(session, tenant_id) <= 1:
        raise ServiceError(N_("This is the company's last admin: make someone else admin first."))
    email, role = member.user.email, member.role
    session.execute(delete(ClientAssignment).where(
        ClientAssignment.tenant_id == tenant_id, ClientAssignment.user_id == user_id))
    # Their tokens for this company stop now, and stay stopped if they are invited again later.
    session.execute(update(ApiToken).where(
        ApiToken.tenant_id == tenant_id, ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None)
    ).values(revoked_at=utcnow()))
    session.delete(member)
    session.flush()
    audit.record(session, tenant_id, "members.removed", actor=actor, target=f"user:{user_id}",
                 detail={"email": email, "role": role}, ip=ip)
    return email
