"""Assign PDFs to invoices on the API (issue 17 item 5): ``POST /invoices/assign`` stores the files
(multipart, repeated ``file`` parts) and answers the proposed invoices; ``POST /invoices/assign/confirm``
attaches the pairs the caller confirms: ``{"pairs": [{"file_id": 1, "invoice_id": 2}, ...]}``."""

from __future__ import annotations

from flask import Response, jsonify, request

from core.documents import assignment
from core.errors import ServiceError
from core.models import User
from core.tenancy import quotas
from dashboard.api.auth import api_viewer, caller
from dashboard.api.base import ApiError, bp, dbs
from dashboard.api.params import json_object
from dashboard.api.spec import items_of, operation, ref
from dashboard.context import settings, storage


@bp.post("/invoices/assign")
@operation("Invoices", "Store PDFs and propose the invoice each belongs to",
           description="Nothing is attached until `/invoices/assign/confirm`; no extraction is run.",
           body={"type": "object", "required": ["file"], "properties": {"file": {
               "type": "array", "items": {"type": "string", "contentMediaType": "application/octet-stream"},
               "description": "One or more files, each a part named file."}}},
           body_type="multipart/form-data", body_required=True, ok={200: items_of(ref("AssignProposal"))},
           errors=(400, 413, 429))
def assign_files() -> Response:
    from dashboard.handoff import uploaded_files

    session = dbs()
    try:
        proposals = assignment.propose(session, storage(), api_viewer(), uploaded_files(),
                                       quotas.Limits.of(settings()))
    except quotas.QuotaExceeded:  # 429 with its reason (dashboard.api.errors)
        session.rollback()
        raise
    except ServiceError as exc:  # no file, or too many: the request is wrong, nothing is kept
        session.rollback()
        raise ApiError(400, str(exc)) from exc
    session.commit()
    return jsonify(
        items=[
            {
                "filename": p.filename,
                "file_id": p.file_id,
                "error": p.error,
                "found_in": p.found_in,
                "invoices": [{"id": inv.id, "number": inv.number, "type": inv.doc_type} for inv in p.invoices],
            }
            for p in proposals
        ]
    )


def _id(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2147483647:
        raise ApiError(400, f"{name} must be a positive integer")
    return value


@bp.post("/invoices/assign/confirm")
@operation("Invoices", "Attach the confirmed files to their invoices",
           body={"type": "object", "required": ["pairs"], "additionalProperties": False, "properties": {
               "pairs": {"type": "array", "minItems": 1, "items": ref("AssignPair")}}},
           body_required=True, errors=(400, 415),
           ok={200: {"type": "object", "required": ["attached"], "additionalProperties": False,
                     "properties": {"attached": {"type": "array", "items": ref("AssignPair")}}}})
def confirm_assignment() -> Response:
    pairs = json_object().get("pairs")
    if not isinstance(pairs, list) or not pairs or not all(isinstance(p, dict) for p in pairs):
        raise ApiError(400, 'pairs must be a non-empty list of {"file_id", "invoice_id"}')
    who, session = caller(), dbs()
    parsed = [(_id(p.get("file_id"), "file_id"), _id(p.get("invoice_id"), "invoice_id")) for p in pairs]
    done = assignment.confirm(session, api_viewer(), parsed, actor=session.get(User, who.user_id),
                              ip=request.remote_addr, via="api assign")
    session.commit()
    return jsonify(attached=[{"file_id": f, "invoice_id": i} for f, i in done])
