"""Approval of supplier invoices before payment: the tenant's policy (``Tenant.approval_mode``) says how
many approvals a payable needs, "none", "one", or "two_above" (a second, different person when the amount
is above ``Tenant.approval_threshold``). An approval is recorded per step, audited, and never undone by
editing the invoice; a payment run takes approved payables only."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Float, Select, and_, case, cast, func, select
from sqlalchemy.orm import Session

from core.errors import NotFound, ServiceError
from core.i18n import N_
from core.models import Direction, DocType, Invoice, InvoiceStatus, Role, Tenant, User
from core.payables.models import PayableApproval
from core.tenancy import access, audit
from core.tenancy.access import Viewer

AWAITING, AWAITING_SECOND, APPROVED = "awaiting_approval", "awaiting_second_approval", "approved"
STATES = (AWAITING, AWAITING_SECOND, APPROVED)
NOT_A_PAYABLE = N_("only a supplier invoice (payable) is approved for payment")
ALREADY_APPROVED = N_("this invoice is already approved")
ALREADY_PAID = N_("this invoice is already paid")
SAME_PERSON = N_("a second approval must come from another person")
READ_ONLY = N_("support staff cannot approve invoices")


def required_steps(tenant: Tenant, invoice: Invoice) -> int:
    if tenant.approval_mode == "none":
        return 0
    if tenant.approval_mode == "two_above" and tenant.approval_threshold is not None \
            and invoice.amount is not None and invoice.amount > tenant.approval_threshold:
        return 2
    return 1


def approvals_of(session: Session, invoice: Invoice) -> list[PayableApproval]:
    return list(session.scalars(select(PayableApproval).where(
        PayableApproval.tenant_id == invoice.tenant_id, PayableApproval.invoice_id == invoice.id
    ).order_by(PayableApproval.step)))


def state_of(tenant: Tenant, invoice: Invoice, approvals: int) -> str:
    needed = required_steps(tenant, invoice)
    if approvals >= needed:
        return APPROVED
    return AWAITING if approvals == 0 else AWAITING_SECOND


def payable(session: Session, viewer: Viewer, invoice_id: int) -> Invoice:
    """The viewer's payable invoice, or NotFound (receivables and hidden invoices alike)."""
    invoice = session.get(Invoice, invoice_id)
    if invoice is None or invoice.tenant_id != viewer.tenant_id or invoice.direction != Direction.PAYABLE.value:
        raise NotFound("no such payable")
    return access.check_invoice(session, viewer, invoice)


def approve(session: Session, viewer: Viewer, invoice_id: int, actor: User | None, ip: str | None = None) -> str:
    """Record the viewer's approval of a payable; returns its state afterwards."""
    invoice = payable(session, viewer, invoice_id)
    if viewer.role == Role.SUPPORT.value:
        raise ServiceError(READ_ONLY)
    if invoice.doc_type != DocType.INVOICE.value:
        raise ServiceError(NOT_A_PAYABLE)
    if invoice.status == InvoiceStatus.PAID.value:
        raise ServiceError(ALREADY_PAID)
    tenant = session.get(Tenant, viewer.tenant_id)
    assert tenant is not None
    done = approvals_of(session, invoice)
    needed = max(1, required_steps(tenant, invoice))  # approving under "none" is allowed and recorded
    if len(done) >= needed:
        raise ServiceError(ALREADY_APPROVED)
    if any(a.user_id == viewer.user_id for a in done):
        raise ServiceError(SAME_PERSON)
    step = len(done) + 1
    session.add(PayableApproval(tenant_id=viewer.tenant_id, invoice_id=invoice.id, user_id=viewer.user_id,
                                user_email=actor.email if actor else "", step=step))
    audit.record(session, viewer.tenant_id, "payables.approve", actor=actor, target=f"invoice:{invoice.id}",
                 detail={"step": step, "of": needed, "number": invoice.number}, ip=ip)
    session.flush()
    return state_of(tenant, invoice, step)


def approval_count() -> Any:
    """A correlated count of an invoice's approvals (for listings)."""
    return (select(func.count(PayableApproval.id)).where(PayableApproval.invoice_id == Invoice.id)
            .correlate(Invoice).scalar_subquery())


def required_steps_sql() -> ColumnElement[int]:
    """``required_steps`` as a SQL expression over Invoice and its Tenant (joined)."""
    # Money is text on SQLite: compared as numbers (a float holds every amount in cents exactly enough
    # to order two of them).
    above = and_(Tenant.approval_mode == "two_above", Tenant.approval_threshold.is_not(None),
                 Invoice.amount.is_not(None), cast(Invoice.amount, Float) > cast(Tenant.approval_threshold, Float))
    return case((Tenant.approval_mode == "none", 0), (above, 2), else_=1)


def state_clause(state: str) -> ColumnElement[bool]:
    """``state_of`` as a WHERE clause, so a listing filtered by approval state pages in SQL."""
    needed, done = required_steps_sql(), approval_count()
    if state == APPROVED:
        return done >= needed
    if state == AWAITING:
        return and_(done == 0, needed > 0)
    return and_(done > 0, done < needed)


def payables_query(viewer: Viewer, state: str | None = None) -> Select[Any]:
    """The viewer's payables, oldest due first; ``state``: one of STATES, or "paid" / "unpaid"."""
    stmt = select(Invoice).where(Invoice.tenant_id == viewer.tenant_id, Invoice.direction == Direction.PAYABLE.value)
    if state == "paid":
        stmt = stmt.where(Invoice.status == InvoiceStatus.PAID.value)
    elif state is not None:
        stmt = stmt.where(Invoice.status != InvoiceStatus.PAID.value)
    if state in STATES:  # only invoices are approved; the state depends on the company's policy
        stmt = (stmt.join(Tenant, Tenant.id == Invoice.tenant_id)
                .where(Invoice.doc_type == DocType.INVOICE.value, state_clause(state)))
    return access.scope_invoices(stmt, viewer).order_by(Invoice.due_date, Invoice.id)


def states(session: Session, tenant: Tenant, invoices: list[Invoice]) -> dict[int, str]:
    """The approval state of each invoice (credit notes count as approved: nothing to pay)."""
    if not invoices:
        return {}
    counts = dict(session.execute(select(PayableApproval.invoice_id, func.count(PayableApproval.id)).where(
        PayableApproval.tenant_id == tenant.id, PayableApproval.invoice_id.in_([i.id for i in invoices])
    ).group_by(PayableApproval.invoice_id)).all())
    return {i.id: (APPROVED if i.doc_type != DocType.INVOICE.value else state_of(tenant, i, counts.get(i.id, 0)))
            for i in invoices}


