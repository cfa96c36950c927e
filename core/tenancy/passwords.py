"""Password reset by e-mail (issue 17, item 1).

Asking never tells whether an account exists: the caller shows the same answer either way, and only an
existing, active account gets a mail. The link works once, for ``RESET_MINUTES``; using it ends every
other pending link of the account. The mail goes to no company's outbox (an admin must not read a link
to a colleague's account): without a relay, the operator reads it with ``inbox outbox``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.errors import ServiceError, ValidationFailed
from core.i18n import N_
from core.models import User, utcnow
from core.outbound import mail
from core.tenancy import accounts, audit
from core.tenancy.people_models import PasswordReset
from core.tenancy.tokens import hash_link_token, new_link_token, plausible

RESET_MINUTES = 60
SUBJECT = N_("Reset your invoice-inbox password")
BODY = N_("Someone (probably you) asked to reset the password of {email} on invoice-inbox.\n\n"
          "Open this link to choose a new password (it works once, for {minutes} minutes):\n{link}\n\n"
          "If you did not ask, ignore this message: your password stays as it is.")


def request_reset(session: Session, email: str, *, link_for: Callable[[str], str], config: mail.MailConfig,
                  tr: Callable[[str], str] = str) -> None:
    """Send a reset link when ``email`` is an active account; otherwise do nothing (same outcome shown)."""
    address = accounts.normalize_email(email)
    user = accounts.user_by_email(session, address) if address else None
    if user is None or not user.is_active:
        return
    token, token_hash = new_link_token()
    now = utcnow()
    session.add(PasswordReset(user_id=user.id, token_hash=token_hash, created_at=now,
                              expires_at=now + timedelta(minutes=RESET_MINUTES)))
    session.flush()
    values = {"email": user.email, "minutes": RESET_MINUTES, "link": link_for(token)}
    mail.send(session, config, recipient=user.email, subject=tr(SUBJECT), body=tr(BODY).format(**values),
              kind="password_reset", tenant_id=None)


def find_usable(session: Session, token: str | None) -> PasswordReset:
    row = None
    if plausible(token):
        wanted = hash_link_token(token or "")
        row = session.scalars(select(PasswordReset).where(PasswordReset.token_hash == wanted)).first()
    if row is None:
        raise ServiceError(N_("This reset link is not valid. Ask for a new one below."))
    if row.used_at is not None:
        raise ServiceError(N_("This reset link was already used. Ask for a new one if you need to."))
    if row.expires_at <= utcnow():
        raise ServiceError(N_("This reset link has expired. Ask for a new one below."))
    return row


def reset(session: Session, token: str | None, password: str, ip: str | None = None) -> User:
    """Set the new password through a reset link; the link and every other pending one of the account end."""
    row = find_usable(session, token)
    if (problem := accounts.password_problem(password)) is not None:
        raise ValidationFailed({"password": problem})
    now = utcnow()
    flipped = session.execute(update(PasswordReset).where(
        PasswordReset.id == row.id, PasswordReset.used_at.is_(None)).values(used_at=now))
    if flipped.rowcount != 1:  # type: ignore[attr-defined]
        raise ServiceError(N_("This reset link was already used. Ask for a new one if you need to."))
    session.execute(update(PasswordReset).where(
        PasswordReset.user_id == row.user_id, PasswordReset.used_at.is_(None)).values(used_at=now))
    user = row.user
    user.password_hash = accounts.hash_password(password)
    session.flush()
    for member in user.memberships:
        audit.record(session, member.tenant_id, "account.password_reset", actor=user, target=f"user:{user.id}",
                     ip=ip)
    return user
