"""Payables paid another way than a payment run (a card, a cheque, a transfer typed at the bank): marked
paid by a person with the date and the method, audited; the invoice then leaves what is due to the supplier."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from core.errors import ServiceError, ValidationFailed
from core.i18n import N_
from core.models import InvoiceStatus, Role, User
from core.payables.approval import payable
from core.payables.models import ManualPayment
from core.tenancy import audit
from core.tenancy.access import Viewer

METHODS = ("transfer", "card", "cheque", "cash", "direct_debit", "other")
BAD_METHOD = N_("must be one of transfer, card, cheque, cash, direct_debit, other")
BAD_DATE = N_("not a date (YYYY-MM-DD)")
FUTURE_DATE = N_("a payment date cannot be in the future")
ALREADY_PAID = N_("this invoice is already paid")
READ_ONLY = N_("support staff cannot mark invoices paid")


def mark_paid(session: Session, viewer: Viewer, invoice_id: int, data: dict[str, Any], actor: User | None,
              today: date, ip: str | None = None) -> ManualPayment:
    """Mark a payable paid in full on ``data["paid_on"]`` by ``data["method"]``."""
    invoice = payable(session, viewer, invoice_id)
    if viewer.role == Role.SUPPORT.value:
        raise ServiceError(READ_ONLY)
    errors: dict[str, str] = {}
    method = data.get("method")
    if method not in METHODS:
        errors["method"] = BAD_METHOD
    paid_on: date | None = None
    try:
        paid_on = date.fromisoformat(str(data.get("paid_on") or "").strip())
    except ValueError:
        errors["paid_on"] = BAD_DATE
    if paid_on is not None and paid_on > today:
        errors["paid_on"] = FUTURE_DATE
    if errors:
        raise ValidationFailed(errors)
    assert paid_on is not None
    if invoice.status == InvoiceStatus.PAID.value:
        raise ServiceError(ALREADY_PAID)
    owed = (invoice.amount or 0) - (invoice.amount_paid or 0)
    payment = ManualPayment(tenant_id=viewer.tenant_id, invoice_id=invoice.id, paid_on=paid_on, method=str(method),
                            amount=owed, user_email=actor.email if actor else "")
    session.add(payment)
    invoice.amount_paid = invoice.amount or invoice.amount_paid
    invoice.status, invoice.paid_at = InvoiceStatus.PAID.value, paid_on
    audit.record(session, viewer.tenant_id, "payables.mark_paid", actor=actor, target=f"invoice:{invoice.id}",
                 detail={"paid_on": paid_on.isoformat(), "method": method, "amount": str(owed)}, ip=ip)
    session.flush()
    return payment
