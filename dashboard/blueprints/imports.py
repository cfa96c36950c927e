"""Imports: every message received for the tenant, with what became of its documents."""

from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy.orm import selectinload

from core.models import InboundMessage
from core.services import documents as docs
from dashboard.web import not_found_for, paginated, tenant_id, tenant_required

bp = Blueprint("imports", __name__)
not_found_for(bp)


@bp.get("/imports")
@tenant_required
def index() -> str:
    stmt = docs.messages_query(tenant_id()).options(selectinload(InboundMessage.documents))
    return render_template("imports.html", page=paginated(stmt))
