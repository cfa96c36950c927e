"""Imports: every message received for the tenant (emails and uploads), what became of its documents,
uploads by drag and drop, live progress and re-processing of what failed."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import Select
from sqlalchemy.orm import selectinload

from core import listing
from core.errors import ServiceError, ValidationFailed
from core.inbound import uploads
from core.models import InboundMessage
from core.tenancy import access, quotas
from dashboard import listing as list_web
from dashboard.context import settings as app_settings
from dashboard.extensions import db
from dashboard.handoff import accept_upload, enqueue_message, enqueue_reading, request_files
from dashboard.i18n import translate
from dashboard.viewer import current_viewer
from dashboard.web import paginated, refused, tenant_id, tenant_required

logger = logging.getLogger(__name__)

bp = Blueprint("imports", __name__)

ID = "int(min=1, max=2147483647)"
MAX_STATUS_IDS = 200


MESSAGE_FILTERS = ("date_from", "date_to", "source")


def _filtered() -> tuple[listing.ListFilters, Select[Any]]:
    """The URL's search and filters (received day, source) over the messages: page and CSV share it."""
    current = listing.only(list_web.filters(listing.MESSAGE_SORTS, listing.MESSAGE_DEFAULT_SORT), MESSAGE_FILTERS)
    return current, listing.message_list(current_viewer(), current, listing.dialect_of(db.session))


@bp.get("/imports")
@tenant_required
def index() -> str:
    current, stmt = _filtered()
    page = paginated(stmt.options(selectinload(InboundMessage.documents)))
    bar = list_web.bar_context(current, payment_status=False, export_endpoint=".export", fields=MESSAGE_FILTERS)
    return render_template(
        "imports.html", page=page, stage=uploads.stage, in_progress=uploads.in_progress, **bar,
        reprocessable=uploads.REPROCESSABLE_MESSAGES, max_files=uploads.MAX_FILES,
        max_bytes=app_settings().max_message_bytes,
        shown_documents=access.document_filter(db.session, current_viewer()),
        quota_notice=quotas.notice(db.session, tenant_id(), quotas.Limits.of(app_settings())),
    )


@bp.get("/imports/export.csv")
@tenant_required
def export() -> Response:
    """Every message the list shows with these filters, in its order (not only the current page)."""
    _current, stmt = _filtered()
    return list_web.csv_download("imports", listing.MESSAGE_CSV_HEADER,
                                 listing.message_rows(db.session, current_viewer(), stmt))


@bp.post("/imports/upload")
@tenant_required
def upload() -> Response:
    try:
        message = accept_upload(tenant_id(), request_files(), current_user.user.email)
    except ServiceError as exc:  # a file refused, or a quota: its reason says which and how to free space
        return refused(exc, url_for(".index"))
    flash(_("Uploaded: the files are being read. Follow their progress below."), "success")
    return redirect(url_for(".index", _anchor=f"message-{message.id}"))  # type: ignore[return-value]


def status_json(message: InboundMessage, keep: access.DocumentFilter) -> dict[str, object]:
    return {
        "id": message.id,
        "status": message.status,
        "stage": uploads.stage(message),
        "in_progress": uploads.in_progress(message),
        "reason": message.reason,
        "documents": [
            {"id": d.id, "filename": d.filename, "status": d.status, "reason": d.reason}
            for d in keep(list(message.documents))
        ],
    }


@bp.get("/imports/status")
@tenant_required
def status() -> Response:
    ids = [int(part) for part in request.args.get("ids", "").split(",") if part.strip().isdigit()]
    ids = [i for i in ids if 0 < i < 2**31][:MAX_STATUS_IDS]
    messages = uploads.messages_by_ids(db.session, tenant_id(), ids)
    keep = access.document_filter(db.session, current_viewer())
    return jsonify(messages=[status_json(m, keep) for m in messages])


@bp.post(f"/imports/messages/<{ID}:message_id>/reprocess")
@tenant_required
def reprocess_message(message_id: int) -> Response:
    try:
        message = uploads.reprocess_message(db.session, tenant_id(), message_id)
    except ValidationFailed as exc:
        return refused(exc, url_for(".index"))
    db.session.commit()
    queued = enqueue_message(message.id, force=True)
    flash(_("Re-processing the message.") if queued else _("The message will be re-processed once the queue is "
          "reachable."), "success")
    return redirect(url_for(".index", _anchor=f"message-{message.id}"))  # type: ignore[return-value]


@bp.post(f"/imports/documents/<{ID}:document_id>/reprocess")
@tenant_required
def reprocess_document(document_id: int) -> Response:
    try:
        doc = uploads.reprocess_document(db.session, tenant_id(), document_id)
    except ValidationFailed as exc:
        return refused(exc, url_for(".index"))
    db.session.commit()
    if enqueue_reading(doc.id):
        flash(_("Reading the file again."), "success")
    else:
        flash(translate(uploads.QUEUE_UNREACHABLE), "error")
    return redirect(url_for(".index", _anchor=f"message-{doc.message_id}"))  # type: ignore[return-value]
