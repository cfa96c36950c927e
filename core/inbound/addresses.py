"""A tenant's inbound addresses over time: the current one, the ones retiring after a rotation, the retired.

Rotation (issue #8): an admin issues a new address whenever the old one has leaked or is guessable; the
old one keeps working for a grace period the admin chooses, so that forwarding rules can be updated, and
is then refused at RCPT exactly like an address that never existed (``accounts.resolve_recipient``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import NotFound, ValidationFailed
from core.models import InboundAddress, InboundMessage, Tenant, User, utcnow
from core.tenancy import accounts, audit

GRACE_DAYS_DEFAULT = 30
GRACE_DAYS_MAX = 365
GRACE_DAYS_ERROR = f"Enter a number of days from 0 to {GRACE_DAYS_MAX}."
MAX_RETIRED_SHOWN = 20  # retired addresses accept nothing: only the latest are listed
ROTATE_ACTION = "settings.rotate_address"


class AddressState(enum.StrEnum):
    CURRENT = "current"  # the one to give out (the newest without an end date)
    ACTIVE = "active"  # an older address without an end date (several can exist from before rotation)
    RETIRING = "retiring"  # still accepted until retires_at
    RETIRED = "retired"  # refused like an unknown address


def state_of(address: InboundAddress, now: datetime, current_id: int | None) -> AddressState:
    if address.retires_at is not None:
        return AddressState.RETIRING if InboundAddress.accepts_mail(address.retires_at, now) else AddressState.RETIRED
    return AddressState.CURRENT if address.id == current_id else AddressState.ACTIVE


@dataclass(frozen=True)
class AddressView:
    """What the settings page and the API show of one address (plain values, no ORM object)."""

    id: int
    address: str
    state: AddressState
    created_at: datetime
    retires_at: datetime | None
    guessable: bool  # an old short ``xxx-xxx`` address: rotating it is advised
    # Mail received at it while it was retiring (the forwarding rules still to update).
    retiring_messages: int = 0
    last_retiring_message_at: datetime | None = None

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "address": self.address,
            "state": self.state.value,
            "created_at": self.created_at.isoformat(),
            "retires_at": self.retires_at.isoformat() if self.retires_at else None,
            "guessable": self.guessable,
            "messages_while_retiring": self.retiring_messages,
            "last_message_while_retiring_at": (
                self.last_retiring_message_at.isoformat() if self.last_retiring_message_at else None
            ),
        }


_ORDER = {AddressState.CURRENT: 0, AddressState.ACTIVE: 1, AddressState.RETIRING: 2, AddressState.RETIRED: 3}


def tenant_addresses(session: Session, tenant_id: int, domain: str) -> list[AddressView]:
    """The tenant's addresses: current first, then active, retiring (soonest end first), latest retired."""
    now = utcnow()
    rows = list(session.scalars(select(InboundAddress).where(InboundAddress.tenant_id == tenant_id)))
    current = max((a.id for a in rows if a.retires_at is None), default=None)
    retiring_ids = [a.id for a in rows if a.retires_at is not None and a.retires_at > now]
    stats = {}
    if retiring_ids:  # by the address index: only the mail of the grace periods is read
        stats = {
            address_id: (count, last)
            for address_id, count, last in session.execute(
                select(InboundMessage.inbound_address_id, func.count(), func.max(InboundMessage.received_at))
                .where(InboundMessage.inbound_address_id.in_(retiring_ids), InboundMessage.tenant_id == tenant_id,
                       InboundMessage.to_retiring_address.is_(True))
                .group_by(InboundMessage.inbound_address_id)
            )
        }
    views = []
    for row in rows:
        count, last = stats.get(row.id, (0, None))
        views.append(AddressView(
            id=row.id,
            address=accounts.address_of(row, domain),
            state=state_of(row, now, current),
            created_at=row.created_at,
            retires_at=row.retires_at,
            guessable=accounts.ADDRESS_RE.match(row.local_part) is None,
            retiring_messages=count,
            last_retiring_message_at=last,
        ))
    views.sort(key=lambda v: (_ORDER[v.state], _sort_time(v)))
    retired = [v for v in views if v.state == AddressState.RETIRED][:MAX_RETIRED_SHOWN]
    return [v for v in views if v.state != AddressState.RETIRED] + retired


