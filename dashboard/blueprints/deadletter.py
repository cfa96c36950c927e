"""Dead letters (issue #7): what failed after its retries, why, and *retry* (one item or all)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from core.errors import ValidationFailed
from core.inbound import deadletter
from dashboard.extensions import db
from dashboard.handoff import enqueue_retried
from dashboard.i18n import errors_text
from dashboard.web import tenant_id, tenant_required

bp = Blueprint("deadletter", __name__)


@bp.get("/imports/failed")
@tenant_required
def index() -> str:
    return render_template("deadletter.html", items=deadletter.dead_letters(db.session, tenant_id()),
                           limit=deadletter.MAX_LISTED)


@bp.post("/imports/failed/retry")
@tenant_required
def retry_all() -> Response:
    try:
        message_ids, document_ids = deadletter.retry_all(db.session, tenant_id())
    except ValidationFailed as exc:
        db.session.rollback()
        flash(errors_text(exc.errors), "error")
        return redirect(url_for(".index"))
    db.session.commit()
    queued = enqueue_retried(message_ids, document_ids)
    total = len(message_ids) + len(document_ids)
    if queued < total:
        flash(_("%(count)s item(s) will be retried once the queue is reachable.", count=total - queued), "error")
    flash(_("Retrying %(count)s item(s).", count=total), "success")
    return redirect(url_for(".index"))
