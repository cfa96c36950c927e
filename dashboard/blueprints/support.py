"""The support console (read-only, every read audited) and the audit trail the tenant's admins read.

- ``/support``: the tenants the user supports (a ``support`` membership each), searchable by name or address;
- ``/support/tenants/<id>``: overview, imports, one message's trail, forwarding codes;
- ``/settings/audit``: the tenant's trail, for its admins.

Support staff can also open a tenant's ordinary pages (it is one of their memberships, read-only there as
everywhere); ``_audit_support_page_views`` writes those reads to the trail too.
"""

from __future__ import annotations

from flask import Blueprint, abort, g, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from core.inbound import forwarding as fwd
from core.inbound import support
from core.mail.verification import PROVIDER_LABELS
from core.models import ForwardingConfirmation, InboundMessage, Role, Tenant
from core.tenancy import accounts, audit, members
from dashboard.context import settings as app_settings
from dashboard.extensions import db
from dashboard.web import paginated, tenant_id, tenant_required

bp = Blueprint("support", __name__)

# Routes ids are bounded so that a huge number never reaches the database driver.
ID = "int(min=1, max=2147483647)"


def _client_ip() -> str | None:
    return (request.remote_addr or "")[:64] or None


def _require_support_user() -> None:
    if not support.is_support_user(db.session, current_user.id):
        abort(403, _("The support console is for the operator's support staff."))


def _tenant_for_support(tenant_ref: int) -> Tenant:
    _require_support_user()
    return support.supported_tenant(db.session, current_user.id, tenant_ref)


def _audit(tenant: Tenant, action: str, target: str | None = None, **detail: object) -> None:
    """Record the read and commit it before anything is shown: no trail, no data."""
    support.audit_read(db.session, current_user.user, tenant.id, action, target=target, ip=_client_ip(),
                       detail=dict(detail))
    db.session.commit()


def _addresses(tenant: Tenant) -> list[str]:
    domain = app_settings().inbound_domain
    return [accounts.address_of(a, domain) for a in tenant.addresses]


# Console -------------------------------------------------------------------------------------


@bp.get("/support")
@tenant_required
def console() -> str:
    _require_support_user()
    query = request.args.get("q", "").strip()[: support.MAX_QUERY_CHARS]
    tenants = support.search_tenants(db.session, current_user.id, query, app_settings().inbound_domain)
    if query:
        for found in tenants:  # a search reveals names and addresses: each tenant shown sees it
            support.audit_read(db.session, current_user.user, found.id, "support.search", ip=_client_ip(),
                               detail={"query": query})
        db.session.commit()
    results = [(t, _addresses(t)) for t in tenants]
    return render_template("support/index.html", query=query, results=results, active_nav="support",
                           max_results=support.MAX_SEARCH_RESULTS)


@bp.get(f"/support/tenants/<{ID}:tenant_ref>")
@tenant_required
def tenant_overview(tenant_ref: int) -> str:
    tenant = _tenant_for_support(tenant_ref)
    _audit(tenant, "support.view_tenant", f"tenant:{tenant.id}")
    counts = dict(
        db.session.execute(
            select(InboundMessage.status, func.count())
            .where(InboundMessage.tenant_id == tenant.id)
            .group_by(InboundMessage.status)
        ).all()
    )
    code_count = db.session.scalar(
        select(func.count()).select_from(ForwardingConfirmation).where(ForwardingConfirmation.tenant_id == tenant.id)
    )
    return render_template("support/tenant.html", tenant=tenant, addresses=_addresses(tenant), counts=counts,
                           code_count=code_count or 0, active_nav="support")


@bp.get(f"/support/tenants/<{ID}:tenant_ref>/imports")
@tenant_required
def tenant_imports(tenant_ref: int) -> str:
    tenant = _tenant_for_support(tenant_ref)
    page = paginated(support.imports_query(tenant.id))
    _audit(tenant, "support.view_imports", f"tenant:{tenant.id}", page=page.page)
    return render_template("support/imports.html", tenant=tenant, page=page, active_nav="support")


@bp.get(f"/support/tenants/<{ID}:tenant_ref>/messages/<{ID}:message_id>")
@tenant_required
def tenant_message(tenant_ref: int, message_id: int) -> str:
    tenant = _tenant_for_support(tenant_ref)
    message = support.message_trail(db.session, tenant.id, message_id)
    _audit(tenant, "support.view_message", f"message:{message.id}")
    confirmation = fwd.confirmation_for_message(db.session, tenant.id, message.id)
    return render_template("support/message.html", tenant=tenant, message=message, confirmation=confirmation,
                           providers=PROVIDER_LABELS, active_nav="support")


@bp.get(f"/support/tenants/<{ID}:tenant_ref>/codes")
@tenant_required
def tenant_codes(tenant_ref: int) -> str:
    tenant = _tenant_for_support(tenant_ref)
    page = paginated(fwd.codes_query(tenant.id))
    _audit(tenant, "support.view_codes", f"tenant:{tenant.id}", page=page.page)
    return render_template("support/codes.html", tenant=tenant, page=page, providers=PROVIDER_LABELS,
                           active_nav="support")


# Support reads of the ordinary pages ---------------------------------------------------------


@bp.after_app_request
def _audit_support_page_views(response: Response) -> Response:
    """A support membership's successful read of any other dashboard page goes to that tenant's trail."""
    member = g.get("membership")
    if (
        member is None
        or member.role != Role.SUPPORT.value
        or request.blueprint in (bp.name, "api")
        or request.endpoint in (None, "static")
        or request.method not in ("GET", "HEAD")
        or response.status_code >= 400
    ):
        return response
    support.audit_read(db.session, current_user.user, member.tenant_id, "support.view_page",
                       target=request.path[:200], ip=_client_ip())
    db.session.commit()
    return response


# The tenant's audit trail (admins) -----------------------------------------------------------


@bp.get("/settings/audit")
@tenant_required
def audit_trail() -> ResponseReturnValue:
    if g.membership.role != Role.ADMIN.value:
        abort(403, _("Only the company's admins can read its audit trail."))
    prefix = request.args.get("action", "").strip()[:64] or None
    page = paginated(audit.events_query(tenant_id(), prefix))
    labels = support.ACTION_LABELS | members.ACTION_LABELS  # issue 17: people actions explained too
    return render_template("settings/audit.html", page=page, action=prefix or "", labels=labels,
                           active_nav="settings")
