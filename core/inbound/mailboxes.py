"""IMAP mailboxes: their settings (secrets encrypted), their state, and what was imported from them.

A tenant's admin configures the tenant's mailboxes; the operator configures catch-all mailboxes
(``tenant_id`` NULL) whose messages are routed to tenants by their recipient headers.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from core.config import OAuthApp, env
from core.errors import NotFound, ServiceError, ValidationFailed
from core.i18n import N_
from core.inbound.oauth import PROVIDER_NAMES, Grant, OAuthFailed
from core.models import (
    Mailbox,
    MailboxAuth,
    MailboxImport,
    MailboxImportOutcome,
    MailboxSecurity,
    utcnow,
)
from core.secrets import SecretBox

OAUTH_PROVIDERS = ("google", "microsoft")
MAX_ERROR_LENGTH = 1000
_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,253})$|^\[[0-9A-Fa-f:.]+\]$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
LOOPBACK_NAMES = frozenset(("localhost", "localhost.localdomain"))


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# Where a tenant's mailbox may connect ---------------------------------------------------------
# A tenant admin chooses the host: without a check it could be any address the IMAP process reaches
# (the database, Redis, a cloud metadata service). Only global addresses are allowed, unless the
# operator lists networks in IMAP_ALLOWED_NETWORKS (comma-separated, e.g. "10.1.2.0/24,127.0.0.1").
# Checked when the settings are saved and again at each connection (DNS answers change).

ALLOWED_NETWORKS_ENV = "IMAP_ALLOWED_NETWORKS"
TARGET_REFUSED = N_(
    "This server's address is on a private, loopback, link-local or other internal network, which a "
    "mailbox may not use; ask your operator if it must be allowed."
)
UNRESOLVED = N_("The host name could not be resolved.")
NO_SERVER = N_("Demo provider: there is no IMAP server behind this mailbox, so nothing is imported from it.")


class TargetRefused(ServiceError):
    """The host resolves to an address a tenant's mailbox may not connect to."""


class NoServer(ServiceError):
    """The host is a placeholder: nothing to connect to."""


def is_placeholder(host: str) -> bool:
    """A name under ``.invalid`` never resolves (RFC 6761): the host of the demo providers' mailboxes
    (started by ``inbox start``), which the poller does not try to reach; their state says why."""
    name = host.strip().lower().rstrip(".")
    return name == "invalid" or name.endswith(".invalid")


def allowed_networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    items = [item.strip() for item in (env(ALLOWED_NETWORKS_ENV) or "").split(",") if item.strip()]
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def address_allowed(address: str) -> bool:
    """True for a global unicast address, or one in the operator's ``IMAP_ALLOWED_NETWORKS``."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    ip = mapped or ip
    if any(ip in network for network in allowed_networks() if network.version == ip.version):
        return True
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (an IP literal: itself); ``socket.gaierror`` when none."""
    infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def check_target(host: str, port: int) -> list[str]:
    """The addresses of ``host``, all allowed; ``TargetRefused`` when one is not (``socket.gaierror``
    when it does not resolve)."""
    addresses = resolve(host, port)
    if not addresses or not all(address_allowed(a) for a in addresses):
        raise TargetRefused(TARGET_REFUSED)
    return addresses


# Settings ------------------------------------------------------------------------------------


@dataclass
class MailboxInput:
    """What the settings form (or the CLI) sends. An empty secret means "unchanged"."""

    host: str = ""
    port: str = ""
    security: str = MailboxSecurity.SSL.value
    username: str = ""
    auth: str = MailboxAuth.PASSWORD.value
    secret: str = ""  # password or OAuth2 access token
    oauth_provider: str = ""
    oauth_client_id: str = ""
    oauth_client_secret: str = ""
    oauth_refresh_token: str = ""
    folder: str = "INBOX"
    processed_folder: str = ""
    name: str = ""
    enabled: bool = True

    @classmethod
    def from_form(cls, form: Any) -> MailboxInput:
        def text(name: str, default: str = "") -> str:
            return str(form.get(name, default) or "").strip()

        return cls(
            host=text("host"),
            port=text("port"),
            security=text("security", MailboxSecurity.SSL.value),
            username=text("username"),
            auth=text("auth", MailboxAuth.PASSWORD.value),
            secret=str(form.get("secret", "") or ""),  # passwords may have meaningful spaces
            oauth_provider=text("oauth_provider"),
            oauth_client_id=text("oauth_client_id"),
            oauth_client_secret=str(form.get("oauth_client_secret", "") or ""),
            oauth_refresh_token=text("oauth_refresh_token"),
            folder=text("folder", "INBOX") or "INBOX",
            processed_folder=text("processed_folder"),
            name=text("name"),
            enabled=form.get("enabled") in ("1", "on", "true", True),
        )


