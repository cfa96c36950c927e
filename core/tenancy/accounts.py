"""Tenants, inbound addresses, users, memberships and API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from core.errors import NotFound, ServiceError, ValidationFailed
from core.i18n import N_
from core.models import ApiToken, InboundAddress, Membership, Role, Tenant, User, utcnow
from core.tenancy import twofactor

_hasher = PasswordHasher()
# New addresses: "inbox-" and 13 characters of lower-case base32 (RFC 4648 alphabet), 65 random bits, so
# that knowing or guessing a tenant's address is not enough to push documents into its review queue.
_BASE32_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
ADDRESS_PREFIX = "inbox-"
ADDRESS_RANDOM_CHARS = 13
ADDRESS_RE = re.compile(rf"^{ADDRESS_PREFIX}[a-z2-7]{{{ADDRESS_RANDOM_CHARS}}}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$|^[^@\s]+@localhost$")


# Inbound addresses ---------------------------------------------------------------------------


def new_local_part() -> str:
    """``inbox-`` and 13 random base32 characters (65 bits from ``secrets``)."""
    bits = secrets.randbits(5 * ADDRESS_RANDOM_CHARS)
    chars = [_BASE32_ALPHABET[(bits >> (5 * i)) & 31] for i in range(ADDRESS_RANDOM_CHARS)]
    return ADDRESS_PREFIX + "".join(chars)


def unused_local_part(session: Session) -> str:
    """A new local part no address has (collisions are all but impossible; checked anyway)."""
    while True:
        local = new_local_part()
        if session.scalar(select(InboundAddress.id).where(InboundAddress.local_part == local)) is None:
            return local


def address_of(address: InboundAddress, domain: str) -> str:
    return f"{address.local_part}@{domain}"


def primary_address(session: Session, tenant_id: int) -> InboundAddress:
    """The tenant's newest address that is not retiring."""
    stmt = (
        select(InboundAddress)
        .where(InboundAddress.tenant_id == tenant_id, InboundAddress.retires_at.is_(None))
        .order_by(InboundAddress.id.desc())
    )
    address = session.scalars(stmt).first()
    if address is None:
        raise NotFound("tenant has no inbound address")
    return address


def parse_recipient(recipient: str, domain: str | None) -> str | None:
    """The lower-case local part (``+tag`` removed) when ``recipient`` is at ``domain`` (None: any), else None."""
    recipient = recipient.strip().strip("<>").lower()
    local, sep, rcpt_domain = recipient.rpartition("@")
    if not sep or (domain is not None and rcpt_domain != domain.lower()) or not local:
        return None
    return local.split("+", 1)[0]


def resolve_recipient(session: Session, recipient: str, domain: str) -> Tenant | None:
    """The tenant an address belongs to, matched case-insensitively with any ``+tag``; None if unknown."""
    address = live_address(session, recipient, domain)
    return None if address is None else address.tenant


def live_address(session: Session, recipient: str, domain: str) -> InboundAddress | None:
    """``resolve_recipient``'s address, without loading its tenant (the SMTP gateway asks at every RCPT)."""
    local = parse_recipient(recipient, domain)
    if local is None:
        return None
    address = session.scalars(select(InboundAddress).where(InboundAddress.local_part == local)).first()
    if address is None or not InboundAddress.accepts_mail(address.retires_at, utcnow()):
        return None
    return address


def create_tenant(session: Session, name: str) -> tuple[Tenant, InboundAddress]:
    name = name.strip()
    if not name:
        raise ServiceError("a tenant needs a name")
    tenant = Tenant(name=name)
    session.add(tenant)
    session.flush()
    address = InboundAddress(tenant_id=tenant.id, local_part=unused_local_part(session))
    session.add(address)
    session.flush()
    return tenant, address


def find_tenant(session: Session, ref: str, domain: str) -> Tenant:
    """A tenant by id or by one of its inbound addresses."""
    if ref.isdigit():
        tenant = session.get(Tenant, int(ref))
    else:
        tenant = resolve_recipient(session, ref if "@" in ref else f"{ref}@{domain}", domain)
    if tenant is None:
        raise NotFound(f"no tenant {ref!r}")
    return tenant


