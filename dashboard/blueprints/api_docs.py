"""``/api/docs``: the API reference, rendered from the same OpenAPI document as ``/api/v1/openapi.json``
(no Swagger UI, nothing loaded from elsewhere)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from dashboard.api import reference
from dashboard.api.openapi import document
from dashboard.web import tenant_required

bp = Blueprint("api_docs", __name__)


@bp.get("/api/docs")
@tenant_required
def index() -> str:
    spec = document(current_app)
    return render_template("api_docs.html", spec=spec, groups=list(reference.grouped(spec)), ref=reference,
                           active_nav="settings")
