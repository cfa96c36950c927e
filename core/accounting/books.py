"""The tenant's chart of accounts and journals: seeded lazily from its standard chart, then edited.

Editing never deletes: an account is added, renamed or deactivated (a deactivated account is refused at
posting by ``ledger.problems``; posted lines keep the label they were posted with).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.accounting.charts import JOURNALS, Chart, chart_named
from core.accounting.ledger import AccountInfo, Books, FiscalCalendar
from core.accounting.models import FiscalYear, Journal, LedgerAccount
from core.errors import NotFound, ValidationFailed
from core.i18n import N_
from core.models import Tenant

ACCOUNT_NUMBER = re.compile(r"[0-9A-Z]{1,20}")
BAD_NUMBER = N_("An account number is 1 to 20 digits or capital letters.")
NUMBER_TAKEN = N_("Account {number} already exists.")
BAD_LABEL = N_("An account needs a label of at most 200 characters.")
BAD_RATE = N_("A VAT rate is a number between 0 and 100.")


def chart_of(session: Session, tenant_id: int) -> Chart:
    tenant = session.get(Tenant, tenant_id)
    return chart_named(tenant.chart if tenant else None)


def ensure_books(session: Session, tenant_id: int) -> None:
    """Seed the tenant's chart and journals the first time accounting is used (safe to call every time)."""
    if session.scalar(select(LedgerAccount.id).where(LedgerAccount.tenant_id == tenant_id).limit(1)):
        return
    chart = chart_of(session, tenant_id)
    try:
        with session.begin_nested():  # two first uses at once: the second finds the first's rows
            session.add_all(LedgerAccount(tenant_id=tenant_id, number=seed.number, label=seed.label,
                                          is_vat=seed.is_vat, vat_rate=seed.vat_rate) for seed in chart.accounts)
            session.add_all(Journal(tenant_id=tenant_id, code=code, label=label, kind=kind)
                            for code, label, kind in JOURNALS)
            session.flush()
    except IntegrityError:
        pass


def load_books(session: Session, tenant_id: int) -> Books:
    ensure_books(session, tenant_id)
    accounts = {
        a.number: AccountInfo(a.number, a.label, a.active, a.is_vat, a.vat_rate)
        for a in session.scalars(select(LedgerAccount).where(LedgerAccount.tenant_id == tenant_id))
    }
    journals = frozenset(session.scalars(select(Journal.code).where(Journal.tenant_id == tenant_id)))
    closed = frozenset(session.scalars(
        select(FiscalYear.year).where(FiscalYear.tenant_id == tenant_id, FiscalYear.closed.is_(True))))
    tenant = session.get(Tenant, tenant_id)
    calendar = FiscalCalendar.of(tenant.fiscal_year_end if tenant else None)
    return Books(accounts=accounts, journals=journals, closed_years=closed, calendar=calendar)


def accounts(session: Session, tenant_id: int) -> list[LedgerAccount]:
    ensure_books(session, tenant_id)
    return list(session.scalars(
        select(LedgerAccount).where(LedgerAccount.tenant_id == tenant_id).order_by(LedgerAccount.number)))


def journals(session: Session, tenant_id: int) -> list[Journal]:
    ensure_books(session, tenant_id)
    return list(session.scalars(select(Journal).where(Journal.tenant_id == tenant_id).order_by(Journal.code)))


def get_account(session: Session, tenant_id: int, number: str) -> LedgerAccount:
    account = session.scalars(select(LedgerAccount).where(
        LedgerAccount.tenant_id == tenant_id, LedgerAccount.number == number)).first()
    if account is None:
        raise NotFound("no such account")
    return account


def account_by_id(session: Session, tenant_id: int, account_id: int) -> LedgerAccount:
    """The tenant's account with this row id (the pages and the API address accounts by it)."""
    account = session.get(LedgerAccount, account_id)
    if account is None or account.tenant_id != tenant_id:
        raise NotFound("no such account")
    return account


def _label(value: object) -> str:
    label = " ".join(str(value or "").split())
    if not label or len(label) > 200:
        raise ValidationFailed({"label": BAD_LABEL})
    return label


def parse_rate(value: object) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        rate = Decimal(str(value).replace(",", ".").strip())
    except InvalidOperation:
        raise ValidationFailed({"vat_rate": BAD_RATE}) from None
    if not rate.is_finite() or not 0 <= rate <= 100:
        raise ValidationFailed({"vat_rate": BAD_RATE})
    return rate.quantize(Decimal("0.01"))


def add_account(session: Session, tenant_id: int, number: str, label: str, *, is_vat: bool = False,
                vat_rate: object = None) -> LedgerAccount:
    ensure_books(session, tenant_id)
    number = str(number or "").strip().upper()
    if not ACCOUNT_NUMBER.fullmatch(number):
        raise ValidationFailed({"number": BAD_NUMBER})
    if session.scalar(select(LedgerAccount.id).where(LedgerAccount.tenant_id == tenant_id,
                                                      LedgerAccount.number == number)):
        raise ValidationFailed({"number": NUMBER_TAKEN.format(number=number)})
    account = LedgerAccount(tenant_id=tenant_id, number=number, label=_label(label), is_vat=bool(is_vat),
                            vat_rate=parse_rate(vat_rate) if is_vat else None)
    session.add(account)
    session.flush()
    return account


def update_account(session: Session, tenant_id: int, number: str, *, label: object = None,
                   active: bool | None = None) -> LedgerAccount:
    """Rename and/or (de)activate; the number itself never changes (posted lines refer to it)."""
    account = get_account(session, tenant_id, number)
    if label is not None:
        account.label = _label(label)
    if active is not None:
        account.active = bool(active)
    session.flush()
    return account
