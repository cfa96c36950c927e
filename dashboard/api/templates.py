"""``/api/v1/templates``: the token's company's own extraction templates (issue #4), the same service
functions as Settings → Extraction templates.

    GET    /templates                    list (without sources)
    POST   /templates                    {"name", "source", "enabled"?} -> 201
    GET    /templates/<id>               one, with its YAML source
    PATCH  /templates/<id>               {"name"?, "source"?, "enabled"?}
    DELETE /templates/<id>               -> 204
    POST   /templates/test               {"source", "document_id"?, "others"?}: what it reads, saving nothing
    GET    /documents/<id>/template-draft  {"source"}: a draft built from the document's confirmed values

A refused source answers 422 with ``problems`` (one message each) and ``fields.source``.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from core.documents import templates as svc
from core.models import User
from core.models_templates import ExtractionTemplate
from core.tenancy import access
from dashboard.api.auth import caller
from dashboard.api.base import ApiError, bp, dbs
from dashboard.api.params import json_object
from dashboard.api.spec import items_of, operation, ref
from dashboard.context import storage

ID = "int(min=1, max=2147483647)"


def template_json(template: ExtractionTemplate, source: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": template.id, "name": template.name, "issuer": template.issuer, "enabled": template.enabled,
        "version": template.version, "created_by": template.created_by or None,
        "created_at": template.created_at.isoformat(), "updated_at": template.updated_at.isoformat(),
    }
    if source:
        body["source"] = template.source
    return body


def template_body(required: tuple[str, ...]) -> dict[str, Any]:
    """The body of POST (name and source required) and PATCH (every key optional); nothing else."""
    return {"type": "object", "required": list(required), "additionalProperties": False, "properties": {
        "name": {"type": "string"}, "source": {"type": "string", "description": "The invoice2data YAML."},
        "enabled": {"type": "boolean"}}}


def _refused(exc: svc.TemplateInvalid) -> Response:
    response = jsonify(error="validation failed", fields=exc.errors, problems=exc.problems)
    response.status_code = 422
    return response


def _text(body: dict[str, Any], key: str, required: bool) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ApiError(422, "validation failed", {key: "must be a string"})
    return value


def _flag(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise ApiError(422, "validation failed", {key: "must be true or false"})
    return value


def _known(body: dict[str, Any], keys: tuple[str, ...]) -> None:
    unknown = {key: "unknown field" for key in body if key not in keys}
    if unknown:
        raise ApiError(422, "validation failed", unknown)


@bp.get("/templates")
@operation("Templates", "The company's extraction templates (without their sources)",
           ok={200: items_of(ref("Template"))})
def list_templates() -> Response:
    return jsonify(items=[template_json(t) for t in svc.list_templates(dbs(), caller().tenant_id)])


@bp.post("/templates")
@operation("Templates", "Create an extraction template from its YAML source",
           body=template_body(required=("name", "source")), body_required=True, ok={201: ref("Template")},
           errors=(400, 415, 422))
def create_template() -> Response:
    body = json_object()
    _known(body, ("name", "source", "enabled"))
    name, source, enabled = _text(body, "name", True), _text(body, "source", True), _flag(body, "enabled")
    session = dbs()
    user = session.get(User, caller().user_id)
    try:
        template = svc.create_template(session, caller().tenant_id, name, source or "", user,
                                       True if enabled is None else enabled)
    except svc.TemplateInvalid as exc:
        session.rollback()
        return _refused(exc)
    session.commit()
    response = jsonify(template_json(template, source=True))
    response.status_code = 201
    return response


@bp.get(f"/templates/<{ID}:template_id>")
@operation("Templates", "One template with its YAML source", ok={200: ref("Template")})
def get_template(template_id: int) -> Response:
    return jsonify(template_json(svc.get_template(dbs(), caller().tenant_id, template_id), source=True))


@bp.patch(f"/templates/<{ID}:template_id>")
@operation("Templates", "Change a template's name, source or state", body=template_body(()),
           ok={200: ref("Template")}, errors=(400, 415, 422))
def update_template(template_id: int) -> Response:
    session, tenant_id = dbs(), caller().tenant_id
    svc.get_template(session, tenant_id, template_id)  # another company's id: 404 before any 422
    body = json_object()
    _known(body, ("name", "source", "enabled"))
    try:
        template = svc.update_template(session, tenant_id, template_id, name=_text(body, "name", False),
                                       source=_text(body, "source", False), enabled=_flag(body, "enabled"))
    except svc.TemplateInvalid as exc:
        session.rollback()
        return _refused(exc)
    session.commit()
    return jsonify(template_json(template, source=True))


@bp.delete(f"/templates/<{ID}:template_id>")
@operation("Templates", "Delete a template", ok={204: None})
def delete_template(template_id: int) -> Response:
    session = dbs()
    svc.delete_template(session, caller().tenant_id, template_id)
    session.commit()
    return Response(status=204)


@bp.post("/templates/test")
@operation("Templates", "What a template source reads from documents, saving nothing",
           body={"type": "object", "required": ["source"], "additionalProperties": False, "properties": {
               "source": {"type": "string"},
               "document_id": {"type": "integer", "minimum": 0, "maximum": 2147483647},
               "others": {"type": "integer", "minimum": 0, "maximum": 50}}},
           body_required=True, ok={200: ref("TemplateTrial")}, errors=(400, 404, 415, 422))
def try_template() -> Response:
    body = json_object()
    _known(body, ("source", "document_id", "others"))
    source = _text(body, "source", True)
    document_id, others = body.get("document_id"), body.get("others", svc.DEFAULT_OTHERS)
    for key, value, high in (("document_id", document_id, 2147483647), ("others", others, 50)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high):
            raise ApiError(422, "validation failed", {key: f"an integer from 0 to {high}"})
    who = caller()
    viewer = access.viewer_for(dbs(), who.tenant_id, who.user_id)
    try:
        report = svc.try_on_documents(dbs(), storage(), who.tenant_id, source or "", document_id, others,
                                      exclude_validated=viewer.restricted)
    except svc.TemplateInvalid as exc:
        return _refused(exc)
    return jsonify(report.as_dict())


@bp.get(f"/documents/<{ID}:document_id>/template-draft")
@operation("Templates", "A template draft built from the document's confirmed values",
           ok={200: {"type": "object", "required": ["source"], "properties": {"source": {"type": "string"}}}},
           errors=(409,))
def template_draft(document_id: int) -> Response:
    return jsonify(source=svc.draft_from_document(dbs(), storage(), caller().tenant_id, document_id))
