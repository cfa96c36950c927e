"""Companies a person creates and works across (issue 17, item 2).

- ``create_company``: a user creates a company; it gets its inbound address at once and the user is its admin.
- ``sign_up``: with the operator's ``SIGNUP_ENABLED``, a new person creates their account and company.
- ``overview``: for a person in several companies (an accountant's firm), what waits in each one they
  belong to, counted with the access policy of their membership there.

A name already used by another company is refused (people tell companies apart by name in the switcher
and the support console); nothing is half-created: every check runs before the first row is added.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from core.errors import ValidationFailed
from core.i18n import N_
from core.models import (
    REVIEW_STATUSES,
    BankTransaction,
    Direction,
    DocType,
    Document,
    InboundAddress,
    Invoice,
    InvoiceStatus,
    Membership,
    Role,
    Tenant,
    TransactionStatus,
    User,
)
from core.tenancy import access, accounts, audit

MAX_NAME = 200


def clean_name(name: str) -> str:
    """The name as shown, or ValidationFailed (empty, too long, or taken, case and spacing ignored)."""
    cleaned = " ".join((name or "").split())
    if not cleaned:
        raise ValidationFailed({"name": N_("a company needs a name")})
    if len(cleaned) > MAX_NAME:
        raise ValidationFailed({"name": N_("at most 200 characters")})
    return cleaned


def name_taken(session: Session, name: str) -> bool:
    return session.scalar(select(Tenant.id).where(func.lower(Tenant.name) == name.lower()).limit(1)) is not None


def _check_free(session: Session, name: str) -> None:
    if name_taken(session, name):
        raise ValidationFailed({"name": N_("a company named {name} already exists: choose another name")
                                .format(name=name)})


def create_company(session: Session, user: User, name: str, ip: str | None = None) -> tuple[Tenant, InboundAddress]:
    cleaned = clean_name(name)
    _check_free(session, cleaned)
    tenant, address = accounts.create_tenant(session, cleaned)
    session.add(Membership(user_id=user.id, tenant_id=tenant.id, role=Role.ADMIN.value))
    session.flush()
    session.expire(user, ["memberships"])
    audit.record(session, tenant.id, "company.created", actor=user, target=f"tenant:{tenant.id}",
                 detail={"name": cleaned}, ip=ip)
    return tenant, address


def sign_up(session: Session, email: str, password: str, company: str,
            ip: str | None = None) -> tuple[User, Tenant, InboundAddress]:
    """A new account and its company; every field is checked first (ValidationFailed lists all problems)."""
    problems: dict[str, str] = {}
    address = accounts.normalize_email(email)
    if address is None:
        problems["email"] = N_("not an e-mail address")
    elif accounts.user_by_email(session, address) is not None:
        problems["email"] = N_("this e-mail already has an account: log in, then create the company from the menu")
    if (problem := accounts.password_problem(password)) is not None:
        problems["password"] = problem
    try:
        cleaned = clean_name(company)
        _check_free(session, cleaned)
    except ValidationFailed as exc:
        problems.update(exc.errors)
    if problems:
        raise ValidationFailed(problems)
    user = User(email=address, password_hash=accounts.hash_password(password))
    session.add(user)
    session.flush()
    tenant, inbound = create_company(session, user, cleaned, ip=ip)
    return user, tenant, inbound


@dataclass(frozen=True)
class CompanyCounts:
    tenant_id: int
    name: str
    role: str
    pending_documents: int
    overdue_invoices: int
    unmatched_transactions: int


def _by_tenant(session: Session, stmt: Select[Any]) -> dict[int, int]:
    return {tenant_id: number for tenant_id, number in session.execute(stmt).all()}


def overview(session: Session, user_id: int, today: date) -> list[CompanyCounts]:
    """Per company the user belongs to, by name: documents waiting for review, overdue receivable invoices
    and unmatched bank transactions, as that membership may see them (a restricted member counts only the
    invoices and transactions of their clients, through ``core.tenancy.access``).

    A few grouped queries for every company at once (an accountant may serve hundreds), plus two per
    company where the person is a restricted member."""
    members = session.execute(select(Membership, Tenant).join(Tenant, Tenant.id == Membership.tenant_id)
                              .where(Membership.user_id == user_id)).all()
    if not members:
        return []
    viewers = {member.tenant_id: access.viewer_of(member, tenant) for member, tenant in members}
    # Documents under review are never restricted: every member reviews every document.
    pending = _by_tenant(session, select(Document.tenant_id, func.count()).where(
        Document.tenant_id.in_(list(viewers)), Document.status.in_(REVIEW_STATUSES)).group_by(Document.tenant_id))
    overdue_stmt = select(Invoice.tenant_id, func.count()).where(
        Invoice.doc_type == DocType.INVOICE.value, Invoice.direction == Direction.RECEIVABLE.value,
        Invoice.status != InvoiceStatus.PAID.value, Invoice.due_date < today).group_by(Invoice.tenant_id)
    unmatched_stmt = select(BankTransaction.tenant_id, func.count()).where(
        BankTransaction.status == TransactionStatus.UNMATCHED.value).group_by(BankTransaction.tenant_id)
    open_ids = [tid for tid, viewer in viewers.items() if not viewer.restricted]
    overdue = _by_tenant(session, overdue_stmt.where(Invoice.tenant_id.in_(open_ids))) if open_ids else {}
    unmatched = (_by_tenant(session, unmatched_stmt.where(BankTransaction.tenant_id.in_(open_ids)))
                 if open_ids else {})
    for tid, viewer in viewers.items():
        if viewer.restricted:
            overdue |= _by_tenant(session, access.scope_invoices(overdue_stmt.where(Invoice.tenant_id == tid), viewer))
            unmatched |= _by_tenant(session, access.scope_transactions(
                unmatched_stmt.where(BankTransaction.tenant_id == tid), viewer))
    rows = [CompanyCounts(member.tenant_id, tenant.name, member.role, pending.get(member.tenant_id, 0),
                          overdue.get(member.tenant_id, 0), unmatched.get(member.tenant_id, 0))
            for member, tenant in members]
    return sorted(rows, key=lambda row: (row.name.lower(), row.tenant_id))
