"""Settings → Extraction templates: a company's own invoice2data templates (issue #4).

A reviewer drafts a template from a document ("Create template from this document" on the review page),
tests it on that document and on the company's recent others, and saves it; the next extraction of a
document of this issuer uses it. Admins and members edit; the operator's support staff only read
(``tenant_required`` refuses them every POST). Every query is scoped to the current tenant: another
company's template or document id is a 404.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from core.documents import templates as svc
from core.models import Role
from dashboard.context import storage
from dashboard.extensions import db
from dashboard.viewer import current_viewer
from dashboard.web import tenant_id, tenant_required

bp = Blueprint("templates_editor", __name__)

BLANK = """issuer: Issuer name
keywords:
  - "FR 12 345678901"  # printed only by this issuer: its VAT id, SIREN or name
fields:
  invoice_number: Facture\\s+N°\\s*:?\\s*(\\S+)
  date: Date\\s*:?\\s*(\\d{1,2}/\\d{1,2}/\\d{4})
  amount: Total\\s+TTC\\s*:?\\s*(\\d[\\d .,]{0,20}\\d)
options:
  currency: EUR
  date_formats:
    - "%d/%m/%Y"
  decimal_separator: ","
"""


def _can_edit() -> bool:
    return current_viewer().role in (Role.ADMIN.value, Role.ACCOUNTANT.value, Role.MEMBER.value)


def _form_source() -> str:
    # One byte over the limit is enough for the service to say "too large"; never keep more in memory.
    return request.form.get("source", "")[: svc.MAX_SOURCE_BYTES + 1].replace("\r\n", "\n")


def _document_id() -> int | None:
    raw = request.form.get("document_id") or request.args.get("document") or ""
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


def _editor(template: Any = None, *, name: str = "", source: str = "", enabled: bool = True,
            document: Any = None, report: svc.TrialReport | None = None, problems: list[str] | None = None,
            name_error: str | None = None, status: int = 200) -> tuple[str, int]:
    page = render_template("settings/template_editor.html", active_nav="settings", template=template, name=name,
                           source=source, enabled=enabled, document=document, report=report,
                           problems=problems or [], name_error=name_error, can_edit=_can_edit(),
                           max_bytes=svc.MAX_SOURCE_BYTES)
    return page, status


@bp.get("/settings/templates")
@tenant_required
def index() -> str:
    return render_template("settings/templates.html", active_nav="settings",
                           templates=svc.list_templates(db.session, tenant_id()), can_edit=_can_edit())


@bp.get("/settings/templates/new")
@tenant_required
def new() -> tuple[str, int]:
    return _editor(source=BLANK)


@bp.get("/documents/<int:doc_id>/template")
@tenant_required
def from_document(doc_id: int) -> tuple[str, int]:
    """The editor, with a draft made from this document and the values its reviewer confirmed."""
    doc = svc.get_document(db.session, tenant_id(), doc_id)
    draft = svc.draft_from_document(db.session, storage(), tenant_id(), doc.id)
    report = svc.try_on_documents(db.session, storage(), tenant_id(), draft, doc.id, others=0)
    return _editor(name=(doc.issuer or doc.filename or "")[:svc.MAX_NAME_CHARS], source=draft, document=doc,
                   report=report)


def _test_or_save(template: Any) -> Response | tuple[str, int]:
    action = request.form.get("action")
    if action not in ("test", "save"):
        abort(400)
    name = request.form.get("name", "")[: svc.MAX_NAME_CHARS + 10]
    source, enabled = _form_source(), request.form.get("enabled") == "on"
    document_id = _document_id()
    document = svc.get_document(db.session, tenant_id(), document_id) if document_id is not None else None
    try:
        if action == "test":
            report = svc.try_on_documents(db.session, storage(), tenant_id(), source, document_id,
                                          exclude_validated=current_viewer().restricted)
            return _editor(template, name=name, source=source, enabled=enabled, document=document, report=report)
        if template is None:
            template = svc.create_template(db.session, tenant_id(), name, source, current_user.user, enabled)
        else:
            svc.update_template(db.session, tenant_id(), template.id, name=name, source=source, enabled=enabled)
    except svc.TemplateInvalid as exc:
        db.session.rollback()
        return _editor(template, name=name, source=source, enabled=enabled, document=document,
                       problems=exc.problems, name_error=exc.errors.get("name"), status=422)
    db.session.commit()
    flash(_("Template saved: the next documents of this issuer are read with it."), "success")
    return redirect(url_for(".edit", template_id=template.id))


@bp.post("/settings/templates/new")
@tenant_required
def create() -> Response | tuple[str, int]:
    return _test_or_save(None)


@bp.get("/settings/templates/<int:template_id>")
@tenant_required
def edit(template_id: int) -> tuple[str, int]:
    template = svc.get_template(db.session, tenant_id(), template_id)
    return _editor(template, name=template.name, source=template.source, enabled=template.enabled)


@bp.post("/settings/templates/<int:template_id>")
@tenant_required
def update(template_id: int) -> Response | tuple[str, int]:
    return _test_or_save(svc.get_template(db.session, tenant_id(), template_id))


@bp.post("/settings/templates/<int:template_id>/delete")
@tenant_required
def delete(template_id: int) -> Response:
    svc.delete_template(db.session, tenant_id(), template_id)
    db.session.commit()
    flash(_("Template deleted."), "success")
    return redirect(url_for(".index"))
