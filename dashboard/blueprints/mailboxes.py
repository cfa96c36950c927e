"""Settings → Mailboxes (IMAP): the mailboxes the poller imports the tenant's invoices from.

Admins configure them; the operator's support staff may look (read-only, audited like every support
read); members do not see this page. Secrets are write-only: the form never contains them.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from core.config import OAuthApp
from core.errors import ValidationFailed
from core.inbound import mailboxes as svc
from core.models import MailboxAuth, MailboxSecurity, Role, utcnow
from core.secrets import SecretBox
from core.tenancy import audit
from dashboard.blueprints.mailbox_oauth import form_action_policy
from dashboard.context import settings as app_settings
from dashboard.extensions import db
from dashboard.i18n import N_
from dashboard.web import tenant_id, tenant_required

bp = Blueprint("mailboxes", __name__)

# Labels translated where shown (|tr in the templates).
SECURITY_LABELS = {
    MailboxSecurity.SSL.value: N_("SSL/TLS (port 993)"),
    MailboxSecurity.STARTTLS.value: N_("STARTTLS (port 143)"),
    MailboxSecurity.PLAIN.value: N_("None — a server on this machine only (tests)"),
}
AUTH_LABELS = {
    MailboxAuth.PASSWORD.value: N_("Password"),
    MailboxAuth.XOAUTH2.value: N_("OAuth2 (Gmail, Microsoft 365)"),
}
PROVIDER_LABELS = {"": "—", "google": N_("Google (Gmail, Workspace)"), "microsoft": N_("Microsoft 365 / Outlook")}


def _viewer_role() -> str:
    role = g.membership.role
    if role not in (Role.ADMIN.value, Role.SUPPORT.value):
        abort(403, _("Only the company's admins can manage its mailboxes."))
    return role


def _box() -> SecretBox:
    return SecretBox.from_settings(app_settings().secret_key)


def _audit(action: str, mailbox_id: int, detail: dict[str, object] | None = None) -> None:
    from flask_login import current_user

    audit.record(
        db.session, tenant_id(), action, actor=current_user.user, target=f"mailbox:{mailbox_id}",
        detail=detail or {}, ip=request.remote_addr,
    )


def _oauth_apps() -> dict[str, OAuthApp]:
    settings = app_settings()
    return {"google": settings.oauth_google, "microsoft": settings.oauth_microsoft}


def _with_connect_buttons(body: str, status: int = 200) -> Response:
    """The page, allowed to submit its "Connect" / "Reconnect" forms on to the providers' sign-in pages."""
    response = make_response(body, status)
    response.headers["Content-Security-Policy"] = form_action_policy()
    return response


def _form_page(
    mailbox_id: int | None, values: dict[str, object], errors: dict[str, str], status: int = 200
) -> Response:
    mailbox = svc.get_mailbox(db.session, tenant_id(), mailbox_id) if mailbox_id is not None else None
    return _with_connect_buttons(render_template(
        "settings/mailbox_form.html",
        active_nav="settings",
        mailbox=mailbox,
        imports=svc.recent_imports(db.session, mailbox) if mailbox is not None else [],
        values=values,
        errors=errors,
        read_only=g.membership.role != Role.ADMIN.value,
        security_labels=SECURITY_LABELS,
        auth_labels=AUTH_LABELS,
        provider_labels=PROVIDER_LABELS,
        oauth_apps=_oauth_apps(),
        now=utcnow(),
    ), status)


@bp.get("/settings/mailboxes")
@tenant_required
def index() -> Response:
    role = _viewer_role()
    if role == Role.SUPPORT.value:
        _audit_support_read()
    mailboxes = list(db.session.scalars(svc.mailboxes_query(tenant_id())))
    return _with_connect_buttons(render_template(
        "settings/mailboxes.html",
        active_nav="settings",
        mailboxes=mailboxes,
        read_only=role != Role.ADMIN.value,
        security_labels=SECURITY_LABELS,
        provider_labels=PROVIDER_LABELS,
        oauth_apps=_oauth_apps(),
    ))


def _audit_support_read() -> None:
    from flask_login import current_user

    audit.record(
        db.session, tenant_id(), "support.view_mailboxes", actor=current_user.user, ip=request.remote_addr
    )
    db.session.commit()


@bp.get("/settings/mailboxes/new")
@tenant_required
def new() -> Response:
    if _viewer_role() != Role.ADMIN.value:
        abort(403, _("Support access is read-only."))
    return _form_page(None, {"security": "ssl", "auth": "password", "folder": "INBOX", "enabled": True}, {})


@bp.post("/settings/mailboxes/new")
@tenant_required
def create() -> Response:
    if _viewer_role() != Role.ADMIN.value:
        abort(403, _("Only the company's admins can manage its mailboxes."))
    data = svc.MailboxInput.from_form(request.form)
    try:
        mailbox = svc.save_mailbox(db.session, _box(), tenant_id(), data)
    except ValidationFailed as exc:
        db.session.rollback()
        return _form_page(None, _echo(data), exc.errors, 422)
    _audit("mailbox.create", mailbox.id, {"host": mailbox.host, "username": mailbox.username})
    db.session.commit()
    flash(_("Mailbox added: the poller connects to it within a minute."), "success")
    return redirect(url_for("mailboxes.edit", mailbox_id=mailbox.id))


@bp.get("/settings/mailboxes/<int:mailbox_id>")
@tenant_required
def edit(mailbox_id: int) -> Response:
    role = _viewer_role()
    mailbox = svc.get_mailbox(db.session, tenant_id(), mailbox_id)
    if role == Role.SUPPORT.value:
        _audit_support_read()
    return _form_page(mailbox.id, svc.public_view(mailbox), {})


@bp.post("/settings/mailboxes/<int:mailbox_id>")
@tenant_required
def update(mailbox_id: int) -> Response:
    if _viewer_role() != Role.ADMIN.value:
        abort(403, _("Only the company's admins can manage its mailboxes."))
    data = svc.MailboxInput.from_form(request.form)
    try:
        mailbox = svc.save_mailbox(db.session, _box(), tenant_id(), data, mailbox_id)
    except ValidationFailed as exc:
        db.session.rollback()
        return _form_page(mailbox_id, _echo(data), exc.errors, 422)
    changed = ["secret"] if data.secret else []
    _audit("mailbox.update", mailbox.id, {"host": mailbox.host, "username": mailbox.username, "secrets": changed})
    db.session.commit()
    flash(_("Mailbox saved."), "success")
    return redirect(url_for("mailboxes.edit", mailbox_id=mailbox.id))


@bp.post("/settings/mailboxes/<int:mailbox_id>/delete")
@tenant_required
def delete(mailbox_id: int) -> Response:
    if _viewer_role() != Role.ADMIN.value:
        abort(403, _("Only the company's admins can manage its mailboxes."))
    svc.delete_mailbox(db.session, tenant_id(), mailbox_id)
    _audit("mailbox.delete", mailbox_id)
    db.session.commit()
    flash(_("Mailbox removed. Messages already imported stay."), "success")
    return redirect(url_for("mailboxes.index"))


def _echo(data: svc.MailboxInput) -> dict[str, object]:
    """The submitted values to show again after an error — without any secret."""
    return {
        "name": data.name, "host": data.host, "port": data.port, "security": data.security,
        "username": data.username, "auth": data.auth, "oauth_provider": data.oauth_provider,
        "oauth_client_id": data.oauth_client_id, "folder": data.folder,
        "processed_folder": data.processed_folder, "enabled": data.enabled,
    }
