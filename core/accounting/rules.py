"""Rules that learn: per client / supplier, the account, VAT rate and journal of its last posted entry,
applied to its next drafts and to its drafts still waiting (unless a person edited them)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounting.build import Defaults
from core.accounting.models import CounterpartyRule, EntryStatus, JournalEntry


def defaults_for(session: Session, tenant_id: int, client_id: int | None, direction: str | None) -> Defaults | None:
    if client_id is None or not direction:
        return None
    rule = session.scalars(select(CounterpartyRule).where(
        CounterpartyRule.tenant_id == tenant_id, CounterpartyRule.client_id == client_id,
        CounterpartyRule.direction == direction)).first()
    if rule is None:
        return None
    return Defaults(account=rule.account, vat_rate=rule.vat_rate, journal=rule.journal)


def defaults_for_many(session: Session, tenant_id: int,
                      keys: set[tuple[int | None, str | None]]) -> dict[tuple[int | None, str | None], Defaults]:
    """``defaults_for`` of many (client, direction) pairs in one query."""
    client_ids = {client_id for client_id, direction in keys if client_id is not None and direction}
    if not client_ids:
        return {}
    rules = session.scalars(select(CounterpartyRule).where(
        CounterpartyRule.tenant_id == tenant_id, CounterpartyRule.client_id.in_(client_ids)))
    return {(rule.client_id, rule.direction): Defaults(account=rule.account, vat_rate=rule.vat_rate,
                                                        journal=rule.journal)
            for rule in rules if (rule.client_id, rule.direction) in keys}


def learn(session: Session, entry: JournalEntry) -> bool:
    """Remember what ``entry`` (just posted) says about its counterparty; True when that changed what is
    known (the caller then re-drafts the counterparty's ``waiting_drafts``)."""
    # The main line: the largest one that is neither the counterparty's nor VAT (those carry aux / are VAT).
    main = max((ln for ln in entry.lines if ln.aux is None and not _is_vat(session, entry.tenant_id, ln.account)),
               key=lambda ln: ln.debit + ln.credit, default=None)
    if main is None or entry.client_id is None or entry.direction is None:
        return False
    rule = session.scalars(select(CounterpartyRule).where(
        CounterpartyRule.tenant_id == entry.tenant_id, CounterpartyRule.client_id == entry.client_id,
        CounterpartyRule.direction == entry.direction)).first()
    if rule is None:
        rule = CounterpartyRule(tenant_id=entry.tenant_id, client_id=entry.client_id, direction=entry.direction)
        session.add(rule)
    changed = (rule.account, rule.vat_rate, rule.journal) != (main.account, main.vat_rate, entry.journal)
    rule.account, rule.journal = main.account, entry.journal
    rule.vat_rate = Decimal(main.vat_rate) if main.vat_rate is not None else None
    session.flush()
    return changed


def waiting_drafts(session: Session, entry: JournalEntry) -> list[JournalEntry]:
    """The counterparty's other drafts nobody edited: what a newly learned default applies to."""
    return list(session.scalars(select(JournalEntry).where(
        JournalEntry.tenant_id == entry.tenant_id, JournalEntry.client_id == entry.client_id,
        JournalEntry.direction == entry.direction, JournalEntry.status != EntryStatus.POSTED.value,
        JournalEntry.edited.is_(False), JournalEntry.id != entry.id)))


def _is_vat(session: Session, tenant_id: int, number: str) -> bool:
    from core.accounting.models import LedgerAccount

    return bool(session.scalar(select(LedgerAccount.is_vat).where(
        LedgerAccount.tenant_id == tenant_id, LedgerAccount.number == number)))
