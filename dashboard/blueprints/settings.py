"""Settings: the tenant's inbound address and the sections other areas add."""

from __future__ import annotations

from flask import Blueprint, render_template

from core.services import accounts
from dashboard.app import settings as app_settings
from dashboard.extensions import db
from dashboard.web import not_found_for, tenant_id, tenant_required

bp = Blueprint("settings", __name__)
not_found_for(bp)


@bp.get("/settings")
@tenant_required
def index() -> str:
    address = accounts.primary_address(db.session, tenant_id())
    return render_template(
        "settings/index.html",
        active_nav="settings",
        inbound_address=accounts.address_of(address, app_settings().inbound_domain),
    )
