"""Settings → Sender authentication: what becomes of mail failing DMARC (admins; CSRF by Flask-WTF)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from core.banking import transactions as bank
from core.errors import ValidationFailed
from core.inbound import senderauth as svc
from dashboard.extensions import db
from dashboard.viewer import admin_required
from dashboard.web import tenant_id, tenant_required

bp = Blueprint("senderauth", __name__)


def _page(error: str | None = None, bank_error: str | None = None, bank_text: str | None = None) -> str:
    senders = bank_text.splitlines() if bank_text is not None else bank.bank_senders(db.session, tenant_id())
    return render_template("settings/sender_auth.html", active_nav="settings",
                           action=svc.tenant_action(db.session, tenant_id()), error=error,
                           bank_senders=senders, bank_error=bank_error)


@bp.get("/settings/sender-authentication")
@tenant_required
def index() -> str:
    admin_required()
    return _page()


@bp.post("/settings/sender-authentication")
@tenant_required
def save() -> Response | tuple[str, int]:
    admin_required()
    try:
        svc.set_tenant_action(db.session, tenant_id(), request.form.get("dmarc_action", "")[:16], current_user.user)
    except ValidationFailed as exc:
        db.session.rollback()
        return _page(exc.errors.get("dmarc_action")), 400
    db.session.commit()
    flash(_("Saved: mail failing DMARC is handled as chosen."), "success")
    return redirect(url_for(".index"))


@bp.post("/settings/sender-authentication/bank")
@tenant_required
def save_bank_senders() -> Response | tuple[str, int]:
    admin_required()
    text = request.form.get("bank_senders", "")[:8000]
    try:
        bank.set_bank_senders(db.session, tenant_id(), text, current_user.user)
    except ValidationFailed as exc:
        db.session.rollback()
        return _page(bank_error=exc.errors.get("bank_senders"), bank_text=text), 400
    db.session.commit()
    flash(_("Saved: statements from these senders, when authenticated, may mark invoices paid."), "success")
    return redirect(url_for(".index"))
