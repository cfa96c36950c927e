"""``GET /api/v1/forwarding-codes``: the forwarding confirmation codes of a tenant.

- without ``tenant=``: the token's tenant, for its admins (support staff: audited, like the console);
- with ``tenant=`` (an id or an inbound address): a tenant where the caller is admin, or supports it
  (audited). A tenant where the caller has no such role is 404 (whether or not it exists); members get 403.
"""

from __future__ import annotations

from flask import Response, jsonify, request

from core.models import Role, Tenant, User
from core.services import NotFound, accounts, support
from core.services import documents as docs
from core.services import forwarding as fwd
from dashboard.api.auth import caller
from dashboard.api.base import ApiError, bp, dbs
from dashboard.api.params import page_params
from dashboard.app import settings


def _target_tenant() -> tuple[Tenant, Role]:
    who, session = caller(), dbs()
    ref = request.args.get("tenant", "").strip()
    if not ref:
        tenant = session.get(Tenant, who.tenant_id)
        if tenant is None:
            raise NotFound("no such company")
        return tenant, who.role
    tenant = support.resolve_tenant_ref(session, ref, settings().inbound_domain)
    member = accounts.membership(session, who.user_id, tenant.id)
    if member is None:
        raise NotFound("no such company")
    return tenant, Role(member.role)


@bp.get("/forwarding-codes")
def list_forwarding_codes() -> Response:
    tenant, role = _target_tenant()
    if role not in (Role.ADMIN, Role.SUPPORT):
        raise ApiError(403, "only the company's admins and its support staff can read forwarding codes")
    session = dbs()
    page, per_page = page_params()
    result = docs.paginate(session, fwd.codes_query(tenant.id), page, per_page)
    if role == Role.SUPPORT:
        user = session.get(User, caller().user_id)
        assert user is not None  # the token was just checked against an active user
        support.audit_read(session, user, tenant.id, "support.view_codes", target=f"tenant:{tenant.id}",
                           ip=request.remote_addr, detail={"via": "api", "page": result.page})
        session.commit()
    return jsonify(
        tenant={"id": tenant.id, "name": tenant.name},
        items=[fwd.confirmation_json(row) for row in result.items],
        page=result.page,
        per_page=result.per_page,
        total=result.total,
        pages=result.pages,
    )