# Users ---------------------------------------------------------------------------------------


def normalize_email(email: str) -> str | None:
    """The address lower-cased and trimmed; None when it does not look like one."""
    email = (email or "").strip().lower()
    return email if len(email) <= 254 and _EMAIL_RE.match(email) else None


MIN_PASSWORD, MAX_PASSWORD = 8, 1024


def password_problem(password: str | None) -> str | None:
    """Why a new password is refused (too short, or absurdly long), or None."""
    if len(password or "") < MIN_PASSWORD:
        return N_("the password must have at least 8 characters")
    if len(password or "") > MAX_PASSWORD:
        return N_("the password must have at most 1024 characters")
    return None


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(func.lower(User.email) == email.strip().lower())).first()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def create_user(
    session: Session, email: str, password: str, tenant: Tenant, role: Role | str, *, reset_password: bool = False
) -> User:
    """Create a user, or give an existing one a role in ``tenant``.

    An existing user's password is changed only with ``reset_password``: without it, ``password`` must be
    the current one (adding a known user to another tenant), else ``ServiceError``, so that creating an
    account never takes over someone else's by accident.
    """
    email = email.strip().lower()
    if not _EMAIL_RE.match(email):
        raise ServiceError(f"not an email address: {email!r}")
    if len(password) < 8:
        raise ServiceError("the password must have at least 8 characters")
    role = Role(role)
    user = session.scalars(select(User).where(func.lower(User.email) == email)).first()
    if user is None:
        user = User(email=email, password_hash=hash_password(password))
        session.add(user)
        session.flush()
    elif reset_password:
        user.password_hash = hash_password(password)
    elif not verify_password(user, password):
        raise ServiceError(
            f"{email} already exists and that is not its password: nothing was changed "
            "(to set a new password, run the command again with --reset)"
        )
    membership = session.scalars(
        select(Membership).where(Membership.user_id == user.id, Membership.tenant_id == tenant.id)
    ).first()
    if membership is None:
        session.add(Membership(user_id=user.id, tenant_id=tenant.id, role=role.value))
    else:
        membership.role = role.value
    session.flush()
    return user


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = session.scalars(select(User).where(User.email == email.strip().lower())).first()
    if user is None:
        _hasher.hash(password)  # spend the same time whether or not the user exists
        return None
    if not user.is_active or not verify_password(user, password):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def membership(session: Session, user_id: int, tenant_id: int) -> Membership | None:
    return session.scalars(
        select(Membership).where(Membership.user_id == user_id, Membership.tenant_id == tenant_id)
    ).first()


# API tokens ----------------------------------------------------------------------------------


# A company that requires two-factor authentication requires it of API tokens' owners too: a token is a
# password that never asks for a code, so it must not be the way around the company's rule.
TOKEN_NEEDS_2FA = N_("The company requires two-factor authentication: turn it on for your account before "
                     "creating an API token.")
TOKEN_OWNER_NEEDS_2FA = N_("the company requires two-factor authentication: the token's owner must enable it")


@dataclass(frozen=True)
class TokenIdentity:
    user: User
    tenant: Tenant
    role: Role
    refused: str | None = None  # why a valid token may not be used now (TOKEN_OWNER_NEEDS_2FA)


def lacks_required_2fa(session: Session, user_id: int, tenant_id: int) -> bool:
    """Whether the tenant requires two-factor authentication and the user has not turned it on (read from
    the database: an admin may have just required it)."""
    required = session.scalar(select(Tenant.require_2fa).where(Tenant.id == tenant_id))
    return bool(required) and not twofactor.enabled(session, user_id)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


MAX_TOKEN_DAYS = 3650
MAX_TOKEN_LABEL = 100


