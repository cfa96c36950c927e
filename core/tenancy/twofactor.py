"""Optional TOTP two-factor authentication (issue 17, item 1; RFC 6238 through pyotp).

A person turns it on by scanning a secret and typing a code from it (proof the app holds it); the secret
is stored encrypted (``core.secrets.SecretBox``). A code is accepted once (the time step is remembered).
An admin may require it for the company: members without it are sent to set it up before any page of
that company (``dashboard.web.tenant_required``).
"""

from __future__ import annotations

import time

import pyotp
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.errors import ServiceError, ValidationFailed
from core.i18n import N_
from core.models import Tenant, User
from core.secrets import SecretBox, SecretError
from core.tenancy import audit
from core.tenancy.people_models import SecondFactor

ISSUER = "invoice-inbox"
VALID_WINDOW = 1  # one 30-second step either side: a phone's clock a little off still works


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (typed, or from a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def enabled(session: Session, user_id: int) -> bool:
    return session.scalar(select(SecondFactor.id).where(SecondFactor.user_id == user_id)) is not None


def _step(secret: str, code: str) -> int | None:
    """The time step ``code`` belongs to, within the window; None when it is not a current code."""
    code = "".join((code or "").split())
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now = int(time.time())
    for offset in range(-VALID_WINDOW, VALID_WINDOW + 1):
        at = now + offset * totp.interval
        if totp.verify(code, for_time=at, valid_window=0):
            return at // totp.interval
    return None


def enable(session: Session, box: SecretBox, user: User, secret: str, code: str, ip: str | None = None) -> None:
    if enabled(session, user.id):
        raise ServiceError(N_("Two-factor authentication is already on."))
    step = _step(secret, code)
    if step is None:
        raise ValidationFailed({"code": N_("that code is not the current one: type the 6 digits the app shows now")})
    session.add(SecondFactor(user_id=user.id, secret=box.encrypt(secret), last_step=step))
    session.flush()
    for member in user.memberships:
        audit.record(session, member.tenant_id, "account.2fa_enabled", actor=user, target=f"user:{user.id}", ip=ip)


def verify(session: Session, box: SecretBox, user_id: int, code: str) -> bool:
    """True for a current code not used before; the step is then remembered (no replay)."""
    row = session.scalars(select(SecondFactor).where(SecondFactor.user_id == user_id)).first()
    if row is None:
        return False
    try:
        secret = box.decrypt(row.secret)
    except SecretError:
        return False
    step = _step(secret, code)
    if step is None or step <= row.last_step:
        return False
    # Conditional: two requests with one code cannot both pass.
    moved = session.execute(update(SecondFactor).where(
        SecondFactor.id == row.id, SecondFactor.last_step < step).values(last_step=step))
    return moved.rowcount == 1  # type: ignore[attr-defined]


def disable(session: Session, box: SecretBox, user: User, code: str, ip: str | None = None) -> None:
    """Turn it off with a current code; refused while a company of the person requires it."""
    if not enabled(session, user.id):
        return
    requiring = [m.tenant.name for m in user.memberships if m.tenant.require_2fa]
    if requiring:
        raise ServiceError(N_("{company} requires two-factor authentication: it cannot be turned off.")
                           .format(company=requiring[0]))
    if not verify(session, box, user.id, code):
        raise ValidationFailed({"code": N_("that code is not the current one: type the 6 digits the app shows now")})
    row = session.scalars(select(SecondFactor).where(SecondFactor.user_id == user.id)).one()
    session.delete(row)
    session.flush()
    for member in user.memberships:
        audit.record(session, member.tenant_id, "account.2fa_disabled", actor=user, target=f"user:{user.id}", ip=ip)


def set_required(session: Session, tenant_id: int, required: bool, actor: User, ip: str | None = None) -> Tenant:
    """An admin requires (or stops requiring) two-factor for the company; they must have it on themselves
    first, so that requiring it never locks out the person who asked."""
    tenant = session.get(Tenant, tenant_id)
    assert tenant is not None
    if required and not enabled(session, actor.id):
        raise ServiceError(N_("Turn on two-factor authentication for your own account first."))
    if bool(tenant.require_2fa) != required:
        tenant.require_2fa = required
        session.flush()
        audit.record(session, tenant_id, "settings.require_2fa", actor=actor, target=f"tenant:{tenant_id}",
                     detail={"required": required}, ip=ip)
    return tenant
