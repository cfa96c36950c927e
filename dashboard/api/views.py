"""The endpoints. Each one parses its input, calls the same core service as the dashboard, commits
when it changed something, and serializes; errors are turned into JSON by ``dashboard.api.errors``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, jsonify, request
from sqlalchemy import Select
from sqlalchemy.orm import selectinload

from core import listing
from core.accounting import fiscal
from core.documents import bulk, invoice_edits
from core.documents import review as documents
from core.errors import NotFound, ServiceError, ValidationFailed
from core.models import (
    Direction,
    DocType,
    Document,
    DocumentStatus,
    InboundMessage,
    Invoice,
    MessageStatus,
    Role,
    Tenant,
    User,
)
from core.paging import paginate
from core.tenancy import access, accounts, company
from dashboard.api.auth import api_viewer, caller
from dashboard.api.base import ApiError, bp, dbs
from dashboard.api.download import attachment
from dashboard.api.listing import filter_query
from dashboard.api.listing import filters as api_filters
from dashboard.api.params import INPUT_FIELDS, enum_param, field_input, json_object, page_params
from dashboard.api.serializers import INVOICE_JSON_LOAD, document_json, invoice_json, message_json, tenant_json
from dashboard.api.spec import PAGE_QUERY, enum_query, operation, page_of, ref
from dashboard.context import settings, storage
from dashboard.viewer import today

MESSAGE_FILTERS = ("date_from", "date_to", "source")  # what the imports list filters by, as in the dashboard
# Ids beyond a 32-bit integer column cannot exist; refusing them in routing avoids driver overflows.
ID = "int(min=1, max=2147483647)"

# The fields a validation may set (``params.field_input``): scalars only, unknown keys refused.
VALIDATION_BODY = {"type": "object", "additionalProperties": False,
                   "properties": {name: {"type": ["string", "number", "null"]} for name in INPUT_FIELDS}
                   | {"direction": {"type": ["string", "null"], "enum": ["receivable", "payable", None],
                                    "description": "Sale (receivable) or purchase (payable); required when "
                                                   "extraction could not tell (field_info.direction.undecided)."}}}


def paginated(stmt: Select[Any], serialize: Callable[[Any], dict[str, Any]]) -> Response:
    page, per_page = page_params()
    result = paginate(dbs(), stmt, page, per_page)
    return jsonify(
        items=[serialize(item) for item in result.items],
        page=result.page,
        per_page=result.per_page,
        total=result.total,
        pages=result.pages,
    )


@bp.get("/tenant")
@operation("Company", "The token's company and its current inbound address", ok={200: ref("Tenant")})
def get_tenant() -> Response:
    session, tenant_id = dbs(), caller().tenant_id
    tenant = session.get(Tenant, tenant_id)
    try:
        address = accounts.address_of(accounts.primary_address(session, tenant_id), settings().inbound_domain)
    except NotFound:
        address = None  # every address retiring: the tenant still exists
    return jsonify(tenant_json(tenant, address))


@bp.put("/tenant")
@operation("Company", "Set the company's identity and approval policy (admins only)",
           description="legal_name, country (ISO 3166 alpha-2), siren (SIREN or SIRET), vat_number and iban are "
                       "checked with python-stdnum; approval_mode none | one | two_above with approval_threshold; "
                       "fiscal_year_end \"MM-DD\" (e.g. \"03-31\"; null or \"\": 31 December), refused when "
                       "a posted entry would move to another fiscal year; datev_consultant_number "
                       "(Beraternummer, 1001-9999999) and datev_client_number (Mandantennummer, 1-99999), which "
                       "a DATEV export needs. "
                       "Fields left out keep their value; null or \"\" clears one.",
           body={"type": "object", "additionalProperties": False, "properties": {
               **{name: {"type": ["string", "null"]} for name in company.IDENTITY_FIELDS},
               "approval_mode": {"type": "string", "enum": list(company.APPROVAL_MODES)},
               "approval_threshold": {"type": ["string", "number", "null"]},
               "fiscal_year_end": {"type": ["string", "null"]}}},
           body_required=True, ok={200: ref("Tenant")}, errors=(400, 403, 415, 422))
def put_tenant() -> Response:
    who, session = caller(), dbs()
    if who.role != Role.ADMIN:
        raise ApiError(403, "only the company's admins can change its identity")
    body = json_object()
    allowed = {*company.IDENTITY_FIELDS, "approval_mode", "approval_threshold", "fiscal_year_end"}
    unknown = {key: "unknown field" for key in body if key not in allowed}
    if unknown:
        raise ApiError(422, "validation failed", unknown)
    actor = session.get(User, who.user_id)
    errors: dict[str, str] = {}
    try:
        company.update_identity(session, who.tenant_id, body, actor, ip=request.remote_addr)
    except ValidationFailed as exc:  # reported with the year end's problem, if any
        errors |= exc.errors
    if "fiscal_year_end" in body:
        try:
            fiscal.set_year_end(session, who.tenant_id, body["fiscal_year_end"], actor, ip=request.remote_addr)
        except ValidationFailed as exc:
            errors |= exc.errors
    if errors:
        session.rollback()
        raise ValidationFailed(errors)
    session.commit()
    return get_tenant()


@bp.get("/messages")
@operation("Messages", "Received messages (e-mails and uploads), newest first (or as sorted)",
           query=(*PAGE_QUERY, enum_query("status", MessageStatus, "Only the messages in this status."),
                  *filter_query(listing.MESSAGE_SORTS, payment_status=False, accepted=MESSAGE_FILTERS)),
           ok={200: page_of("Message")}, errors=(400,))
def list_messages() -> Response:
    status = enum_param("status", MessageStatus)
    current = api_filters(listing.MESSAGE_SORTS, listing.MESSAGE_DEFAULT_SORT, status_is_payment=False,
                          accepted=MESSAGE_FILTERS)
    viewer = api_viewer()
    stmt = listing.message_list(viewer, current, listing.dialect_of(dbs()))
    if status:
        stmt = stmt.where(InboundMessage.status == status)
    return paginated(stmt.options(selectinload(InboundMessage.documents)),
                     lambda message: message_json(message, access.shown_subject(viewer, message.subject)))


@bp.get("/documents")
@operation("Documents", "Documents read from the messages, newest first (or as sorted)",
           query=(*PAGE_QUERY, enum_query("status", DocumentStatus, "Only the documents in this status."),
                  *filter_query(listing.DOCUMENT_SORTS, payment_status=False)),
           ok={200: page_of("Document")}, errors=(400,))
def list_documents() -> Response:
    status = enum_param("status", DocumentStatus)
    current = api_filters(listing.DOCUMENT_SORTS, listing.DOCUMENT_DEFAULT_SORT, status_is_payment=False)
    statuses = (status,) if status else tuple(s.value for s in DocumentStatus)
    stmt = listing.document_list(api_viewer(), statuses, current, listing.dialect_of(dbs()))
    return paginated(stmt, document_json)


@bp.post("/documents/bulk")
@operation("Documents", "Validate, assign to a client or discard many documents at once",
           description="Each document is handled on its own and its outcome reported: validate takes only the "
                       "documents whose every field is unflagged (the extractor was sure of it) and complete; a "
                       "number already used puts the document in the duplicate choice. Nothing changes when the "
                       f"request itself is wrong (no ids, more than {bulk.MAX_SELECTED}, assign without client).",
           body={"type": "object", "required": ["action", "ids"], "additionalProperties": False, "properties": {
               "action": {"type": "string", "enum": list(bulk.ACTIONS)},
               "ids": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1,
                       "maxItems": bulk.MAX_SELECTED},
               "client": {"type": "string", "maxLength": bulk.MAX_CLIENT_CHARS,
                          "description": "The client to assign (action assign)."}}},
           body_required=True, ok={200: ref("BulkResults")}, errors=(400, 415))
def bulk_documents() -> Response:
    body = json_object()
    action, ids, client = body.get("action"), body.get("ids"), body.get("client", "")
    if action not in bulk.ACTIONS:
        raise ApiError(400, f"action must be one of {', '.join(bulk.ACTIONS)}")
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**31
                                            for i in ids):
        raise ApiError(400, "ids must be a list of document ids")
    if not isinstance(client, str):
        raise ApiError(400, "client must be a string")
    session = dbs()
    try:
        results = bulk.apply(session, api_viewer(), action, ids, client)
    except ServiceError as exc:  # the request itself: nothing was changed
        session.rollback()
        raise ApiError(400, str(exc)) from None
    session.commit()
    from dashboard.handoff import enqueue_rematch_invoice

    for result in results:
        if result.invoice_id is not None:
            enqueue_rematch_invoice(result.invoice_id)
    return jsonify(items=[{"id": r.document_id, "ok": r.ok, "message": r.message, "invoice_id": r.invoice_id}
                          for r in results], done=sum(r.ok for r in results))


@bp.get(f"/documents/<{ID}:document_id>")
@operation("Documents", "One document with its extracted fields", ok={200: ref("Document")})
def get_document(document_id: int) -> Response:
    return jsonify(document_json(visible_document(document_id)))


@bp.get(f"/documents/<{ID}:document_id>/file")
@operation("Documents", "The document's stored file, as a download",
           description="Served in its own content type when that is a safe one, else application/octet-stream; "
                       "never rendered in place (Content-Disposition: attachment, CSP sandbox).",
           ok={200: {"type": "string", "format": "binary"}}, ok_type="application/octet-stream")
def get_document_file(document_id: int) -> Response:
    session, tenant_id = dbs(), caller().tenant_id
    doc = visible_document(document_id)
    stored = documents.get_file(session, tenant_id, doc.file_id)
    return attachment(storage().read(stored.storage_key), stored.content_type, doc.filename)


@bp.post(f"/documents/<{ID}:document_id>/validate")
@operation("Documents", "Validate a pending document into an invoice",
           description="Fields given here replace the extracted ones; unknown keys are refused (422).",
           body=VALIDATION_BODY, ok={200: ref("Invoice")}, errors=(400, 409, 415, 422),
           error_bodies={409: ref("DuplicateChoice")})
def validate_document(document_id: int) -> Response:
    visible_document(document_id)
    data = field_input(json_object())
    session = dbs()
    result = documents.confirm_document(session, api_viewer(), document_id, data)
    session.commit()
    if isinstance(result, Document):  # the number is an existing invoice's: the caller picks an action
        response = jsonify(
            error=result.reason,
            choices=documents.duplicate_choices(session, result),
            duplicate_of=result.duplicate_of_id,
            document=document_json(result),
        )
        response.status_code = 409
        return response
    from dashboard.handoff import enqueue_rematch_invoice

    enqueue_rematch_invoice(result.id)
    return jsonify(invoice_json(result))


@bp.post(f"/documents/<{ID}:document_id>/duplicate")
@operation("Documents", "Resolve a document flagged as a duplicate of an invoice",
           body={"type": "object", "required": ["action"], "properties": {
               "action": {"type": "string", "enum": list(documents.DUPLICATE_ACTIONS)}}},
           body_required=True, ok={200: ref("Document")}, errors=(400, 409, 415))
def resolve_duplicate(document_id: int) -> Response:
    session = dbs()
    visible_document(document_id)  # another tenant's id (or a hidden client's): 404 before any 400
    action = json_object().get("action")
    if action not in documents.DUPLICATE_ACTIONS:
        raise ApiError(400, f"action must be one of {', '.join(documents.DUPLICATE_ACTIONS)}")
    doc = documents.resolve_duplicate(session, api_viewer(), document_id, action)
    session.commit()
    return jsonify(document_json(doc))


@bp.get("/invoices")
@operation("Invoices", "Validated invoices and credit notes, newest first (or as sorted)",
           query=(*PAGE_QUERY, enum_query("type", DocType, "Invoices or credit notes only."),
                  enum_query("direction", Direction, "Sales (receivable) or purchases (payable) only."),
                  *filter_query(listing.INVOICE_SORTS, payment_status=True)),
           ok={200: page_of("Invoice")}, errors=(400,))
def list_invoices() -> Response:
    doc_type = enum_param("type", DocType)
    current = api_filters(listing.INVOICE_SORTS, listing.INVOICE_DEFAULT_SORT)
    # Restricted members: their clients' invoices only (listing.invoice_list scopes).
    stmt = listing.invoice_list(api_viewer(), doc_type, current, today(), listing.dialect_of(dbs()))
    direction = enum_param("direction", Direction)
    if direction:  # issue 18: sales or purchases
        stmt = stmt.where(Invoice.direction == direction)
    return paginated(stmt.options(*INVOICE_JSON_LOAD), invoice_json)


@bp.get(f"/invoices/<{ID}:invoice_id>")
@operation("Invoices", "One invoice with its bank matches", ok={200: ref("Invoice")})
def get_invoice(invoice_id: int) -> Response:
    invoice = documents.get_invoice(dbs(), caller().tenant_id, invoice_id)
    return jsonify(invoice_json(access.check_invoice(dbs(), api_viewer(), invoice)))


@bp.patch(f"/invoices/<{ID}:invoice_id>")
@operation("Invoices", "Correct a validated invoice",
           description="Any field but `number` and `type` (422 for those); each change goes to the audit trail.",
           body=VALIDATION_BODY, body_required=True, errors=(400, 415, 422),
           ok={200: {"type": "object", "required": ["invoice", "changes"], "additionalProperties": False,
                     "properties": {"invoice": ref("Invoice"), "changes": {
                         "type": "object", "description": "field -> [old, new], as text",
                         "additionalProperties": {"type": "array", "minItems": 2, "maxItems": 2,
                                                  "items": {"type": ["string", "null"]}}}}}})
def edit_invoice(invoice_id: int) -> Response:
    """Corrections after validation: any field but ``number`` and ``type``; returns the invoice and the changes."""
    who, session = caller(), dbs()
    data = field_input(json_object())
    if "direction" in data:
        raise ApiError(422, "validation failed",
                       {"direction": "the direction of a validated invoice cannot be changed"})
    actor = session.get(User, who.user_id)
    changes = invoice_edits.edit_invoice(session, api_viewer(), invoice_id, data, actor, ip=request.remote_addr)
    session.commit()
    invoice = documents.get_invoice(session, who.tenant_id, invoice_id)
    return jsonify(invoice=invoice_json(invoice), changes=changes)


def visible_document(document_id: int) -> Document:
    """The token's tenant's document; 404 when it holds an invoice the caller may not see."""
    return access.check_document(dbs(), api_viewer(), documents.get_document(dbs(), caller().tenant_id, document_id))
