"""Several invoices in one PDF (issue 4): page thumbnails of a split source and the regroup form.

The review page of a document cut from a source shows the source's pages in their groups
(``templates/_split_groups.html``); the form posts one ``page_<i>`` field per page naming its group,
and ``dashboard/static/splitting.js`` adds the buttons (move a page, merge two groups, start a new group).
"""

from __future__ import annotations

import io
import logging
from typing import Any

import pypdfium2
from flask import Blueprint, abort, flash, redirect, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from core.documents import splitting
from core.errors import ServiceError, ValidationFailed
from core.extraction.text import PDFIUM_LOCK
from dashboard.context import storage
from dashboard.extensions import db
from dashboard.handoff import queue_reading
from dashboard.i18n import errors_text, translate
from dashboard.web import tenant_id, tenant_required

logger = logging.getLogger(__name__)

bp = Blueprint("splitting", __name__)

ID = "int(min=1, max=2147483647)"
PAGE = "int(min=0, max=100000)"
THUMB_WIDTH = 200  # pixels: enough to tell a first page from a page 2
MAX_THUMB_SCALE = 1.0  # a tiny page is not blown up into a huge image
MAX_THUMB_HEIGHT = 1200  # pixels


def form_groups(form: Any, page_count: int) -> list[list[int]]:
    """``page_<i>`` = a group label (any small integer) -> the page lists, in the order labels appear."""
    by_label: dict[str, list[int]] = {}
    for page in range(page_count):
        label = (form.get(f"page_{page}") or "").strip()
        if not label.isdigit() or len(label) > 6:
            raise ValidationFailed({"groups": splitting.PAGES_ONCE})
        by_label.setdefault(label, []).append(page)
    return list(by_label.values())


def render_thumbnail(data: bytes, page_index: int) -> bytes:
    with PDFIUM_LOCK:  # the browser asks for every thumbnail at once, PDFium takes one call at a time
        return _render_thumbnail(data, page_index)


def _render_thumbnail(data: bytes, page_index: int) -> bytes:
    document = pypdfium2.PdfDocument(data)
    try:
        page = document[page_index]
        try:
            width, height = page.get_size()
            # A strip-shaped page (a till roll, a hostile file) must not become a huge image.
            scale = min(MAX_THUMB_SCALE, THUMB_WIDTH / max(width, 1.0), MAX_THUMB_HEIGHT / max(height, 1.0))
            bitmap = page.render(scale=scale, grayscale=True)
            image = bitmap.to_pil()
            out = io.BytesIO()
            image.save(out, format="PNG", optimize=False)
            image.close()
            bitmap.close()
        finally:
            page.close()
    finally:
        document.close()
    return out.getvalue()


@bp.get(f"/sources/<{ID}:source_id>/pages/<{PAGE}:page>.png")
@tenant_required
def page_thumbnail(source_id: int, page: int) -> Response:
    source = splitting.get_source(db.session, tenant_id(), source_id)
    if page >= source.page_count:
        abort(404)
    try:
        data = storage().read(source.file.storage_key)
        png = render_thumbnail(data, page)
    except FileNotFoundError:
        abort(404)
    except pypdfium2.PdfiumError:
        logger.warning("source %s: page %s could not be rendered", source_id, page)
        abort(404)
    response = send_file(io.BytesIO(png), mimetype="image/png", max_age=0)
    response.headers["Cache-Control"] = "private, max-age=300"  # the pages of a source never change
    return response  # X-Content-Type-Options: nosniff comes with every response (dashboard.web)


@bp.post(f"/sources/<{ID}:source_id>/groups")
@tenant_required
def regroup(source_id: int) -> Response:
    source = splitting.get_source(db.session, tenant_id(), source_id)
    back = request.form.get("document_id", "")
    try:
        groups = form_groups(request.form, source.page_count)
        to_read = splitting.regroup(db.session, storage(), tenant_id(), source.id, groups, int(current_user.id))
        db.session.commit()
    except (ValidationFailed, ServiceError) as exc:
        db.session.rollback()
        message = errors_text(exc.errors) if isinstance(exc, ValidationFailed) else translate(str(exc))
        flash(message, "error")
        return _back(source.id, back)
    queue_reading(to_read)
    flash(_("Pages regrouped: %(count)s document(s) are being read again.", count=len(to_read)) if to_read
          else _("Nothing changed."), "success")
    return _back(source.id, back)


def _back(source_id: int, document_id: str) -> Response:
    """To the review page of the document the reviewer came from if it still exists, else the first one."""
    groups = splitting.groups_of(db.session, splitting.get_source(db.session, tenant_id(), source_id))
    ids = [g.document.id for g in groups]
    target = int(document_id) if document_id.isdigit() and int(document_id) in ids else (ids[0] if ids else None)
    if target is None:
        return redirect(url_for("review.pending"))
    return redirect(url_for("review.document", doc_id=target))
