"""Settings: the tenant's inbound address and the sections other areas add."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime

from flask import Blueprint, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from core import tenant_data
from core.errors import ValidationFailed
from core.inbound import addresses as addr
from core.tenancy import accounts
from dashboard.context import settings as app_settings
from dashboard.context import storage
from dashboard.extensions import db
from dashboard.i18n import errors_text
from dashboard.viewer import admin_required
from dashboard.web import tenant_id, tenant_required

bp = Blueprint("settings", __name__)


@bp.get("/settings")
@tenant_required
def index() -> str:
    views = addr.tenant_addresses(db.session, tenant_id(), app_settings().inbound_domain)
    current = next((v for v in views if v.state == addr.AddressState.CURRENT), None)
    return render_template(
        "settings/index.html",
        active_nav="settings",
        inbound_address=current.address if current else None,
        current_address=current,
        addresses=views,
        grace_days_default=addr.GRACE_DAYS_DEFAULT,
        grace_days_max=addr.GRACE_DAYS_MAX,
    )


@bp.post("/settings/address/rotate")
@tenant_required
def rotate_address() -> Response:
    """Issue a new inbound address; the old one keeps working for the grace period chosen (admins only)."""
    admin_required()
    try:
        grace_days = addr.parse_grace_days(request.form.get("grace_days"))
        rotation = addr.rotate(db.session, tenant_id(), grace_days=grace_days, actor=current_user.user,
                               ip=request.remote_addr)
    except ValidationFailed as exc:
        db.session.rollback()
        flash(errors_text(exc.errors), "error")
        return redirect(url_for(".index", _anchor="addresses"))
    db.session.commit()
    new_address = accounts.address_of(rotation.new, app_settings().inbound_domain)
    if grace_days:
        message = _("Your new inbound address is %(address)s. Update your forwarding rules: the old address "
                    "stops working in %(days)d days.", address=new_address, days=grace_days)
    else:
        message = _("Your new inbound address is %(address)s. The old address no longer accepts mail.",
                    address=new_address)
    flash(message, "success")
    return redirect(url_for(".index", _anchor="addresses"))


@bp.post("/settings/export")
@tenant_required
def export_data() -> Response:
    """The company's whole archive (docs/tenant-export.md), for its admins; spooled to a temporary file,
    never held in memory, and removed once sent."""
    admin_required()
    archive = tempfile.TemporaryFile()  # noqa: SIM115 - send_file closes it once the response is sent
    try:
        tenant_data.export_tenant(db.session, storage(), tenant_id(), archive)
    except BaseException:
        archive.close()
        raise
    archive.seek(0)
    name = f"invoice-inbox-export-{datetime.now(UTC):%Y-%m-%d}.zip"
    return send_file(archive, mimetype="application/zip", as_attachment=True, download_name=name, max_age=0)