def _validate(data: MailboxInput, existing: Mailbox | None, tenant_id: int | None) -> dict[str, str]:
    """What is wrong with ``data``; the host's addresses are checked for a tenant's mailbox (the
    operator's catch-all mailboxes, ``tenant_id`` None, may use any)."""
    errors: dict[str, str] = {}
    port = 0
    if not _HOST_RE.match(data.host):
        errors["host"] = N_("Enter the IMAP server's host name (e.g. imap.gmail.com).")
    try:
        port = int(data.port or (993 if data.security == MailboxSecurity.SSL.value else 143))
        if not 1 <= port <= 65535:
            raise ValueError
    except ValueError:
        errors["port"] = N_("Enter a port between 1 and 65535.")
    if data.security not in {s.value for s in MailboxSecurity}:
        errors["security"] = N_("Choose SSL/TLS or STARTTLS.")
    elif data.security == MailboxSecurity.PLAIN.value and not is_loopback(data.host):
        errors["security"] = N_("Unencrypted connections are only allowed to a server on this machine (tests).")
    if not data.username or len(data.username) > 320 or _CONTROL_RE.search(data.username):
        errors["username"] = N_("Enter the mailbox's user name (at most 320 characters).")
    if data.auth not in {a.value for a in MailboxAuth}:
        errors["auth"] = N_("Choose password or OAuth2.")
    if len(data.secret) > 4096 or _CONTROL_RE.search(data.secret):
        errors["secret"] = N_("This secret is too long or contains control characters.")  # noqa: S105 - a message, not a secret
    for field in ("folder", "processed_folder"):
        value = getattr(data, field)
        if len(value) > 255 or _CONTROL_RE.search(value):
            errors[field] = N_("A folder name has at most 255 characters and no control characters.")
    if data.processed_folder and data.processed_folder == data.folder:
        errors["processed_folder"] = N_("The processed folder must differ from the folder that is read.")
    if len(data.name) > 100:
        errors["name"] = N_("At most 100 characters.")
    if "host" not in errors and "port" not in errors and tenant_id is not None:
        try:
            check_target(data.host, port)
        except TargetRefused as exc:
            errors["host"] = str(exc)
        except (OSError, UnicodeError):  # not resolvable now: checked again at each connection
            pass
    has_secret = bool(data.secret) or (existing is not None and existing.secret_encrypted)
    has_refresh = bool(data.oauth_refresh_token) or (existing is not None and existing.oauth_refresh_token_encrypted)
    if data.auth == MailboxAuth.PASSWORD.value and not has_secret:
        errors["secret"] = N_("Enter the password.")  # noqa: S105 - a message, not a secret
    if data.auth == MailboxAuth.XOAUTH2.value:
        if data.oauth_provider and data.oauth_provider not in OAUTH_PROVIDERS:
            errors["oauth_provider"] = N_("Choose Google or Microsoft.")
        if not has_secret and not has_refresh:
            errors["secret"] = N_("Paste an access token, or give a refresh token with the client id and secret.")  # noqa: S105 - a message, not a secret
        if has_refresh and not (data.oauth_provider and data.oauth_client_id):
            errors["oauth_client_id"] = N_("A refresh token needs the provider and the client id.")
        if len(data.oauth_refresh_token) > 4096 or len(data.oauth_client_secret) > 1024:
            errors["oauth_refresh_token"] = N_("Too long.")  # noqa: S105 - a message, not a secret
    return errors


