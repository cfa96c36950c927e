"""Settings → Mailboxes: "Connect Gmail" / "Connect Microsoft 365" (OAuth2 authorization code + PKCE).

``connect`` (or ``reconnect`` for an existing mailbox) keeps a pending flow in the user's signed session
-- its state, PKCE verifier, tenant, user, redirect URI and start time -- and sends the browser to the
provider. ``callback`` accepts the provider's answer only for a pending flow of this session, tenant and
user, at most ``FLOW_TTL`` seconds old, and only once; then the code is exchanged and the mailbox saved.
Any failure leaves nothing behind and says why (``core.inbound.oauth``).
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from core.config import OAuthApp
from core.errors import ServiceError, ValidationFailed
from core.inbound import mailboxes as svc
from core.inbound import oauth
from core.models import MailboxAuth, Role
from core.secrets import SecretBox
from core.tenancy import audit
from dashboard.context import settings as app_settings
from dashboard.extensions import db
from dashboard.i18n import N_, translate
from dashboard.web import CONTENT_SECURITY_POLICY, tenant_id, tenant_required

bp = Blueprint("mailbox_oauth", __name__)

SESSION_KEY = "mailbox_oauth"
FLOW_TTL = 600  # seconds between "Connect" and the provider's answer
MAX_PENDING = 3  # flows kept per session (a few tabs); the oldest goes first
_EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,255}$")

UNKNOWN_STATE = N_("This connection attempt is unknown or was already used: start again from Settings → Mailboxes.")
EXPIRED_STATE = N_("This connection attempt expired (10 minutes): start again from Settings → Mailboxes.")
OTHER_OWNER = N_("This connection attempt was started by another user or for another company: start again from "
                 "this company's Settings → Mailboxes.")
DENIED = N_("Access was not allowed at {provider}: the mailbox was not connected.")
PROVIDER_ERROR = N_("{provider} answered with an error ({detail}): the mailbox was not connected.")
NO_CODE = N_("{provider} sent no authorization code: the mailbox was not connected.")
NO_MAIL_SCOPE = N_("The permission to read the mail was not granted at {provider}: the mailbox was not connected. "
                   "Connect again and allow it.")
BAD_HINT = N_("Enter the mailbox's e-mail address, or leave the field empty.")
NOT_CONFIGURED = N_("The operator has not registered an OAuth app for this provider yet.")


def _require_admin() -> None:
    if g.membership.role != Role.ADMIN.value:
        abort(403, _("Only the company's admins can manage its mailboxes."))


def _app(provider: str) -> OAuthApp:
    app = app_settings().oauth_app(provider)
    if app is None:
        abort(404)
    return app


def _redirect_uri() -> str:
    return app_settings().oauth_redirect_url or url_for("mailbox_oauth.callback", _external=True)


def form_action_policy() -> str:
    """The CSP of the pages with a "Connect" button: their form may lead to the providers' sign-in pages
    (Chromium applies ``form-action`` to the redirect that follows the POST)."""
    origins = []
    for provider in oauth.PROVIDERS:
        app = app_settings().oauth_app(provider)
        if app is not None and app.configured:
            parts = urlsplit(app.authorize_url)
            origins.append(f"{parts.scheme}://{parts.netloc}")
    if not origins:
        return CONTENT_SECURITY_POLICY
    return CONTENT_SECURITY_POLICY.replace("form-action 'self'", "form-action 'self' " + " ".join(sorted(set(origins))))


def _pending() -> dict[str, dict[str, Any]]:
    flows = session.get(SESSION_KEY)
    return dict(flows) if isinstance(flows, dict) else {}


def _start(app: OAuthApp, login_hint: str, mailbox_id: int | None) -> Response:
    redirect_uri = _redirect_uri()
    try:
        authorization = oauth.begin(app, redirect_uri, login_hint)
    except ServiceError as exc:
        flash(translate(str(exc)), "error")
        return redirect(url_for("mailboxes.index"))
    now = time.time()
    flows = {s: f for s, f in _pending().items() if now - float(f.get("at", 0)) < FLOW_TTL}
    while len(flows) >= MAX_PENDING:
        flows.pop(min(flows, key=lambda s: float(flows[s].get("at", 0))))
    flows[authorization.state] = {
        "provider": app.provider, "tenant": tenant_id(), "user": int(current_user.user.id),
        "verifier": authorization.code_verifier, "redirect_uri": redirect_uri, "mailbox": mailbox_id,
        "hint": login_hint, "at": now,
    }
    session[SESSION_KEY] = flows
    return redirect(authorization.url, 303)


@bp.post("/settings/mailboxes/connect/<provider>")
@tenant_required
def connect(provider: str) -> Response:
    _require_admin()
    app = _app(provider)
    if not app.configured:
        flash(_(NOT_CONFIGURED), "error")
        return redirect(url_for("mailboxes.index"))
    hint = str(request.form.get("login_hint", "") or "").strip()
    if hint and not _EMAIL_RE.match(hint):
        flash(_(BAD_HINT), "error")
        return redirect(url_for("mailboxes.index"))
    return _start(app, hint, None)


@bp.post("/settings/mailboxes/<int:mailbox_id>/reconnect")
@tenant_required
def reconnect(mailbox_id: int) -> Response:
    _require_admin()
    mailbox = svc.get_mailbox(db.session, tenant_id(), mailbox_id)  # NotFound (404) for another tenant's
    app = app_settings().oauth_app(mailbox.oauth_provider or "")
    if mailbox.auth != MailboxAuth.XOAUTH2.value or app is None or not app.configured:
        flash(_(NOT_CONFIGURED), "error")
        return redirect(url_for("mailboxes.edit", mailbox_id=mailbox.id))
    return _start(app, mailbox.username, mailbox.id)


def _fail(message: str, mailbox_id: int | None = None) -> Response:
    db.session.rollback()
    flash(translate(message), "error")
    if mailbox_id is not None:
        return redirect(url_for("mailboxes.edit", mailbox_id=mailbox_id))
    return redirect(url_for("mailboxes.index"))


@bp.get("/settings/mailboxes/oauth/callback")
@tenant_required
def callback() -> Response:
    """Where the provider sends the browser back (the redirect URI registered with the app)."""
    _require_admin()
    flows = _pending()
    flow = flows.pop(str(request.args.get("state", "")), None)
    if flow is None:
        return _fail(UNKNOWN_STATE)
    session[SESSION_KEY] = flows  # used once, whatever happens next
    if time.time() - float(flow.get("at", 0)) > FLOW_TTL:
        return _fail(EXPIRED_STATE)
    if flow.get("tenant") != tenant_id() or flow.get("user") != int(current_user.user.id):
        return _fail(OTHER_OWNER)
    app = _app(str(flow.get("provider")))
    name = oauth.PROVIDER_NAMES[app.provider]
    mailbox_id = flow.get("mailbox")
    if error := request.args.get("error"):
        if error in ("access_denied", "consent_required", "interaction_required"):
            return _fail(DENIED.format(provider=name), mailbox_id)
        detail = " ".join(f"{error}: {request.args.get('error_description', '')}".split()).strip(": ")[:300]
        return _fail(PROVIDER_ERROR.format(provider=name, detail=detail), mailbox_id)
    code = request.args.get("code", "")
    if not code or len(code) > 4096:
        return _fail(NO_CODE.format(provider=name), mailbox_id)
    try:
        grant = oauth.finish(app, code, str(flow["redirect_uri"]), str(flow["verifier"]))
        if oauth.missing_mail_scope(app, grant.scope):
            return _fail(NO_MAIL_SCOPE.format(provider=name), mailbox_id)
        box = SecretBox.from_settings(app_settings().secret_key)
        mailbox = svc.connect_oauth(db.session, box, tenant_id(), app, grant, str(flow.get("hint") or ""),
                                    mailbox_id)
    except ValidationFailed as exc:
        return _fail("; ".join(translate(m) for m in exc.errors.values()), mailbox_id)
    except ServiceError as exc:  # OAuthFailed, NotFound (the mailbox was removed meanwhile)
        return _fail(str(exc), mailbox_id)
    audit.record(
        db.session, tenant_id(), "mailbox.oauth_connect", actor=current_user.user, target=f"mailbox:{mailbox.id}",
        detail={"provider": app.provider, "username": mailbox.username}, ip=request.remote_addr,
    )
    db.session.commit()
    flash(_("%(provider)s mailbox %(address)s connected: the poller reads it within a minute.",
            provider=name, address=mailbox.username), "success")
    return redirect(url_for("mailboxes.edit", mailbox_id=mailbox.id))
