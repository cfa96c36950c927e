"""The audit trail: append-only records of who did what in a tenant."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from core.models import AuditEvent, User


def record(
    session: Session,
    tenant_id: int,
    action: str,
    *,
    actor: User | None = None,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEvent:
    event = AuditEvent(
        tenant_id=tenant_id,
        actor_id=actor.id if actor else None,
        actor_email=actor.email if actor else "",
        action=action,
        target=target,
        detail=detail or {},
        ip=ip,
    )
    session.add(event)
    session.flush()
    return event


def events_query(tenant_id: int, action_prefix: str | None = None) -> Select[Any]:
    stmt = select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)
    if action_prefix:
        stmt = stmt.where(AuditEvent.action.startswith(action_prefix))
    return stmt.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