def save_mailbox(
    session: Session,
    box: SecretBox,
    tenant_id: int | None,
    data: MailboxInput,
    mailbox_id: int | None = None,
) -> Mailbox:
    """Create (``mailbox_id`` None) or update a mailbox; empty secrets keep the stored ones."""
    existing = get_mailbox(session, tenant_id, mailbox_id) if mailbox_id is not None else None
    errors = _validate(data, existing, tenant_id)
    if errors:
        raise ValidationFailed(errors)
    mailbox = existing or Mailbox(tenant_id=tenant_id)
    connection_changed = existing is not None and (
        (existing.host, existing.username, existing.folder) != (data.host, data.username, data.folder)
    )
    mailbox.name = data.name
    mailbox.host = data.host
    mailbox.port = int(data.port or (993 if data.security == MailboxSecurity.SSL.value else 143))
    mailbox.security = data.security
    mailbox.username = data.username
    mailbox.auth = data.auth
    mailbox.folder = data.folder
    mailbox.processed_folder = data.processed_folder or None
    mailbox.enabled = data.enabled
    if data.secret:
        mailbox.secret_encrypted = box.encrypt(data.secret)
    if data.auth == MailboxAuth.XOAUTH2.value:
        mailbox.oauth_provider = data.oauth_provider or None
        mailbox.oauth_client_id = data.oauth_client_id or None
        if data.oauth_client_secret:
            mailbox.oauth_client_secret_encrypted = box.encrypt(data.oauth_client_secret)
        if data.oauth_refresh_token:
            mailbox.oauth_refresh_token_encrypted = box.encrypt(data.oauth_refresh_token)
    if connection_changed:  # another folder or account: its UIDs mean something else
        mailbox.uidvalidity = None
        mailbox.last_uid = None
    mailbox.updated_at = utcnow()  # the poller restarts a mailbox whose settings changed
    session.add(mailbox)
    session.flush()
    return mailbox


def mailboxes_query(tenant_id: int) -> Select[Any]:
    return select(Mailbox).where(Mailbox.tenant_id == tenant_id).order_by(Mailbox.id)


def get_mailbox(session: Session, tenant_id: int | None, mailbox_id: int | None) -> Mailbox:
    """The tenant's mailbox (``tenant_id`` None: an operator catch-all mailbox); NotFound otherwise."""
    if mailbox_id is None:
        raise NotFound("no such mailbox")
    owner = Mailbox.tenant_id.is_(None) if tenant_id is None else Mailbox.tenant_id == tenant_id
    mailbox = session.scalars(select(Mailbox).where(Mailbox.id == mailbox_id, owner)).first()
    if mailbox is None:
        raise NotFound("no such mailbox")
    return mailbox


def delete_mailbox(session: Session, tenant_id: int, mailbox_id: int) -> None:
    session.delete(get_mailbox(session, tenant_id, mailbox_id))
    session.flush()