def parse_expiry_days(raw: str | int | None) -> int | None:
    """Days a new token lives: empty means until revoked; else a whole number from 1 to MAX_TOKEN_DAYS."""
    text = str(raw).strip() if raw is not None else ""
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_TOKEN_DAYS:
        raise ValidationFailed({"expires_in_days": N_("a number of days from 1 to {limit}, or empty for no expiry")
                                .format(limit=MAX_TOKEN_DAYS)})
    return int(text)


def create_token(
    session: Session, user: User, tenant: Tenant | None = None, *, label: str = "", expires_in_days: int | None = None
) -> str:
    """A new bearer token for ``user`` in ``tenant`` (default: the user's first tenant), valid in that tenant
    only, until revoked or ``expires_in_days`` from now. Shown once; only its SHA-256 is stored."""
    if tenant is None:
        if not user.memberships:
            raise ServiceError(f"{user.email} belongs to no tenant")
        tenant = user.memberships[0].tenant
    elif membership(session, user.id, tenant.id) is None:
        raise ServiceError(f"{user.email} is not a member of {tenant.name}")
    if lacks_required_2fa(session, user.id, tenant.id):
        raise ServiceError(TOKEN_NEEDS_2FA)
    expires_at = None if expires_in_days is None else utcnow() + timedelta(days=expires_in_days)
    token = "ii_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, tenant_id=tenant.id, token_hash=_token_hash(token), prefix=token[:8],
                         label=" ".join(label.split())[:MAX_TOKEN_LABEL], expires_at=expires_at))
    session.flush()
    return token


def token_state(row: ApiToken, now: datetime | None = None) -> str:
    """``revoked``, ``expired`` or ``active``."""
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= (now or utcnow()):
        return "expired"
    return "active"


def identify_token(session: Session, token: str) -> TokenIdentity | None:
    """Who a bearer token is: None when unknown, revoked, expired, or its user left the token's tenant
    (a token is valid in its own tenant only, whatever the user's other memberships). A token whose owner
    lacks the two-factor authentication the tenant requires is identified with ``refused`` set (and not
    marked used): the caller says why instead of "invalid"; it works again once the owner turns it on."""
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == _token_hash(token))).first()
    if row is None or token_state(row) != "active" or not row.user.is_active:
        return None
    member = membership(session, row.user_id, row.tenant_id)
    if member is None:
        return None
    if lacks_required_2fa(session, row.user_id, row.tenant_id):
        return TokenIdentity(user=row.user, tenant=row.tenant, role=Role(member.role), refused=TOKEN_OWNER_NEEDS_2FA)
    row.last_used_at = utcnow()
    return TokenIdentity(user=row.user, tenant=row.tenant, role=Role(member.role))


def token_owner_filter(role: str, user_id: int) -> int | None:
    """Whose tokens a person lists and revokes: None (every token of the company) for an admin, their own
    id otherwise; the ``user_id`` argument of ``tokens_query`` and ``revoke_token``."""
    return None if role == Role.ADMIN else user_id


def tokens_query(tenant_id: int, user_id: int | None = None) -> Select[Any]:
    """The tenant's tokens (of ``user_id`` only, unless None), newest first, with their users."""
    stmt = select(ApiToken).where(ApiToken.tenant_id == tenant_id).options(selectinload(ApiToken.user))
    if user_id is not None:
        stmt = stmt.where(ApiToken.user_id == user_id)
    return stmt.order_by(ApiToken.created_at.desc(), ApiToken.id.desc())


def revoke_token(session: Session, tenant_id: int, token_id: int, user_id: int | None = None) -> ApiToken:
    """Revoke one of the tenant's tokens (of ``user_id`` only, unless None: admins and the operator).
    Another's token is NotFound, like one that does not exist. Revoking twice keeps the first date."""
    row = session.scalars(tokens_query(tenant_id, user_id).where(ApiToken.id == token_id)).first()
    if row is None:
        raise NotFound("no such token")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return row


def find_user(session: Session, email: str) -> User:
    user = session.scalars(select(User).where(User.email == email.strip().lower())).first()
    if user is None:
        raise NotFound(f"no user {email!r}")
    return user
