"""``GET /api/v1/forwarding-codes``: the forwarding confirmation codes of a tenant.

- without ``tenant=``: the token's tenant, for its admins (support staff: audited, like the console);
- with ``tenant=`` (an id or an inbound address): accepted only when it names the token's own tenant. A
  token is valid in exactly one tenant (issue 14, finding 9): any other tenant is 404, whether or not it
  exists and whatever the caller's memberships there; support staff use a token of each tenant they
  look after. Members get 403.
"""

from __future__ import annotations

from flask import Response, jsonify, request

from core.errors import NotFound
from core.inbound import forwarding as fwd
from core.inbound import support
from core.models import Role, Tenant, User
from core.paging import paginate
from dashboard.api.auth import caller
from dashboard.api.base import ApiError, bp, dbs
from dashboard.api.params import page_params
from dashboard.api.spec import PAGE_QUERY, operation, page_of, query
from dashboard.context import settings


def _target_tenant() -> tuple[Tenant, Role]:
    who, session = caller(), dbs()
    ref = request.args.get("tenant", "").strip()
    if not ref:
        tenant = session.get(Tenant, who.tenant_id)
        if tenant is None:
            raise NotFound("no such company")
        return tenant, who.role
    tenant = support.resolve_tenant_ref(session, ref, settings().inbound_domain)
    if tenant.id != who.tenant_id:
        raise NotFound("no such company")
    return tenant, who.role


@bp.get("/forwarding-codes")
@operation("Company", "Forwarding confirmation codes received (admins and support staff)",
           query=(query("tenant", "The token's own company, by id or inbound address (any other: 404).",
                        {"type": "string"}), *PAGE_QUERY),
           ok={200: {"allOf": [page_of("ForwardingCode"), {"type": "object", "required": ["tenant"], "properties": {
               "tenant": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}}}}]}},
           errors=(400, 403, 404))
def list_forwarding_codes() -> Response:
    tenant, role = _target_tenant()
    if role not in (Role.ADMIN, Role.SUPPORT):
        raise ApiError(403, "only the company's admins and its support staff can read forwarding codes")
    session = dbs()
    page, per_page = page_params()
    result = paginate(session, fwd.codes_query(tenant.id), page, per_page)
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