def public_view(mailbox: Mailbox) -> dict[str, Any]:
    """What may leave the server (dashboard, API): everything but the secrets, which are only flagged."""
    return {
        "id": mailbox.id,
        "name": mailbox.name,
        "host": mailbox.host,
        "port": mailbox.port,
        "security": mailbox.security,
        "username": mailbox.username,
        "auth": mailbox.auth,
        "has_secret": bool(mailbox.secret_encrypted),
        "oauth_provider": mailbox.oauth_provider,
        "oauth_client_id": mailbox.oauth_client_id,
        "has_refresh_token": bool(mailbox.oauth_refresh_token_encrypted),
        "folder": mailbox.folder,
        "processed_folder": mailbox.processed_folder,
        "enabled": mailbox.enabled,
        "last_error": mailbox.last_error,
        "last_error_at": mailbox.last_error_at.isoformat() if mailbox.last_error_at else None,
        "last_success_at": mailbox.last_success_at.isoformat() if mailbox.last_success_at else None,
        "oauth_connected_at": _iso(mailbox.oauth_connected_at),
        "oauth_token_expires_at": _iso(mailbox.oauth_token_expires_at),
        "oauth_refresh_error": mailbox.oauth_refresh_error,
        "oauth_refresh_error_at": _iso(mailbox.oauth_refresh_error_at),
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


# Connected through OAuth2 ("Connect Gmail", "Connect Microsoft 365") ------------------------------


def connect_oauth(
    session: Session,
    box: SecretBox,
    tenant_id: int,
    app: OAuthApp,
    grant: Grant,
    login_hint: str = "",
    mailbox_id: int | None = None,
) -> Mailbox:
    """Create or update the tenant's mailbox for ``grant`` (the refresh token stored encrypted).

    Reconnecting (``mailbox_id``, or the same provider and account again) updates the existing mailbox,
    keeping its folders; nothing is written when a check fails (``OAuthFailed`` / ``ValidationFailed``)."""
    name = PROVIDER_NAMES.get(app.provider, app.provider)
    username = grant.account or login_hint.strip()
    if not username:
        raise OAuthFailed(
            N_("{provider} did not say which address was connected: type the mailbox's address and connect again.")
            .format(provider=name)
        )
    existing = get_mailbox(session, tenant_id, mailbox_id) if mailbox_id is not None else None
    if existing is None:
        existing = session.scalars(
            mailboxes_query(tenant_id).where(
                Mailbox.oauth_provider == app.provider, Mailbox.username == username, Mailbox.host == app.imap_host
            )
        ).first()
    data = MailboxInput(
        host=app.imap_host,
        port=str(app.imap_port),
        security=app.imap_security,
        username=username,
        auth=MailboxAuth.XOAUTH2.value,
        oauth_provider=app.provider,
        oauth_client_id=app.client_id,
        oauth_refresh_token=grant.refresh_token,
        folder=existing.folder if existing else "INBOX",
        processed_folder=(existing.processed_folder or "") if existing else "",
        name=existing.name if existing else f"{name} {username}"[:100],
        enabled=True,
    )
    mailbox = save_mailbox(session, box, tenant_id, data, existing.id if existing else None)
    # The operator's app: its secret is read from the settings at each refresh (rotated there, in one
    # place), so no per-mailbox copy is kept; a pasted access token is superseded by the refresh token.
    mailbox.oauth_client_secret_encrypted = None
    mailbox.secret_encrypted = None
    now = utcnow()
    mailbox.oauth_connected_at = now
    mailbox.oauth_token_expires_at = now + timedelta(seconds=grant.expires_in)
    mailbox.oauth_refresh_error = None
    mailbox.oauth_refresh_error_at = None
    mailbox.last_error = None
    session.flush()
    return mailbox


def record_token_refresh(
    session: Session, mailbox_id: int, expires_in: float, rotated_refresh_token: str | None = None
) -> None:
    """The poller got a fresh access token: its expiry, and the new refresh token if the provider rotated it."""
    mailbox = session.get(Mailbox, mailbox_id)
    if mailbox is not None:
        mailbox.oauth_token_expires_at = utcnow() + timedelta(seconds=expires_in)
        mailbox.oauth_refresh_error = None
        mailbox.oauth_refresh_error_at = None
        if rotated_refresh_token:  # already encrypted by the caller
            mailbox.oauth_refresh_token_encrypted = rotated_refresh_token


def record_refresh_failure(session: Session, mailbox_id: int, reason: str) -> None:
    mailbox = session.get(Mailbox, mailbox_id)
    if mailbox is not None:
        mailbox.oauth_refresh_error = reason[:MAX_ERROR_LENGTH]
        mailbox.oauth_refresh_error_at = utcnow()


def recent_imports(session: Session, mailbox: Mailbox, limit: int = 20) -> list[MailboxImport]:
    stmt = (
        select(MailboxImport)
        .where(MailboxImport.mailbox_id == mailbox.id)
        .order_by(MailboxImport.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


# Operator catch-all mailboxes ---------------------------------------------------------------


def parse_mailbox_url(url: str) -> MailboxInput:
    """``imaps://user:password@host[:port]/FOLDER`` (also ``imap+starttls://``, ``imap://`` for loopback)."""
    parts = urlsplit(url)
    security = {"imaps": "ssl", "imap+starttls": "starttls", "imap": "plain"}.get(parts.scheme)
    if security is None:
        raise ServiceError(N_("a mailbox URL starts with imaps://, imap+starttls:// or imap:// (loopback only)"))
    if not parts.hostname or not parts.username:
        raise ServiceError(N_("a mailbox URL needs a user and a host: imaps://user:password@host/INBOX"))
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    return MailboxInput(
        host=parts.hostname,
        port=str(parts.port or (993 if security == "ssl" else 143)),
        security=security,
        username=unquote(parts.username),
        secret=unquote(parts.password or ""),
        folder=folder,
        name="catch-all",
    )


def ensure_catch_all(session: Session, box: SecretBox, url: str, unrouted_folder: str = "Unrouted") -> Mailbox:
    """The operator's catch-all mailbox for ``url`` (created, or its password updated): its state persists."""
    data = parse_mailbox_url(url)
    stmt = select(Mailbox).where(
        Mailbox.tenant_id.is_(None),
        Mailbox.host == data.host,
        Mailbox.port == int(data.port),
        Mailbox.username == data.username,
        Mailbox.folder == data.folder,
    )
    existing = session.scalars(stmt).first()
    mailbox = save_mailbox(session, box, None, data, existing.id if existing else None)
    mailbox.unrouted_folder = unrouted_folder
    session.flush()
    return mailbox


# Poller state --------------------------------------------------------------------------------


def enabled_mailboxes(session: Session) -> list[Mailbox]:
    return list(session.scalars(select(Mailbox).where(Mailbox.enabled.is_(True)).order_by(Mailbox.id)))


def record_error(session: Session, mailbox_id: int, error: str) -> None:
    mailbox = session.get(Mailbox, mailbox_id)
    if mailbox is not None:
        mailbox.last_error = error[:MAX_ERROR_LENGTH]
        mailbox.last_error_at = utcnow()


def record_success(session: Session, mailbox_id: int) -> None:
    mailbox = session.get(Mailbox, mailbox_id)
    if mailbox is not None:
        mailbox.last_success_at = utcnow()
        mailbox.last_error = None


def set_position(session: Session, mailbox_id: int, uidvalidity: int, last_uid: int | None) -> None:
    mailbox = session.get(Mailbox, mailbox_id)
    if mailbox is not None:
        mailbox.uidvalidity = uidvalidity
        mailbox.last_uid = last_uid


def find_import(session: Session, mailbox_id: int, uidvalidity: int, uid: int) -> MailboxImport | None:
    stmt = select(MailboxImport).where(
        MailboxImport.mailbox_id == mailbox_id, MailboxImport.uidvalidity == uidvalidity, MailboxImport.uid == uid
    )
    return session.scalars(stmt).first()


def unsettled_imports(session: Session, mailbox_id: int, uidvalidity: int) -> list[MailboxImport]:
    """Imports recorded but not yet flagged/moved on the server (a crash came in between)."""
    stmt = select(MailboxImport).where(
        MailboxImport.mailbox_id == mailbox_id,
        MailboxImport.uidvalidity == uidvalidity,
        MailboxImport.settled.is_(False),
    )
    return list(session.scalars(stmt.order_by(MailboxImport.uid)))


def mark_settled(session: Session, import_ids: list[int]) -> None:
    for row in session.scalars(select(MailboxImport).where(MailboxImport.id.in_(import_ids))):
        row.settled = True


def record_import(
    session: Session,
    mailbox_id: int,
    uidvalidity: int,
    uid: int,
    outcome: MailboxImportOutcome,
    *,
    message_ids: list[int] | None = None,
    message_id_header: str | None = None,
    reason: str | None = None,
    settled: bool = False,
) -> MailboxImport:
    row = MailboxImport(
        mailbox_id=mailbox_id,
        uidvalidity=uidvalidity,
        uid=uid,
        outcome=outcome.value,
        message_ids=message_ids or [],
        message_id_header=(message_id_header or None) and message_id_header[:998],
        reason=reason,
        settled=settled,
    )
    session.add(row)
    session.flush()
    return row