def _sort_time(view: AddressView) -> float:
    if view.state == AddressState.RETIRING and view.retires_at is not None:
        return view.retires_at.timestamp()  # soonest end first
    moment = view.retires_at if view.state == AddressState.RETIRED and view.retires_at else view.created_at
    return -moment.timestamp()  # newest first


def parse_grace_days(value: object) -> int:
    """The grace period in whole days, 0 to GRACE_DAYS_MAX; ``ValidationFailed`` otherwise."""
    if value is None or value == "":
        return GRACE_DAYS_DEFAULT
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or len(text) > 3 or int(text) > GRACE_DAYS_MAX:
        raise ValidationFailed({"grace_days": GRACE_DAYS_ERROR})
    return int(text)


@dataclass(frozen=True)
class Rotation:
    new: InboundAddress
    retiring: list[InboundAddress]


def rotate(
    session: Session,
    tenant_id: int,
    *,
    grace_days: int = GRACE_DAYS_DEFAULT,
    actor: User | None = None,
    ip: str | None = None,
) -> Rotation:
    """Issue a new address; every address still without an end date (or ending later) retires in
    ``grace_days`` days (0: now). An address already retiring sooner keeps its earlier end. Audited."""
    if not 0 <= grace_days <= GRACE_DAYS_MAX:
        raise ValidationFailed({"grace_days": GRACE_DAYS_ERROR})
    # One rotation at a time per tenant (PostgreSQL row lock; SQLite serialises writers anyway).
    tenant = session.scalars(select(Tenant).where(Tenant.id == tenant_id).with_for_update()).first()
    if tenant is None:
        raise NotFound("no such company")
    now = utcnow()
    ends = now + timedelta(days=grace_days)
    retiring = []
    for address in session.scalars(
        select(InboundAddress).where(InboundAddress.tenant_id == tenant_id).order_by(InboundAddress.id)
    ):
        if address.retires_at is None or address.retires_at > ends:
            address.retires_at = ends
            retiring.append(address)
    new = InboundAddress(tenant_id=tenant_id, local_part=accounts.unused_local_part(session), created_at=now)
    session.add(new)
    session.flush()
    audit.record(
        session, tenant_id, ROTATE_ACTION, actor=actor, target=f"address:{new.id}", ip=ip,
        detail={
            "new": new.local_part,
            "grace_days": grace_days,
            "retiring": [{"local_part": a.local_part, "retires_at": ends.isoformat()} for a in retiring],
        },
    )
    return Rotation(new=new, retiring=retiring)


def address_for_recipient(session: Session, tenant_id: int, recipient: str) -> InboundAddress | None:
    """Which of the tenant's addresses ``recipient`` is (any case, any ``+tag``), if any.

    Scoped to the tenant, so a mailbox login or an upload's recipient can never name another tenant's address.
    """
    local = accounts.parse_recipient(recipient, None)
    if not local:
        return None
    # No autoflush: the gateway adds a batch of message rows and flushes them in one go afterwards.
    with session.no_autoflush:
        return session.scalars(
            select(InboundAddress).where(InboundAddress.tenant_id == tenant_id, InboundAddress.local_part == local)
        ).first()


@dataclass(frozen=True)
class AddressMatch:
    """Which inbound address a recipient named, as the SMTP gateway found it at RCPT."""

    id: int
    retiring: bool

    @classmethod
    def of(cls, address: InboundAddress) -> AddressMatch:
        return cls(address.id, address.retires_at is not None)


def note_recipient_address(session: Session, message: InboundMessage, match: AddressMatch | None = None) -> None:
    """Record on a new message the address it was sent to, and whether that address was retiring.

    ``match``: the address already looked up for this recipient (the gateway's RCPT), not asked again.
    """
    if match is None:
        address = address_for_recipient(session, message.tenant_id, message.recipient)
        match = AddressMatch.of(address) if address is not None else None
    message.inbound_address_id = match.id if match is not None else None
    message.to_retiring_address = match is not None and match.retiring
