"""JSON errors everywhere under the API prefix, including routing errors and service exceptions."""

from __future__ import annotations

from flask import Response, request
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from core.errors import NotFound, ServiceError, ValidationFailed
from core.tenancy.quotas import RATE, QuotaExceeded
from dashboard.api.base import PREFIX, ApiError, bp, dbs, json_error

# Field names as the API spells them where they differ from the model's.
API_FIELD_NAMES = {"doc_type": "type"}


def http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    # A 500 says nothing about the failure (it is logged); other statuses keep werkzeug's description.
    message = "internal server error" if code >= 500 else (exc.description or exc.name)
    # Keep headers such as Allow (405) but not werkzeug's HTML content type.
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    return json_error(code, message, headers=headers)


@bp.before_app_request
def routing_errors() -> Response | None:
    """Unknown paths and wrong methods under the prefix never reach the blueprint's error handlers
    (routing fails before a blueprint is known), so they are answered here, before any HTML handler."""
    exc = request.routing_exception
    if exc is None or isinstance(exc, RequestRedirect):
        return None
    if request.path != PREFIX and not request.path.startswith(PREFIX + "/"):
        return None
    return http_error(exc) if isinstance(exc, HTTPException) else None


@bp.errorhandler(ApiError)
def api_error(exc: ApiError) -> Response:
    return json_error(exc.status, exc.message, exc.fields)


@bp.errorhandler(NotFound)
def not_found(exc: NotFound) -> Response:
    return json_error(404, str(exc))


@bp.errorhandler(ValidationFailed)
def validation_failed(exc: ValidationFailed) -> Response:
    fields = {API_FIELD_NAMES.get(name, name): message for name, message in exc.errors.items()}
    return json_error(422, "validation failed", fields)


@bp.errorhandler(QuotaExceeded)
def quota_exceeded(exc: QuotaExceeded) -> Response:
    retry = "3600" if exc.kind == RATE else "86400"
    return json_error(429, str(exc), headers={"Retry-After": retry})


@bp.errorhandler(ServiceError)
def service_error(exc: ServiceError) -> Response:
    return json_error(409, str(exc))


@bp.errorhandler(IntegrityError)
def integrity_error(_exc: IntegrityError) -> Response:
    # A concurrent request got there first (e.g. the same number validated twice at once).
    dbs().rollback()
    return json_error(409, "the request conflicts with a concurrent change; reload and try again")


@bp.errorhandler(HTTPException)
def http_exception(exc: HTTPException) -> Response:
    return http_error(exc)
