"""Settings → Forwarding: the confirmation codes that reached the tenant's address, and set-up guides.

Admins only: a confirmation code lets whoever holds it receive someone's mail, so members do not see it
and support staff read it through the audited console instead.
"""

from __future__ import annotations

from flask import Blueprint, abort, g, render_template
from flask_babel import gettext as _

from core.errors import NotFound
from core.inbound import forwarding as fwd
from core.mail.verification import GMAIL, MICROSOFT, PROVIDER_LABELS
from core.models import Role
from core.tenancy import accounts
from dashboard.context import settings as app_settings
from dashboard.extensions import db
from dashboard.web import paginated, tenant_id, tenant_required

bp = Blueprint("forwarding", __name__)

# The bounce Microsoft 365 sends when external forwarding is blocked (shown so that people recognise it).
M365_BOUNCE = (
    "550 5.7.520 Access denied, Your organization does not allow external forwarding. "
    "Please contact your administrator for further assistance. AS(7555)"
)


@bp.get("/settings/forwarding")
@tenant_required
def index() -> str:
    if g.membership.role != Role.ADMIN.value:
        abort(403, _("Only the company's admins can see forwarding confirmation codes."))
    try:
        address = accounts.address_of(accounts.primary_address(db.session, tenant_id()), app_settings().inbound_domain)
    except NotFound:
        address = None  # every address is retiring: the guides say so instead of showing a dead one
    return render_template(
        "settings/forwarding.html",
        active_nav="settings",
        inbound_address=address,
        page=paginated(fwd.codes_query(tenant_id()), per_page=20),
        latest=fwd.latest_by_provider(db.session, tenant_id()),
        providers=PROVIDER_LABELS,
        GMAIL=GMAIL,
        MICROSOFT=MICROSOFT,
        m365_bounce=M365_BOUNCE,
    )
