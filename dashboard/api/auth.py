"""Who is calling: a bearer token, and only a bearer token (session cookies are never looked at)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Response, g, request

from core.inbound import support
from core.models import Role, User
from core.tenancy import access, accounts
from core.tenancy.access import Viewer
from dashboard.api.base import bp, dbs, json_error

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WRITER_ROLES = frozenset({Role.ADMIN, Role.ACCOUNTANT, Role.MEMBER})  # support staff of the operator only read
# Served without a token: the OpenAPI document describes the API and holds no data.
PUBLIC_ENDPOINTS = frozenset({"api.openapi_document"})


@dataclass(frozen=True)
class Caller:
    """Plain values, so that later commits (which expire ORM objects) cost no reload."""

    tenant_id: int
    user_id: int
    role: Role


def caller() -> Caller:
    return g.api_caller


def api_viewer() -> Viewer:
    """The access policy of the token's user in the token's tenant (``core.tenancy.access``)."""
    found = g.get("api_viewer")
    if found is None:
        who = caller()
        found = g.api_viewer = access.viewer_for(dbs(), who.tenant_id, who.user_id)
    return found


def bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def unauthorized(message: str, invalid_token: bool) -> Response:
    challenge = 'Bearer realm="api"' + (', error="invalid_token"' if invalid_token else "")
    return json_error(401, message, headers={"WWW-Authenticate": challenge})


@bp.before_request
def authenticate() -> Response | None:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    token = bearer_token()
    if token is None:
        return unauthorized("an Authorization: Bearer <token> header is required", invalid_token=False)
    session = dbs()
    identity = accounts.identify_token(session, token)
    if identity is None:
        return unauthorized("the token is invalid or revoked", invalid_token=True)
    if identity.refused:  # a known token its owner may not use in this company now: say why
        return json_error(403, identity.refused)
    g.api_caller = Caller(identity.tenant.id, identity.user.id, identity.role)
    # Commit last_used_at now, so that it is kept even when the request itself fails.
    session.commit()
    if request.method not in READ_METHODS and identity.role not in WRITER_ROLES:
        return json_error(403, f"the {identity.role.value} role is read-only")
    return None


# Endpoints that write their own, more precise, support trail entry.
SELF_AUDITED = frozenset({"api.list_forwarding_codes"})


@bp.after_request
def audit_support_reads(response: Response) -> Response:
    """The support console promises that every read by the operator's staff is on the tenant's trail: an
    API read is a read too (issue 14, finding 8). Only answered reads count; refusals show nothing."""
    who = g.get("api_caller")
    if (
        who is None
        or who.role != Role.SUPPORT
        or request.method not in READ_METHODS
        or response.status_code >= 400
        or request.endpoint in SELF_AUDITED
    ):
        return response
    session = dbs()
    user = session.get(User, who.user_id)
    support.audit_read(session, user, who.tenant_id, "support.view_api", target=request.full_path[:200].rstrip("?"),
                       ip=request.remote_addr, detail={"via": "api"})
    session.commit()
    return response
