"""The operator's support console: read-only views of a tenant's imports, each read written to the audit trail.

Who may look: a user with a ``support`` membership in a tenant sees that tenant, and only that one; an
operator's support person is given a support membership in each tenant they look after (``inbox user create EMAIL
--tenant ADDRESS --role support``, once per tenant). There is deliberately no global "sees every tenant"
flag: access is per tenant, visible to the tenant in its list of members, and revoked by removing the
membership. Another tenant (or one that does not exist) is ``NotFound`` — never "forbidden", which would
say that it exists.

Every read goes through ``audit_read`` so that the tenant's admins see who looked at what, from where.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, selectinload

from core.errors import NotFound
from core.i18n import N_
from core.inbound.intake import messages_query
from core.models import InboundAddress, InboundMessage, Membership, Role, Tenant, User
from core.tenancy import accounts, audit
from core.textsearch import like_pattern

MAX_SEARCH_RESULTS = 20
MAX_QUERY_CHARS = 200

# The actions written to the trail (the admins' audit page explains them with these labels).
ACTION_LABELS = {
    "support.search": N_("Support searched for the company"),
    "support.view_tenant": N_("Support opened the company's overview"),
    "support.view_imports": N_("Support read the list of received emails"),
    "support.view_message": N_("Support read one received email's trail"),
    "support.view_codes": N_("Support read the forwarding confirmation codes"),
    "support.view_page": N_("Support read a page of the dashboard"),
    "support.view_api": N_("Support read data through the API"),
}


def supported_tenants_query(user_id: int) -> Select[Any]:
    """The tenants in which ``user_id`` holds a support membership, by name."""
    return (
        select(Tenant)
        .join(Membership, Membership.tenant_id == Tenant.id)
        .where(Membership.user_id == user_id, Membership.role == Role.SUPPORT.value)
        .order_by(Tenant.name, Tenant.id)
    )


def is_support_user(session: Session, user_id: int) -> bool:
    stmt = select(Membership.id).where(Membership.user_id == user_id, Membership.role == Role.SUPPORT.value)
    return session.scalar(stmt.limit(1)) is not None


def search_tenants(session: Session, user_id: int, query: str, domain: str) -> list[Tenant]:
    """Supported tenants whose name contains ``query`` or one of whose addresses is ``query``."""
    query = " ".join(query.split())[:MAX_QUERY_CHARS]
    stmt = supported_tenants_query(user_id)
    if query:
        local = accounts.parse_recipient(query if "@" in query else f"{query}@{domain}", domain)
        by_address = select(InboundAddress.tenant_id).where(InboundAddress.local_part == (local or ""))
        pattern = like_pattern(query.lower())  # case folded only (accents are not, unlike core.listing)
        stmt = stmt.where(or_(func.lower(Tenant.name).like(pattern, escape="\\"), Tenant.id.in_(by_address)))
    return list(session.scalars(stmt.options(selectinload(Tenant.addresses)).limit(MAX_SEARCH_RESULTS)))


def supported_tenant(session: Session, user_id: int, tenant_id: int) -> Tenant:
    """The tenant, when ``user_id`` supports it; ``NotFound`` otherwise (whether or not it exists)."""
    member = accounts.membership(session, user_id, tenant_id)
    if member is None or member.role != Role.SUPPORT.value:
        raise NotFound("no such company")
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("no such company")
    return tenant


def resolve_tenant_ref(session: Session, ref: str, domain: str) -> Tenant:
    """A tenant by id or by inbound address (``NotFound`` when neither matches)."""
    ref = ref.strip()[:MAX_QUERY_CHARS]
    if not ref or (ref.isdigit() and len(ref) > 9):
        raise NotFound("no such company")
    return accounts.find_tenant(session, ref, domain)


def imports_query(tenant_id: int) -> Select[Any]:
    return messages_query(tenant_id).options(selectinload(InboundMessage.documents))


def message_trail(session: Session, tenant_id: int, message_id: int) -> InboundMessage:
    """One of the tenant's messages with its documents (``NotFound`` for another tenant's)."""
    message = session.scalars(
        select(InboundMessage)
        .where(InboundMessage.id == message_id, InboundMessage.tenant_id == tenant_id)
        .options(selectinload(InboundMessage.documents))
    ).first()
    if message is None:
        raise NotFound("no such message")
    return message


def audit_read(
    session: Session,
    actor: User,
    tenant_id: int,
    action: str,
    *,
    target: str | None = None,
    ip: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Write one support read to the tenant's trail (the caller commits, with or before the response)."""
    if action not in ACTION_LABELS:
        raise ValueError(f"unknown support action {action!r}")
    audit.record(session, tenant_id, action, actor=actor, target=target, ip=(ip or "")[:64] or None,
                 detail=detail)
