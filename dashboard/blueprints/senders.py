"""Sender control: Settings → Allowed senders (admins), and the Quarantine of mail from anyone else.

Every member (not support staff, who only read) may release or delete a held message: it is part of
handling the imports. Releasing commits first, then queues the message; when Redis is down the sweep
picks the queued message up later, so nothing waits on the queue being up.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from core.errors import ValidationFailed
from core.inbound import senders as svc
from dashboard.extensions import db
from dashboard.handoff import enqueue_message
from dashboard.viewer import admin_required
from dashboard.web import paginated, refused, tenant_id, tenant_required

bp = Blueprint("senders", __name__)


@bp.get("/settings/senders")
@tenant_required
def index() -> str:
    admin_required()
    return render_template("settings/senders.html", active_nav="settings",
                           rules=svc.list_rules(db.session, tenant_id()), error=None, value="")


@bp.post("/settings/senders")
@tenant_required
def add() -> Response | tuple[str, int]:
    admin_required()
    value = request.form.get("pattern", "")[:svc.MAX_PATTERN_CHARS + 10]
    try:
        rule = svc.add_rule(db.session, tenant_id(), value, current_user.user)
    except ValidationFailed as exc:
        db.session.rollback()
        page = render_template("settings/senders.html", active_nav="settings",
                               rules=svc.list_rules(db.session, tenant_id()),
                               error=exc.errors.get("pattern", str(exc)), value=value)
        return page, 400
    db.session.commit()
    flash(_("%(pattern)s may now send invoices.", pattern=rule.pattern), "success")
    return redirect(url_for(".index"))


@bp.post("/settings/senders/<int:rule_id>/remove")
@tenant_required
def remove(rule_id: int) -> Response:
    admin_required()
    svc.remove_rule(db.session, tenant_id(), rule_id, current_user.user)
    db.session.commit()
    flash(_("Sender removed from the list."), "success")
    return redirect(url_for(".index"))


@bp.get("/quarantine")
@tenant_required
def quarantine() -> str:
    page = paginated(svc.quarantine_query(tenant_id()))
    return render_template("quarantine.html", active_nav="quarantine", page=page)


@bp.post("/quarantine/<int:message_id>/release")
@tenant_required
def release(message_id: int) -> Response:
    try:
        message = svc.release(db.session, tenant_id(), message_id, current_user.user)
    except ValidationFailed as exc:
        return refused(exc, url_for(".quarantine"))
    db.session.commit()
    if enqueue_message(message.id, force=True):
        flash(_("Released: the email is being processed."), "success")
    else:  # Redis unreachable: the message stays queued and the sweep enqueues it
        flash(_("Released: the email will be processed as soon as the worker queue is reachable."), "success")
    return redirect(url_for(".quarantine"))


@bp.post("/quarantine/<int:message_id>/delete")
@tenant_required
def delete(message_id: int) -> Response:
    try:
        svc.delete(db.session, tenant_id(), message_id, current_user.user)
    except ValidationFailed as exc:
        return refused(exc, url_for(".quarantine"))
    db.session.commit()
    flash(_("Deleted from quarantine (the original email is kept in the imports)."), "success")
    return redirect(url_for(".quarantine"))
