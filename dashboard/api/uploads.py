"""Uploads and message progress on the API: ``POST /uploads``, ``GET /messages/<id>``, re-processing."""

from __future__ import annotations

from flask import Response, jsonify

from core.inbound import uploads
from core.models import User
from core.tenancy import access
from dashboard.api.auth import api_viewer, caller
from dashboard.api.base import bp, dbs, json_error
from dashboard.api.serializers import document_json, message_json
from dashboard.api.spec import operation, ref

ID = "int(min=1, max=2147483647)"


def _message_with_documents(message_id: int) -> dict[str, object]:
    session, tid = dbs(), caller().tenant_id
    message = uploads.get_message(session, tid, message_id)  # 404 for another tenant's message
    body = message_json(message, access.shown_subject(api_viewer(), message.subject))
    body["stage"] = uploads.stage(message)
    body["in_progress"] = uploads.in_progress(message)
    shown = access.document_filter(session, api_viewer())(list(message.documents))
    body["documents"] = [document_json(doc) for doc in shown]
    return body


@bp.post("/uploads")
@operation("Messages", "Upload files (PDF, images, e-invoices, archives) as one message",
           body={"type": "object", "required": ["file"], "properties": {"file": {
               "type": "array", "items": {"type": "string", "contentMediaType": "application/octet-stream"},
               "description": "One or more files, each a part named file."}}},
           body_type="multipart/form-data", body_required=True, ok={202: ref("MessageProgress")},
           errors=(400, 413, 422))
def create_upload() -> tuple[Response, int]:
    from dashboard.handoff import accept_upload, request_files

    who = caller()
    user = dbs().get(User, who.user_id)
    message = accept_upload(who.tenant_id, request_files(), user.email if user is not None else "api")
    return jsonify(_message_with_documents(message.id)), 202


@bp.get(f"/messages/<{ID}:message_id>")
@operation("Messages", "One message, its processing stage and its documents",
           ok={200: ref("MessageProgress")})
def get_message(message_id: int) -> Response:
    return jsonify(_message_with_documents(message_id))


@bp.post(f"/messages/<{ID}:message_id>/reprocess")
@operation("Messages", "Read a message again from its stored original",
           ok={202: ref("MessageProgress")}, errors=(409, 422))
def reprocess_message(message_id: int) -> tuple[Response, int]:
    from dashboard.handoff import enqueue_message

    message = uploads.reprocess_message(dbs(), caller().tenant_id, message_id)
    dbs().commit()
    enqueue_message(message.id, force=True)
    return jsonify(_message_with_documents(message_id)), 202


@bp.post(f"/documents/<{ID}:document_id>/reprocess")
@operation("Documents", "Read a document again from its stored file",
           ok={202: ref("Document")}, errors=(409, 422, 503))
def reprocess_document(document_id: int) -> tuple[Response, int]:
    from dashboard.handoff import enqueue_reading

    doc = uploads.reprocess_document(dbs(), caller().tenant_id, document_id)
    dbs().commit()
    if not enqueue_reading(doc.id):
        return json_error(503, uploads.QUEUE_UNREACHABLE), 503
    return jsonify(document_json(doc)), 202
